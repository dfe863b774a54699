"""On-disk unit cache keyed by audio content hash and tokenizer fingerprint.

Re-scoring a new checkpoint on a benchmark reads units from here and never re-runs the speech encoder. One SQLite
file per tokenizer fingerprint: atomic writes, so an interrupted run keeps every committed unit sequence.

No SQLite file is written by two processes: under several ranks (or `--shard` jobs) each writes a file of its own,
`<fingerprint>.rank<R>.sqlite`, and reads every other file of its fingerprint; rank 0 of a process group folds the
rank files into the main one once every rank has finished (`fold_rank_files`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

from alignslm_eval.io.rank_files import every_file, rank_files
from alignslm_eval.io.units import Units

if TYPE_CHECKING:
    from alignslm_eval.evaluate.world import World

log = logging.getLogger(__name__)
#: seconds a reader or writer waits for another process's commit before failing
LOCK_TIMEOUT_S = 120.0
_TABLE = "CREATE TABLE IF NOT EXISTS units (audio_sha256 TEXT PRIMARY KEY, units BLOB, durations BLOB)"


def default_cache_dir() -> Path:
    return Path(os.environ.get("ALIGNSLM_CACHE", Path.home() / ".cache" / "alignslm"))


class UnitCache:
    def __init__(self, root: Path, tokenizer_fingerprint: str, world: Optional["World"] = None):
        folder = Path(root) / "units"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{tokenizer_fingerprint}.sqlite"
        own = self.path if world is None else world.own_file(self.path)
        self._db = sqlite3.connect(own, timeout=LOCK_TIMEOUT_S)
        self._db.execute(_TABLE)
        self._db.commit()
        others = [p for p in every_file(self.path) if p != own]
        self._readers = {p: sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=LOCK_TIMEOUT_S) for p in others}

    def get_many(self, hashes: Iterable[str]) -> dict[str, Units]:
        wanted = list(dict.fromkeys(hashes))
        found = _select(self._db, wanted)
        for path, reader in list(self._readers.items()):
            missing = [h for h in wanted if h not in found]
            if not missing:
                break
            try:
                found.update(_select(reader, missing))
            except sqlite3.Error as e:  # e.g. a crashed rank's file: its units are computed again, nothing is lost
                log.warning("unit cache %s unreadable (%s); its units are computed again", path, e)
                reader.close()
                del self._readers[path]
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
        for reader in self._readers.values():
            reader.close()


def _select(db: sqlite3.Connection, wanted: list[str]) -> dict[str, Units]:
    found: dict[str, Units] = {}
    for start in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
        chunk = wanted[start : start + 500]
        rows = db.execute(
            f"SELECT audio_sha256, units, durations FROM units WHERE audio_sha256 IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for h, u, d in rows:
            found[h] = Units(np.frombuffer(u, dtype=np.int64).copy(), np.frombuffer(d, dtype=np.int64).copy())
    return found


def fold_rank_files(main: Path) -> None:
    """Copy every rank file's units into the main file, then delete the rank file. Only for when no rank writes any
    more: rank 0 of a process group after the last barrier."""
    db = sqlite3.connect(main, timeout=LOCK_TIMEOUT_S)
    try:
        db.execute(_TABLE)
        for path in rank_files(main):
            db.execute("ATTACH DATABASE ? AS rank_file", (str(path),))
            db.execute("INSERT OR IGNORE INTO units SELECT audio_sha256, units, durations FROM rank_file.units")
            db.commit()
            db.execute("DETACH DATABASE rank_file")
            path.unlink()
    finally:
        db.close()
