"""gpt4o_score end to end through `alignslm-eval` against the loopback judge, one server behaviour per sample:
a normal answer, an unparsable one, a 429 then success, five 500s then success, and a hang past --judge-timeout
then success. Each outcome must land on its own sample, a second identical run must ask the judge nothing, and a
third with --judge-retry-unparsable must ask again for the unparsable sample only."""

from __future__ import annotations

import json

import pytest

from alignslm_eval.asr.sphinx import PocketSphinxASR
from alignslm_eval.io.audio import load_audio
from alignslm_eval.cli.eval import main
from alignslm_eval.components import PipelineOptions
from tests.benchmark_fixtures import make_model_dir, make_prompts
from tests.judge_server import JudgeServer, Behaviour, answer, fail, hang, score

KEY_ENV = "ALIGNSLM_TEST_JUDGE_KEY"
SECRET = "sk-test-judge-cli-DO-NOT-LEAK"
UNPARSABLE = "I would say it is fairly good, maybe a four."

# The server targets samples by prompt: each judge request quotes its prompt's transcript between markers (the
# template below), and the transcripts of five different utterances differ, whatever the tiny model says after them.
TEMPLATE = "PROMPT<<{prompt}>> CONTINUATION<<{continuation}>> Rate it 1-5 as \\boxed{N}."
BEHAVIOURS: list[Behaviour] = [
    score(4),
    answer(UNPARSABLE),
    fail(429, times=1, then="Fine after a rate limit. \\boxed{2}"),
    fail(500, times=5, then="Back up. \\boxed{5}"),
    hang(3.0, times=1, then="Late but fine. \\boxed{1}"),
]
# prompt id -> (value, status, requests the server should see)
EXPECTED = {
    "p0": (4.0, "ok", 1),
    "p1": (None, "unparsable", 1),
    "p2": (2.0, "ok", 2),
    "p3": (5.0, "ok", 6),
    "p4": (1.0, "ok", 2),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("judge_cli")
    model = make_model_dir(SHARED_DATA, root / "model")
    prompts = make_prompts(SHARED_DATA, root / "data" / "prompts", count=len(EXPECTED))
    (root / "judge.txt").write_text(TEMPLATE)
    # The prompt transcripts the pipeline will send: the first 3 s of each prompt through the same offline ASR.
    asr = PocketSphinxASR()
    transcripts = {f"p{i}": asr.transcribe([load_audio(prompts / f"p{i}.wav", 16000)[:48000]])[0]
                   for i in range(len(EXPECTED))}
    assert len(set(transcripts.values())) == len(EXPECTED) and all(transcripts.values()), transcripts
    return root, model, transcripts


def test_every_judge_outcome_lands_on_its_own_sample(setup, tmp_path, capsys, monkeypatch):
    root, model, transcripts = setup
    markers = {pid: f"PROMPT<<{text}>>" for pid, text in transcripts.items()}
    rules = {markers[pid]: behaviour for pid, behaviour in zip(sorted(EXPECTED), BEHAVIOURS)}
    monkeypatch.setenv(KEY_ENV, SECRET)
    # The CLI has no backoff flag; shorten the wait between retries so five 500s take milliseconds, not 31 s.
    options = PipelineOptions.scorer_options
    monkeypatch.setattr(PipelineOptions, "scorer_options",
                        lambda self, device="cpu": {**options(self, device), "judge_backoff_s": 0.01})
    with JudgeServer(rules, default=answer("unexpected request: no marker \\boxed{3}")) as server:
        args = ["--model", str(model), "--tasks", "gpt4o_score", "--data-root", str(root / "data"),
                "--judge-prompt", str(root / "judge.txt"),
                "--output-path", str(tmp_path / "runs"), "--set", "gpt4o_score.max_new_tokens=40",
                "--judge-model", "judge-test", "--judge-base-url", server.base_url, "--judge-api-key-env", KEY_ENV,
                "--judge-max-retries", "5", "--judge-timeout", "1", "--log-samples"]
        assert main(args) == 0, capsys.readouterr().err

        results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
        entry = results["tasks"]["gpt4o_score"]
        rows = {r["prompt_id"]: r for r in map(json.loads, open(entry["files"]["samples"]))}
        assert set(rows) == set(EXPECTED)
        for pid, (value, status, requests) in EXPECTED.items():
            row = rows[pid]
            assert row["prompt_text"] == transcripts[pid] and row["text"] is not None, pid  # "" is still judged
            got = row["scores"]["gpt4o_score"]
            assert (got["value"], got["status"]) == (value, status), (pid, got)
            assert server.count(markers[pid]) == requests, (pid, markers[pid])
        assert rows["p1"]["scores"]["gpt4o_score"]["detail"]["answer"] == UNPARSABLE
        assert rows["p4"]["scores"]["gpt4o_score"]["detail"]["answer"] == "Late but fine. \\boxed{1}"
        assert server.count(None) == 0
        sent = server.total
        assert sent == sum(n for _, _, n in EXPECTED.values())
        metric = entry["result"]["metrics"]["gpt4o_score"]
        assert metric["n"] == 4 and metric["value"] == pytest.approx((4 + 2 + 5 + 1) / 4)
        assert entry["unscored"] == {"gpt4o_score": {"unparsable": 1}}

        # A second identical run re-asks nothing, not even the unparsable sample, and records the same outcomes.
        assert main(args) == 0, capsys.readouterr().err
        assert server.total == sent
        again = {r["prompt_id"]: r for r in map(json.loads, open(entry["files"]["samples"]))}
        assert {pid: r["scores"] for pid, r in again.items()} == {pid: r["scores"] for pid, r in rows.items()}

        # --judge-retry-unparsable asks again for the unparsable sample only, and its new answer stands.
        server.rules[markers["p1"]] = score(3)
        assert main([*args, "--judge-retry-unparsable"]) == 0, capsys.readouterr().err
        assert server.total == sent + 1 and server.count(markers["p1"]) == 2
        newest = max((tmp_path / "runs" / "model").glob("results_*.json"), key=lambda p: p.stat().st_mtime_ns)
        entry = json.loads(newest.read_text())["tasks"]["gpt4o_score"]
        retried = {r["prompt_id"]: r for r in map(json.loads, open(entry["files"]["samples"]))}
        got = retried["p1"]["scores"]["gpt4o_score"]
        assert (got["value"], got["status"]) == (3.0, "ok")
        assert {pid: r["scores"] for pid, r in retried.items() if pid != "p1"} == {
            pid: r["scores"] for pid, r in rows.items() if pid != "p1"}
        assert entry["result"]["metrics"]["gpt4o_score"]["n"] == 5 and not entry["unscored"]
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()
