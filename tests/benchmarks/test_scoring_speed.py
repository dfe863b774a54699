"""Batched, length-bucketed scoring vs a per-item loop at batch size 1: same tiny model, same items.

Run with `python -m pytest tests/benchmarks --benchmark-enable`; the ratio of the two means is the speed-up.
Under the default (disabled) mode each function runs once, which still checks both give the same scores.
"""

import numpy as np
import pytest

from alignslm_eval.api.model import LikelihoodProtocol
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from tests.tiny_models import N_UNITS, save_twist_llama


@pytest.fixture(scope="module")
def lm_and_items(tmp_path_factory):
    lm = HFUnitLM.from_args(str(save_twist_llama(tmp_path_factory.mktemp("bench") / "m")))
    rng = np.random.default_rng(0)
    # Lengths like deduplicated 25 Hz units of 1-8 s utterances.
    items = [rng.integers(0, N_UNITS, size=int(rng.integers(20, 160))) for _ in range(96)]
    return lm, items


def test_per_item_loop(benchmark, lm_and_items):
    lm, items = lm_and_items
    out = benchmark(lambda: [lm.loglikelihood([s], LikelihoodProtocol(), batch_size=1)[0] for s in items])
    assert len(out) == len(items)


def test_batched_length_bucketed(benchmark, lm_and_items):
    lm, items = lm_and_items
    out = benchmark(lambda: lm.loglikelihood(items, LikelihoodProtocol(), batch_size=32))
    reference = [lm.loglikelihood([s], LikelihoodProtocol())[0] for s in items]
    # Sums of 100+ fp32 log-probs: batched kernels differ from unbatched ones in the last bits.
    assert [o.sum for o in out] == pytest.approx([r.sum for r in reference], rel=1e-6, abs=1e-4)
