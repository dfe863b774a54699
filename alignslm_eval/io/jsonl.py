"""JSON-lines logs that survive a hard kill: appends start on a fresh line, readers skip the line a kill cut short.

Every resumable log of the toolkit (scored items, samples, transcripts, scores, DPO and mid-training logs) is one of
these: a record is appended as its work finishes, so the log is the progress, and a rerun redoes only what no whole
line records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, TextIO

from alignslm_eval.io.atomic import write_text
from alignslm_eval.io.rank_files import every_file


def open_append(path: Path) -> TextIO:
    """Open a JSONL log for appending; if a hard kill left its last line unfinished, start on a fresh line so the
    next record is not glued onto the broken one."""
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            complete = f.read(1) == b"\n"
        if not complete:
            with open(path, "a", encoding="utf-8") as f:
                f.write("\n")
    return open(path, "a", encoding="utf-8")


def _whole_lines(path: Path) -> tuple[list[str], list[tuple[str, Any]]]:
    """(every line, the (line, value) of those that are whole JSON values)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    whole = []
    for line in lines:
        try:
            whole.append((line, json.loads(line)))
        except ValueError:
            continue  # a line cut short by a crash: that record is redone
    return lines, whole


def read_jsonl(path: Path) -> list[Any]:
    """The records of a JSONL log (none when it does not exist), without a line a kill cut short."""
    return [value for _, value in _whole_lines(path)[1]] if path.is_file() else []


def read_every_rank(main: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The records of `main` and of every per-rank log beside it (`io.rank_files`), in that file order. A record
    that is no JSON object holding every one of `fields` (a line from another version, an edit) counts as a line a
    kill cut short: its work is redone."""
    return [value for path in every_file(main) for value in read_jsonl(path)
            if isinstance(value, dict) and all(f in value for f in fields)]


def keep_whole_lines(path: Path, keep: Callable[[dict[str, Any]], bool] = lambda row: True) -> None:
    """Rewrite a JSONL log with only its whole lines (JSON objects) that `keep` accepts. A line a kill cut short is
    dropped: its step is redone, the kill having come before that step's checkpoint. A log with nothing to drop is
    left untouched."""
    if not path.is_file():
        return
    lines, whole = _whole_lines(path)
    kept = [line for line, row in whole if isinstance(row, dict) and keep(row)]
    if kept != lines:
        write_text(path, "".join(line + "\n" for line in kept))
