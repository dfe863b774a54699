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

from alignslm_eval.io.errors import UserError


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


def failure_reason(error: Exception) -> str:
    """What torch refused when loading a file, without its opening advice to load unsafely."""
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
        raise UserError(f"{option} {path}: not a readable torch checkpoint ({failure_reason(e)})")


def refuse_pickled_code(path: Path, what: str) -> None:
    """A UserError when the torch file at `path` pickles anything besides tensors and plain containers (a class or
    function that loading would call); the file's opcodes are only scanned, nothing in it runs. `what` names the
    file in the one-line error. Files from before torch 1.6 cannot be scanned; a weights-only load still refuses them
    if they hold code."""
    path = Path(path)
    try:
        foreign = torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if zipfile.is_zipfile(path) else []
    except Exception as e:  # a damaged archive: torch raises many types
        raise UserError(f"{what}: not a readable torch checkpoint ({failure_reason(e)})")
    if foreign:
        raise UserError(f"{what}: pickles {', '.join(foreign[:3])} besides tensors; that code is never run, so the "
                        "file is refused: give the weights as safetensors (what save_pretrained writes)")


def load_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The name -> tensor dict a weights file such as pytorch_model.bin or adapter_model.bin holds, read with
    torch's weights-only loader after `refuse_pickled_code`; anything else is a one-line UserError naming `what`."""
    refuse_pickled_code(path, what)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint at all
        raise UserError(f"{what}: not a readable torch checkpoint ({failure_reason(e)})")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{what}: holds a {type(state).__name__}, not a dict of named tensors; give the weights file "
                        "save_pretrained wrote")
    return state
