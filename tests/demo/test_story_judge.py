"""The story world's rule judge: its rubric, and the OpenAI-compatible server the judge scorer talks to."""

from __future__ import annotations

from alignslm_eval.demo.story_judge import MODEL_NAME, StoryJudgeServer, answer, rate
from alignslm_eval.demo.story_world import JUDGE_TEMPLATE, read_grammar
from alignslm_eval.scoring.judge.templates import render_prompt

OPENING = "one morning the little dog went to the river"


def test_the_rules_add_one_point_each():
    grammar = read_grammar()
    assert rate(grammar, OPENING, "it caught a big fish and went home happy") == (5, ["pronoun", "action", "ending",
                                                                                        "exact"])
    assert rate(grammar, OPENING, "it caught a big fish and went home happy the")[0] == 4  # not exact
    assert rate(grammar, OPENING, "she caught a big fish and went home happy")[0] == 3  # wrong pronoun
    assert rate(grammar, OPENING, "it bought warm bread and went home happy")[0] == 3  # the bakery's action
    assert rate(grammar, OPENING, "") == (1, [])
    assert rate(grammar, "one morning went", "it caught a big fish")[0] == 1  # no agent or place heard


def test_an_answer_ends_with_the_boxed_rating_and_a_request_without_markers_gets_none():
    content = render_prompt(JUDGE_TEMPLATE, OPENING, "it watched the boats and stayed until dark")
    assert answer(read_grammar(), content).endswith("\\boxed{5}")
    assert "boxed" not in answer(read_grammar(), "rate this")


def test_the_server_answers_the_openai_client():
    from openai import OpenAI

    with StoryJudgeServer() as judge:
        client = OpenAI(base_url=judge.base_url, api_key="x", max_retries=0)
        content = render_prompt(JUDGE_TEMPLATE, OPENING, "it caught a big fish")
        reply = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": content}])
        assert reply.choices[0].message.content.endswith("\\boxed{3}")
        assert [m.id for m in client.models.list()] == [MODEL_NAME]
        assert judge.requests == 1
