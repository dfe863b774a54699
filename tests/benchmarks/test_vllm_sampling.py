"""Opt-in: sampling the same prompts through a real vLLM server (`--model-backend vllm`) vs the `hf` back-end in this
process, both batched (the hf back-end takes all prompts in one `generate` call; the vllm one keeps
`CONCURRENCY` requests in flight, one per prompt with n samples).

Needs a vLLM server on the checkpoint, started in its own environment:
    python -m vllm.entrypoints.openai.api_server --model DIR --skip-tokenizer-init --dtype float32
and ALIGNSLM_VLLM_URL (its /v1 URL) and ALIGNSLM_VLLM_MODEL_DIR (DIR) set. Run with
`python -m pytest tests/benchmarks/test_vllm_sampling.py --benchmark-enable`; the second test prints the ratio
(hf mean / vllm mean) and the mean continuation lengths, which depend on how soon the model draws EOS. Timing is
reported, never asserted. The two engines draw from different random streams, so their samples differ.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from alignslm_eval.api.model import SamplingConfig
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.models.vllm_unit_lm import VLLMUnitLM

URL, MODEL = os.environ.get("ALIGNSLM_VLLM_URL"), os.environ.get("ALIGNSLM_VLLM_MODEL_DIR")
PROMPTS, SAMPLES, NEW_TOKENS, ROUNDS, CONCURRENCY = 16, 5, 100, 3, 16

pytestmark = pytest.mark.skipif(not (URL and MODEL), reason="set ALIGNSLM_VLLM_URL and ALIGNSLM_VLLM_MODEL_DIR (a "
                                "vLLM server started with --model DIR --skip-tokenizer-init --dtype float32)")

_means: dict[str, float] = {}
_lengths: dict[str, float] = {}


@pytest.fixture(scope="module")
def prompts() -> list[np.ndarray]:
    n_units = HFUnitLM.from_args(MODEL).vocab.n_units
    rng = np.random.default_rng(0)
    return [rng.integers(0, n_units, size=75) for _ in range(PROMPTS)]  # 3 s of 25 Hz units


def _run(benchmark, lm, name: str, prompts: list[np.ndarray]) -> None:
    config = SamplingConfig(n=SAMPLES, max_new_tokens=NEW_TOKENS)
    seeds = list(range(PROMPTS))
    lm.generate(prompts[:1], SamplingConfig(max_new_tokens=2), seeds[:1])  # first-call costs kept out of the timing
    rows = benchmark.pedantic(lambda: lm.generate(prompts, config, seeds), rounds=ROUNDS)
    assert len(rows) == PROMPTS and all(len(r) == SAMPLES for r in rows)
    _lengths[name] = float(np.mean([len(c) for r in rows for c in r]))
    if benchmark.stats is not None:
        _means[name] = benchmark.stats.stats.mean


def test_hf_back_end(benchmark, prompts):
    _run(benchmark, HFUnitLM.from_args(MODEL), "hf", prompts)


def test_vllm_server(benchmark, prompts, capsys):
    _run(benchmark, VLLMUnitLM.from_args(MODEL, engine_url=URL, engine_concurrency=CONCURRENCY), "vllm", prompts)
    if len(_means) == 2:
        ratio = _means["hf"] / _means["vllm"]
        benchmark.extra_info["vllm_speedup_vs_hf"] = round(ratio, 2)
        with capsys.disabled():
            print(f"\nvLLM sampling is {ratio:.2f}x the hf back-end ({PROMPTS} prompts x {SAMPLES} samples, at most "
                  f"{NEW_TOKENS} new tokens; mean length hf {_lengths['hf']:.1f}, vllm {_lengths['vllm']:.1f})")
