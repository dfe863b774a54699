"""Compare two run folders file by file, byte for byte, except what differs between any two runs.

    python -m tests.demo.compare_runs RUN_A RUN_B [--allow-added KEY ...]

Used to show that a refactor leaves the demo's results, samples, items, submission and continuation files as they
were. Before comparing, each text file has its run folder's path replaced by `<run>`, and JSON documents lose the
keys that no two runs share: `created`, `wall_time_s`, `environment` (the git commit) and the `results_<time>` file
names. `--allow-added KEY` accepts a mapping key that only RUN_B has (a field added on purpose); it is listed.
Exit status 0 when the folders match, 1 with one line per difference otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

VOLATILE_KEYS = frozenset({"created", "wall_time_s", "environment"})
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d")


def relative_files(root: Path) -> dict[str, Path]:
    """Relative name (timestamps replaced by <time>) -> file."""
    return {TIMESTAMP.sub("<time>", str(p.relative_to(root))): p for p in sorted(root.rglob("*")) if p.is_file()}


def _strip(value: Any, allow_added: frozenset[str], other: Any, path: str, added: list[str]) -> Any:
    if isinstance(value, dict):
        other = other if isinstance(other, dict) else {}
        out = {}
        for key, item in value.items():
            if key in VOLATILE_KEYS:
                continue
            if key in allow_added and key not in other:
                added.append(f"{path}/{key}")
                continue
            out[key] = _strip(item, allow_added, other.get(key), f"{path}/{key}", added)
        return out
    if isinstance(value, list):
        other = other if isinstance(other, list) else []
        return [_strip(v, allow_added, other[i] if i < len(other) else None, f"{path}/{i}", added)
                for i, v in enumerate(value)]
    if isinstance(value, str):
        return TIMESTAMP.sub("<time>", value)
    return value


def _documents(text: str, suffix: str) -> Optional[list[Any]]:
    try:
        if suffix == ".json":
            return [json.loads(text)]
        if suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return None
    return None


def compare(run_a: Path, run_b: Path, allow_added: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(differences, keys only RUN_B has that were allowed); both empty lists when the runs match."""
    allow = frozenset(allow_added)
    files_a, files_b = relative_files(run_a), relative_files(run_b)
    differences = [f"only in {run_a}: {name}" for name in sorted(set(files_a) - set(files_b))]
    differences += [f"only in {run_b}: {name}" for name in sorted(set(files_b) - set(files_a))]
    added: list[str] = []
    for name in sorted(set(files_a) & set(files_b)):
        raw_a, raw_b = files_a[name].read_bytes(), files_b[name].read_bytes()
        if raw_a == raw_b:
            continue
        try:
            text_a = raw_a.decode().replace(str(run_a), "<run>")
            text_b = raw_b.decode().replace(str(run_b), "<run>")
        except UnicodeDecodeError:
            differences.append(f"{name}: binary contents differ")
            continue
        docs_a, docs_b = _documents(text_a, files_a[name].suffix), _documents(text_b, files_b[name].suffix)
        if docs_a is not None and docs_b is not None and len(docs_a) == len(docs_b):
            stripped_a = [_strip(d, frozenset(), None, name, []) for d in docs_a]
            stripped_b = [_strip(d, allow, a, name, added) for d, a in zip(docs_b, docs_a)]
            if stripped_a != stripped_b:
                differences.append(f"{name}: {_first_difference(stripped_a, stripped_b, '')}")
        elif TIMESTAMP.sub("<time>", text_a) != TIMESTAMP.sub("<time>", text_b):
            line = next(i for i, (x, y) in enumerate(zip(text_a.splitlines() + [""], text_b.splitlines() + [""]))
                        if x != y)
            differences.append(f"{name}: line {line + 1} differs")
    return differences, sorted(set(added))


def _first_difference(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                return _first_difference(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}/{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}/{i}")
    return f"{path or '/'}: {json.dumps(a, default=str)[:120]} != {json.dumps(b, default=str)[:120]}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.demo.compare_runs", description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--allow-added", action="append", default=[], metavar="KEY")
    args = p.parse_args(argv)
    differences, added = compare(args.run_a.resolve(), args.run_b.resolve(), args.allow_added)
    n_files = len(relative_files(args.run_a))
    for line in differences:
        print(line)
    for key in added:
        print(f"added on purpose: {key}")
    print(f"{n_files} files compared: {'identical' if not differences else f'{len(differences)} differ'}"
          f"{f' ({len(added)} added keys allowed)' if added else ''}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
