"""Resolve a model argument (hub id or local dir) to a local checkpoint dir, and fingerprint its weights."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional

from alignslm_eval.io.errors import UserError
from alignslm_eval.io.json_file import read_json_object

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE asks the hub client to read its cache only."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def looks_like_local_path(text: str) -> bool:
    """A hub id is "name" or "org/name"; anything else can only have meant a local directory."""
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or (os.sep != "/" and os.sep in text)


def resolve_checkpoint(model: str, revision: Optional[str] = None, flag: str = "--model") -> tuple[Path, dict[str, Any]]:
    """Return (local dir, provenance). A local dir is used as is; anything else is a hub id read from the local
    Hugging Face cache (or downloaded where the network allows it). `flag` names the option in errors."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{flag} {model}: expected a checkpoint directory, got a file")
        return path.resolve(), {"path": str(path.resolve()), "local_dir": str(path.resolve())}
    if looks_like_local_path(model):
        raise UserError(f"{flag} {model}: directory does not exist")
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(model, revision=revision))
    except Exception as e:  # the hub client raises many types: offline, not found, gated, bad revision
        raise UserError(
            f"{flag} {model}: not a local directory and not loadable from the Hugging Face hub or its cache "
            f"({type(e).__name__}); download it where there is network and pass the directory"
        )
    return local, {"hub_id": model, "revision": revision, "resolved_commit": local.name, "local_dir": str(local)}


def read_config(
    checkpoint: Path, hint: str = "pass a checkpoint directory saved with save_pretrained (config + weights)"
) -> dict[str, Any]:
    """Parse checkpoint/config.json; a missing or malformed file is a UserError, `hint` says what to pass instead."""
    config = checkpoint / "config.json"
    if not config.is_file():
        raise UserError(f"{checkpoint}: no config.json here; {hint}")
    return read_json_object(config, "re-save the model with save_pretrained")


def read_model_config(directory: Path, model_types: tuple[Optional[str], ...], what: str, hint: str) -> dict[str, Any]:
    """read_config(directory, hint), and a UserError unless its model_type is one of `model_types` (None: absent).

    `what` names the model family in that error, e.g. "Whisper" -> "...; give a Whisper model".
    """
    config = read_config(directory, hint)
    model_type = config.get("model_type")
    if model_type not in model_types:
        wanted = " or ".join(repr(t) for t in model_types if t is not None)
        raise UserError(f"{directory / 'config.json'}: model_type is {model_type!r}, not {wanted}; give a {what} model")
    return config


def weights_fingerprint(checkpoint: Path) -> str:
    """sha256 over each weight file's name, size and first and last MiB.

    Hashing every byte of a 7B checkpoint takes minutes; this quick fingerprint still changes with any retraining,
    and is recorded under this name so nobody mistakes it for a full-file hash.
    """
    h = hashlib.sha256()
    files = sorted(p for p in checkpoint.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    for p in files:
        size = p.stat().st_size
        h.update(f"{p.name}:{size}".encode())
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read(1 << 20))
    return h.hexdigest()
