"""Tokenization stage of a task: cold unit cache (runs the tokenizer) vs warm cache (reads stored units).

The ratio of the two means is the speed-up a re-scoring run gets; under the default (disabled) benchmark mode each
runs once and the test checks both give the same units.
"""

import itertools

import pytest

from alignslm_eval.api.task import AudioItem
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.cache import UnitCache
from alignslm_eval.evaluate.likelihood import tokenize_items
from alignslm_eval.tokenizers.offline import OfflineTokenizer
from tests.benchmark_fixtures import SPEECH, make_benchmark


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = make_benchmark(SHARED_DATA, tmp_path_factory.mktemp("cachebench"))
    items = [AudioItem(p.name, p) for p in sorted(root.rglob("*.wav"))]
    hashes = {i.key: file_sha256(i.path) for i in items}
    tokenizer = OfflineTokenizer.fit([SHARED_DATA / "audio" / SPEECH], n_units=32, seed=0)
    return items, hashes, tokenizer, tmp_path_factory.mktemp("caches")


def test_cold_cache(benchmark, corpus):
    items, hashes, tokenizer, root = corpus
    fresh = (UnitCache(root / f"cold{i}", tokenizer.fingerprint()) for i in itertools.count())
    units = benchmark.pedantic(lambda cache: tokenize_items(items, hashes, tokenizer, cache),
                               setup=lambda: ((next(fresh),), {}), rounds=5)
    assert len(units) == len(items)


def test_warm_cache(benchmark, corpus):
    items, hashes, tokenizer, root = corpus
    cache = UnitCache(root / "warm", tokenizer.fingerprint())
    cold = tokenize_items(items, hashes, tokenizer, cache)
    warm = benchmark(lambda: tokenize_items(items, hashes, tokenizer, cache))
    assert {k: u.units.tolist() for k, u in warm.items()} == {k: u.units.tolist() for k, u in cold.items()}
