"""Signal-level checks of generated audio that need no model: silence ratio, clipping ratio and duration.

They catch the failure modes a vocoder or a degenerate LM produce (long silences, saturation, empty output). They
are not a MOS estimate: a learned MOS predictor is a separate scorer.
"""

from __future__ import annotations

from functools import lru_cache

from typing import Any, Sequence

import numpy as np

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.evaluate.continuation_store import read_generated

FRAME_S = 0.025
SILENCE_DBFS = -40.0
CLIP_LEVEL = 0.999


def signal_stats(wav: np.ndarray, sample_rate: int = 16000) -> dict[str, float]:
    """Duration (s), share of 25 ms frames quieter than -40 dBFS RMS, share of samples at full scale. An empty
    waveform (a continuation that ended at once) counts as all silence."""
    frame = int(FRAME_S * sample_rate)
    n = len(wav) // frame
    if n == 0:
        return {"duration_s": len(wav) / sample_rate, "silence_ratio": 1.0, "clipping_ratio": 0.0}
    rms = np.sqrt(np.mean(wav[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    dbfs = 20 * np.log10(np.maximum(rms, 1e-10))
    return {
        "duration_s": len(wav) / sample_rate,
        "silence_ratio": float(np.mean(dbfs < SILENCE_DBFS)),
        "clipping_ratio": float(np.mean(np.abs(wav) >= CLIP_LEVEL)),
    }


class _SignalStatScorer(ContinuationScorer):
    """Reports one of `signal_stats`' values per vocoded continuation (its `metric`); every stat goes into each
    score's detail. Subclasses set only `metric`, `metric_info` and a docstring."""

    needs = ("wav",)

    def score(self, items: Sequence[Continuation]) -> list[Score]:
        out = []
        for item in items:
            if not item.wav:
                out.append(Score(None, "no audio"))
                continue
            stats = _stats_of(item.wav)
            out.append(Score(stats[self.metric], "ok", stats))
        return out

    def describe(self) -> dict[str, Any]:
        return {"scorer": self.metric, "frame_s": FRAME_S, "silence_dbfs": SILENCE_DBFS, "clip_level": CLIP_LEVEL}


@lru_cache(maxsize=4096)
def _stats_of(wav_path: str) -> dict[str, float]:
    """Read once for all the signal scorers of a task: a generated wav never changes once written."""
    return signal_stats(read_generated(wav_path))


@register_scorer("silence_ratio")
class SilenceRatio(_SignalStatScorer):
    """Share of 25 ms frames quieter than -40 dBFS in the vocoded continuation (an empty one counts as silent)."""

    metric = "silence_ratio"
    metric_info = MetricInfo.fraction("lower", percent=False)


@register_scorer("clipping_ratio")
class ClippingRatio(_SignalStatScorer):
    """Share of samples at full scale (|x| >= 0.999) in the vocoded continuation (0 for an empty one)."""

    metric = "clipping_ratio"
    metric_info = MetricInfo.fraction("lower", percent=False)


@register_scorer("duration_s")
class Duration(_SignalStatScorer):
    """Length of the vocoded continuation in seconds. Neither longer nor shorter is better in itself (it shows
    early stops and runaway generation), so its direction is "neutral" and the leaderboard marks no best value."""

    metric = "duration_s"
    metric_info = MetricInfo("a duration in seconds", "neutral", low=0.0)
