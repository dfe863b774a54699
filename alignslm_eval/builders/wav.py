"""The audio of every built benchmark: 16 kHz mono 16-bit PCM WAV, resampled from espeak-ng's native rate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def to_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """int16 samples at `sample_rate` -> int16 at 16 kHz (polyphase resampling, Kaiser-windowed FIR)."""
    if sample_rate == SAMPLE_RATE:
        return np.asarray(wav, dtype=np.int16)
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, int(sample_rate))
    y = resample_poly(np.asarray(wav, dtype=np.float64), SAMPLE_RATE // g, int(sample_rate) // g)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def write_wav(path: Path, audio: np.ndarray) -> None:
    """Write int16 samples at 16 kHz to `path` as a mono PCM_16 WAV file."""
    import soundfile as sf

    sf.write(str(path), audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
