"""Read a published torch checkpoint without running any code it pickled.

Training frameworks store more than tensors: a PyTorch Lightning `.ckpt` keeps its hyper-parameters (often an
OmegaConf `DictConfig`), fairseq keeps an argparse `Namespace`. `torch.load(weights_only=True)` refuses such files,
and `weights_only=False` would run whatever the file names. Here every global outside torch's weights-only allow-list
is bound to an inert stand-in class before loading with `weights_only=True`, so tensors and plain containers load as
usual and the foreign objects come back as empty placeholders; no function or class from the file ever runs.
"""

from __future__ import annotations

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


def load_checkpoint(path: Path, option: str) -> Any:
    """The checkpoint at `path` with foreign objects replaced by `ForeignObject`s. `option` names the flag the
    file came from, for the one-line error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{option} {path}: file not found")
    try:
        foreign = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        with torch.serialization.safe_globals([(_stand_in(name), name) for name in foreign]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint at all
        first = (str(e).splitlines() or [""])[0][:160]
        raise UserError(f"{option} {path}: not a readable torch checkpoint ({type(e).__name__}: {first})")
