"""auto-BLEU: how much a transcript repeats itself.

Lakhotia et al. (2021), "On Generative Spoken Language Modeling from Raw Audio" (TACL), define auto-BLEU for one
generated utterance as the share of its n-grams that occur again elsewhere in the same utterance. Here: the word
n-grams of the normalised transcript; an n-gram counts as repeated when the utterance contains at least one other
occurrence of it. A transcript shorter than n words has no n-grams and no score. slamkit (Maimon et al. 2025)
reports it on word bigrams, the default here. Lower is better (less degenerate repetition).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Optional, Sequence

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.io.errors import UserError


def auto_bleu(text: str, n: int = 2) -> Optional[float]:
    """Share of the word n-grams of `text` that also occur elsewhere in it; None if it has no n-gram."""
    from alignslm_eval.asr import normalize

    words = normalize(text).split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return None
    counts = Counter(grams)
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


@register_scorer("auto_bleu")
class AutoBLEU(ContinuationScorer):
    metric = "auto_bleu"
    # Stored as a fraction, shown as a percentage: slamkit's published values (e.g. 3.20 for TWIST-1.3B) are
    # percentages of repeated bigrams, while its pair filter uses the fraction 0.3.
    metric_info = MetricInfo.fraction("lower", percent=True)
    task_settings = ("auto_bleu_n",)

    def __init__(self, n: int = 2, include_prompt: bool = False):
        self.n = int(n)
        self.include_prompt = include_prompt

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "AutoBLEU":
        n = options.get("auto_bleu_n", 2)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"setting auto_bleu_n={n!r}: must be an integer n-gram order of at least 1, e.g. 2")
        return cls(n=n)

    def score(self, items: Sequence[Continuation]) -> list[Score]:
        out = []
        for item in items:
            if item.text is None:
                out.append(Score(None, "no transcript"))
                continue
            text = f"{item.prompt_text or ''} {item.text}" if self.include_prompt else item.text
            value = auto_bleu(text, self.n)
            out.append(Score(value, "ok" if value is not None else f"fewer than {self.n} words"))
        return out

    def describe(self) -> dict[str, Any]:
        return {"scorer": "auto_bleu", "n": self.n, "include_prompt": self.include_prompt,
                "citation": "Lakhotia et al. 2021, TACL (GSLM)"}
