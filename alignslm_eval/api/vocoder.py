"""The vocoder interface: discrete units back to a waveform."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional

import numpy as np


class Vocoder(ABC):
    """Turns a (deduplicated) unit sequence into a 16 kHz mono waveform.

    When `durations` (frames per unit) are given they are used as they are; otherwise the vocoder predicts them
    (unit HiFi-GAN's duration predictor) or falls back to a documented default.
    """

    sample_rate: int = 16000

    @classmethod
    @abstractmethod
    def from_args(cls, **kwargs: str) -> "Vocoder":
        """Build from CLI-style string arguments (`--vocoder-args key=value,...`)."""

    @property
    @abstractmethod
    def n_units(self) -> int:
        """Size of the unit inventory the vocoder accepts."""

    @abstractmethod
    def durations(self, units: np.ndarray) -> np.ndarray:
        """Frames per unit this vocoder uses when none are given (predicted, or its documented default)."""

    @abstractmethod
    def synthesize(self, units: np.ndarray, durations: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 waveform at `sample_rate` for one unit sequence."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Kind, checkpoint path and hash, hop, sample rate: JSON-serialisable."""
