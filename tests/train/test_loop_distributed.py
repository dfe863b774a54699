"""A whole Align-SLM round (sample, score, pairs, DPO with mid-training evaluation) under real torchrun ranks (gloo,
CPU), against one process: the same samples, scores, pairs, adapter and evaluation, each final file written once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from alignslm_train.cli import main as train_main
from tests.judge_server import JudgeServer, hashed_score

REPO = Path(__file__).resolve().parents[2]


def args(demo, prompts: Path, out: Path, server: JudgeServer) -> list[str]:
    return ["--model", str(demo.model_dir), "--prompts", str(prompts), "--output-dir", str(out), "--rounds", "1",
            "--samples-per-prompt", "3", "--max-new-tokens", "40", "--schedule", "3:2",
            "--judge-model", "loopback", "--judge-base-url", server.base_url, "--judge-api-key-env", "NO_KEY_HERE",
            "--lora-rank", "4", "--lora-alpha", "8", "--learning-rate", "5e-3", "--batch-size", "2", "--epochs", "2",
            "--eval-tasks", "sstorycloze", "--eval-every", "1", "--eval-limit", "4",
            "--eval-data-root", str(demo.data_root), "--cache-dir", str(demo.root.parent.parent)]


def _asked(bodies: list[dict]) -> set[str]:
    return {json.dumps(body["messages"], sort_keys=True) for body in bodies}


def finals(out: Path) -> dict[str, str]:
    """The round's final files (not the per-rank logs or DPO checkpoints), by path."""
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted((out / "round-1").glob("*.json*"))}


@pytest.mark.slow
def test_a_round_on_two_ranks_equals_one_process(demo, six_prompts, tmp_path, monkeypatch):
    prompts = six_prompts
    monkeypatch.setenv("ALIGNSLM_CACHE", str(tmp_path / "one-cache"))  # the judge's answer cache, one per run
    with JudgeServer(default=hashed_score()) as server:
        assert train_main(args(demo, prompts, tmp_path / "one", server)) == 0
        asked_alone = _asked(server.bodies)
        server.bodies.clear()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
               "ALIGNSLM_CACHE": str(tmp_path / "two-cache")}
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               "-m", "alignslm_train", *args(demo, prompts, tmp_path / "two", server)],
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        # The same questions; a question two prompts share may be asked by both ranks, each judging its own share.
        assert _asked(server.bodies) == asked_alone
    one, two = tmp_path / "one", tmp_path / "two"
    a, b = finals(one), finals(two)
    assert sorted(a) == sorted(b)
    for name in ("round-1/scores.jsonl", "round-1/pairs.jsonl", "round-1/pairs_report.json"):
        assert a[name] == b[name], name
    assert json.loads(a["round-1/pairs_report.json"])["pairs"] > 0
    # The mid-training evaluations: every rank scored its share at each step, rank 0 logged them once.
    log_a, log_b = ([{k: v for k, v in json.loads(line).items() if k != "results"} for line in log.splitlines()]
                    for log in (a["round-1/eval_log.jsonl"], b["round-1/eval_log.jsonl"]))
    assert log_a == log_b and len(log_a) >= 2
    assert list((two / "round-1" / "eval").glob("step-*/items/*.rank1.jsonl"))
    assert all(len(list(step.glob("results_*.json"))) == 1 for step in (two / "round-1" / "eval").iterdir())
    # The adapter: two ranks with one pair each per step train what one process with two per step does.
    wa, wb = (load_file(str(out / "round-1" / "adapter" / "adapter_model.safetensors")) for out in (one, two))
    assert wa.keys() == wb.keys() and max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-5
    # The pipeline's logs are per rank; no final file has a rank twin.
    runs = two / "round-1" / "continuations"
    assert sorted(p.name for p in runs.glob("*/samples*.jsonl")) == ["samples.rank0.jsonl", "samples.rank1.jsonl"]
    assert not [p for p in two.rglob("*.rank*") if "continuations" not in p.parts and "items" not in p.parts]
    assert len(json.loads((two / "config.json").read_text())["commands"]) == 1
