"""On-disk unit cache keyed by audio content hash and tokenizer fingerprint.

Re-scoring a new checkpoint on a benchmark reads units from here and never re-runs the speech encoder. One SQLite
file per tokenizer fingerprint: atomic writes, so an interrupted run keeps every committed unit sequence.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from alignslm_eval.io.units import Units


def default_cache_dir() -> Path:
    return Path(os.environ.get("ALIGNSLM_CACHE", Path.home() / ".cache" / "alignslm"))


class UnitCache:
    def __init__(self, root: Path, tokenizer_fingerprint: str):
        root = Path(root) / "units"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{tokenizer_fingerprint}.sqlite"
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS units (audio_sha256 TEXT PRIMARY KEY, units BLOB, durations BLOB)"
        )
        self._db.commit()

    def get_many(self, hashes: Iterable[str]) -> dict[str, Units]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, Units] = {}
        for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            rows = self._db.execute(
                f"SELECT audio_sha256, units, durations FROM units WHERE audio_sha256 IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for h, u, d in rows:
                found[h] = Units(np.frombuffer(u, dtype=np.int64).copy(), np.frombuffer(d, dtype=np.int64).copy())
        return found

    def get(self, audio_hash: str) -> Optional[Units]:
        return self.get_many([audio_hash]).get(audio_hash)

    def put_many(self, entries: dict[str, Units]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO units VALUES (?, ?, ?)",
            [
                (h, u.units.astype(np.int64).tobytes(), u.durations.astype(np.int64).tobytes())
                for h, u in entries.items()
            ],
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()
