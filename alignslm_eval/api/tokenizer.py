"""The speech tokenizer interface: waveform in, frame-level discrete units out."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class SpeechTokenizer(ABC):
    """Turns one mono waveform into one unit id per frame.

    Implementations encode one utterance at a time (or mask padding exactly), so an utterance's units never depend
    on what else was in the batch. Deduplication is not their job: `alignslm_eval.io.units.from_frames` does it.
    """

    #: sample rate the waveform passed to `encode` must have; callers resample
    sample_rate: int = 16000

    @classmethod
    @abstractmethod
    def from_args(cls, **kwargs: str) -> "SpeechTokenizer":
        """Build from CLI-style string arguments (`--tokenizer-args key=value,...`)."""

    @property
    @abstractmethod
    def n_units(self) -> int:
        """Size of the unit inventory: ids are 0 .. n_units - 1."""

    @property
    @abstractmethod
    def frame_rate(self) -> float:
        """Frames (units before dedup) per second of audio."""

    @abstractmethod
    def encode(self, wav: np.ndarray) -> np.ndarray:
        """Frame-level unit ids (int64, shape [frames]) for a float32 mono waveform at `sample_rate`."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Everything that determines the units: kind, weights/centroid hashes, layer, rates. JSON-serialisable."""

    def fingerprint(self) -> str:
        """A short stable id of `describe()`, used to key the unit cache and recorded in results."""
        blob = json.dumps(self.describe(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
