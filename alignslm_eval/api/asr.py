"""The speech recogniser interface: waveforms to transcripts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np


class ASR(ABC):
    """Transcribes 16 kHz mono float32 waveforms. Output is raw text; `alignslm_eval.asr.normalize` normalises it
    before any metric."""

    sample_rate: int = 16000

    @classmethod
    @abstractmethod
    def from_args(cls, **kwargs: str) -> "ASR":
        """Build from CLI-style string arguments, e.g. `whisper:path=DIR,language=en`."""

    @abstractmethod
    def transcribe(self, wavs: Sequence[np.ndarray]) -> list[str]:
        """One transcript per waveform, in order; batching is the implementation's business."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Kind, model path or id and revision, language, decoding settings: JSON-serialisable."""
