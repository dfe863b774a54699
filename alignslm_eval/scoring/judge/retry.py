"""Which failed judge requests are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar, Optional


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried and how long to wait: `max_retries` retries after the first attempt, waiting
    `backoff_s * 2**retry` (at most `backoff_max_s`, or the server's Retry-After if longer, still capped) plus up to
    10% jitter. The jitter is seeded by the request's cache key: reproducible, yet concurrent requests that fail
    together do not all come back at the same instant."""

    max_retries: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0

    RETRY_STATUSES: ClassVar[frozenset[int]] = frozenset({408, 429})

    def is_retryable_status(self, status: int) -> bool:
        return status in self.RETRY_STATUSES or 500 <= status <= 599

    def delay(self, retry: int, seed: str, retry_after: Optional[float] = None) -> float:
        base = min(self.backoff_s * (2 ** retry), self.backoff_max_s)
        if retry_after is not None:
            base = min(max(base, retry_after), self.backoff_max_s)
        jitter = random.Random(f"{seed}/{retry}").uniform(0.0, 0.1 * base)
        return base + jitter


def retry_after_of(response: Any) -> Optional[float]:
    """The wait in seconds a server's error response asks for (Retry-After-Ms or Retry-After), None if it names none
    we can read."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None
