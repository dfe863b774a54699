"""The naming rule for files that several processes of one run write side by side: one file per writer.

A lone process writes `<stem><suffix>`; rank R of several (torchrun ranks or `--shard` jobs) writes
`<stem>.rank<R><suffix>` beside it. Readers read all of them, whatever world size wrote them, so no file ever has two
writers and nothing one rank wrote is lost when a run resumes at another world size.
"""

from __future__ import annotations

import glob
from pathlib import Path


def own_file(main: Path, rank: int, size: int) -> Path:
    """The file rank `rank` of `size` writes in place of `main`: `main` itself when it is the only process."""
    main = Path(main)
    return main if size == 1 else main.with_name(f"{main.stem}.rank{rank}{main.suffix}")


def rank_files(main: Path) -> list[Path]:
    """The per-rank files that exist beside `main`, in name order."""
    main = Path(main)
    return sorted(main.parent.glob(f"{glob.escape(main.stem)}.rank*{main.suffix}"))


def every_file(main: Path) -> list[Path]:
    """`main` (where it exists) and then every per-rank file beside it: all a reader must read."""
    main = Path(main)
    return ([main] if main.is_file() else []) + rank_files(main)
