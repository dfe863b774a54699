"""`continuation` task kind: sample spoken continuations of prompts and score them (GenPPL, auto-BLEU, the LLM
judge, MOS, audio checks). The tasks built on it (continuation, gpt4o_score, audio_quality, signal_quality) differ only
in their scorers, and share one set of sampled continuations when run together."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

from alignslm_eval.api.model import SamplingConfig
from alignslm_eval.api.registry import SCORERS, register_task_kind
from alignslm_eval.api.task import GenerationTask, Metric, TaskResult, TaskSpec
from alignslm_eval.errors import UserError
from alignslm_eval.scoring.choice import mean_metric
from alignslm_tasks.choice import check_settings

SETTINGS = ("scorers", "prompt_seconds", "alignment", "samples", "temperature", "top_k", "top_p",
            "repetition_penalty", "max_new_tokens")


@register_task_kind("continuation")
class ContinuationTask(GenerationTask):
    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        names = spec.settings.get("scorers")
        if not isinstance(names, list) or not names:
            raise UserError(f"{spec.source}: settings.scorers must be a non-empty list of scorer names")
        self._scorers = [str(n) for n in names]
        scorer_keys = {key for name in self._scorers for key in getattr(SCORERS.get(name), "task_settings", ())}
        check_settings(spec, (*SETTINGS, *sorted(scorer_keys)))
        self._scorer_settings = {k: v for k, v in spec.settings.items() if k in scorer_keys}

    @property
    def scorers(self) -> list[str]:
        return self._scorers

    @property
    def scorer_settings(self) -> dict[str, Any]:
        return self._scorer_settings

    @property
    def prompt_seconds(self) -> float:
        return float(self.spec.settings.get("prompt_seconds", 3.0))

    def sampling(self, seed: int) -> SamplingConfig:
        s = self.spec.settings
        defaults = SamplingConfig()
        return SamplingConfig(
            n=int(s.get("samples", 1)),
            temperature=float(s.get("temperature", defaults.temperature)),
            top_k=_optional_int(s.get("top_k", defaults.top_k)),
            top_p=_optional_float(s.get("top_p", defaults.top_p)),
            repetition_penalty=float(s.get("repetition_penalty", defaults.repetition_penalty)),
            max_new_tokens=int(s.get("max_new_tokens", defaults.max_new_tokens)),
            seed=seed,
        )

    def load_prompts(self, data_dir: Path) -> list[Any]:
        from alignslm_eval.continuation import find_prompts

        alignment = self.spec.settings.get("alignment")
        if alignment is not None:
            alignment = Path(alignment) if Path(alignment).is_absolute() else data_dir / alignment
            if not alignment.is_file():
                raise UserError(f"{self.spec.name}: alignment file {alignment} not found")
        elif (data_dir / "alignment.ctm").is_file():
            alignment = data_dir / "alignment.ctm"
        return find_prompts(data_dir, self.prompt_seconds, alignment)

    def aggregate(self, scores: dict[str, list[Any]]) -> TaskResult:
        return aggregate_scores(scores)


def aggregate_scores(scores: dict[str, list[Any]]) -> TaskResult:
    """Mean and standard error of each scorer's valid scores; the share of samples each could score. The first
    scorer gives the headline."""
    metrics: dict[str, Metric] = {}
    coverage: dict[str, Metric] = {}
    for metric, values in scores.items():
        valid = [s.value for s in values if s.value is not None and math.isfinite(s.value)]
        metrics[metric] = mean_metric(valid)
        coverage[metric] = Metric(len(valid) / len(values) if values else float("nan"), float("nan"), len(values))
    return TaskResult(next(iter(scores)), metrics, {"scored_fraction": coverage})


def _optional_int(value: Any) -> Optional[int]:
    return None if value in (None, "none", "null") else int(value)


def _optional_float(value: Any) -> Optional[float]:
    return None if value in (None, "none", "null") else float(value)
