"""Discrete speech units: run-length deduplication and the slamkit/TWIST unit file formats."""

from __future__ import annotations

import hashlib
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
    """Read a units file: one JSON object per line with `units`, optional `duration` (run lengths; ones when absent)
    and a name: `file_name` (slamkit's feature format, e.g. `{"file_name", "units", "duration"}`) and, in the files
    `alignslm-eval units export` writes, also `key` (the item's key in its task), which is then the name. UserError
    naming the file and line for a bad record or a name given twice."""
    path = Path(path)
    out: dict[str, Units] = {}
    line_of: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read units file ({e}); give a JSONL file of {{file_name, units, duration}}")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name = str(row["key"] if "key" in row else row["file_name"])
            units = np.asarray(row["units"], dtype=np.int64)
            durations = np.asarray(row.get("duration", np.ones_like(units)), dtype=np.int64)
            if units.ndim != 1 or not units.size:
                raise ValueError("units must be a non-empty list of integers")
            if (durations < 1).any():
                raise ValueError("durations must be 1 or more")
            record = Units(units, durations)
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise UserError(f"{path}:{lineno}: not a units record ({e}); expected keys file_name (or key), units, "
                            "duration")
        if name in out:
            raise UserError(f"{path}:{lineno}: {name!r} already has units on line {line_of[name]}; each file once")
        out[name], line_of[name] = record, lineno
    return out


def units_record(key: str, file_name: str, units: Units) -> str:
    """One line of the units files `alignslm-eval units export` writes: slamkit's feature fields plus the key."""
    return json.dumps({"key": key, "file_name": file_name, "units": units.units.tolist(),
                       "duration": units.durations.tolist()})


def units_digest(units: Units) -> str:
    """A content hash of one record's units and durations: the stand-in for an audio file's hash when units are
    supplied, so the dataset hash and resume keys follow the units."""
    h = hashlib.sha256(np.ascontiguousarray(units.units, dtype=np.int64).tobytes())
    h.update(b"|" + np.ascontiguousarray(units.durations, dtype=np.int64).tobytes())
    return "units:" + h.hexdigest()


def match_units(records: dict[str, Units], keys: dict[str, Path], source: Path) -> dict[str, Units]:
    """Each item's units (`keys`: item key -> its audio path): the record named by the item's key, else the one whose
    name has the item file's stem (slamkit names records by audio path, e.g. ../audio/x.flac). UserError for an item
    with none, or for a stem two records share."""
    by_stem: dict[str, list[str]] = {}
    for name in records:
        by_stem.setdefault(Path(name).stem, []).append(name)
    out: dict[str, Units] = {}
    missing = []
    for key, path in keys.items():
        if key in records:
            out[key] = records[key]
            continue
        names = by_stem.get(path.stem, [])
        if len(names) > 1:
            raise UserError(f"{source}: {len(names)} records ({', '.join(names[:3])}) match item {key} by file name; "
                            "name records by the item key (the file path under the task's data dir, no extension)")
        if names:
            out[key] = records[names[0]]
        else:
            missing.append(key)
    if missing:
        raise UserError(f"{source}: no units for item {missing[0]} ({len(missing)} of {len(keys)} missing); the file "
                        "must name every item of the task, by its key or its audio file name")
    return out
