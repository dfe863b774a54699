"""What a training report shows, read from an `alignslm-train --output-dir` (layout: `alignslm_train.loop`): per
round its pair counts and why prompts gave none, score histograms, each chosen / rejected pair with both audios,
transcripts and ratings, every sample, the DPO log; across rounds the mid-training evaluation curve.

Only files are read (no torch, no model): a round still running shows what it has so far.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any, Optional

from alignslm_eval.api.results import environment
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.jsonl import read_jsonl
from alignslm_eval.leaderboard.collect import adapter_name, format_size, registered_info
from alignslm_eval.report.eval_run import sample_cells
from alignslm_eval.report.page import AudioLinks
from alignslm_eval.report.store import SampleRow, rows_from_run

ROUND_DIR = re.compile(r"round-(\d+)")


def round_dirs(out_dir: Path) -> dict[int, Path]:
    """round number -> its folder, in order."""
    found = {int(m.group(1)): p for p in Path(out_dir).iterdir() if p.is_dir() and (m := ROUND_DIR.fullmatch(p.name))}
    return dict(sorted(found.items()))


def _json(path: Path) -> Optional[dict[str, Any]]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent (a round in progress) or cut short: the page says what it lacks
    return value if isinstance(value, dict) else None


def _command_text(command: Any) -> str:
    if isinstance(command, list):
        return shlex.join(str(a) for a in command)
    if isinstance(command, dict):
        return _command_text(command.get("command") or command.get("argv") or json.dumps(command))
    return str(command)


def _continuation_root(folder: Path, scores: list[dict[str, Any]]) -> Optional[Path]:
    """The round's sampling run: the one its scores.jsonl names, else its only one."""
    named = {r.get("run") for r in scores if isinstance(r, dict)}
    runs = sorted(p.parent for p in (folder / "continuations").glob("*/run.json"))
    for run in runs:
        if run.name in named:
            return run
    return runs[0] if len(runs) == 1 else None


def _side(row: Optional[SampleRow], fallback: dict[str, Any], audio: AudioLinks) -> dict[str, Any]:
    """One side of a pair: the stored sample's audio, transcript and scores (judge answers with them), or what
    pairs.jsonl holds when the run's files are gone."""
    if row is None:
        return {"sample": fallback.get("sample"), "audio": None, "text": fallback.get("text"),
                "scores": {m: {"value": v, "status": "ok" if v is not None else "unscored"}
                           for m, v in (fallback.get("scores") or {}).items()}}
    return {"sample": row.sample, "audio": audio.link(row.wav), "text": row.text, "scores": row.scores}


def round_section(k: int, folder: Path, audio: AudioLinks, tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    report = _json(folder / "pairs_report.json")
    complete = _json(folder / "COMPLETE.json")
    scores = [r for r in read_jsonl(folder / "scores.jsonl") if isinstance(r, dict)]
    metrics = sorted({m for r in scores for m in (r.get("scores") or {})})
    run_root = _continuation_root(folder, scores)
    rows = rows_from_run(run_root, metrics) if run_root is not None else []
    by_key = {r.key: r for r in rows}
    section: dict[str, Any] = {"round": k, "folder": str(folder), "complete": complete is not None,
                               "report": report, "dpo": (complete or {}).get("dpo"), "metrics": metrics}
    # Histograms from scores.jsonl: it is what the pairs were made from, whatever the run's files hold since.
    section["histograms"] = {m: [r["scores"][m] for r in scores if isinstance(r["scores"].get(m), (int, float))]
                             for m in metrics}
    section["dpo_log"] = [{"step": r.get("step"), "loss": r.get("loss"),
                           "reward_accuracy": r.get("rewards/accuracies")}
                          for r in read_jsonl(folder / "dpo_log.jsonl") if isinstance(r, dict) and "loss" in r]
    if run_root is not None:
        section["run"] = _json(run_root / "run.json")
        tables[f"round{k}samples"] = [sample_cells(r, audio, folder) for r in rows]
        # scores.jsonl records no direction: the registered scorer of each metric says which way is better.
        directions = {m: info.direction for m in metrics if (info := registered_info(m)) is not None}
        section["samples_table"] = {"id": f"round{k}samples", "type": "samples", "metrics": metrics,
                                    "directions": directions}
    pairs = []
    for p in read_jsonl(folder / "pairs.jsonl"):
        if not isinstance(p, dict) or "chosen" not in p:
            continue
        chosen = by_key.get(f"{p['prompt_id']}#{p['chosen'].get('sample')}")
        rejected = by_key.get(f"{p['prompt_id']}#{p['rejected'].get('sample')}")
        prompt = chosen or rejected
        pairs.append({"pair_id": p.get("pair_id"), "prompt_id": p.get("prompt_id"), "rule": p.get("rule"),
                      "prompt_audio": audio.link(prompt.prompt_audio) if prompt else None,
                      "cut_s": prompt.prompt_cut_s if prompt else None,
                      "prompt_text": prompt.prompt_text if prompt else None,
                      "chosen": _side(chosen, p["chosen"], audio), "rejected": _side(rejected, p["rejected"], audio)})
    tables[f"round{k}pairs"] = pairs
    section["pairs_table"] = {"id": f"round{k}pairs", "type": "pairs", "metrics": metrics}
    return section


def header_pairs(out_dir: Path, config: dict[str, Any], rounds: list[dict[str, Any]]) -> list[list[str]]:
    settings = config.get("settings") or {}
    sample = settings.get("sample") or {}
    pairs = [["training run", str(out_dir)]]
    if sample.get("model"):
        pairs.append(["model", str(sample["model"])])
    first = next((r.get("run") for r in rounds if r.get("run")), None) or {}
    model = first.get("model") or {}
    if model.get("weights_fingerprint"):
        pairs.append(["weights fingerprint", str(model["weights_fingerprint"])])
    if model.get("architecture"):
        pairs.append(["architecture", f"{model['architecture']}, {format_size(model.get('n_parameters'))} parameters"])
    for r in rounds:
        adapter = ((r.get("run") or {}).get("model") or {}).get("adapter")
        pairs.append([f"round {r['round']} samples from", "the base model" if not adapter else
                      f"{adapter_name(adapter)} (adapter chain of {len(adapter) if isinstance(adapter, list) else 1})"])
    if first.get("tokenizer"):
        pairs.append(["tokenizer", f"fingerprint {first['tokenizer']}"])
    if sample.get("prompts"):
        pairs.append(["prompts", str(sample["prompts"])])
    for section, values in settings.items():
        if isinstance(values, dict) and section != "sample":
            pairs.append([f"settings: {section}", ", ".join(f"{k} {v}" for k, v in values.items())])
    if sample:
        pairs.append(["settings: sample", ", ".join(f"{k} {v}" for k, v in sample.items() if k not in
                                                     ("model", "prompts"))])
    env = _recorded_environment(out_dir)
    label = "packages" if env else "packages (of this report: the run records none)"
    env = env or environment()
    packages = {"alignslm": env.get("alignslm"), "python": env.get("python"), **(env.get("packages") or {})}
    pairs.append([label, ", ".join(f"{k} {v}" for k, v in packages.items() if v)])
    for n, command in enumerate(config.get("commands") or [], 1):
        pairs.append([f"command {n}", _command_text(command)])
    return pairs


def _recorded_environment(out_dir: Path) -> Optional[dict[str, Any]]:
    """The environment recorded by the run's newest mid-training results file, if any."""
    found = sorted(Path(out_dir).glob("round-*/eval/step-*/results_*.json"), key=lambda p: p.stat().st_mtime)
    return (_json(found[-1]) or {}).get("environment") if found else None


def eval_curve(rounds: dict[int, Path]) -> list[dict[str, Any]]:
    """Every mid-training evaluation (eval_log.jsonl) of the rounds, in round then step order."""
    points = []
    for k, folder in rounds.items():
        for r in read_jsonl(folder / "eval_log.jsonl"):
            if isinstance(r, dict) and {"step", "task", "metric", "value"} <= set(r):
                points.append({"round": k, "step": r["step"], "task": r["task"], "metric": r["metric"],
                               "value": r["value"], "stderr": r.get("stderr")})
    return points


def train_report(out_dir: Path, page_dir: Path, round_k: Optional[int] = None, embed_audio: bool = False
                 ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The page's summary and its tables' rows for the training run in `out_dir` (only round `round_k` when
    given). A folder with no round is a UserError."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: no such directory; give the --output-dir of an alignslm-train run")
    rounds = round_dirs(out_dir)
    if not rounds:
        raise UserError(f"{out_dir}: no round-K folders, so no training run; give the --output-dir alignslm-train "
                        "wrote, or run alignslm-train first")
    if round_k is not None:
        if round_k not in rounds:
            raise UserError(f"--round {round_k}: {out_dir} has rounds {', '.join(map(str, rounds))}; choose one")
        rounds = {round_k: rounds[round_k]}
    audio = AudioLinks(Path(page_dir), embed_audio)
    tables: dict[str, list[dict[str, Any]]] = {}
    sections = [round_section(k, folder, audio, tables) for k, folder in rounds.items()]
    config = _json(out_dir / "config.json") or {}
    summary = {"kind": "train", "title": f"alignslm training report: {out_dir.resolve().name}"
                                         + (f" round {round_k}" if round_k else ""),
               "header": header_pairs(out_dir, config, sections), "rounds": sections, "eval_curve": eval_curve(rounds)}
    return summary, tables
