"""Continuation sampling: N = 8 continuations of one prompt as one KV-cached batch (`UnitLM.generate`) vs the naive
baseline, one continuation at a time, recomputing the whole prefix every step (no cache). Same tiny model, same
prompt, same number of new tokens; the ratio of the means is the speed-up in tokens per second."""

import numpy as np
import pytest
import torch

from alignslm_eval.api.model import SamplingConfig
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from tests.tiny_models import N_UNITS, save_twist_llama

N, NEW_TOKENS = 8, 100


@pytest.fixture(scope="module")
def lm_and_prompt(tmp_path_factory):
    lm = HFUnitLM.from_args(str(save_twist_llama(tmp_path_factory.mktemp("sampling") / "m")))
    return lm, np.random.default_rng(0).integers(0, N_UNITS, size=75)  # 3 s of deduplicated 25 Hz units


def naive_sample(lm: HFUnitLM, prompt: np.ndarray, n: int, new_tokens: int, seed: int) -> list[np.ndarray]:
    torch.manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.from_numpy(lm.vocab.encode(prompt, add_bos=True, add_eos=False))[None]
        for _ in range(new_tokens):
            with torch.inference_mode():
                logits = lm.model(input_ids=ids).logits[0, -1] / 0.8
            top = torch.topk(logits, 25)
            choice = top.indices[torch.multinomial(torch.softmax(top.values, -1), 1)]
            ids = torch.cat([ids, choice[None]], dim=1)
        out.append(lm.vocab.decode(ids[0, -new_tokens:].numpy()))
    return out


def test_naive_one_at_a_time_without_cache(benchmark, lm_and_prompt):
    lm, prompt = lm_and_prompt
    out = benchmark.pedantic(naive_sample, args=(lm, prompt, N, NEW_TOKENS, 0), rounds=2)
    assert len(out) == N


def test_batched_kv_cached(benchmark, lm_and_prompt):
    lm, prompt = lm_and_prompt
    config = SamplingConfig(n=N, max_new_tokens=NEW_TOKENS, temperature=0.8, top_k=25)
    out = benchmark.pedantic(lambda: lm.generate([prompt], config, [0])[0], rounds=2)
    assert len(out) == N and all(len(c) <= NEW_TOKENS for c in out)
