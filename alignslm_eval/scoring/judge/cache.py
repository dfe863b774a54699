"""The judge answer cache: every answer a judge gave, in one SQLite file, under a key made of everything that
decides the answer."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterable, Iterator, Optional

from alignslm_eval.io.cache import default_cache_dir
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.rank_files import every_file

if TYPE_CHECKING:
    from alignslm_eval.evaluate.world import World

#: bump when the cache key's recipe changes, so old entries are never read under a new meaning
CACHE_KEY_VERSION = 1


def default_judge_cache_dir() -> Path:
    return default_cache_dir() / "judge"


def cache_key(model: str, base_url: str, temperature: float, max_tokens: int,
              messages: list[dict[str, str]]) -> str:
    """sha256 over everything that decides the judge's answer: endpoint model, base URL, sampling settings and
    the full rendered messages (so a changed template or transcript is a new key)."""
    payload = {"v": CACHE_KEY_VERSION, "model": model, "base_url": base_url,
               "temperature": temperature, "max_tokens": max_tokens, "messages": messages}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class AnswerCache:
    """Judge answers in SQLite, keyed by `cache_key`. Each answer is committed as it arrives, so an interrupted run
    keeps everything answered so far. A lone process writes `answers.sqlite`; under several ranks (`world`) each
    writes `answers.rank<R>.sqlite` (`io.rank_files`), so within a run every file has one writer, and every process
    reads all the files, read-only but its own. SQLite's locking still lets separate runs share a file. A file that
    cannot be read or written (not a database, a full disk, a lock held past `LOCK_TIMEOUT_S`) is a UserError naming
    it; answers committed before stay in it."""

    LOCK_TIMEOUT_S: ClassVar[float] = 60.0

    def __init__(self, root: Path, world: Optional["World"] = None):
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"--judge-cache-dir {root}: cannot create the judge cache directory ({e.strerror or e})")
        main = root / "answers.sqlite"
        #: the file this process writes
        self.path = main if world is None else world.own_file(main)
        self._lock = threading.Lock()
        with self._failing("opened"):
            self._db = sqlite3.connect(self.path, timeout=self.LOCK_TIMEOUT_S, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, base_url TEXT, answer TEXT, "
                "created REAL)"
            )
            self._db.commit()
            self._readers = [sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=self.LOCK_TIMEOUT_S,
                                             check_same_thread=False)
                             for p in every_file(main) if p != self.path]

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise UserError(f"{self.path}: the judge answer cache cannot be {what} ({e}); free disk space, end the "
                            "process holding it, or pass --judge-cache-dir DIR (a rerun asks only what it lacks)")

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock, self._failing("read"):
            for db in [self._db, *self._readers]:
                missing = [k for k in wanted if k not in found]
                for start in range(0, len(missing), 500):  # SQLite's bound-parameter limit
                    chunk = missing[start : start + 500]
                    rows = db.execute(
                        f"SELECT key, answer FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk
                    )
                    found.update(rows)
        return found

    def put(self, key: str, answer: str, model: str, base_url: Optional[str]) -> None:
        with self._lock, self._failing("written"):
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, model, base_url, answer, created) VALUES (?, ?, ?, ?, ?)",
                (key, model, base_url, answer, time.time()),
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            for db in [self._db, *self._readers]:
                db.close()
