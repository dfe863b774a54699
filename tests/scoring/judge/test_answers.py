"""Reading a score from a judge's answer: the last \\boxed{N}, or the last match of another answer pattern; a bad
pattern is a one-line error; cached answers are read again under a new pattern without asking again."""

from __future__ import annotations

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.judge.answers import compile_answer_pattern, parse_score
from alignslm_eval.scoring.judge.scorer import GPT4oScore
from tests.judge_server import answer, judge_server  # noqa: F401 (fixture)
from tests.scoring.judge.loopback import item, key, options  # noqa: F401 (fixture)


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
