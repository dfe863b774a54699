"""`alignslm-eval --model demo --tasks all`: built offline on first use, reused from the cache afterwards."""

import json

import pytest

from alignslm_eval.cli.eval import main
from alignslm_eval.demo import DEMO_VERSION, ensure_demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, demo):
    root = tmp_path_factory.mktemp("demo")
    code = main(["--model", "demo", "--tasks", "all", "--cache-dir", str(demo.root.parent.parent),
                 "--output-path", str(root / "runs")])
    return code, root, demo


def test_demo_runs_every_task(demo_run):
    code, root, _ = demo_run
    assert code == 0
    results = json.loads(next((root / "runs" / "demo").glob("results_*.json")).read_text())
    assert set(results["tasks"]) == {"swuggy", "sblimp", "sstorycloze", "tstorycloze", "salmon", "continuation",
                                     "signal_quality"}
    # No judge endpoint offline: `--tasks all` leaves gpt4o_score out and says why in the results.
    assert "--judge-model" in results["skipped_tasks"]["gpt4o_score"]
    assert "--mos-checkpoint" in results["skipped_tasks"]["audio_quality"]
    assert results["tasks"]["continuation"]["pipeline"]["scorers"]["genppl"]["text_lm"]["local_dir"]
    salmon = results["tasks"]["salmon"]
    assert salmon["protocol"]["settings"]["parts"] == [
        "speaker_consistency", "gender_consistency", "rir_consistency", "bg_all_consistency"]
    for name, entry in results["tasks"].items():
        headline = entry["result"]["metrics"][entry["result"]["headline"]]
        assert headline["n"] > 0
        if "pipeline" not in entry:
            assert 0.0 <= headline["value"] <= 1.0
    assert results["model"]["vocab"]["convention"] == "slam"
    assert results["tokenizer"]["kind"] == "offline"


def test_demo_model_learnt_from_its_speech(demo_run):
    _, _, demo = demo_run
    assert demo.root.name == f"v{DEMO_VERSION}"
    record = json.loads((demo.model_dir / "training.json").read_text())
    assert record["loss_last_50_steps"] < record["loss_first_50_steps"] / 2


def test_second_use_reuses_the_cache(demo_run, monkeypatch):
    _, _, built = demo_run
    import alignslm_eval.demo as demo_module

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the demo was rebuilt")

    monkeypatch.setattr(demo_module, "_train_model", no_rebuild)
    monkeypatch.setattr(demo_module, "_build_benchmark", no_rebuild)
    monkeypatch.setattr(demo_module, "_speak_training_sentences", no_rebuild)
    demo = ensure_demo(built.root.parent.parent)
    assert (demo.model_dir / "config.json").is_file() and (demo.data_root / "lexical" / "dev" / "gold.csv").is_file()
