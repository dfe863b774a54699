"""Discrete speech units: run-length deduplication and the slamkit/TWIST unit file formats."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignslm_eval.io.errors import UserError


@dataclass(frozen=True)
class Units:
    """A unit sequence with the number of frames each unit lasted (all ones when not deduplicated)."""

    units: np.ndarray
    durations: np.ndarray

    def __post_init__(self) -> None:
        if self.units.shape != self.durations.shape:
            raise ValueError("units and durations must have the same length")

    def __len__(self) -> int:
        return int(self.units.shape[0])

    def frames(self) -> np.ndarray:
        """The frame-level sequence these units came from."""
        return np.repeat(self.units, self.durations)


def from_frames(frames: np.ndarray, dedup: bool = True) -> Units:
    """Collapse runs of equal frame units into one unit each, keeping the run lengths as durations."""
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    if not dedup or frames.size == 0:
        return Units(frames, np.ones_like(frames))
    starts = np.flatnonzero(np.concatenate(([True], frames[1:] != frames[:-1])))
    durations = np.diff(np.concatenate((starts, [frames.size])))
    return Units(frames[starts], durations.astype(np.int64))


_UNIT_TOKEN = re.compile(r"<Un(\d+)>")


def parse_unit_string(text: str) -> np.ndarray:
    """Parse slamkit's `<Un12><Un7>...` audio representation into unit ids."""
    ids = _UNIT_TOKEN.findall(text)
    if "".join(f"<Un{i}>" for i in ids) != text.strip():
        raise ValueError("expected only <UnN> tokens")
    return np.array([int(i) for i in ids], dtype=np.int64)


def read_units_jsonl(path: Path) -> dict[str, Units]:
    """Read a slamkit features file: one JSON object per line with `units`, optional `duration`, and `file_name`."""
    out: dict[str, Units] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                units = np.asarray(row["units"], dtype=np.int64)
                durations = np.asarray(row.get("duration", np.ones_like(units)), dtype=np.int64)
                out[row["file_name"]] = Units(units, durations)
            except (KeyError, ValueError, TypeError) as e:
                raise UserError(f"{path}:{lineno}: not a units record ({e}); expected keys units, duration, file_name")
    return out
