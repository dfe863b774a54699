"""The LLM-judge scorers against a real loopback OpenAI-compatible server (tests/judge_server.py)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from alignslm_eval.api.registry import SCORERS
from alignslm_eval.api.scorer import Continuation, Score
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.judge import (
    GPT4oScore,
    RetryPolicy,
    SemanticRating,
    compile_answer_pattern,
    parse_score,
    render_prompt,
)
from tests.judge_server import JudgeServer, answer, fail, hang, judge_server, score  # noqa: F401 (fixture)

KEY_ENV = "ALIGNSLM_TEST_JUDGE_KEY"
SECRET = "sk-test-0123456789-DO-NOT-LEAK"
MAX_RETRIES = 4  # 5 attempts in all
TIMEOUT_S = 0.3


@pytest.fixture
def key(monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def options(server: JudgeServer, cache_dir: Path, **extra) -> dict:
    return {"judge_model": "loopback-judge", "judge_base_url": server.base_url, "judge_api_key_env": KEY_ENV,
            "judge_concurrency": 4, "judge_timeout_s": TIMEOUT_S, "judge_max_retries": MAX_RETRIES,
            "judge_backoff_s": 0.01, "judge_cache_dir": str(cache_dir), **extra}


def item(i: int, text: str | None, prompt_text: str | None = "the prompt of the story") -> Continuation:
    return Continuation(prompt_id=f"p{i}", sample=0, units=[1, 2, 3], prompt_text=prompt_text, text=text)


# -- one batch, every behaviour ---------------------------------------------------------------------------------------

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
            attributes = repr(vars(scorer))

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
    assert GPT4oScore.direction == SemanticRating.direction == "higher"


# -- prompts --------------------------------------------------------------------------------------------------------


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


def test_render_is_single_pass():
    out = render_prompt("P={prompt} C={continuation} \\boxed{N}", "says {continuation} literally", "x {prompt}")
    assert out == "P=says {continuation} literally C=x {prompt} \\boxed{N}"


def test_custom_prompt_file(judge_server, key, tmp_path):
    template = tmp_path / "paper.txt"
    template.write_text("Prompt: {prompt}\nContinuation: {continuation}\nAnswer \\boxed{N}.")
    base = options(judge_server, tmp_path / "cache")
    with GPT4oScore.from_options(base) as builtin:
        builtin.score([item(0, "same text")])
        builtin_sha = builtin.describe()["prompt_sha256"]
    with GPT4oScore.from_options({**base, "judge_prompt": str(template)}) as custom:
        d = custom.describe()
        assert d["prompt_template"] == str(template) and d["prompt_template_builtin"] is False
        assert d["prompt_sha256"] != builtin_sha
        judge_server.reset_counts()
        custom.score([item(0, "same text")])
        assert judge_server.total == 1  # a new template is a new cache key
        assert judge_server.bodies[0]["messages"][0]["content"].startswith("Prompt: the prompt of the story\n")

    template.write_text("Only {prompt} here")
    with pytest.raises(UserError, match=r"--judge-prompt .*paper.txt.*\{continuation\} or \[generated_audio_transcription\]"):
        GPT4oScore.from_options({**base, "judge_prompt": str(template)})
    with pytest.raises(UserError, match="--judge-prompt .*missing.txt"):
        GPT4oScore.from_options({**base, "judge_prompt": str(tmp_path / "missing.txt")})


# A judge config in the shape of slamkit's config/metric/llm_as_judge.yaml (its own keys, its bracket placeholders,
# its "$\\boxed{x}$" answer format); the wording here is this test's.
SLAMKIT_CONFIG = r"""
llm_name_or_path: gpt-4o
whisper_model: openai/whisper-large-v3-turbo
prompt_length: 3
instruction: "Rate this speech continuation.\nPrompt: \"[prompt_audio_transcription]\"\nContinuation: \"[generated_audio_transcription]\"\nEnd with: The final answer is $\\boxed{x}$"
"""


def test_slamkit_judge_config_as_prompt(judge_server, key, tmp_path):
    config = tmp_path / "llm_as_judge.yaml"
    config.write_text(SLAMKIT_CONFIG)
    judge_server.rules["#cfg#"] = answer("Coherent enough. The final answer is $\\boxed{4}$")
    with GPT4oScore.from_options({**options(judge_server, tmp_path / "c"), "judge_prompt": str(config)}) as scorer:
        [s] = scorer.score([item(0, "it ran home #cfg#", prompt_text="the dog {continuation}")])
        assert (s.value, s.status) == (4.0, "ok")
        assert scorer.describe()["prompt_template"] == str(config)
    [body] = judge_server.bodies
    assert body["messages"][0]["content"] == (
        'Rate this speech continuation.\nPrompt: "the dog {continuation}"\nContinuation: "it ran home #cfg#"\n'
        "End with: The final answer is $\\boxed{x}$")


@pytest.mark.parametrize("text,error", [
    ("instruction: [1, 2]\n", "needs a text field 'instruction'"),
    ("whisper_model: x\n", "needs a text field 'instruction'"),
    ("instruction: 'a: b\n", "not valid YAML"),
    ("instruction: Prompt [prompt_audio_transcription] only\n", r"\{continuation\} or \[generated_audio_transcription\]"),
])
def test_bad_yaml_templates_name_the_file_and_field(judge_server, key, tmp_path, text, error):
    config = tmp_path / "judge.yml"
    config.write_text(text)
    with pytest.raises(UserError, match=rf"--judge-prompt .*judge.yml: .*{error}") as e:
        GPT4oScore.from_options({**options(judge_server, tmp_path / "c"), "judge_prompt": str(config)})
    assert "\n" not in str(e.value)


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


# -- parsing, cache keys, retry policy ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("Good continuation. \\boxed{4}", 4.0),
    ("\\boxed{ 5 }", 5.0),
    ("between \\boxed{3.5}", 3.5),
    ("first \\boxed{2}, on reflection \\boxed{5}", 5.0),
    ("draft \\boxed{4}, final \\boxed{four}", None),  # the last box decides, even when it is unreadable
    ("\\boxed{6}", None),
    ("\\boxed{0}", None),
    ("\\boxed{-3}", None),
    ("\\boxed{4/5}", None),
    ("Score: 4", None),
    ("", None),
    (None, None),
])
def test_parse_last_boxed(text, value):
    assert parse_score(text) == value


RATE_AS = r"I would rate the score as\s*(\S+)"


@pytest.mark.parametrize("text,value", [
    ("It drifts off topic. I would rate the score as 2", 2.0),
    ("I would rate the score as 1 at first; I would rate the score as 4.", None),  # last match, "4." is no number
    ("I would rate the score as 1 at first; I would rate the score as 4", 4.0),
    ("I would rate the score as 7", None),
    ("\\boxed{4}", None),  # another pattern's format is not this pattern's score
])
def test_parse_with_another_answer_pattern(text, value):
    assert parse_score(text, compile_answer_pattern(RATE_AS)) == value


def test_bad_answer_patterns_are_one_line_errors():
    with pytest.raises(UserError, match=r"--judge-answer-pattern 'score: \(\\d': not a valid regular expression \(missing \)"):
        compile_answer_pattern(r"score: (\d")
    with pytest.raises(UserError, match=r"--judge-answer-pattern 'score: \\d': has no group; capture the score in parentheses"):
        compile_answer_pattern(r"score: \d")


def test_answer_pattern_rereads_cached_answers(judge_server, key, tmp_path):
    judge_server.rules["#rate#"] = answer("Relevant but flat. I would rate the score as 3")
    base = options(judge_server, tmp_path / "cache")
    with GPT4oScore.from_options(base) as boxed:
        [s] = boxed.score([item(0, "continuation #rate#")])
        assert (s.value, s.status) == (None, "unparsable")
        assert "\\boxed" in boxed.describe()["parse"]
    judge_server.reset_counts()
    with GPT4oScore.from_options({**base, "judge_answer_pattern": RATE_AS}) as rate_as:
        [s] = rate_as.score([item(0, "continuation #rate#")])
        assert (s.value, s.status) == (3.0, "ok")
        assert RATE_AS in rate_as.describe()["parse"]  # results files say how the score was read
    assert judge_server.total == 0  # the answer was cached before parsing: nothing is asked again
    with pytest.raises(UserError, match="--judge-answer-pattern"):
        GPT4oScore.from_options({**base, "judge_answer_pattern": "no group"})


def test_cache_key_covers_model_url_settings_and_prompt(judge_server, key, tmp_path):
    def key_of(**extra) -> str:
        with GPT4oScore.from_options(options(judge_server, tmp_path / "c", **extra)) as s:
            return s.cache_key(s.messages("a prompt", "a continuation"))

    base = key_of()
    assert key_of() == base
    assert key_of(judge_model="other") != base
    assert key_of(judge_base_url="http://127.0.0.1:1/v1") != base
    assert key_of(judge_temperature=0.7) != base
    assert key_of(judge_max_tokens=32) != base
    with GPT4oScore.from_options(options(judge_server, tmp_path / "c")) as s:
        assert s.cache_key(s.messages("a prompt", "another continuation")) != base
    # Transport settings do not change answers, so they do not change keys.
    assert key_of(judge_concurrency=1, judge_timeout_s=5) == base


def test_cache_can_be_switched_off_and_defaults_under_alignslm_cache(judge_server, key, tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNSLM_CACHE", str(tmp_path / "home-cache"))
    opts = options(judge_server, tmp_path)
    del opts["judge_cache_dir"]
    with GPT4oScore.from_options(opts) as scorer:
        scorer.score([item(0, "x")])
    assert (tmp_path / "home-cache" / "judge" / "answers.sqlite").is_file()
    judge_server.reset_counts()
    with GPT4oScore.from_options({**opts, "judge_cache": False}) as scorer:
        scorer.score([item(0, "x")])
        scorer.score([item(0, "x")])
    assert judge_server.total == 2


def test_duplicate_transcripts_in_a_batch_are_asked_once(judge_server, key, tmp_path):
    judge_server.rules["#dup#"] = score(4)
    items = [item(i, "the same words #dup#") for i in range(5)]
    with GPT4oScore.from_options(options(judge_server, tmp_path / "c")) as scorer:
        assert [s.value for s in scorer.score(items)] == [4.0] * 5
    assert judge_server.count("#dup#") == 1


def test_concurrency_is_bounded(key, tmp_path):
    with JudgeServer(latency_s=0.05) as server:
        with GPT4oScore.from_options(options(server, tmp_path / "c", judge_concurrency=3)) as scorer:
            scores = scorer.score([item(i, f"sample {i}") for i in range(12)])
        assert all(s.value == 3.0 for s in scores)
        assert 2 <= server.peak_in_flight <= 3


def test_retry_policy():
    policy = RetryPolicy(max_retries=5, backoff_s=1.0, backoff_max_s=8.0)
    for status in (408, 429, 500, 502, 503, 504):
        assert policy.is_retryable_status(status)
    for status in (400, 401, 403, 404, 409, 413, 422):
        assert not policy.is_retryable_status(status)
    delays = [policy.delay(r, "k") for r in range(6)]
    for r, d in enumerate(delays):
        base = min(2 ** r, 8.0)
        assert base <= d <= base * 1.1
    assert delays == [policy.delay(r, "k") for r in range(6)]  # seeded: reproducible
    assert policy.delay(0, "k") != policy.delay(0, "other key")  # but not in lockstep across requests
    assert 5.0 <= policy.delay(0, "k", retry_after=5.0) <= 5.5
    assert policy.delay(0, "k", retry_after=100.0) <= 8.0 * 1.1  # a server's Retry-After is capped too

