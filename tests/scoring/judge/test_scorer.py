"""The LLM-judge scorers against a real loopback OpenAI-compatible server (tests/judge_server.py): every outcome
lands on its own sample, a rerun asks only what failed, the key is sent and written nowhere, the rendered prompt
reaches the endpoint, and unparsable answers are asked again only when asked for."""

from __future__ import annotations

import json
import logging
import random

import pytest

from alignslm_eval.api.registry import SCORERS
from alignslm_eval.api.scorer import Continuation, Score
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.judge.scorer import GPT4oScore, SemanticRating
from tests.judge_server import JudgeServer, answer, fail, hang, judge_server, score  # noqa: F401 (fixture)
from tests.scoring.judge.loopback import (  # noqa: F401 (fixture)
    KEY_ENV, MAX_RETRIES, SECRET, TIMEOUT_S, item, key, marked, options,
)


NORMAL = {"#n1#": 1, "#n2#": 2, "#n3#": 3, "#n4#": 4, "#n5#": 5, "#n45#": 4.5}


RULES = {
    **{marker: score(n) for marker, n in NORMAL.items()},
    "#unparsable#": answer("I would say it is fairly good, maybe a four."),
    "#range#": answer("Too good to be true: \\boxed{6}"),
    "#busy#": fail(429, times=1, then="Fine. \\boxed{2}"),
    "#down#": fail(500),
    "#hang#": hang(3.0),
}


def batch() -> list[Continuation]:
    texts = [*NORMAL, "#unparsable#", "#range#", "#busy#", "#down#", "#hang#"]
    random.Random(0).shuffle(texts)  # outcomes must not depend on where a sample sits in the batch
    items = [item(i, f"continuation {i} {marker}") for i, marker in enumerate(texts)]
    items.insert(3, item(99, None))
    items.insert(5, item(98, "a continuation with no prompt transcript", prompt_text=None))
    return items


def expected(it: Continuation) -> tuple:
    if it.text is None:
        return (None, "no transcript")
    if it.prompt_text is None:
        return (None, "no prompt transcript")
    marker = it.text.split()[-1]
    if marker in NORMAL:
        return (float(NORMAL[marker]), "ok")
    return {"#unparsable#": (None, "unparsable"), "#range#": (None, "unparsable"), "#busy#": (2.0, "ok"),
            "#down#": (None, f"error: HTTP 500 after {MAX_RETRIES + 1} attempt(s)"),
            "#hang#": (None, f"error: timed out after {MAX_RETRIES + 1} attempt(s) of {TIMEOUT_S:g} s")}[marker]


def test_one_batch_every_outcome_on_its_own_sample_and_rerun_asks_only_failures(judge_server, key, tmp_path):
    judge_server.rules.update(RULES)
    items = batch()
    with SCORERS.get("judge_gpt4o").from_options(options(judge_server, tmp_path / "cache")) as scorer:
        scores = scorer.score(items)

    assert len(scores) == len(items)
    assert [(s.value, s.status) for s in scores] == [expected(it) for it in items]
    by_marker = {it.text.split()[-1]: s for it, s in zip(items, scores) if it.text and it.prompt_text}
    assert by_marker["#unparsable#"].detail == {"answer": "I would say it is fairly good, maybe a four."}
    assert by_marker["#range#"].detail == {"answer": "Too good to be true: \\boxed{6}"}
    assert by_marker["#down#"].detail == {"attempts": MAX_RETRIES + 1}
    # Server-side attempts: one per normal sample, 429 once then success, 500 and hang on every attempt.
    assert all(judge_server.count(m) == 1 for m in [*NORMAL, "#unparsable#", "#range#"])
    assert judge_server.count("#busy#") == 2
    assert judge_server.count("#down#") == MAX_RETRIES + 1
    assert judge_server.count("#hang#") == MAX_RETRIES + 1
    assert judge_server.count(None) == 0
    # (No in-flight bound here: the server keeps counting hung requests the client already gave up on.)

    # Rerun with a fresh scorer over the same cache: only the two failures go out again.
    judge_server.reset_counts()
    with SCORERS.get("judge_gpt4o").from_options(options(judge_server, tmp_path / "cache")) as scorer:
        again = scorer.score(items)
    assert judge_server.total == judge_server.count("#down#") + judge_server.count("#hang#")
    assert judge_server.count("#down#") == MAX_RETRIES + 1
    assert [(s.value, s.status, s.detail) for s in again] == [(s.value, s.status, s.detail) for s in scores]

    # Once the endpoint recovers, the rerun fills in the failures and everything is cached.
    judge_server.rules["#down#"] = score(5)
    judge_server.rules["#hang#"] = score(1)
    judge_server.reset_counts()
    with SCORERS.get("judge_gpt4o").from_options(options(judge_server, tmp_path / "cache")) as scorer:
        healed = scorer.score(items)
        assert judge_server.total == 2
        judge_server.reset_counts()
        scorer.score(items)
        assert judge_server.total == 0
    assert by_value(items, healed, "#down#") == 5.0 and by_value(items, healed, "#hang#") == 1.0


def by_value(items: list[Continuation], scores: list[Score], marker: str) -> float | None:
    return next(s.value for it, s in zip(items, scores) if it.text and it.text.endswith(marker))


def test_key_is_sent_but_written_nowhere(judge_server, key, tmp_path, caplog):
    judge_server.rules.update({
        "#ok#": score(4),
        "#unparsable#": answer("no score here"),
        "#bad#": fail(400, message="invalid request from {auth}"),
        "#auth#": fail(401, message="Incorrect API key provided: {auth}"),
        "#down#": fail(503, message="overloaded, caller {auth}"),
    })
    items = [item(i, f"text {m}") for i, m in enumerate(["#ok#", "#unparsable#", "#bad#", "#auth#", "#down#"])]
    with caplog.at_level(logging.DEBUG):
        with SCORERS.get("judge_rating").from_options(options(judge_server, tmp_path / "cache")) as scorer:
            scores = scorer.score(items)
            description = json.dumps(scorer.describe())
            attributes = repr([vars(scorer), vars(scorer.client)])

    assert judge_server.auth_headers == {f"Bearer {SECRET}"}  # the endpoint did get it
    assert [s.status for s in scores][:2] == ["ok", "unparsable"]
    assert scores[2].status == "error: HTTP 400 (not retried): invalid request from Bearer ***"
    assert scores[3].status.startswith("error: HTTP 401 (not retried")
    assert scores[4].status == f"error: HTTP 503 after {MAX_RETRIES + 1} attempt(s)"
    cache_files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cache_files
    for path in cache_files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in description
    assert SECRET not in attributes
    assert SECRET not in json.dumps([s.to_json() for s in scores])
    assert SECRET not in caplog.text


def test_unset_key_for_local_endpoint_sends_empty(judge_server, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with SCORERS.get("judge_rating").from_options(options(judge_server, tmp_path / "c")) as scorer:
        assert [s.value for s in scorer.score([item(0, "anything")])] == [3.0]
    assert judge_server.auth_headers == {"Bearer EMPTY"}


def test_unset_key_for_default_openai_endpoint_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match=f"--judge-api-key-env {KEY_ENV}"):
        GPT4oScore.from_options({"judge_model": "gpt-4o", "judge_api_key_env": KEY_ENV})


@pytest.mark.parametrize("name", ["judge_gpt4o", "judge_rating"])
def test_missing_judge_model_is_a_user_error(name, key):
    for opts in ({}, {"judge_model": None}, {"judge_model": ""}):
        with pytest.raises(UserError, match="pass --judge-model NAME"):
            SCORERS.get(name).from_options(opts)


def test_registered_names_and_metrics():
    assert SCORERS.get("judge_gpt4o") is GPT4oScore and GPT4oScore.metric == "gpt4o_score"
    assert SCORERS.get("judge_rating") is SemanticRating and SemanticRating.metric == "semantic_rating"
    assert GPT4oScore.metric_info.direction == SemanticRating.metric_info.direction == "higher"


def test_rendered_prompt_carries_both_transcripts_to_the_endpoint(judge_server, key, tmp_path):
    it = item(0, "and then the dog ran home", prompt_text="once upon a time there was a dog")
    for name in ("judge_gpt4o", "judge_rating"):
        judge_server.reset_counts()
        with SCORERS.get(name).from_options(options(judge_server, tmp_path / name)) as scorer:
            messages = scorer.messages(it.prompt_text, it.text)
            scorer.score([it])
        assert len(messages) == 1 and messages[0]["role"] == "user"
        content = messages[0]["content"]
        assert "once upon a time there was a dog" in content and "and then the dog ran home" in content
        assert "{prompt}" not in content and "{continuation}" not in content and "\\boxed{N}" in content
        [body] = judge_server.bodies
        assert body["messages"] == messages
        assert body["model"] == "loopback-judge" and body["temperature"] == 0.0 and body["max_tokens"] == 256


def test_describe_names_what_decides_the_scores(judge_server, key, tmp_path):
    with GPT4oScore.from_options(options(judge_server, tmp_path / "c", judge_temperature=0.5,
                                         judge_max_tokens=64)) as scorer:
        d = scorer.describe()
    assert d["scorer"] == "judge_gpt4o" and d["metric"] == "gpt4o_score" and d["judge_model"] == "loopback-judge"
    assert d["base_url"] == judge_server.base_url
    assert d["prompt_template"] == "alignslm_eval/scoring/prompts/gpt4o_score.txt"
    assert len(d["prompt_sha256"]) == 64 and d["temperature"] == 0.5 and d["max_tokens"] == 64
    assert "\\boxed" in d["parse"] and "[1, 5]" in d["parse"]
    json.dumps(d)


def test_duplicate_transcripts_in_a_batch_are_asked_once(judge_server, key, tmp_path):
    judge_server.rules["#dup#"] = score(4)
    items = [item(i, "the same words #dup#") for i in range(5)]
    with GPT4oScore.from_options(options(judge_server, tmp_path / "c")) as scorer:
        assert [s.value for s in scorer.score(items)] == [4.0] * 5
    assert judge_server.count("#dup#") == 1


def test_retry_unparsable_asks_again_only_for_unparsable_answers(key, tmp_path):
    with JudgeServer({"#vague#": answer("quite good, a four maybe"), "#clear#": score(5)}) as server:
        items = [marked(0, "#vague#"), marked(1, "#clear#")]
        with GPT4oScore.from_options(options(server, tmp_path / "cache")) as scorer:
            assert [(s.value, s.status) for s in scorer.score(items)] == [(None, "unparsable"), (5.0, "ok")]
            plain = (scorer.describe(), scorer.cache_key(scorer.messages("a", "b")))
            assert scorer.is_final(Score(None, "unparsable"))

        server.rules["#vague#"] = score(4)
        server.reset_counts()
        # An unparsable answer is a real answer: final.
        with GPT4oScore.from_options(options(server, tmp_path / "cache")) as scorer:
            assert [s.status for s in scorer.score(items)] == ["unparsable", "ok"]
        assert server.total == 0

        with GPT4oScore.from_options(options(server, tmp_path / "cache", judge_retry_unparsable=True)) as scorer:
            assert [(s.value, s.status) for s in scorer.score(items)] == [(4.0, "ok"), (5.0, "ok")]
            # Same description and cache key: the flag decides what is asked, not what an answer means.
            assert (scorer.describe(), scorer.cache_key(scorer.messages("a", "b"))) == plain
            assert not scorer.is_final(Score(None, "unparsable"))
            assert scorer.is_final(Score(4.0, "ok"))
            assert not scorer.is_final(Score(None, "error: HTTP 500 after 3 attempt(s)"))
        assert server.total == 1 and server.count("#vague#") == 1

        # The new answer replaced the cached one.
        server.reset_counts()
        with GPT4oScore.from_options(options(server, tmp_path / "cache")) as scorer:
            assert [s.value for s in scorer.score(items)] == [4.0, 5.0]
        assert server.total == 0
