"""Read a published torch checkpoint without running any code it pickled.

Training frameworks store more than tensors: a PyTorch Lightning `.ckpt` keeps its hyper-parameters (often an
OmegaConf `DictConfig`), fairseq keeps an argparse `Namespace`. `torch.load(weights_only=True)` refuses such files,
and `weights_only=False` would run whatever the file names. Here every global outside torch's weights-only allow-list
is bound to an inert stand-in class before loading with `weights_only=True`, so tensors and plain containers load as
usual and the foreign objects come back as empty placeholders; no function or class from the file ever runs.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from alignslm_eval.errors import UserError


class ForeignObject:
    """Placeholder for an object of a class outside torch's allow-list; its pickled state is dropped unread."""

    pickled_as = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "ForeignObject":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<not loaded: {self.pickled_as}>"


def _stand_in(global_name: str) -> type:
    return type("ForeignObject", (ForeignObject,), {"pickled_as": global_name})


def _reason(error: Exception) -> str:
    """What torch refused, without its opening advice to load unsafely."""
    if isinstance(error, pickle.UnpicklingError):
        # torch wraps its reason in advice (load unsafely, allow-list the class, file an issue): keep the reason only.
        advice = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        said = next((line for line in lines if not line.startswith(advice)), "")
        said = said.replace("WeightsUnpickler error:", "").split(". Please use")[0].strip().rstrip(".")
        if "GLOBAL" in said:
            return f"{said[:160]}. The file pickles code, which is never run: give the published weights file"
        return f"{said[:160] or 'not a torch pickle'}; is it a file written by torch.save?"
    first = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {first[:160]}"


def load_checkpoint(path: Path, option: str) -> Any:
    """The checkpoint at `path` with foreign objects replaced by `ForeignObject`s. `option` names the flag the
    file came from, for the one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{option} {path}: {'a directory, not a file' if path.is_dir() else 'file not found'}; "
                        "give the checkpoint file")
    try:
        # Files from torch.save before 1.6 are not zip archives and cannot be scanned; they load with the allow-list
        # alone, which covers plain tensor checkpoints.
        foreign = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if zipfile.is_zipfile(path) else []
        with torch.serialization.safe_globals([(_stand_in(name), name) for name in foreign]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint at all
        raise UserError(f"{option} {path}: not a readable torch checkpoint ({_reason(e)})")
