"""Evaluate generation tasks: run the continuation pipeline and aggregate the scorers' results."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from alignslm_eval.api.asr import ASR
from alignslm_eval.api.model import UnitLM
from alignslm_eval.api.registry import SCORERS
from alignslm_eval.api.results import MetricInfo, TaskEntry, recorded_metric_info
from alignslm_eval.api.task import GenerationTask
from alignslm_eval.api.tokenizer import SpeechTokenizer
from alignslm_eval.api.vocoder import Vocoder
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.io.atomic import replacing
from alignslm_eval.evaluate.continuation_store import ContinuationRun, Prompt
from alignslm_eval.evaluate.world import World


@dataclass
class PipelineComponents:
    """The vocoder, ASR and scorer options of a run, built only when a task needs them (so a likelihood-only run
    never asks for a vocoder). A `recorded_*` description (re-scoring: `ContinuationRun.recorded`) stands in for a
    component whose output the run already holds, so none is loaded."""

    vocoder_factory: Optional[Callable[[], Vocoder]] = None
    asr_factory: Optional[Callable[[], ASR]] = None
    scorer_options: dict[str, Any] = field(default_factory=dict)
    recorded_vocoder: Optional[dict[str, Any]] = None
    recorded_asr: Optional[dict[str, Any]] = None
    _vocoder: Optional[Vocoder] = None
    _asr: Optional[ASR] = None

    def vocoder(self) -> Vocoder:
        if self._vocoder is None:
            from alignslm_eval.io.errors import UserError

            if self.vocoder_factory is None:
                raise UserError("this task vocodes continuations: pass --vocoder NAME --vocoder-args ... "
                                "(or put alignslm_vocoder.json in the model dir)")
            self._vocoder = self.vocoder_factory()
        return self._vocoder

    def asr(self) -> ASR:
        if self._asr is None:
            from alignslm_eval.io.errors import UserError

            if self.asr_factory is None:
                raise UserError("this task transcribes continuations: pass --asr NAME[:PATH]")
            self._asr = self.asr_factory()
        return self._asr


def _needs(scorers: list[ContinuationScorer]) -> set[str]:
    return {need for s in scorers for need in s.needs}


def prepare_scorers(names: Sequence[str], components: PipelineComponents,
                    settings: Optional[Mapping[str, Any]] = None, world: World = World()) -> list[ContinuationScorer]:
    """The named scorers (run options, with a task's scorer `settings` on top) and the vocoder and ASR they need,
    built before any sampling (and kept), so a missing judge key or a bad --vocoder / --asr fails at once rather
    than after the continuations are sampled. `world` reaches the scorers as the option "world" (the judge keeps
    an answer cache file per rank)."""
    options = {**components.scorer_options, **(settings or {}), "world": world}
    scorers = [SCORERS.get(n).from_options(options) for n in names]
    if _needs(scorers) & {"wav", "text"} and components.recorded_vocoder is None:
        components.vocoder()
    if "text" in _needs(scorers) and components.recorded_asr is None:
        components.asr()
    return scorers


def score_continuations(
    run: ContinuationRun, items: list[Continuation], prompts: list[Prompt], scorers: list[ContinuationScorer],
    components: PipelineComponents, retry: bool = True,
) -> tuple[dict[str, list[Score]], dict[str, Any]]:
    """Vocode and transcribe what the scorers need (reusing what the run already has), then score; `retry`: as
    `ContinuationRun.score` has it."""
    needs = _needs(scorers)
    pipeline: dict[str, Any] = {"run_dir": str(run.root), "sampling": run.identity["sampling"]}
    if needs & {"wav", "text"}:
        vocoder = components.vocoder() if components.recorded_vocoder is None else None
        pipeline["vocoder"] = vocoder.describe() if vocoder is not None else components.recorded_vocoder
        run.vocode(items, pipeline["vocoder"], vocoder)
    if "text" in needs:
        asr = components.asr() if components.recorded_asr is None else None
        pipeline["asr"] = asr.describe() if asr is not None else components.recorded_asr
        check = run.transcribe(items, prompts, pipeline["asr"], asr)
        if check:
            pipeline["asr_prompt_error_rate"] = check
    scores = {}
    for s in scorers:
        upstream = {"vocoder": pipeline.get("vocoder")}
        if "text" in s.needs:
            upstream["asr"] = pipeline.get("asr")
        scores[s.metric] = run.score(items, s, upstream, retry)
    pipeline["scorers"] = {s.metric: {"direction": s.metric_info.direction, **s.describe()} for s in scorers}
    return scores, pipeline


def generation_metric_info(result: Mapping[str, Any], scorers: Sequence[ContinuationScorer],
                           kind: Any) -> dict[str, Any]:
    """`TaskEntry.metric_info` of a generation result: each scorer's metric as the scorer declares it, and what the
    task kind `kind` (class or instance) adds itself, such as scored_fraction, as its optional `metric_info` does."""
    own: Mapping[str, MetricInfo] = getattr(kind, "metric_info", {})
    return recorded_metric_info(result, {**{s.metric: s.metric_info for s in scorers}, **own})


def unscored_reasons(scores: Mapping[str, list[Score]]) -> dict[str, dict[str, int]]:
    """Why samples went unscored (judge errors, unparsable answers, silent audio), per metric, with counts."""
    counts = {metric: dict(Counter(s.status for s in values if s.value is None).most_common())
              for metric, values in scores.items()}
    return {metric: c for metric, c in counts.items() if c}


def write_samples_log(path: Path, items: list[Continuation], scores: Mapping[str, list[Score]]) -> Path:
    """One JSON line per sample: what the pipeline made of it (units, durations, wav, transcripts) and each score
    with its status and detail (the judge's raw answer among them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, item in enumerate(items):
            row = item.to_json()
            row["scores"] = {metric: values[i].to_json() for metric, values in scores.items()}
            f.write(json.dumps(row, default=str) + "\n")
    return path


def evaluate_generation_task(
    name: str, task: GenerationTask, prompts: list[Prompt], data_dir: Path, lm: UnitLM,
    tokenizer: SpeechTokenizer, components: PipelineComponents, output_dir: Path, seed: int, log_samples: bool,
    prompts_per_batch: int = 8, world: World = World(),
) -> Optional[TaskEntry]:
    """Sample, vocode, transcribe and score the task's continuations (`prompts_per_batch` prompts per sampling
    call: samples do not depend on it) and aggregate the scores. Each process does its `world` share of the
    prompts; where it writes the final files, the entry is made from every rank's logs (None elsewhere)."""
    started = time.time()
    scorers = prepare_scorers(task.scorers, components, task.scorer_settings, world)
    run = ContinuationRun.create(output_dir / "continuations", lm, tokenizer, task.sampling(seed),
                                 task.prompt_seconds, task.spec.dedup, world)
    mine = world.mine(prompts, key=lambda p: p.id)
    items = run.sample(mine, lm, tokenizer, prompts_per_batch=prompts_per_batch)
    scores, pipeline = score_continuations(run, items, mine, scorers, components)
    world.barrier()  # every rank's share is in its logs
    if not world.writes_final_files:
        return None
    if world.size > 1:
        # Everything is on disk: this reads the other ranks' logs and computes nothing, retries nothing.
        items = run.sample(prompts, None, None)
        scores, pipeline = score_continuations(run, items, prompts, scorers, components, retry=False)
    pipeline["prompt_seconds"] = task.prompt_seconds
    result = task.aggregate(scores).to_json()
    files: dict[str, Any] = {"run_dir": str(run.root)}
    if log_samples:
        files["samples"] = str(write_samples_log(output_dir / f"samples_{name}.jsonl", items, scores))
    return TaskEntry(
        protocol=task.spec.to_json(),
        pipeline=pipeline,
        dataset={"path": str(data_dir), "sha256": run.dataset_sha256(prompts), "n_prompts": len(prompts),
                 "n_samples": len(items)},
        result=result,
        unscored=unscored_reasons(scores),
        files=files,
        wall_time_s=round(time.time() - started, 3),
        metric_info=generation_metric_info(result, scorers, task),
    )
