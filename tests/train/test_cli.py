"""alignslm-train refuses bad input on one line (exit 2) naming the flag, before a model is built, loaded or sampled."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_train.cli import main
from tests.tiny_models import save_twist_llama


@pytest.fixture
def no_work(monkeypatch):
    """Building the demo or loading a model fails the test: validation must come first."""
    import alignslm_eval.demo

    monkeypatch.setattr(alignslm_eval.demo, "ensure_demo", lambda *a, **k: pytest.fail("demo built"))
    monkeypatch.setattr(HFUnitLM, "from_args", classmethod(lambda *a, **k: pytest.fail("model loaded")))


@pytest.fixture
def base(tmp_path) -> list[str]:
    (tmp_path / "prompts").mkdir()
    return ["--model", "demo", "--prompts", str(tmp_path / "prompts"), "--output-dir", str(tmp_path / "out"),
            "--judge-model", "m"]


def run(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("extra, flag", [
    (["--temperature", "-1"], "--temperature"),
    (["--temperature", "nan"], "--temperature"),
    (["--top-k", "-1"], "--top-k"),
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--samples-per-prompt", "0"], "--samples-per-prompt"),
    (["--samples-per-prompt", "1"], "--samples-per-prompt"),  # no pair can be formed from one sample
    (["--stage", "dpo", "--round", "1", "--lora-rank", "0"], "--lora-rank"),
    (["--stage", "dpo", "--round", "1", "--batch-size", "0"], "--batch-size"),
    (["--lora-alpha", "0"], "--lora-alpha"),
    (["--lora-dropout", "1"], "--lora-dropout"),
    (["--beta", "0"], "--beta"),
    (["--learning-rate=-1e-5"], "--learning-rate"),
    (["--epochs", "0"], "--epochs"),
    (["--max-steps", "0"], "--max-steps"),
    (["--target-modules", ","], "--target-modules"),
    (["--stage", "dpo", "--device", "mps"], "--device"),
    (["--rounds", "0"], "--rounds"),
    (["--stage", "pairs", "--round", "0"], "--round"),
    (["--schedule", "1:3"], "--schedule"),
    (["--eval-tasks", "swugy", "--eval-every", "5"], "--eval-tasks swugy"),
    (["--eval-tasks", "sstorycloze"], "--eval-every"),
    (["--eval-limit", "0"], "--eval-limit"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_setting_fails_before_any_work(base, tmp_path, no_work, capsys, extra, flag):
    code, last = run(capsys, *base, *extra)
    assert code == 2 and last.startswith("alignslm-train: error: ") and flag in last
    assert not (tmp_path / "out").exists()


def test_missing_judge_model_of_the_pair_rule_fails_before_sampling(base, tmp_path, no_work, capsys):
    code, last = run(capsys, *base[:-2])
    assert code == 2 and "--judge-model" in last and "judge_threshold" in last
    assert not (tmp_path / "out").exists()


def test_output_dir_that_is_a_file_is_left_alone(base, tmp_path, no_work, capsys):
    (tmp_path / "out").write_text("keep me")
    code, last = run(capsys, *base)
    assert code == 2 and f"--output-dir {tmp_path / 'out'}" in last
    assert (tmp_path / "out").read_text() == "keep me"


@pytest.mark.parametrize("stage", [[], ["--stage", "dpo", "--round", "1"]], ids=["all", "dpo"])
def test_unknown_target_module_lists_the_models_layers_before_sampling(tmp_path, capsys, monkeypatch, stage):
    model = save_twist_llama(tmp_path / "model")
    (tmp_path / "prompts").mkdir()
    monkeypatch.setattr(HFUnitLM, "generate", lambda *a, **k: pytest.fail("sampled"))
    code, last = run(capsys, "--model", str(model), "--prompts", str(tmp_path / "prompts"), "--output-dir",
                     str(tmp_path / "out"), "--judge-model", "m", "--target-modules", "q_proj,nosuchmodule", *stage)
    assert code == 2 and "--target-modules nosuchmodule" in last and "q_proj" in last and "v_proj" in last
    assert not (tmp_path / "out" / "round-1" / "continuations").exists()


def test_merge_never_writes_over_another_directory(tmp_path, no_work, capsys):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model.safetensors").write_text("weights")
    code, last = run(capsys, "merge", "--model", "demo", "--adapter", str(tmp_path / "adapter"),
                     "--output", str(tmp_path / "base"))
    assert code == 2 and f"--output {tmp_path / 'base'}" in last
    assert (tmp_path / "base" / "model.safetensors").read_text() == "weights"
    code, last = run(capsys, "merge", "--model", "demo", "--adapter", str(tmp_path / "nowhere"),
                     "--output", str(tmp_path / "merged"))
    assert code == 2 and "--adapter" in last and not Path(tmp_path / "merged").exists()


def test_a_missing_judge_key_fails_before_sampling(tmp_path, capsys, monkeypatch, shared_data):
    from tests.benchmark_fixtures import make_model_dir

    model = make_model_dir(shared_data, tmp_path / "model")  # with its tokenizer and vocoder
    (tmp_path / "prompts").mkdir()
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ALIGNSLM_UNSET_KEY", raising=False)
    monkeypatch.setattr(HFUnitLM, "generate", lambda *a, **k: pytest.fail("sampled"))
    code, last = run(capsys, "--model", str(model), "--prompts", str(tmp_path / "prompts"), "--output-dir",
                     str(tmp_path / "out"), "--judge-model", "m", "--judge-api-key-env", "ALIGNSLM_UNSET_KEY")
    assert code == 2 and "ALIGNSLM_UNSET_KEY" in last


def test_a_default_asr_round_refuses_another_asr_later(base, tmp_path, no_work, capsys):
    from alignslm_train.cli import _record, _result_settings, options_of, parser

    # config.json as a finished round run with the default ASR leaves it.
    (tmp_path / "out").mkdir()
    _record(tmp_path / "out", _result_settings(*options_of(parser().parse_args(base))), ["alignslm-train"])
    code, err = run(capsys, *base, "--stage", "score", "--round", "1", "--asr", "whisper:/x")
    assert code == 2 and "made with other settings (asr 'pocketsphinx' -> 'whisper:/x')" in err


def test_a_round_whose_previous_round_is_unfinished_is_refused_leaving_nothing(tmp_path, capsys, shared_data):
    from tests.benchmark_fixtures import make_model_dir

    model = make_model_dir(shared_data, tmp_path / "model")
    (tmp_path / "prompts").mkdir()
    out = tmp_path / "out"
    code, last = run(capsys, "--model", str(model), "--prompts", str(tmp_path / "prompts"), "--output-dir", str(out),
                     "--stage", "dpo", "--round", "5")
    assert code == 2 and "round 5 samples from round 4's policy" in last
    assert not (out / "round-5").exists()
