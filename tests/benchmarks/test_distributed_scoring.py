"""Likelihood evaluation, 2 torchrun ranks (gloo) vs 1 process, on the same 400 StoryCloze-layout items of 3 s:
hashing, tokenizing (cold unit cache) and scoring. Each run is a real `torchrun` start; the measure is items per
second of the task itself (the results' wall_time_s, rank 0's, which waits for every rank), so process start-up and
model loading are left out. The model is a random LLaMA of 4 layers x 256, so that scoring outweighs bookkeeping.
Every process gets one intra-op thread, so the ratio is what data parallelism adds (a lone process with two threads
on a machine busy elsewhere can be many times slower still). Under the default (disabled) benchmark mode each runs
once on the first 20 stories (`--limit`), to keep CI short."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import soundfile as sf
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tests.benchmark_fixtures import _segments, make_model_dir
from tests.tiny_models import N_UNITS, TWIST_OFFSET

REPO = Path(__file__).resolve().parents[2]
STORIES = 200


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("distbench")
    ssc = root / "data" / "sSC"
    ssc.mkdir(parents=True)
    segments = _segments(SHARED_DATA, 3.0, 2 * STORIES)
    for i in range(STORIES):
        sf.write(ssc / f"{i}_s{i}_correct.wav", segments[2 * i], 16000)
        sf.write(ssc / f"{i}_s{i}_incorrect.wav", segments[2 * i + 1], 16000)
    model = make_model_dir(SHARED_DATA, root / "model")
    # Weights of a size where scoring, not process bookkeeping, takes the time (same vocabulary and tokenizer).
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=N_UNITS + TWIST_OFFSET, hidden_size=256, intermediate_size=1024,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    config.offset = TWIST_OFFSET
    LlamaForCausalLM(config).save_pretrained(model)
    return root / "data", model, root


def run(world: int, data: Path, model: Path, root: Path, tag: str, limit: Optional[int]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = root / f"out-{tag}"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(world),
                    "-m", "alignslm_eval", "--model", str(model), "--tasks", "sstorycloze", "--data-root", str(data),
                    "--output-path", str(out), "--cache-dir", str(root / f"cache-{tag}"),
                    *(["--limit", str(limit)] if limit else [])],
                   env=env, check=True, capture_output=True, timeout=900)
    [path] = out.glob("**/results_*.json")
    return json.loads(path.read_text())["tasks"]["sstorycloze"]


@pytest.mark.slow
@pytest.mark.parametrize("world", [1, 2])
def test_likelihood_items_per_second(benchmark, setup, world):
    data, model, root = setup
    tags = iter(range(100))
    stories = 20 if benchmark.disabled else STORIES
    entry = benchmark.pedantic(lambda: run(world, data, model, root, f"w{world}-{next(tags)}",
                                           None if stories == STORIES else stories), rounds=1)
    items_per_s = entry["dataset"]["n_items"] / entry["wall_time_s"]
    benchmark.extra_info["items_per_s"] = round(items_per_s, 2)
    print(f"world {world}: {items_per_s:.1f} items/s")
    assert entry["dataset"]["n_items"] == 2 * stories and entry["result"]["metrics"]["accuracy"]["n"] == stories
