"""Judge prompt templates: filled in one pass, read from a plain file or a slamkit judge config, and a template
without both slots or with a bad config is a one-line error naming the file."""

from __future__ import annotations

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.judge.scorer import GPT4oScore
from alignslm_eval.scoring.judge.templates import render_prompt
from tests.judge_server import answer, judge_server  # noqa: F401 (fixture)
from tests.scoring.judge.loopback import item, key, options  # noqa: F401 (fixture)


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
