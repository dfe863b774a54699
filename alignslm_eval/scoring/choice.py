"""Likelihood choice scoring and the statistics every task reports."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.task import Metric


@register_scorer("likelihood_choice")
def likelihood_choice(candidate_scores: Sequence[float], positive: int) -> float:
    """1 if the positive candidate scores strictly highest, 0 if another does; ties at the top share the credit.

    With two candidates this is the ZeroSpeech 2021 rule: 1 if positive > negative, 0.5 on a tie, else 0.
    """
    best = max(candidate_scores)
    if candidate_scores[positive] < best:
        return 0.0
    return 1.0 / sum(1 for s in candidate_scores if s == best)


def mean_metric(values: Iterable[float]) -> Metric:
    """Mean with its standard error (sample standard deviation / sqrt(n))."""
    vals = list(values)
    n = len(vals)
    if n == 0:
        return Metric(float("nan"), float("nan"), 0)
    mean = sum(vals) / n
    if n < 2:
        return Metric(mean, float("nan"), n)
    var = sum((v - mean) ** 2 for v in vals) / (n - 1)
    return Metric(mean, math.sqrt(var / n), n)
