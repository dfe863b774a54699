"""alignslm-train sampling through a vLLM server (the loopback stand-in, backed by the demo model): round 1 from the
base model the server serves, round 2 from round 1's policy merged into one checkpoint, which the server must serve."""

import json

import pytest

from alignslm_eval.models.adapters import MERGED_FROM_FILE
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_train.cli import main as train_main
from tests.judge_server import JudgeServer, hashed_score
from tests.vllm_server import VLLMServer


def args(demo, prompts, out, judge, engine, *extra):
    return ["--model", str(demo.model_dir), "--prompts", str(prompts), "--output-dir", str(out), "--rounds", "2",
            "--samples-per-prompt", "3", "--max-new-tokens", "40", "--schedule", "3:2,3:2",
            "--judge-model", "loopback", "--judge-base-url", judge.base_url, "--judge-api-key-env", "NO_KEY_HERE",
            "--lora-rank", "4", "--lora-alpha", "8", "--learning-rate", "5e-3", "--batch-size", "2", "--epochs", "1",
            "--cache-dir", str(demo.root.parent.parent), "--engine-url", engine.base_url, *extra]


def sampling(engine: VLLMServer) -> int:
    """Sampling requests the server got (start-up checks send a probe completion too)."""
    return sum(1 for body in engine.bodies if body.get("n") == 3)


@pytest.mark.slow
def test_rounds_sample_through_vllm_and_round_two_needs_the_merged_policy_served(demo, six_prompts, tmp_path,
                                                                                 monkeypatch, capsys):
    prompts = six_prompts
    monkeypatch.setattr(HFUnitLM, "generate", lambda *a, **k: pytest.fail("sampled with the hf back-end"))
    out = tmp_path / "align"
    with JudgeServer(default=hashed_score()) as judge:
        with VLLMServer(demo.model_dir) as engine:
            assert train_main(args(demo, prompts, out, judge, engine, "--round", "1")) == 0, capsys.readouterr().err
            assert sampling(engine) == 6  # one request per prompt, n = 3 samples each
            [run] = (out / "round-1" / "continuations").glob("*/run.json")
            model = json.loads(run.read_text())["model"]
            assert model["engine"] == "vllm" and model["local_dir"] == str(demo.model_dir.resolve())
            assert (out / "round-1" / "COMPLETE.json").is_file()  # DPO trained the adapter with the hf back-end

            # Round 2 samples from round 1's policy: merged into round-1/merged, which this server does not serve.
            capsys.readouterr()
            assert train_main(args(demo, prompts, out, judge, engine, "--round", "2", "--stage", "sample")) == 2
            last = capsys.readouterr().err.strip().splitlines()[-1]
            merged = out / "round-1" / "merged"
            assert last.startswith("alignslm-train: error:") and str(merged) in last
            assert (merged / MERGED_FROM_FILE).is_file()
        with VLLMServer(merged) as engine:
            assert train_main(args(demo, prompts, out, judge, engine, "--round", "2", "--stage", "sample")) == 0
            assert sampling(engine) == 6
    [run] = (out / "round-2" / "continuations").glob("*/run.json")
    assert json.loads(run.read_text())["model"]["local_dir"] == str(merged.resolve())
