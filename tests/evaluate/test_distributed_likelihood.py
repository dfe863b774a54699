"""Likelihood evaluation across processes: real `torchrun` ranks (gloo, CPU) and `--shard` jobs, against one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignslm_eval.cli.eval import main
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from tests.benchmark_fixtures import make_benchmark, make_model_dir

TASKS = "swuggy,sblimp,sstorycloze"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("ranks")
    return make_benchmark(SHARED_DATA, root / "data"), make_model_dir(SHARED_DATA, root / "model")


def args(data: Path, model: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--tasks", TASKS, "--data-root", str(data), "--output-path", str(out),
            "--cache-dir", str(cache), "--batch-size", "3", *extra]


def results(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/results_*.json"))]


def item_scores(out: Path) -> dict[str, float]:
    """(task run, item key) -> log-likelihood, from every log whichever rank wrote it."""
    return {(p.name.split(".")[0], row["key"]): row["ll_sum"]
            for p in sorted(out.glob("*/items/*.jsonl")) for row in map(json.loads, p.read_text().splitlines())}


def metrics(doc: dict) -> dict:
    return {name: entry["result"] for name, entry in doc["tasks"].items()}


@pytest.mark.slow
def test_two_torchrun_ranks_equal_one_process_and_write_each_final_file_once(setup, tmp_path):
    data, model = setup
    assert main(args(data, model, tmp_path / "one", tmp_path / "cache1")) == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "alignslm_eval", *args(data, model, tmp_path / "two", tmp_path / "cache2")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [one], [two] = results(tmp_path / "one"), results(tmp_path / "two")
    assert len(list((tmp_path / "two").glob("*/results_*.md"))) == 1  # rank 1 wrote no final file
    assert metrics(two) == metrics(one)
    # Each rank scored its own share into a log of its own; together they hold every item once.
    logs = sorted(p.name for p in (tmp_path / "two").glob("*/items/*.jsonl"))
    assert len(logs) == 6 and all(".rank0." in n or ".rank1." in n for n in logs)
    a, b = item_scores(tmp_path / "one"), item_scores(tmp_path / "two")
    assert sorted(a) == sorted(b) and max(abs(a[k] - b[k]) for k in a) < 1e-5
    # The ranks' unit caches were folded into the one file a later run reads.
    assert [p.name.count(".rank") for p in (tmp_path / "cache2" / "units").iterdir()] == [0]


def test_shard_jobs_then_one_process_recomputes_nothing_already_scored(setup, tmp_path, monkeypatch, capsys):
    data, model = setup
    out, cache = tmp_path / "runs", tmp_path / "cache"
    assert main(args(data, model, out, cache, "--shard", "0/2")) == 0
    assert "shard 0/2 scored" in capsys.readouterr().err and results(out) == []  # a shard job writes no results
    first = item_scores(out)
    scored = []
    original = HFUnitLM.loglikelihood

    def counting(self, sequences, *a, **k):
        scored.extend(sequences)
        return original(self, sequences, *a, **k)

    monkeypatch.setattr(HFUnitLM, "loglikelihood", counting)
    assert main(args(data, model, out, cache)) == 0  # the merge: what shard 1 would have scored, then results
    everything = item_scores(out)
    assert len(scored) == len(everything) - len(first) > 0
    assert all(everything[k] == v for k, v in first.items())
    [doc] = results(out)
    assert main(args(data, model, tmp_path / "alone", tmp_path / "cache_alone")) == 0
    assert metrics(doc) == metrics(results(tmp_path / "alone")[0])


def test_a_rank_log_that_is_not_text_is_named_on_one_line(setup, tmp_path, capsys):
    data, model = setup
    out, cache = tmp_path / "runs", tmp_path / "cache"
    assert main(args(data, model, out, cache, "--shard", "1/2")) == 0
    [log] = [p for p in out.glob("*/items/swuggy-*.rank1.jsonl")]
    log.write_bytes(b"\xff\xfe garbage from a dying disk\n")
    capsys.readouterr()
    assert main(args(data, model, out, cache)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bars
    assert last.startswith(f"alignslm-eval: error: {log}: not a log of scored items") and "delete it and rerun" in last
