"""Reading audio files into float32 mono waveforms at the rate a tokenizer expects, and hashing files for caches."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np

from alignslm_eval.io.errors import UserError

_HASH_CHUNK = 1 << 20


def load_audio(path: Path, target_sr: int) -> np.ndarray:
    """Read a wav/flac file (any bit depth) as float32 mono at `target_sr` Hz.

    Channels are averaged; a different sample rate is converted with `torchaudio.functional.resample` (windowed sinc,
    torchaudio's defaults). Raises UserError for a missing, unreadable or empty file.
    """
    import soundfile as sf

    path = Path(path)
    if target_sr <= 0:
        raise ValueError(f"target_sr must be positive, got {target_sr}")
    if not path.exists():
        raise UserError(f"{path}: audio file not found; check the path (relative paths are resolved from the cwd)")
    if not path.is_file():
        raise UserError(f"{path}: not a file; give the path of a wav or flac file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError, EOFError) as e:
        reason = " ".join(str(getattr(e, "error_string", None) or e).split())
        raise UserError(f"{path}: not a readable audio file ({reason}); re-export it as wav or flac")
    if data.shape[0] == 0:
        raise UserError(f"{path}: audio file has no samples; re-export it or remove it from the input list")
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        # A float wav can hold NaN/Inf; left in, they collapse the file's units to one and score silently.
        bad = int((~finite).sum())
        raise UserError(f"{path}: {bad} of {len(finite)} samples are NaN or infinite (the first at "
                        f"{int(np.argmin(finite)) / sr:.3f} s); repair or re-export the file, or remove it")
    wav = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if sr != target_sr:
        import torch
        import torchaudio.functional as AF

        wav = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), int(sr), int(target_sr)).numpy()
    return np.ascontiguousarray(wav, dtype=np.float32)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks. Only a regular file is read: a FIFO or a device named
    like audio would block or never end."""
    h = hashlib.sha256()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UserError(f"{path}: not a regular file (a pipe, device or directory); give the path of an audio file")
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
    except OSError as e:
        raise UserError(f"{path}: cannot read file ({e.strerror or e}); check the path and its permissions")
    return h.hexdigest()
