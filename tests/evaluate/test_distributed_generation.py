"""Generation tasks across processes: the continuation pipeline (sampling, vocoding, ASR, judge, scores) sharded by
prompt under real `torchrun` ranks (gloo, CPU) and as `--shard` jobs, against one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignslm_eval.cli.eval import main
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from tests.benchmark_fixtures import make_model_dir, make_prompts
from tests.judge_server import JudgeServer, hashed_score

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "ALIGNSLM_TEST_JUDGE_KEY"
TASKS = "gpt4o_score,signal_quality"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("generation_ranks")
    make_prompts(SHARED_DATA, root / "data" / "prompts", count=5)
    return root / "data", make_model_dir(SHARED_DATA, root / "model")


@pytest.fixture()
def judge(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    with JudgeServer(default=hashed_score()) as server:
        yield server


def args(data: Path, model: Path, out: Path, judge: JudgeServer, *extra: str) -> list[str]:
    return ["--model", str(model), "--tasks", TASKS, "--data-root", str(data), "--output-path", str(out),
            "--cache-dir", str(out / "cache"), "--judge-model", "judge-test",
            "--judge-base-url", judge.base_url, "--judge-api-key-env", KEY_ENV, "--log-samples",
            "--set", "gpt4o_score.max_new_tokens=30", "--set", "gpt4o_score.samples=2",
            "--set", "signal_quality.max_new_tokens=20", *extra]


def results(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("model/results_*.json"))]


def metrics(doc: dict) -> dict:
    return {name: (entry["result"], entry["unscored"], entry["dataset"]["sha256"]) for name, entry in doc["tasks"].items()}


def samples(out: Path) -> dict:
    """(task, prompt, sample) -> what the pipeline made of it and its scores, without the run-specific wav path."""
    rows = {}
    for path in sorted(out.glob("model/samples_*.jsonl")):
        for row in map(json.loads, path.read_text().splitlines()):
            rows[path.stem, row["prompt_id"], row["sample"]] = {
                k: v for k, v in row.items() if k not in ("wav", "prompt_audio")}
    return rows


@pytest.mark.slow
def test_two_torchrun_ranks_sample_and_score_what_one_process_does(setup, judge, tmp_path, monkeypatch):
    data, model = setup
    # The judge's answer cache lives under $ALIGNSLM_CACHE/judge: one per run here.
    monkeypatch.setenv("ALIGNSLM_CACHE", str(tmp_path / "one" / "cache"))
    assert main(args(data, model, tmp_path / "one", judge)) == 0
    asked_alone = judge.total
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "ALIGNSLM_CACHE": str(tmp_path / "two" / "cache")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "alignslm_eval", *args(data, model, tmp_path / "two", judge)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = tmp_path / "one", tmp_path / "two"
    [doc_one], [doc_two] = results(one), results(two)
    assert metrics(doc_two) == metrics(doc_one)
    assert samples(two) == samples(one) and len(samples(one)) == 5 * 2 + 5
    assert judge.total == 2 * asked_alone  # every sample was judged once, by the rank that owns its prompt
    assert len(list(two.glob("model/results_*.md"))) == 1  # rank 1 wrote no final file
    # Each rank appended to logs of its own (samples, durations, transcripts, scores, judge answers).
    for pattern in ("samples*.jsonl", "wav/*/durations*.jsonl", "transcripts/*.jsonl", "scores/*.jsonl"):
        names = sorted(p.name for p in two.glob(f"model/continuations/*/{pattern}"))
        assert names and all(".rank0." in n or ".rank1." in n for n in names), (pattern, names)
    assert sorted(p.name for p in (two / "cache" / "judge").glob("*.sqlite")) == ["answers.rank0.sqlite",
                                                                        "answers.rank1.sqlite"]

    # Finished in one process after two ranks: nothing is sampled or judged again, the results are the same.
    generated = []
    original = HFUnitLM.generate
    monkeypatch.setattr(HFUnitLM, "generate", lambda self, prompts, *a, **k: generated.extend(prompts)
                        or original(self, prompts, *a, **k))
    asked = judge.total
    monkeypatch.setenv("ALIGNSLM_CACHE", str(two / "cache"))
    assert main(args(data, model, two, judge)) == 0
    assert generated == [] and judge.total == asked
    assert metrics(results(two)[-1]) == metrics(doc_one)


def test_shard_jobs_then_one_process_samples_only_what_the_shards_left(setup, judge, tmp_path, monkeypatch, capsys):
    data, model = setup
    out = tmp_path / "runs"
    monkeypatch.setenv("ALIGNSLM_CACHE", str(tmp_path / "cache"))
    generated = []
    original = HFUnitLM.generate
    monkeypatch.setattr(HFUnitLM, "generate", lambda self, prompts, *a, **k: generated.extend(prompts)
                        or original(self, prompts, *a, **k))
    assert main(args(data, model, out, judge, "--shard", "1/2")) == 0
    assert "shard 1/2 scored" in capsys.readouterr().err and results(out) == []  # a shard job writes no results
    logs = sorted(out.glob("model/continuations/*/samples*.jsonl"))
    assert [p.name for p in logs] == ["samples.rank1.jsonl"] * 2  # one sampling run per task
    by_shard = {json.loads(line)["prompt_id"] for line in logs[0].read_text().splitlines()}
    assert 0 < len(by_shard) < 5 and len(generated) == 2 * len(by_shard)  # two generation tasks
    generated.clear()
    assert main(args(data, model, out, judge)) == 0  # the merge
    assert len(generated) == 2 * (5 - len(by_shard))
    alone = tmp_path / "alone"
    assert main(args(data, model, alone, judge)) == 0
    assert metrics(results(out)[0]) == metrics(results(alone)[0]) and samples(out) == samples(alone)
