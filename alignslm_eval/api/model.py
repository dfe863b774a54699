"""The unit language model interface used by the likelihood tasks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from alignslm_eval.models.vocab import UnitVocabulary


@dataclass(frozen=True)
class LikelihoodProtocol:
    """How a unit sequence is scored. BOS is only conditioned on (never scored); EOS, when added, is scored."""

    add_bos: bool = True
    add_eos: bool = False


@dataclass(frozen=True)
class SamplingConfig:
    """How continuations are sampled. Defaults are TWIST/slamkit's: temperature 0.8, top-k 25, 150 new tokens
    (Maimon et al. 2025, "Slamming", continuation evaluation)."""

    n: int = 1
    temperature: float = 0.8
    top_k: Optional[int] = 25
    top_p: Optional[float] = None
    repetition_penalty: float = 1.0
    max_new_tokens: int = 150
    seed: int = 0


@dataclass(frozen=True)
class LogLikelihood:
    """Log-probability of one sequence: the sum over its scored tokens and their count."""

    sum: float
    n_tokens: int

    @property
    def mean(self) -> float:
        return self.sum / self.n_tokens if self.n_tokens else float("-inf")

    def reduced(self, reduction: str) -> float:
        if reduction == "sum":
            return self.sum
        if reduction == "mean":
            return self.mean
        raise ValueError(f"reduction must be 'sum' or 'mean', not {reduction!r}")


class UnitLM(ABC):
    """A causal language model over discrete speech units."""

    vocab: UnitVocabulary

    @property
    def sampler(self) -> str:
        """Which sampler `generate` uses, by a name that changes whenever its samples would: part of a continuation
        run's identity, so samples of two samplers never mix in one run. Back-ends should name theirs (with a
        version); by default it is the class."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

    @classmethod
    @abstractmethod
    def from_args(cls, model: str, **kwargs: Any) -> "UnitLM":
        """Load from a hub id or a local dir; kwargs are the CLI's model options (device, dtype, revision...)."""

    @abstractmethod
    def loglikelihood(
        self,
        sequences: Sequence[np.ndarray],
        protocol: LikelihoodProtocol,
        batch_size: int = 8,
        on_batch: Optional[Callable[[list[int], list[LogLikelihood]], None]] = None,
        names: Optional[Sequence[str]] = None,
    ) -> list[LogLikelihood]:
        """Score unit sequences (unit ids, not token ids). Results are in input order and independent of
        `batch_size` and padding. `on_batch(indices, results)` is called as each batch finishes, so callers can
        save progress. `names` (e.g. audio paths) label sequences in error messages."""

    @abstractmethod
    def generate(self, prompts: Sequence[np.ndarray], config: SamplingConfig,
                 seeds: Sequence[int]) -> list[list[np.ndarray]]:
        """For each prompt (unit ids), `config.n` sampled continuations: unit ids, without the prompt, cut at EOS.
        Prompts may be sampled together in batches. `seeds[i]` fixes prompt i's random streams alone (one per sample),
        so a prompt's continuations do not depend on which other prompts are sampled with it or in what order."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Model path, revision or weights hash, vocabulary convention, dtype, device: JSON-serialisable."""
