"""Judge throughput: 8 requests in flight vs one at a time, against the loopback server with 50 ms per request.

Run with `python -m pytest tests/benchmarks/test_judge_throughput.py --benchmark-enable`; the concurrent test prints
the speed-up (sequential mean / concurrent mean) and stores it in the benchmark's extra_info. Each round scores 32
fresh samples with a new scorer over a fresh, empty cache directory, so every sample is a real request. Timing is
reported, never asserted. Under the default (disabled) mode each test runs once and only checks the scores.
"""

from __future__ import annotations

import tempfile
from typing import Iterator

import pytest

from alignslm_eval.api.scorer import Continuation
from alignslm_eval.scoring.judge import GPT4oScore
from tests.judge_server import JudgeServer

SAMPLES = 32
LATENCY_S = 0.05
ROUNDS = 3
KEY_ENV = "ALIGNSLM_BENCH_JUDGE_KEY"

_means: dict[int, float] = {}


@pytest.fixture(scope="module")
def server() -> Iterator[JudgeServer]:
    with JudgeServer(latency_s=LATENCY_S) as s:
        yield s


def _items() -> list[Continuation]:
    return [Continuation(f"p{i}", 0, [i], prompt_text=f"prompt number {i}", text=f"continuation number {i}")
            for i in range(SAMPLES)]


def _run(benchmark, server: JudgeServer, concurrency: int, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "bench-key")
    items = _items()
    made: list[GPT4oScore] = []
    caches: list[tempfile.TemporaryDirectory] = []

    def setup() -> tuple[tuple[GPT4oScore], dict]:
        caches.append(tempfile.TemporaryDirectory(prefix="judge-bench-"))
        scorer = GPT4oScore.from_options({
            "judge_model": "loopback-judge", "judge_base_url": server.base_url, "judge_api_key_env": KEY_ENV,
            "judge_concurrency": concurrency, "judge_timeout_s": 10, "judge_cache_dir": caches[-1].name,
        })
        made.append(scorer)
        return (scorer,), {}

    try:
        scores = benchmark.pedantic(lambda scorer: scorer.score(items), setup=setup, rounds=ROUNDS)
    finally:
        for scorer in made:
            scorer.close()
        for cache in caches:
            cache.cleanup()
    assert [(s.value, s.status) for s in scores] == [(3.0, "ok")] * SAMPLES
    if benchmark.stats is not None:
        _means[concurrency] = benchmark.stats.stats.mean


def test_judge_sequential(benchmark, server, monkeypatch):
    _run(benchmark, server, 1, monkeypatch)


def test_judge_concurrency_8(benchmark, server, monkeypatch, capsys):
    _run(benchmark, server, 8, monkeypatch)
    if 1 in _means and 8 in _means:
        ratio = _means[1] / _means[8]
        benchmark.extra_info["speedup_vs_sequential"] = round(ratio, 2)
        with capsys.disabled():
            print(f"\njudge throughput: concurrency 8 is {ratio:.1f}x sequential ({SAMPLES} samples, "
                  f"{LATENCY_S * 1000:.0f} ms server latency, mean of {ROUNDS} rounds)")
