"""Reading the text a benchmark is built from: CSV/TSV/JSONL rows with their line numbers, checked for the columns
a builder needs, and a seeded sample of them. Every problem is a UserError naming the file and line."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from alignslm_eval.io.errors import UserError


@dataclass
class Row:
    """One input record: its physical line in the file and its values, stripped strings."""

    line: int
    values: dict[str, str]


def _delimiter(path: Path, header_line: str) -> str:
    if path.suffix.lower() == ".tsv" or ("\t" in header_line and "," not in header_line):
        return "\t"
    return ","


def header(path: Path) -> list[str]:
    """Column names of a CSV/TSV file (empty if unreadable; `read_rows` then reports the problem)."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return []
    return [c.strip() for c in next(csv.reader([first], delimiter=_delimiter(Path(path), first)), [])]


def read_rows(path: Path, required: Sequence[str], what: str) -> list[Row]:
    """Rows of a CSV/TSV (by suffix or header) or JSONL file, values stripped strings; checks required columns.

    `what` describes the expected file for error messages, e.g. "a BLiMP .jsonl file".
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--input {path}: is a directory, not {what}; give the path of the file(s) inside it")
    if not path.is_file():
        raise UserError(f"--input {path}: input file not found; check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read input file ({e}); it must be UTF-8 text ({what})")
    rows: list[Row] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        # split on newlines only: JSON strings may hold other line separators such as U+2028
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: line {number}: not valid JSON ({e.msg}); {what} has one object per line")
            if not isinstance(obj, dict):
                raise UserError(f"{path}: line {number}: expected a JSON object; {what} has one object per line")
            missing = [c for c in required if c not in obj]
            if missing:
                raise UserError(
                    f"{path}: line {number}: missing field(s) {', '.join(missing)}; {what} needs "
                    f"{', '.join(required)} on every line"
                )
            rows.append(Row(number, {k: "" if v is None else str(v).strip() for k, v in obj.items()}))
    else:
        if not text.strip():
            raise UserError(f"{path}: empty file; {what} needs a header line with {', '.join(required)}")
        try:
            # StringIO with newline="" keeps quoted multi-line fields intact and line_num physical
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(path, text.split("\n", 1)[0]))
            columns = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = columns
            missing = [c for c in required if c not in columns]
            if missing:
                raise UserError(
                    f"{path}: line 1: missing column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'}); "
                    f"{what} needs {', '.join(required)}"
                )
            for row in reader:
                values = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if not any(values.values()):
                    continue
                rows.append(Row(reader.line_num, values))
        except csv.Error as e:
            raise UserError(f"{path}: not a readable CSV file ({e}); {what} is expected")
    if not rows:
        raise UserError(f"{path}: no rows; {what} needs at least one")
    return rows


def require_text(path: Path, row: Row, column: str) -> str:
    """The row's value in `column`; UserError if it is empty."""
    value = row.values.get(column, "")
    if not value:
        raise UserError(f"{path}: line {row.line}: empty {column!r}; fill it in or remove the row")
    return value


def seeded_sample(items: list, n: Optional[int], key: str) -> list:
    """A seeded random subset of `n` items, kept in input order (all items when n is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    # a str seed hashes the same way in every run (unlike hash(), which PYTHONHASHSEED salts)
    chosen = sorted(random.Random(key).sample(range(len(items)), n))
    return [items[i] for i in chosen]
