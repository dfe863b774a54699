"""Signal-level checks of generated audio that need no model: silence ratio, clipping ratio and duration.

They catch the failure modes a vocoder or a degenerate LM produce (long silences, saturation, empty output). They
are not a MOS estimate: a learned MOS predictor is a separate scorer.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from alignslm_eval.api.registry import register_scorer
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.continuation import read_generated

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


@register_scorer("silence_ratio")
class SilenceRatio(ContinuationScorer):
    """Share of silent frames in the vocoded continuation; the other signal stats go into each score's detail."""

    metric = "silence_ratio"
    direction = "lower"
    needs = ("wav",)

    def score(self, items: Sequence[Continuation]) -> list[Score]:
        out = []
        for item in items:
            if not item.wav:
                out.append(Score(None, "no audio"))
                continue
            stats = signal_stats(read_generated(item.wav))
            out.append(Score(stats["silence_ratio"], "ok", stats))
        return out

    def describe(self) -> dict[str, Any]:
        return {"scorer": "silence_ratio", "frame_s": FRAME_S, "silence_dbfs": SILENCE_DBFS,
                "clip_level": CLIP_LEVEL}
