"""The judge's retry policy: which statuses are retried, and capped, seeded, jittered backoff."""

from __future__ import annotations

from alignslm_eval.scoring.judge.retry import RetryPolicy


def test_retry_policy():
    policy = RetryPolicy(max_retries=5, backoff_s=1.0, backoff_max_s=8.0)
    for status in (408, 429, 500, 502, 503, 504):
        assert policy.is_retryable_status(status)
    for status in (400, 401, 403, 404, 409, 413, 422):
        assert not policy.is_retryable_status(status)
    delays = [policy.delay(r, "k") for r in range(6)]
    for r, d in enumerate(delays):
        base = min(2 ** r, 8.0)
        assert base <= d <= base * 1.1
    assert delays == [policy.delay(r, "k") for r in range(6)]  # seeded: reproducible
    assert policy.delay(0, "k") != policy.delay(0, "other key")  # but not in lockstep across requests
    assert 5.0 <= policy.delay(0, "k", retry_after=5.0) <= 5.5
    assert policy.delay(0, "k", retry_after=100.0) <= 8.0 * 1.1  # a server's Retry-After is capped too
