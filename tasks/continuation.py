"""`continuation` task kind: sample spoken continuations of prompts and score them (GenPPL, auto-BLEU, the LLM
judge, MOS, audio checks). The tasks built on it (continuation, gpt4o_score, audio_quality, signal_quality) differ only
in their scorers, and share one set of sampled continuations when run together."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from alignslm_eval.api.model import SamplingConfig
from alignslm_eval.api.registry import SCORERS, register_task_kind
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.task import GenerationTask, Metric, TaskResult, TaskSpec
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.choice import mean_metric
from alignslm_tasks.choice import check_settings

SETTINGS = ("scorers", "prompt_seconds", "alignment", "samples", "temperature", "top_k", "top_p",
            "repetition_penalty", "max_new_tokens")


@register_task_kind("continuation")
class ContinuationTask(GenerationTask):
    #: what its own breakdown is (see `aggregate_scores`); each metric is its scorer's (`metric_info` there)
    metric_info: ClassVar[dict[str, MetricInfo]] = {"scored_fraction": MetricInfo.fraction("higher", percent=True)}

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        names = spec.settings.get("scorers")
        if not isinstance(names, list) or not names:
            raise UserError(f"{spec.name}: setting scorers={names!r} must be a non-empty list of scorer names, e.g. "
                            f"[genppl, auto_bleu]; fix it in {spec.source} or with --set {spec.name}.scorers=[...]")
        self._scorers = [str(n) for n in names]
        scorer_keys = {key for name in self._scorers for key in getattr(SCORERS.get(name), "task_settings", ())}
        check_settings(spec, (*SETTINGS, *sorted(scorer_keys)))
        self._scorer_settings = {k: v for k, v in spec.settings.items() if k in scorer_keys}
        self._check_sampling()

    def _setting_error(self, key: str, wanted: str) -> UserError:
        return UserError(f"{self.spec.name}: setting {key}={self.spec.settings.get(key)!r} must be {wanted}; fix it in "
                         f"{self.spec.source} or with --set {self.spec.name}.{key}=...")

    def _check_sampling(self) -> None:
        """Every sampling setting in range before any model loads, each error naming the setting."""
        s = self.sampling(0)
        checks = (("samples", s.n >= 1, "at least 1"), ("temperature", s.temperature > 0, "greater than 0"),
                  ("top_k", s.top_k is None or s.top_k >= 0, "0 or more, or none"),
                  ("top_p", s.top_p is None or 0 < s.top_p <= 1, "in (0, 1], or none"),
                  ("repetition_penalty", s.repetition_penalty > 0, "greater than 0"),
                  ("max_new_tokens", s.max_new_tokens >= 1, "at least 1"),
                  ("prompt_seconds", self.prompt_seconds > 0, "greater than 0"))
        for key, ok, wanted in checks:
            if not ok:
                raise self._setting_error(key, wanted)

    def _number(self, key: str, default: Any, kind: type, optional: bool = False) -> Any:
        value = self.spec.settings.get(key, default)
        if optional and value in (None, "none", "null"):
            return None
        try:
            number = kind(value)
        except (TypeError, ValueError, OverflowError):
            number = None
        if (number is None or isinstance(value, bool) or not math.isfinite(number)
                or (kind is int and number != float(value))):
            raise self._setting_error(key, f"{'an integer' if kind is int else 'a number'}"
                                           f"{', or none' if optional else ''}")
        return number

    @property
    def scorers(self) -> list[str]:
        return self._scorers

    @property
    def scorer_settings(self) -> dict[str, Any]:
        return self._scorer_settings

    @property
    def prompt_seconds(self) -> float:
        return self._number("prompt_seconds", 3.0, float)

    def sampling(self, seed: int) -> SamplingConfig:
        defaults = SamplingConfig()
        return SamplingConfig(
            n=self._number("samples", 1, int),
            temperature=self._number("temperature", defaults.temperature, float),
            top_k=self._number("top_k", defaults.top_k, int, optional=True),
            top_p=self._number("top_p", defaults.top_p, float, optional=True),
            repetition_penalty=self._number("repetition_penalty", defaults.repetition_penalty, float),
            max_new_tokens=self._number("max_new_tokens", defaults.max_new_tokens, int),
            seed=seed,
        )

    def load_prompts(self, data_dir: Path) -> list[Any]:
        from alignslm_eval.evaluate.continuation_store import find_prompts

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
