"""What an evaluation report shows, read from `alignslm-eval` runs: each results file's header and task metrics, and
per task its rows (continuation samples, or likelihood choices) for the page's tables.

The results files are found and checked as the leaderboard reads them (`find_results`, `load_results`) and read
into the typed document (`ResultsDocument.from_json`); rows come from the files the run recorded (`files.samples`,
`pipeline.run_dir`), found beside the results file when the run was started from another directory.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any, Optional, Sequence

from alignslm_eval.api.results import ResultsDocument, TaskEntry
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.jsonl import read_jsonl
from alignslm_eval.leaderboard.collect import (adapter_name, dirs_without_results, find_results, format_size,
                                               load_results, model_name, task_metric_info)
from alignslm_eval.report.page import AudioLinks, locate
from alignslm_eval.report.store import SampleRow, rows_from_run, rows_from_samples_log

#: a continuation counts as silent when this share of it (or more) is below the silence threshold
SILENT_RATIO = 0.999


def header_pairs(doc: ResultsDocument) -> list[list[str]]:
    """The run's identity as (label, text) pairs: model, adapter chain, tokenizer, datasets, packages, command."""
    model, env = doc.model or {}, doc.environment or {}
    pairs = [["model", model_name(model, doc.command)]]
    where = model.get("hub_id") or model.get("path") or model.get("local_dir")
    if where:
        revision = model.get("resolved_commit") or model.get("revision")
        pairs.append(["checkpoint", f"{where}" + (f" @ {revision}" if revision else "")])
    if model.get("weights_fingerprint"):
        pairs.append(["weights fingerprint", str(model["weights_fingerprint"])])
    described = [str(model[k]) for k in ("architecture", "dtype", "device") if model.get(k)]
    if model.get("n_parameters"):
        described.insert(1, f"{format_size(model['n_parameters'])} parameters")
    if described:
        pairs.append(["architecture", ", ".join(described)])
    adapter = model.get("adapter")
    if adapter:
        chain = adapter if isinstance(adapter, list) else [adapter]
        paths = [str(a.get("path", a)) if isinstance(a, dict) else str(a) for a in chain]
        pairs.append(["adapter chain", f"{adapter_name(adapter)}: " + " → ".join(paths)])
    vocab = model.get("vocab") or {}
    if vocab:
        pairs.append(["unit vocabulary", ", ".join(f"{k} {vocab[k]}" for k in ("convention", "n_units", "offset")
                                                    if vocab.get(k) is not None)])
    tokenizer = doc.tokenizer or {}
    if tokenizer:
        source = tokenizer.get("path") or tokenizer.get("hub_id") or ""
        layer = f" layer {tokenizer['layer']}" if tokenizer.get("layer") is not None else ""
        pairs.append(["tokenizer", f"{tokenizer.get('kind', '?')}{layer} {source}".strip()
                      + f" (fingerprint {tokenizer.get('fingerprint', '?')})"])
    for task, entry in doc.tasks.items():
        data = entry.dataset or {}
        if data.get("sha256"):
            size = data.get("n_items") or data.get("n_prompts")
            pairs.append([f"dataset {task}", f"sha256 {data['sha256']}" + (f" ({size} files)" if size else "")])
    packages = {"alignslm": env.get("alignslm"), "python": env.get("python"), **(env.get("packages") or {})}
    pairs.append(["packages", ", ".join(f"{k} {v}" for k, v in packages.items() if v)])
    git = env.get("git")
    if isinstance(git, dict) and git.get("commit"):
        pairs.append(["git", f"{git['commit']}" + (" (uncommitted changes)" if git.get("dirty") else "")])
    pairs.append(["command", shlex.join(str(a) for a in doc.command)])
    pairs.append(["created", f"{doc.created} UTC"])
    run = [f"seed {doc.seed}" if doc.seed is not None else "", f"batch size {doc.batch_size}" if doc.batch_size else "",
           f"{doc.wall_time_s:.1f} s" if isinstance(doc.wall_time_s, (int, float)) else ""]
    if any(run):
        pairs.append(["run", ", ".join(r for r in run if r)])
    for task, why in (doc.skipped_tasks or {}).items():
        pairs.append([f"skipped {task}", str(why)])
    return pairs


def metric_rows(path: Path, task: str, entry: TaskEntry) -> list[dict[str, Any]]:
    """The task's metrics then breakdown groups, each with value, stderr, n and how to show it (percent or not,
    which way is better), as the file's metric_info (or the registered definer) says."""
    info = task_metric_info(path, task, entry.to_json())
    rows = []
    result = entry.result
    names = [result["headline"], *(m for m in result["metrics"] if m != result["headline"])]
    for name in names:
        rows.append(_metric(name, None, result["metrics"][name], info.get(name), name == result["headline"]))
    for breakdown, groups in (result.get("breakdowns") or {}).items():
        for group, metric in groups.items():
            rows.append(_metric(breakdown, group, metric, info.get(breakdown), False))
    return rows


def _metric(name: str, group: Optional[str], metric: dict[str, Any], info: Any, headline: bool) -> dict[str, Any]:
    return {"name": name, "group": group, "value": metric.get("value"), "stderr": metric.get("stderr"),
            "n": metric.get("n"), "headline": headline, "percent": bool(info and info.percent),
            "direction": info.direction if info else "neutral"}


def sample_cells(row: SampleRow, audio: AudioLinks, base: Path) -> dict[str, Any]:
    """A continuation row for the page, with the filters it falls under."""
    cells = {"prompt_id": row.prompt_id, "sample": row.sample, "units": row.n_units,
             "prompt_audio": audio.link(row.prompt_audio, base), "cut_s": row.prompt_cut_s,
             "prompt_text": row.prompt_text, "audio": audio.link(row.wav, base), "text": row.text,
             "scores": row.scores}
    cells["flags"] = sample_flags(cells)
    return cells


def sample_flags(cells: dict[str, Any]) -> list[str]:
    """The page's status filters a row falls under: failed (scoring raised: judge errors), unparsable (the judge
    answered without a readable score), unscored (any metric without a value), silent (no units, or silent audio),
    missing audio (a wav not on disk)."""
    statuses = [str(s.get("status", "")) for s in cells["scores"].values()]
    flags = []
    if any(s.startswith("error") for s in statuses):
        flags.append("failed")
    if "unparsable" in statuses:
        flags.append("unparsable")
    if any(s.get("value") is None for s in cells["scores"].values()):
        flags.append("unscored")
    silence = (cells["scores"].get("silence_ratio") or {}).get("value")
    if cells["units"] == 0 or (isinstance(silence, (int, float)) and silence >= SILENT_RATIO):
        flags.append("silent")
    if any(a and "missing" in a for a in (cells["audio"], cells["prompt_audio"])):
        flags.append("missing audio")
    return flags


def choice_cells(row: dict[str, Any], reduction: str, audio: AudioLinks, base: Path) -> dict[str, Any]:
    """A likelihood choice for the page: its candidates' audio and log-likelihoods, which one won under the task's
    reduction (every best one on a tie) and which is the positive."""
    candidates = row.get("candidates") or []
    key = "ll_mean" if reduction == "mean" else "ll_sum"
    reduced = [c.get(key) for c in candidates]
    finite = [v for v in reduced if isinstance(v, (int, float)) and math.isfinite(v)]
    best = max(finite) if finite else None
    shown = []
    for i, c in enumerate(candidates):
        shown.append({"key": c.get("key"), "audio": audio.link(c.get("path"), base), "ll_sum": c.get("ll_sum"),
                      "ll_mean": c.get("ll_mean"), "n_tokens": c.get("n_tokens"), "positive": i == row.get("positive"),
                      "won": best is not None and reduced[i] == best})
    score = row.get("score")
    flags = []
    if isinstance(score, (int, float)) and score < 1:
        flags.append("error")
    if score == 0.5:
        flags.append("tie")
    if any(c["audio"] and "missing" in c["audio"] for c in shown):
        flags.append("missing audio")
    meta = row.get("meta") or {}
    return {"choice": str(row.get("choice")), "score": score, "reduction": key,
            "meta": ", ".join(f"{k}: {v}" for k, v in meta.items()) if isinstance(meta, dict) else str(meta),
            "candidates": shown, "flags": flags}


def _run_dir(recorded: Optional[str], base: Path) -> Optional[Path]:
    if not recorded:
        return None
    found = locate(str(Path(recorded) / "run.json"), base)
    return found.parent if found is not None else None


def task_section(path: Path, task: str, entry: TaskEntry, table_id: str, audio: AudioLinks,
                 tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One task's part of the page; its rows go into `tables[table_id]` when the run recorded any."""
    base = path.parent
    protocol = entry.protocol or {}
    section: dict[str, Any] = {"name": task, "kind": protocol.get("kind"), "metrics": metric_rows(path, task, entry),
                               "protocol": protocol, "pipeline": entry.pipeline, "dataset": entry.dataset,
                               "unscored": entry.unscored, "wall_time_s": entry.wall_time_s, "table": None,
                               "note": None}
    files = entry.files or {}
    samples = locate(files["samples"], base) if files.get("samples") else None
    if entry.pipeline is not None:  # a continuation task: rows are samples
        metrics = list((entry.pipeline.get("scorers") or {}).keys()) or [m["name"] for m in section["metrics"]
                                                                           if m["group"] is None]
        run_dir = _run_dir(entry.pipeline.get("run_dir") or files.get("run_dir"), base)
        if samples is not None:
            rows = rows_from_samples_log(samples)
        elif run_dir is not None:
            rows = rows_from_run(run_dir, metrics, entry.pipeline.get("scorers"), entry.pipeline.get("vocoder"),
                                 entry.pipeline.get("asr"))
        else:
            section["note"] = (f"no per-sample rows: neither samples_{task}.jsonl nor the continuation run "
                               f"{entry.pipeline.get('run_dir')} is on disk")
            return section
        tables[table_id] = [sample_cells(r, audio, base) for r in rows]
        directions = {m: (entry.pipeline.get("scorers") or {}).get(m, {}).get("direction") for m in metrics}
        section["table"] = {"id": table_id, "type": "samples", "metrics": metrics, "directions": directions}
    elif samples is not None:
        reduction = protocol.get("reduction", "sum")
        tables[table_id] = [choice_cells(r, reduction, audio, base) for r in read_jsonl(samples)
                            if isinstance(r, dict) and "candidates" in r]
        section["table"] = {"id": table_id, "type": "choices", "reduction": reduction}
    else:
        section["note"] = ("no per-choice table: this run was scored without --log-samples, so it recorded no "
                           f"samples_{task}.jsonl; rerun the same command with --log-samples (scores are reused)")
    return section


def eval_report(paths: Sequence[Path], page_dir: Path, embed_audio: bool = False
                ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], list[str]]:
    """The page's summary, its tables' rows and warnings (results files skipped as invalid) for every results file
    under `paths` (run dirs, folders of runs, or results files). A folder holding none is a UserError."""
    found = find_results(paths)
    if not found:
        unread = dirs_without_results(paths)
        raise UserError(" ".join(unread) if unread else f"{', '.join(map(str, paths))}: no results files")
    audio = AudioLinks(Path(page_dir), embed_audio)
    runs, tables, warnings = [], {}, []
    for n, (path, shown) in enumerate(found):
        try:
            doc = ResultsDocument.from_json(load_results(path))
        except UserError as e:
            if len(found) == 1:
                raise
            warnings.append(str(e))
            continue
        tasks = [task_section(path, task, entry, f"r{n}t{i}", audio, tables)
                 for i, (task, entry) in enumerate(doc.tasks.items())]
        runs.append({"id": f"r{n}", "label": f"{model_name(doc.model or {}, doc.command)} · {doc.created} · {shown}",
                     "file": str(path), "created": doc.created, "header": header_pairs(doc), "tasks": tasks})
    if not runs:
        raise UserError(f"no readable results file under {', '.join(map(str, paths))}: " + " | ".join(warnings))
    # Newest first: a folder of reruns opens on the latest.
    runs.sort(key=lambda r: r["created"], reverse=True)
    title = runs[0]["label"].split(" · ")[0] if len(runs) == 1 else f"{len(runs)} alignslm-eval runs"
    return {"kind": "eval", "title": f"alignslm report: {title}", "runs": runs}, tables, warnings
