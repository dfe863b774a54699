"""gpt4o_score end to end through `alignslm-eval` against the loopback judge, one server behaviour per sample:
a normal answer, an unparsable one, a 429 then success, five 500s then success, and a hang past --judge-timeout
then success. Each outcome must land on its own sample, and a second identical run must ask the judge nothing."""

from __future__ import annotations

import json

import pytest

import alignslm_eval.cli as cli
from alignslm_eval.cli import main
from tests.benchmark_fixtures import make_model_dir, make_prompts
from tests.judge_server import JudgeServer, answer, fail, hang, score

KEY_ENV = "ALIGNSLM_TEST_JUDGE_KEY"
SECRET = "sk-test-judge-cli-DO-NOT-LEAK"
UNPARSABLE = "I would say it is fairly good, maybe a four."

# Each prompt's reference transcript (from alignment.ctm) is one marker word, so the judge request of that prompt's
# continuation carries the marker whatever the tiny model says: the server targets samples by prompt.
RULES = {
    "#normal#": score(4),
    "#unparsable#": answer(UNPARSABLE),
    "#busy#": fail(429, times=1, then="Fine after a rate limit. \\boxed{2}"),
    "#down#": fail(500, times=5, then="Back up. \\boxed{5}"),
    "#slow#": hang(3.0, times=1, then="Late but fine. \\boxed{1}"),
}
MARKERS = list(RULES)
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
    prompts = make_prompts(SHARED_DATA, root / "data" / "prompts", count=len(MARKERS))
    # One word per prompt, ending at 3 s: the pipeline cuts there and uses the word as the prompt's transcript.
    (prompts / "alignment.ctm").write_text(
        "".join(f"p{i} 1 0.50 2.50 {marker}\n" for i, marker in enumerate(MARKERS)))
    return root, model


def test_every_judge_outcome_lands_on_its_own_sample(setup, tmp_path, capsys, monkeypatch):
    root, model = setup
    monkeypatch.setenv(KEY_ENV, SECRET)
    # The CLI has no backoff flag; shorten the wait between retries so five 500s take milliseconds, not 31 s.
    options = cli.scorer_options
    monkeypatch.setattr(cli, "scorer_options", lambda args: {**options(args), "judge_backoff_s": 0.01})
    with JudgeServer(RULES, default=answer("unexpected request: no marker \\boxed{3}")) as server:
        args = ["--model", str(model), "--tasks", "gpt4o_score", "--data-root", str(root / "data"),
                "--output-path", str(tmp_path / "runs"), "--set", "gpt4o_score.max_new_tokens=40",
                "--judge-model", "judge-test", "--judge-base-url", server.base_url, "--judge-api-key-env", KEY_ENV,
                "--judge-max-retries", "5", "--judge-timeout", "1", "--log-samples"]
        assert main(args) == 0, capsys.readouterr().err

        results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
        entry = results["tasks"]["gpt4o_score"]
        rows = {r["prompt_id"]: r for r in map(json.loads, open(entry["files"]["samples"]))}
        assert set(rows) == set(EXPECTED)
        for pid, marker in zip(sorted(EXPECTED), MARKERS):
            value, status, requests = EXPECTED[pid]
            row = rows[pid]
            assert row["prompt_text"] == marker and row["text"] is not None, pid  # "" is still judged
            got = row["scores"]["gpt4o_score"]
            assert (got["value"], got["status"]) == (value, status), (pid, got)
            assert server.count(marker) == requests, (pid, marker)
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
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()
