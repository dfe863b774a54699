"""The Align-SLM loop on the demo model: 2 curriculum rounds over 32 prompts with the loopback judge."""

import json
import shutil

import pytest
import torch

from alignslm_eval.cli.eval import main as eval_main
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_train.cli import main as train_main
from tests.judge_server import JudgeServer, hashed_score

N_PROMPTS = 32


@pytest.fixture(scope="module")
def prompts(tmp_path_factory, demo):
    """The demo's spoken stories: longer than the 3 s prompt, so the model continues mid-story."""
    folder = tmp_path_factory.mktemp("prompts")
    stories = sorted((demo.data_root / "sSC").glob("*.wav")) + sorted((demo.data_root / "tSC").glob("*.wav"))
    for path in stories[:N_PROMPTS]:
        shutil.copy(path, folder / f"{path.parent.name}_{path.name}")
    assert len(list(folder.iterdir())) == N_PROMPTS
    return folder


def train_args(demo, prompts, out, server, *extra):
    return ["--model", str(demo.model_dir), "--prompts", str(prompts), "--output-dir", str(out),
            "--rounds", "2", "--samples-per-prompt", "3", "--max-new-tokens", "60", "--schedule", "3:2,4:2",
            "--judge-model", "loopback", "--judge-base-url", server.base_url, "--judge-api-key-env", "NO_KEY_HERE",
            "--lora-rank", "8", "--lora-alpha", "16", "--learning-rate", "5e-3", "--batch-size", "4",
            "--epochs", "4", "--cache-dir", str(demo.root.parent.parent), *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo, prompts):
    out = tmp_path_factory.mktemp("align")
    with JudgeServer(default=hashed_score()) as server:
        args = train_args(demo, prompts, out, server, "--eval-tasks", "sstorycloze", "--eval-every", "4",
                          "--eval-limit", "4", "--eval-data-root", str(demo.data_root))
        code = train_main(args)
        yield code, out, server.total


def test_two_rounds_complete_and_dpo_learns(trained):
    code, out, _ = trained
    assert code == 0
    for k in (1, 2):
        record = json.loads((out / f"round-{k}" / "COMPLETE.json").read_text())
        report = json.loads((out / f"round-{k}" / "pairs_report.json").read_text())
        assert record["pairs"] == report["pairs"] > 0 and report["prompts"] == N_PROMPTS
        assert report["rule_args"] == ({"chosen_min": 3.0, "rejected_max": 2.0} if k == 1
                                       else {"chosen_min": 4.0, "rejected_max": 2.0})
        assert (out / f"round-{k}" / "score_hist.png").is_file()
    dpo = json.loads((out / "round-1" / "COMPLETE.json").read_text())["dpo"]
    assert dpo["train_loss_last"] < dpo["train_loss_first"]
    assert dpo["reward_accuracy_last"] >= dpo["reward_accuracy_first"] and dpo["reward_accuracy_last"] > 0.5
    log = [json.loads(l) for l in open(out / "round-1" / "eval_log.jsonl")]
    assert log and all(row["task"] == "sstorycloze" and row["step"] % 4 == 0 for row in log)
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert settings["sample"]["temperature"] == 0.8 and settings["dpo"]["lora_rank"] == 8


def test_round_two_samples_from_round_one_and_adapter_scores_in_eval(trained, demo, tmp_path, capsys):
    _, out, _ = trained
    chain = json.loads((out / "round-2" / "adapter" / "alignslm_adapter_chain.json").read_text())
    assert chain == ["../../round-1/adapter"]
    run = next((out / "round-2" / "continuations").glob("*/run.json"))
    assert json.loads(run.read_text())["model"]["adapter"][0]["path"].endswith("round-1/adapter")
    code = eval_main(["--model", str(demo.model_dir), "--adapter", str(out / "round-2" / "adapter"),
                      "--tasks", "sstorycloze", "--data-root", str(demo.data_root), "--output-path", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    results = json.loads(next(tmp_path.glob("*/results_*.json")).read_text())
    assert [a["path"].split("/")[-2] for a in results["model"]["adapter"]] == ["round-1", "round-2"]
    assert next(tmp_path.iterdir()).name == "model+round-2"


def test_rerun_of_a_finished_loop_does_nothing(trained, demo, prompts, monkeypatch):
    _, out, total = trained
    monkeypatch.setattr(HFUnitLM, "generate", lambda *a, **k: pytest.fail("sampled again"))
    with JudgeServer(default=hashed_score()) as server:
        assert train_main(train_args(demo, prompts, out, server)) == 0
        assert server.total == 0


def test_other_settings_or_bad_rounds_in_a_finished_run_are_refused_untouched(trained, demo, prompts, monkeypatch,
                                                                              capsys):
    _, out, _ = trained
    before = (out / "config.json").read_bytes()
    monkeypatch.setattr(HFUnitLM, "from_args", classmethod(lambda *a, **k: pytest.fail("model loaded")))
    with JudgeServer(default=hashed_score()) as server:
        for extra, expected in ((["--temperature", "0.5", "--lora-rank", "4"], "temperature 0.8 -> 0.5"),
                                (["--stage", "dpo", "--round", "1", "--lora-rank", "4"], "lora_rank 8 -> 4"),
                                (["--rounds", "0"], "--rounds 0")):
            capsys.readouterr()
            assert train_main(train_args(demo, prompts, out, server, *extra)) == 2
            last = capsys.readouterr().err.strip().splitlines()[-1]
            assert expected in last and (extra[0] == "--rounds" or f"--output-dir {out}" in last)
        assert server.total == 0
    assert (out / "config.json").read_bytes() == before


def test_merge_of_the_demo_model_by_name(trained, demo, tmp_path):
    _, out, _ = trained
    assert train_main(["merge", "--model", "demo", "--cache-dir", str(demo.root.parent.parent), "--adapter",
                       str(out / "round-1" / "adapter"), "--output", str(tmp_path / "merged")]) == 0
    merged = HFUnitLM.from_args(str(tmp_path / "merged"))
    adapted = HFUnitLM.from_args(str(demo.model_dir), adapter=str(out / "round-1" / "adapter"))
    assert all(torch.equal(a, b) for a, b in zip(merged.model.state_dict().values(),
                                                 adapted.model.state_dict().values()))


def test_interrupted_scoring_resumes_without_asking_the_judge_twice(demo, prompts, tmp_path, monkeypatch):
    from alignslm_eval.scoring import judge

    with JudgeServer(default=hashed_score()) as server:
        args = train_args(demo, prompts, tmp_path, server, "--rounds", "1")
        assert train_main([*args, "--stage", "sample", "--round", "1"]) == 0  # killed between stages
        calls = {"n": 0}
        original = judge.LLMJudge.score

        def interrupt_second_chunk(self, items):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return original(self, items)

        monkeypatch.setattr(judge.LLMJudge, "score", interrupt_second_chunk)
        assert train_main(args) == 130  # killed mid-stage, after one chunk of judge answers
        first = server.total
        monkeypatch.setattr(judge.LLMJudge, "score", original)
        monkeypatch.setattr(HFUnitLM, "generate", lambda *a, **k: pytest.fail("sampled again"))
        assert train_main(args) == 0
        bodies = [json.dumps(b["messages"], sort_keys=True) for b in server.bodies]
        assert first > 0 and len(bodies) == len(set(bodies))  # no judge request repeated
    assert (tmp_path / "round-1" / "COMPLETE.json").is_file()


def test_eval_log_plots_and_merged_checkpoint_matches_the_adapter(trained, demo, tmp_path):
    import numpy as np

    from alignslm_eval.api.model import LikelihoodProtocol
    from alignslm_eval.cli.leaderboard import main as leaderboard_main

    _, out, _ = trained
    assert leaderboard_main(["plot-training", str(out / "round-1" / "eval_log.jsonl"),
                             "--output", str(tmp_path / "training")]) == 0
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    adapter = out / "round-2" / "adapter"
    assert train_main(["merge", "--model", str(demo.model_dir), "--adapter", str(adapter),
                       "--output", str(tmp_path / "merged")]) == 0
    merged = HFUnitLM.from_args(str(tmp_path / "merged"))
    adapted = HFUnitLM.from_args(str(demo.model_dir), adapter=str(adapter))
    base = HFUnitLM.from_args(str(demo.model_dir))
    seqs = [np.arange(40) % merged.vocab.n_units]
    scores = [m.loglikelihood(seqs, LikelihoodProtocol())[0].sum for m in (merged, adapted, base)]
    assert scores[0] == pytest.approx(scores[1], abs=1e-4) and abs(scores[0] - scores[2]) > 1e-3
    # The merged dir carries the speech tokenizer and vocoder its base named, so it evaluates on its own.
    assert (tmp_path / "merged" / "alignslm_tokenizer.json").is_file() and (tmp_path / "merged" / "tokenizer.npz").is_file()


def _scored_round(tmp_path, statuses: list[list[str]]):
    """A round dir with one recorded sampling run and scores.jsonl: prompt p<i>, sample k has rating k+1 when its
    status is "ok", else no rating and that status."""
    from alignslm_eval.evaluate.continuation_store import ContinuationRun
    from alignslm_train.config import AlignConfig

    config = AlignConfig(model="m", prompts=tmp_path, output_dir=tmp_path / "out", schedule=[[3.0, 1.0]])
    run_root = config.round_dir(1) / "continuations" / "run0"
    run_root.mkdir(parents=True)
    (run_root / "run.json").write_text("{}")
    with open(run_root / "samples.jsonl", "w") as f, open(config.round_dir(1) / "scores.jsonl", "w") as s:
        for i, row in enumerate(statuses):
            f.write(json.dumps({"prompt_id": f"p{i}", "audio": f"p{i}.wav", "audio_sha256": "0" * 64, "cut_s": 3.0,
                                "requested_cut_s": 3.0, "reference": None, "prompt_units": [1, 2], "seed": i,
                                "continuations": [[k] for k in range(len(row))]}) + "\n")
            for k, status in enumerate(row):
                value = float(k + 1) if status == "ok" else None
                s.write(json.dumps({"run": "run0", "prompt_id": f"p{i}", "sample": k, "text": f"text {i} {k}",
                                    "prompt_text": "a prompt", "units": [k], "scores": {"semantic_rating": value},
                                    "status": {"semantic_rating": status}}) + "\n")
    return config, ContinuationRun(run_root)


def test_pairs_are_refused_while_judge_errors_remain_and_unparsable_answers_are_counted_apart(tmp_path):
    from alignslm_eval.io.errors import UserError
    from alignslm_train.loop import stage_pairs

    statuses = [["ok", "ok", "ok"], ["ok", "error: HTTP 500 after 1 attempt(s)", "ok"], ["unparsable", "ok", "ok"]]
    config, run = _scored_round(tmp_path, statuses)
    with pytest.raises(UserError, match=r"round 1: scoring failed for 1 of 9 samples \(semantic_rating: 1 x error: "
                                        r"HTTP 500 after 1 attempt\(s\)\).*rerun the same command to retry only those"
                                        r".*--allow-unscored"):
        stage_pairs(config, 1, run)
    assert not (config.round_dir(1) / "pairs.jsonl").exists()
    config.allow_unscored = True
    pairs = stage_pairs(config, 1, run)
    report = json.loads((config.round_dir(1) / "pairs_report.json").read_text())
    assert report["unscored"] == {"semantic_rating": {"error: HTTP 500 after 1 attempt(s)": 1, "unparsable": 1}}
    assert report["failed"] == 1 and report["allow_unscored"] is True and report["samples"] == 9
    assert [p.prompt_id for p in pairs] == ["p0", "p1"]  # p2's best is 3 against 2: no sample rated <= 1


def test_a_judge_refusal_that_a_rerun_would_repeat_is_named_as_such(tmp_path):
    from alignslm_eval.io.errors import UserError
    from alignslm_train.loop import stage_pairs

    config, run = _scored_round(tmp_path, [["ok", "error: HTTP 400 (not retried): context too long", "ok"]])
    with pytest.raises(UserError, match="answers marked 'not retried' were refused by the judge and need the key or "
                                        "request fixed first"):
        stage_pairs(config, 1, run)


def test_unparsable_answers_alone_do_not_hold_the_pairs_back(tmp_path):
    from alignslm_train.loop import stage_pairs

    config, run = _scored_round(tmp_path, [["ok", "unparsable", "ok"], ["ok", "ok", "ok"]])
    assert len(stage_pairs(config, 1, run)) == 2
    report = json.loads((config.round_dir(1) / "pairs_report.json").read_text())
    assert report["failed"] == 0 and report["unscored"] == {"semantic_rating": {"unparsable": 1}}


@pytest.fixture(scope="module")
def few_prompts(tmp_path_factory, prompts):
    folder = tmp_path_factory.mktemp("few-prompts")
    for path in sorted(prompts.iterdir())[:8]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.slow
def test_judge_failures_hold_the_round_back_until_a_rerun_retries_exactly_those(demo, few_prompts, tmp_path, capsys):
    """The audit's case: one judge request in three fails (8 prompts x 3 samples); the round must not complete on
    the rest unless asked to, and a rerun must ask again for the failed samples only. The judge URL carries a
    credential, which no file may keep."""
    from tests.judge_server import hashed_score

    with JudgeServer(default=hashed_score(fail_one_in=3)) as server:
        url = server.base_url.replace("http://", "http://user:sk-train-secret@")

        def args(out, *extra):
            # Seed 1: with the demo's short continuations, one whose healthy samples still make a pair.
            return [*train_args(demo, few_prompts, out, server, "--rounds", "1", "--judge-max-retries", "0",
                                "--epochs", "2", "--seed", "1", *extra), "--judge-base-url", url]

        allowed = tmp_path / "allowed"
        assert train_main(args(allowed, "--allow-unscored")) == 0, capsys.readouterr().err
        record = json.loads((allowed / "round-1" / "COMPLETE.json").read_text())
        report = json.loads((allowed / "round-1" / "pairs_report.json").read_text())
        assert record["allow_unscored"] and record["samples"] == 24 and 0 < record["failed"] < 24
        assert report["unscored"]["semantic_rating"] == {"error: HTTP 500 after 1 attempt(s)": record["failed"]}

        out = tmp_path / "strict"
        capsys.readouterr()
        assert train_main(args(out)) == 2
        # One request per distinct (prompt, continuation) transcript pair: samples that read alike share it.
        rows = [json.loads(line) for line in open(out / "round-1" / "scores.jsonl")]
        failed = {(r["prompt_text"], r["text"]) for r in rows if r["status"]["semantic_rating"].startswith("error")}
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert (f"round 1: scoring failed for {record['failed']} of 24 samples" in last
                and "rerun the same command to retry only those" in last)
        assert not (out / "round-1" / "COMPLETE.json").exists() and not (out / "round-1" / "pairs.jsonl").exists()

        server.default = hashed_score()  # the judge is healthy again
        server.reset_counts()
        assert train_main(args(out)) == 0, capsys.readouterr().err
        assert server.total == len(failed) > 0  # exactly the failed samples were asked again
        assert json.loads((out / "round-1" / "COMPLETE.json").read_text())["failed"] == 0
    for folder in (allowed, out):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".jsonl"):
                assert "sk-train-secret" not in path.read_text(errors="replace"), path
