"""The judge client against a fault-injecting loopback server (tests/judge_server.py): malformed bodies, resets and
trickled bytes are each one sample's error (retried, then recorded), never the batch's crash; nothing answered is
lost whatever ends a batch; the timeout bounds a whole attempt; at most `concurrency` requests are in flight;
credentials in the base URL are written nowhere."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest

from alignslm_eval.scoring.judge.scorer import GPT4oScore
from tests.judge_server import JudgeServer, answer, completion, fail, raw, reset, score, trickle
from tests.scoring.judge.loopback import KEY_ENV, SECRET, item, key, marked, options  # noqa: F401 (fixture)

MAX_RETRIES = 2  # 3 attempts in all
TIMEOUT_S = 0.5

pytestmark = pytest.mark.usefixtures("key")


def judge(server: JudgeServer, cache_dir: Path, cls: type[GPT4oScore] = GPT4oScore, **extra) -> GPT4oScore:
    return cls.from_options(options(server, cache_dir, **{"judge_concurrency": 16, "judge_timeout_s": TIMEOUT_S,
                                                          "judge_max_retries": MAX_RETRIES, **extra}))


def body_of(choices: object) -> str:
    return json.dumps({"id": "chatcmpl-x", "object": "chat.completion", "choices": choices})


# Every way a 200 response can fail to be a chat completion with a text answer, and the detail its status names.
MALFORMED = {
    "truncated": (raw('{"id": "chatcmpl-x", "choices": [{"message": {"content": "\\\\boxed{'),
                  "not JSON: application/json, "),
    "html": (raw("<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
             "not JSON: text/html, "),
    "message-null": (raw(body_of([{"index": 0, "message": None, "finish_reason": "stop"}])), "no message"),
    "choices-null": (raw(body_of(None)), "no choices"),
    "choices-missing": (raw(json.dumps({"id": "chatcmpl-x", "object": "chat.completion"})), "no choices"),
    "choices-empty": (raw(body_of([])), "no choices"),
    "content-number": (raw(body_of([{"index": 0, "message": {"role": "assistant", "content": 4}}])),
                       "message content is int, not text"),
    "reset": (reset(cut_after=25), "body cut off after 25 bytes, "),
}


def test_each_malformed_response_is_its_own_samples_error_and_a_rerun_asks_only_the_unanswered(tmp_path):
    """One batch holding every fault twice, failing for good and failing once before an answer; then a rerun."""
    # A null content is an answer with no text (a reasoning model out of tokens): unparsable, cached, not a fault.
    rules = {"#ok#": score(4), "#unparsable#": answer("a fine story, four out of five"),
             "#content-null#": raw(body_of([{"index": 0, "message": {"role": "assistant", "content": None}}]))}
    for name, (behaviour, _) in MALFORMED.items():
        rules[f"#always-{name}#"] = behaviour
        rules[f"#once-{name}#"] = replace(behaviour, times=1, text="Recovered. \\boxed{2}")
    rules["#once-trickle#"] = trickle(0.02, times=1, then="Recovered. \\boxed{2}")
    rules["#once-500#"] = fail(500, times=1, then="Recovered. \\boxed{2}")
    markers = list(rules)
    items = [marked(i, m) for i, m in enumerate(markers)]

    with JudgeServer(rules, default=answer("unexpected request \\boxed{1}")) as server:
        with judge(server, tmp_path / "cache") as scorer:
            scores = scorer.score(items)
        by_marker = dict(zip(markers, scores))
        assert (by_marker["#ok#"].value, by_marker["#ok#"].status) == (4.0, "ok")
        for marker in ("#unparsable#", "#content-null#"):
            assert (by_marker[marker].value, by_marker[marker].status) == (None, "unparsable")
            assert server.count(marker) == 1
        for name, (_, detail) in MALFORMED.items():
            s = by_marker[f"#always-{name}#"]
            assert s.value is None and s.status.startswith(f"error: malformed response ({detail}"), (name, s)
            assert s.status.endswith(f") after {MAX_RETRIES + 1} attempt(s)") and s.detail == {"attempts": 3}
            assert server.count(f"#always-{name}#") == MAX_RETRIES + 1, name
        for marker in (m for m in markers if m.startswith("#once-")):
            assert (by_marker[marker].value, by_marker[marker].status) == (2.0, "ok"), (marker, by_marker[marker])
            assert server.count(marker) == 2, marker
        assert server.count(None) == 0

        # The rerun sends exactly the requests with no cached answer: the permanent faults, each retried again.
        server.reset_counts()
        with judge(server, tmp_path / "cache") as scorer:
            again = scorer.score(items)
        always = [m for m in markers if m.startswith("#always-")]
        assert server.total == len(always) * (MAX_RETRIES + 1)
        assert all(server.count(m) == MAX_RETRIES + 1 for m in always)
        assert [(s.value, s.status, s.detail) for s in again] == [(s.value, s.status, s.detail) for s in scores]


class BuggyJudge(GPT4oScore):
    """A judge with a fault in its own request handling for marked samples, as a bug or Ctrl-C would strike."""

    raises: dict[str, BaseException] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.client._request

        def faulty_request(messages, abandoned):
            for marker, error in self.raises.items():
                if marker in messages[0]["content"]:
                    raise error
            return request(messages, abandoned)

        self.client._request = faulty_request


def test_an_unforeseen_exception_is_that_samples_error_not_the_batchs(tmp_path, monkeypatch):
    monkeypatch.setattr(BuggyJudge, "raises", {"#bug#": ZeroDivisionError(f"bad maths near {SECRET}")})
    with JudgeServer() as server:
        with judge(server, tmp_path / "cache", BuggyJudge) as scorer:
            scores = scorer.score([marked(0, "#fine#"), marked(1, "#bug#"), marked(2, "#fine-too#")])
    assert [s.value for s in scores] == [3.0, None, 3.0]
    # Not retried (a bug does not heal), named by type, and the message is redacted like any other.
    assert scores[1].status == "error: unexpected ZeroDivisionError (not retried): bad maths near ***"
    assert scores[1].detail == {"attempts": 1}


def test_answers_received_before_an_interrupt_are_cached(tmp_path, monkeypatch):
    """Ctrl-C (or any BaseException) in the middle of a batch: it propagates, and everything answered before it
    is in the cache, so the rerun asks only what was never answered."""
    monkeypatch.setattr(BuggyJudge, "raises", {"#interrupt#": KeyboardInterrupt()})
    markers = ["#a#", "#b#", "#c#", "#d#", "#interrupt#"]
    items = [marked(i, m) for i, m in enumerate(markers)]
    with JudgeServer() as server:
        # One worker: the samples are asked in order, so the first four are answered before the interrupt.
        with judge(server, tmp_path / "cache", BuggyJudge, judge_concurrency=1) as scorer:
            with pytest.raises(KeyboardInterrupt):
                scorer.score(items)
        assert server.total == 4
        server.reset_counts()
        with judge(server, tmp_path / "cache") as scorer:
            assert [s.value for s in scorer.score(items)] == [3.0] * 5
        assert server.total == 1 and server.count(None) == 1


def test_the_timeout_bounds_a_whole_attempt_against_a_trickling_server(tmp_path):
    interval_s = 0.05
    with JudgeServer({"#trickle#": trickle(interval_s), "#trickle-once#": trickle(interval_s, times=1)}) as server:
        body_bytes = len(json.dumps(completion({"messages": []}, "\\boxed{3}")))
        assert body_bytes * interval_s > 10 * TIMEOUT_S  # the whole trickle would take over 10x the timeout

        with judge(server, tmp_path / "cache", judge_max_retries=0) as scorer:
            start = time.monotonic()
            [s] = scorer.score([marked(0, "#trickle#")])
            elapsed = time.monotonic() - start
        assert (s.value, s.status) == (None, f"error: timed out after 1 attempt(s) of {TIMEOUT_S:g} s")
        assert TIMEOUT_S <= elapsed < 3 * TIMEOUT_S, elapsed
        # The abandoned request does not trickle on: the client hangs up and the server sees it soon.
        deadline = time.monotonic() + 5
        while server.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.in_flight == 0

        # Trickling once, then answering: the retry gets the answer.
        with judge(server, tmp_path / "cache", judge_max_retries=1) as scorer:
            start = time.monotonic()
            [s] = scorer.score([marked(1, "#trickle-once#")])
            elapsed = time.monotonic() - start
        assert (s.value, s.status) == (3.0, "ok") and server.count("#trickle-once#") == 2
        assert elapsed < 3 * TIMEOUT_S, elapsed


def test_credentials_in_the_base_url_are_sent_as_meant_and_written_nowhere(tmp_path, caplog):
    rules = {"#bad#": fail(400, message="bad request to {path} by {auth}"), "#down#": fail(503),
             "#html#": raw("<html>oops</html>", content_type="text/html")}
    with JudgeServer(rules) as server:
        port = server.base_url.split(":")[-1].split("/")[0]
        url = f"http://user:sk-secret1-userinfo@127.0.0.1:{port}/v1?api-key=sk-secret2-query&api-version=2024-06-01"
        secrets = ("sk-secret1-userinfo", "sk-secret2-query", SECRET)
        items = [marked(i, m) for i, m in enumerate(["#ok#", "#bad#", "#down#", "#html#"])]
        with caplog.at_level(logging.DEBUG):
            with judge(server, tmp_path / "cache", judge_base_url=url) as scorer:
                scores = scorer.score(items)
                description = json.dumps(scorer.describe())
        # The query goes with every request (a server may need ?api-version=); the user-info is not sent, so the
        # key goes as the bearer token rather than being replaced by Basic auth.
        assert server.queries == {"api-key=sk-secret2-query&api-version=2024-06-01"}
        assert server.auth_headers == {f"Bearer {SECRET}"}
    assert scores[0].status == "ok"
    assert scores[1].status == ("error: HTTP 400 (not retried): bad request to "
                                "/v1/chat/completions?api-key=***&api-version=2024-06-01 by Bearer ***")
    assert scores[2].status == f"error: HTTP 503 after {MAX_RETRIES + 1} attempt(s)"
    assert scores[3].status.startswith("error: malformed response (not JSON: text/html")
    assert json.loads(description)["base_url"] == f"http://127.0.0.1:{port}/v1?api-key=***&api-version=2024-06-01"
    assert f"user:password part is not sent; the judge gets the key in ${KEY_ENV}" in caplog.text
    assert "api-key=***" in caplog.text  # the HTTP library's request lines are redacted, not dropped
    written = "\n".join([description, caplog.text, json.dumps([s.to_json() for s in scores])])
    for secret in secrets:
        assert secret not in written, secret
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert not any(secret.encode() in path.read_bytes() for secret in secrets), path


def test_concurrency_is_bounded(key, tmp_path):
    with JudgeServer(latency_s=0.05) as server:
        with GPT4oScore.from_options(options(server, tmp_path / "c", judge_concurrency=3)) as scorer:
            scores = scorer.score([item(i, f"sample {i}") for i in range(12)])
        assert all(s.value == 3.0 for s in scores)
        assert 2 <= server.peak_in_flight <= 3
