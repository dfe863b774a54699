"""Per-sample rows of a continuation run, read from what the pipeline left on disk.

A results file written with `--log-samples` points at `samples_<task>.jsonl`, which holds everything a row shows.
Without it (the default), and for training rounds, the rows are read from the continuation run directory itself
(`alignslm_eval.evaluate.continuation_store`): samples, the recorded vocoder's wavs, the ASR's transcripts and each
scorer's score log. Nothing is recomputed and nothing is written: a wav deleted since the run is a row marked
missing, a score log that cannot be found leaves that metric empty, never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from alignslm_eval.evaluate.continuation_store import ContinuationRun
from alignslm_eval.io.jsonl import read_every_rank, read_jsonl
from alignslm_eval.io.rank_files import every_file


@dataclass
class SampleRow:
    """One continuation as the report shows it. `scores`: metric -> {value, status, answer (the judge's raw answer,
    when it gave one)}."""

    prompt_id: str
    sample: int
    n_units: int
    prompt_audio: Optional[str]
    prompt_cut_s: Optional[float]
    prompt_text: Optional[str]
    wav: Optional[str]
    text: Optional[str]
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.prompt_id}#{self.sample}"


def score_cell(row: dict[str, Any]) -> dict[str, Any]:
    """A stored Score (`Score.to_json`) as a row cell: its value, status and, from its detail, the judge's answer."""
    detail = row.get("detail") or {}
    cell = {"value": row.get("value"), "status": str(row.get("status", "ok"))}
    if isinstance(detail, dict) and detail.get("answer") is not None:
        cell["answer"] = str(detail["answer"])
    return cell


def rows_from_samples_log(path: Path) -> list[SampleRow]:
    """The rows of a `samples_<task>.jsonl` (`write_samples_log`)."""
    rows = []
    for r in read_jsonl(path):
        if not isinstance(r, dict) or "prompt_id" not in r:
            continue  # a line of another kind or version: not a sample
        rows.append(SampleRow(str(r["prompt_id"]), int(r.get("sample", 0)), len(r.get("units") or []),
                              r.get("prompt_audio"), r.get("prompt_cut_s"), r.get("prompt_text"), r.get("wav"),
                              r.get("text"), {m: score_cell(s) for m, s in (r.get("scores") or {}).items()}))
    return rows


def _score_log(run: ContinuationRun, metric: str, scorer: Optional[dict[str, Any]], vocoder: Optional[dict[str, Any]],
               asr: Optional[dict[str, Any]]) -> Optional[Path]:
    """The score log of `metric`: the one keyed by the recorded scorer and its upstream (the key `score` gives it),
    else the only log of that metric in the run, else (several, nothing recorded to choose by) the newest."""
    folder = run.root / "scores"
    if scorer is not None:
        described = {k: v for k, v in scorer.items() if k != "direction"}
        # A scorer that reads transcripts has the ASR in its upstream; one that reads only wavs has not.
        for upstream in ({"vocoder": vocoder, "asr": asr}, {"vocoder": vocoder}):
            path = run.score_log(metric, described, upstream)
            if any(p.is_file() for p in every_file(path)):
                return path
    found = sorted(p for p in folder.glob(f"{metric}-*.jsonl") if ".rank" not in p.name)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _stored_scores(path: Path) -> dict[str, dict[str, Any]]:
    """Item key -> its score, as `ContinuationRun.score` keeps them: a final score stands, else the latest try."""
    stored: dict[str, dict[str, Any]] = {}
    for row in read_every_rank(path, ("key", "value", "status")):
        previous = stored.get(row["key"])
        if previous is None or str(previous["status"]).startswith("error"):
            stored[row["key"]] = score_cell(row)
    return stored


def rows_from_run(run_root: Path, metrics: list[str], scorers: Optional[dict[str, Any]] = None,
                  vocoder: Optional[dict[str, Any]] = None, asr: Optional[dict[str, Any]] = None) -> list[SampleRow]:
    """Every continuation of the run at `run_root`, with its wav, transcripts and the scores of `metrics`.
    `scorers`, `vocoder`, `asr`: a results file's pipeline record (which of the run's outputs the task used); left
    out, the run's one recorded vocoder and ASR are taken."""
    run = ContinuationRun(run_root)
    vocoder = vocoder if vocoder is not None else _recorded(run, "vocoder")
    asr = asr if asr is not None else _recorded(run, "asr")
    texts: dict[str, str] = {}
    if asr is not None:
        texts = {r["key"]: r["text"] for r in read_every_rank(run.transcripts_log(asr), ("key", "text"))}
    scores = {}
    for metric in metrics:
        log = _score_log(run, metric, (scorers or {}).get(metric), vocoder, asr)
        scores[metric] = _stored_scores(log) if log is not None else {}
    rows = []
    for prompt_id, sampled in run.sampled().items():
        for k, units in enumerate(sampled["continuations"]):
            wav = run.wav_path(vocoder, prompt_id, k) if vocoder is not None else None
            text_key = wav.relative_to(run.root).as_posix() if wav is not None else None
            row = SampleRow(prompt_id, k, len(units), sampled.get("audio"), sampled.get("cut_s"),
                            texts.get(f"prompt:{prompt_id}"), str(wav) if wav is not None else None,
                            texts.get(text_key) if text_key else None)
            row.scores = {m: scores[m][row.key] for m in metrics if row.key in scores[m]}
            rows.append(row)
    return rows


def _recorded(run: ContinuationRun, kind: str) -> Optional[dict[str, Any]]:
    """The run's one recorded vocoder or ASR; None when it has none, or several (no way to tell which one)."""
    pattern = {"vocoder": "wav/*/vocoder.json", "asr": "transcripts/*.json"}[kind]
    found = sorted(run.root.glob(pattern))
    if len(found) != 1:
        return None
    try:
        return json.loads(found[0].read_text(encoding="utf-8"))
    except ValueError:
        return None
