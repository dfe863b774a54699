"""Turn each prompt's scored continuations into (chosen, rejected) preference pairs.

Rules are pluggable and named; a rule sees one prompt's samples with all their scores and returns one pair or the
reason it made none. Filters then drop pairs. Defaults and their sources:

- `judge_threshold` (Align-SLM, Lin et al. 2025, Section 3: chosen and rejected by the LLM evaluator's 1-5 semantic
  rating): the highest-rated sample if it is rated at least `chosen_min`, against the lowest-rated one if it is
  rated at most `rejected_max`. The paper's exact thresholds could not be checked offline; the curriculum default
  (chosen >= 3 / rejected <= 1, then >= 4 / <= 2) follows a secondary summary of the paper and is a setting.
- `perplexity` (the paper's perplexity-based criterion): lowest GenPPL chosen, highest rejected, when the rejected
  one's perplexity is at least `min_ratio` times the chosen one's (1.0: any difference; not stated in what we could
  read).
- `auto_bleu_filter` (slamkit, Maimon et al. 2025): a pair is dropped when the auto-BLEU of the prompt transcript +
  chosen transcript is 0.3 or more, i.e. the preferred continuation is degenerate repetition.
Ties are broken by sample index, so pairs are deterministic.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.auto_bleu import auto_bleu


@dataclass
class Sample:
    """One continuation of a prompt with its transcript and scores (metric -> value, None if unscorable)."""

    sample: int
    units: list[int]
    text: Optional[str]
    scores: dict[str, Optional[float]] = field(default_factory=dict)


@dataclass
class Candidate:
    prompt_id: str
    prompt_units: list[int]
    prompt_text: Optional[str]
    samples: list[Sample]


@dataclass
class Pair:
    pair_id: str
    prompt_id: str
    prompt_units: list[int]
    chosen: Sample
    rejected: Sample
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id, "prompt_id": self.prompt_id, "rule": self.rule,
            "prompt_units": self.prompt_units,
            "chosen": {"sample": self.chosen.sample, "units": self.chosen.units, "text": self.chosen.text,
                       "scores": self.chosen.scores},
            "rejected": {"sample": self.rejected.sample, "units": self.rejected.units, "text": self.rejected.text,
                         "scores": self.rejected.scores},
        }


Outcome = Union[Pair, str]  # a pair, or the reason there is none


def _scored(samples: list[Sample], metric: str) -> list[tuple[float, int, Sample]]:
    return [(s.scores[metric], s.sample, s) for s in samples
            if s.scores.get(metric) is not None and math.isfinite(s.scores[metric])]


def judge_threshold(c: Candidate, metric: str = "semantic_rating", chosen_min: float = 3,
                    rejected_max: float = 1) -> Outcome:
    scored = _scored(c.samples, metric)
    if len(scored) < 2:
        return f"fewer than 2 samples with a {metric}"
    best = max(scored, key=lambda t: (t[0], -t[1]))
    worst = min(scored, key=lambda t: (t[0], t[1]))
    if best[0] < chosen_min:
        return f"no sample rated >= {chosen_min}"
    if worst[0] > rejected_max:
        return f"no sample rated <= {rejected_max}"
    if best[0] <= worst[0]:
        return "chosen and rejected would be rated the same"
    return Pair(f"{c.prompt_id}#{best[1]}>{worst[1]}", c.prompt_id, c.prompt_units, best[2], worst[2],
                "judge_threshold")


def perplexity(c: Candidate, metric: str = "genppl", min_ratio: float = 1.0) -> Outcome:
    scored = _scored(c.samples, metric)
    if len(scored) < 2:
        return f"fewer than 2 samples with a {metric}"
    best = min(scored, key=lambda t: (t[0], t[1]))
    worst = max(scored, key=lambda t: (t[0], -t[1]))
    if worst[0] <= best[0] or worst[0] < min_ratio * best[0]:
        return f"{metric} spread below {min_ratio}x"
    return Pair(f"{c.prompt_id}#{best[1]}>{worst[1]}", c.prompt_id, c.prompt_units, best[2], worst[2],
                "perplexity")


def auto_bleu_filter(pair: Pair, prompt_text: Optional[str], max_auto_bleu: float = 0.3) -> Optional[str]:
    """The reason to drop the pair, or None to keep it."""
    value = auto_bleu(f"{prompt_text or ''} {pair.chosen.text or ''}")
    if value is not None and value >= max_auto_bleu:
        return f"auto-BLEU of prompt + chosen {value:.2f} >= {max_auto_bleu}"
    return None


RULES: dict[str, Callable[..., Outcome]] = {"judge_threshold": judge_threshold, "perplexity": perplexity}


def select_pairs(candidates: list[Candidate], rule: str, rule_args: dict[str, Any],
                 max_auto_bleu: Optional[float] = 0.3) -> tuple[list[Pair], Counter]:
    """One pair per prompt at most; returns the pairs and a count of why prompts gave none."""
    if rule not in RULES:
        raise UserError(f"--pair-rule {rule}: choose one of {sorted(RULES)}")
    pairs, reasons = [], Counter()
    for c in candidates:
        outcome = RULES[rule](c, **rule_args)
        if isinstance(outcome, str):
            reasons[outcome] += 1
            continue
        drop = auto_bleu_filter(outcome, c.prompt_text, max_auto_bleu) if max_auto_bleu is not None else None
        if drop:
            reasons["auto-BLEU filter"] += 1
            continue
        pairs.append(outcome)
    return pairs, reasons
