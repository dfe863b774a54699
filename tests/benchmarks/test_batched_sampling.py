"""Continuation sampling across prompts: 16 prompts x 5 samples through `ContinuationRun.sample`, all 16 prompts in
one batch (80 rows per forward pass) vs one prompt per `generate` call (`prompts_per_batch=1`, 5 rows per pass).

Same tiny TWIST-style LLaMA (500 units, so a random model rarely draws EOS and continuations run their 100 new
tokens; with 16 units EOS is 1 draw in 17 and most end within ~15 tokens, timing start-up rather than decoding), same
real-speech prompts (3 s cuts, 16-unit offline tokenizer); each round samples into a fresh run directory, so prompt
tokenization is timed in both. Run with
`python -m pytest tests/benchmarks/test_batched_sampling.py --benchmark-enable`; the batched test prints the
speed-up (one-by-one mean / batched mean) and stores it in extra_info. Timing is reported, never asserted. Under the
default (disabled) mode each test runs once and the two must write the same samples, since every prompt has its
own random streams.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from alignslm_eval.api.model import SamplingConfig
from alignslm_eval.evaluate.continuation_store import ContinuationRun, find_prompts
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.tokenizers.offline import OfflineTokenizer
from tests.benchmark_fixtures import make_model_dir, make_prompts
from tests.tiny_models import save_twist_llama

PROMPTS, SAMPLES, NEW_TOKENS, ROUNDS = 16, 5, 100, 2

_means: dict[int, float] = {}
_rows: dict[int, list[dict]] = {}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("batched_sampling")
    tokenizer = OfflineTokenizer.load(make_model_dir(SHARED_DATA, root / "small") / "tokenizer.npz")
    prompts = find_prompts(make_prompts(SHARED_DATA, root / "prompts", count=PROMPTS), 3.0)
    lm = HFUnitLM.from_args(str(save_twist_llama(root / "model")))
    lm.generate([np.arange(5)], SamplingConfig(max_new_tokens=2), [0])  # first-call costs kept out of the timing
    return root, prompts, lm, tokenizer


def _run(benchmark, setup, prompts_per_batch: int) -> None:
    root, prompts, lm, tokenizer = setup
    config = SamplingConfig(n=SAMPLES, max_new_tokens=NEW_TOKENS)
    fresh = (root / f"runs-{prompts_per_batch}-{i}" for i in itertools.count())

    def new_run() -> tuple[tuple[ContinuationRun], dict]:
        return (ContinuationRun.create(next(fresh), lm, tokenizer, config),), {}

    items = benchmark.pedantic(lambda run: run.sample(prompts, lm, tokenizer, prompts_per_batch=prompts_per_batch),
                               setup=new_run, rounds=ROUNDS)
    assert len(items) == PROMPTS * SAMPLES
    last = max(root.glob(f"runs-{prompts_per_batch}-*/*/samples.jsonl"), key=lambda p: p.stat().st_mtime)
    _rows[prompts_per_batch] = [json.loads(line) for line in open(last)]
    if benchmark.stats is not None:
        _means[prompts_per_batch] = benchmark.stats.stats.mean


def test_one_prompt_per_call(benchmark, setup):
    _run(benchmark, setup, 1)


def test_sixteen_prompts_per_call(benchmark, setup, capsys):
    _run(benchmark, setup, PROMPTS)
    if 1 in _rows:
        assert _rows[PROMPTS] == _rows[1]
    if 1 in _means and PROMPTS in _means:
        ratio = _means[1] / _means[PROMPTS]
        benchmark.extra_info["speedup_vs_one_prompt_per_call"] = round(ratio, 2)
        with capsys.disabled():
            print(f"\nbatched sampling: {PROMPTS} prompts per call is {ratio:.1f}x one prompt per call ({PROMPTS} "
                  f"prompts x {SAMPLES} samples x {NEW_TOKENS} new tokens, tiny LLaMA, mean of {ROUNDS} rounds)")
