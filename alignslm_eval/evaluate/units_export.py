"""`alignslm-eval units export`: write the units a run scored, one units file per likelihood task, so a benchmark is
tokenized once and shared (`alignslm-eval --units TASK=FILE` scores them, with no tokenizer at hand).

The units come from the run's unit cache (keyed by the tokenizer fingerprint and each audio file's hash), so they are
exactly those the run scored; the task's data is read again and must still hash to the run's dataset hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignslm_eval.api.registry import TASK_KINDS
from alignslm_eval.api.task import parse_spec
from alignslm_eval.evaluate.likelihood import dataset_hash
from alignslm_eval.io.atomic import write_text
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.cache import UnitCache
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.units import units_record


def newest_results(path: Path) -> Path:
    """`path` itself if it is a results file, else the newest results_*.json in the run dir `path`."""
    path = Path(path)
    if path.is_file():
        return path
    found = sorted(path.glob("results_*.json")) if path.is_dir() else []
    if not found:
        raise UserError(f"{path}: no results_*.json here; give a run dir of alignslm-eval (runs/<model>/) or its "
                        "results file")
    return found[-1]


def export_units(results: Path, out_dir: Path, cache_dir: Path) -> list[Path]:
    """One `<task>.jsonl` under `out_dir` per likelihood task of the results file `results` that tokenized audio;
    each line `{key, file_name, units, duration}` (slamkit's feature fields plus the item key)."""
    try:
        doc: dict[str, Any] = json.loads(Path(results).read_text(encoding="utf-8"))
        tokenizer, tasks = doc["tokenizer"], doc["tasks"]
        fingerprint = tokenizer["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{results}: not an alignslm-eval results file ({e}); give results_<timestamp>.json")
    if tokenizer.get("kind") == "supplied units":
        raise UserError(f"{results}: this run scored supplied units files ({', '.join(tokenizer['units_files'])}); "
                        "share those files themselves")
    cache = UnitCache(cache_dir, fingerprint)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for name, entry in tasks.items():
            protocol = entry.get("protocol") or {}
            if "pipeline" in entry or "units" in protocol:
                continue  # a sampling task, or one scored from a units file already
            written.append(_export_task(results, name, entry, cache, Path(out_dir)))
    finally:
        cache.close()
    if not written:
        raise UserError(f"{results}: no likelihood task tokenized audio in this run; nothing to export")
    return written


def _export_task(results: Path, name: str, entry: dict[str, Any], cache: UnitCache, out_dir: Path) -> Path:
    protocol, dataset = entry["protocol"], entry["dataset"]
    spec = parse_spec(Path(protocol["source"]), {"data_dir": protocol["data_dir"], **(protocol.get("settings") or {})})
    data_dir = Path(dataset["path"])
    data = TASK_KINDS.get(spec.kind)(spec).load(data_dir).limited(dataset.get("limit"))
    hashes = {key: file_sha256(item.path) for key, item in sorted(data.items.items())}
    if dataset_hash(data, hashes) != dataset["sha256"]:
        raise UserError(f"{data_dir}: task {name}'s data changed since {results} was written (its dataset hash "
                        "differs); rerun the evaluation, then export")
    units = cache.get_many(hashes.values())
    missing = [k for k, h in hashes.items() if h not in units]
    if missing:
        raise UserError(f"{cache.path}: no units for {len(missing)} item(s) of {name} (e.g. {missing[0]}); rerun the "
                        "evaluation with the same --cache-dir, then export")
    lines = [units_record(key, data.items[key].path.relative_to(data_dir).as_posix()
                          if data.items[key].path.is_relative_to(data_dir) else str(data.items[key].path),
                          units[hashes[key]])
             for key in hashes]
    path = out_dir / f"{name}.jsonl"
    write_text(path, "\n".join(lines) + "\n")
    return path
