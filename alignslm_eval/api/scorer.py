"""Scorers of generated continuations. The eval tasks and the Align-SLM trainer both call these: one scorer, two uses.

A scorer receives continuations that went through the pipeline (units -> wav -> transcript) and returns one
`Score` per continuation, in order. A sample it cannot score gets `value=None` and a status saying why; it is never
dropped, so scores can never shift onto another sample.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Mapping, Optional, Sequence

from alignslm_eval.api.results import MetricInfo


@dataclass
class Continuation:
    """One sampled continuation of one prompt, with what later stages added."""

    prompt_id: str
    sample: int
    units: list[int]
    #: frames per unit the vocoder used (set when vocoded)
    durations: Optional[list[int]] = None
    prompt_text: Optional[str] = None
    text: Optional[str] = None
    wav: Optional[str] = None
    #: the prompt's source audio and where it was cut (reference-aided scorers use it)
    prompt_audio: Optional[str] = None
    prompt_cut_s: Optional[float] = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Score:
    value: Optional[float]
    status: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "status": self.status, **({"detail": self.detail} if self.detail else {})}


class ContinuationScorer(ABC):
    #: name of the metric it produces in results and in preference data
    metric: str
    #: what that metric is: which way is better, whether it is shown as a percentage, the values it can take.
    #: Results files record it and the leaderboard reads it; a scorer that declares none has a neutral direction
    #: (no value is marked best) and any finite value.
    metric_info: ClassVar[MetricInfo] = MetricInfo("a score")
    #: names the metric had in results files of earlier versions, by which those files are still read
    former_metrics: ClassVar[tuple[str, ...]] = ()
    #: which pipeline outputs it reads: "text" needs transcripts, "wav" needs vocoded audio
    needs: tuple[str, ...] = ("text",)
    #: run options it cannot do without (e.g. "text_lm"); `--tasks all` skips, with a message, tasks lacking them
    required_options: tuple[str, ...] = ()
    #: options a task's settings may fix (its YAML, or `--set TASK.KEY=VALUE`), recorded with the task's protocol
    task_settings: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "ContinuationScorer":
        """Build from the run's options (CLI flags such as text_lm, judge_model); raise UserError naming the flag a
        required option comes from when it is missing."""
        return cls()

    def is_final(self, score: Score) -> bool:
        """Whether a stored score stands on a rerun. Errors (a judge that timed out, a server that failed) are not
        final, so a rerun scores those items again; a scorer may treat more statuses as worth another try."""
        return not str(score.status).startswith("error")

    @abstractmethod
    def score(self, items: Sequence[Continuation]) -> list[Score]:
        """One Score per item, in order."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Everything that determines the scores (model, prompt template, n-gram order...): JSON-serialisable."""
