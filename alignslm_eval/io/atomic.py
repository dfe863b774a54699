"""Writing a final file so that no reader ever sees part of it and no two writers collide.

Each write goes to a temporary file of its own beside the target (its name carries the process id and a random
part, so two processes writing the same file on one output dir never share it) and replaces the target in one
`os.replace`: a crash leaves the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write to; when the block ends without error it replaces `path`,
    otherwise it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_new(candidates: Iterable[Path], text: str) -> Path:
    """Write `text` to the first of `candidates` that does not exist yet, and return it. Never replaces a file: the
    name is taken with a hard link, which fails if another process took it first (two runs finishing in the same
    second both keep their results), and the file appears complete."""
    for path in candidates:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: take the name empty, then fill it in one step
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                os.replace(tmp, path)
            return path
        except FileExistsError:
            continue
        finally:
            tmp.unlink(missing_ok=True)
    raise FileExistsError("every candidate name is taken")
