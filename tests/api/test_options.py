"""A setting is declared once, as a settings dataclass field: these tests add one and find it everywhere."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

import alignslm_eval.cli.eval as eval_cli
import alignslm_train.cli as train_cli
from alignslm_eval.api.options import Options, add_options, from_namespace, option
from alignslm_eval.components import PipelineOptions
from alignslm_eval.io.errors import ArgumentParser, UserError
from alignslm_train.config import AlignConfig


@dataclass
class PipelineWithANewSetting(PipelineOptions):
    judge_top_p: float = option(1.0, must=(lambda v: 0 < v <= 1, "in (0, 1]"),
                                help="nucleus sampling of the judge's answer (a setting added by this test)")


@dataclass
class AlignWithANewSetting(AlignConfig):
    min_pair_margin: float = option(0.0, section="pairs", must=(lambda v: v >= 0, "0 or more"),
                                    help="smallest chosen-rejected score gap of a pair (added by this test)")


def test_a_new_eval_setting_is_a_flag_validated_documented_and_recorded(demo, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(eval_cli, "PipelineOptions", PipelineWithANewSetting)
    with pytest.raises(SystemExit):
        eval_cli.run_parser().parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "--judge-top-p" in help_text and "nucleus sampling of the judge's answer" in help_text
    assert "(default: 1.0)" in help_text

    common = ["--model", "demo", "--tasks", "swuggy", "--limit", "2", "--cache-dir", str(demo.root.parent.parent),
              "--output-path", str(tmp_path / "runs")]
    assert eval_cli.main([*common, "--judge-top-p", "1.5"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "alignslm-eval: error: --judge-top-p 1.5: must be in (0, 1]"]

    assert eval_cli.main([*common, "--judge-top-p", "0.9"]) == 0
    results = json.loads(next((tmp_path / "runs" / "demo" / "limit-2").glob("results_*.json")).read_text())
    assert results["settings"]["judge_top_p"] == 0.9
    assert results["settings"]["limit"] == 2 and results["settings"]["model"] == "demo"


def test_a_new_training_setting_is_a_flag_validated_and_in_its_config_json_section(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_cli, "AlignConfig", AlignWithANewSetting)
    (tmp_path / "prompts").mkdir()
    argv = ["--model", "m", "--prompts", str(tmp_path / "prompts"), "--output-dir", str(tmp_path / "out"),
            "--judge-model", "j"]
    with pytest.raises(SystemExit):
        train_cli.parser().parse_args(["--help"])
    assert "--min-pair-margin" in capsys.readouterr().out
    with pytest.raises(UserError, match=r"^--min-pair-margin -1.0: must be 0 or more$"):
        train_cli.options_of(train_cli.parser().parse_args([*argv, "--min-pair-margin", "-1"]))
    sections = train_cli._result_settings(*train_cli.options_of(
        train_cli.parser().parse_args([*argv, "--min-pair-margin", "0.5"])))
    assert sections["pairs"]["min_pair_margin"] == 0.5


@dataclass
class Example(Options):
    name: str = option(help="required: no default")
    count: int = option(3, must=(lambda v: v >= 1, "at least 1"), help="a count")
    ratio: Optional[float] = option(None, must=(lambda v: 0 <= v <= 1, "in [0, 1]"), help="unset means no ratio")
    path: Path = option(Path("out"), help="a path")
    names: list[str] = option(default_factory=list, flag="--add", metavar="NAME", help="given once per name")
    switch: bool = option(False, help="a switch")
    level: str = option("low", choices=("low", "high"), help="one of two")


def _parse(argv):
    p = ArgumentParser(prog="example")
    add_options(p, Example)
    return from_namespace(Example, p.parse_args(argv))


def test_flags_types_defaults_and_recording_follow_the_fields():
    made = _parse(["--name", "x", "--add", "a", "--add", "b", "--switch", "--path", "p/q"])
    assert made == Example(name="x", names=["a", "b"], switch=True, path=Path("p/q"))
    assert made.recorded() == {"name": "x", "count": 3, "ratio": None, "path": "p/q", "names": ["a", "b"],
                               "switch": True, "level": "low"}
    assert _parse(["--name", "x"]).names == []  # each parse gets its own default list


@pytest.mark.parametrize("argv, message", [
    (["--count", "0"], "--count 0: must be at least 1"),
    (["--ratio", "nan"], "--ratio nan: must be in [0, 1]"),
])
def test_a_value_breaking_its_rule_is_a_one_line_error_naming_the_flag(argv, message):
    with pytest.raises(UserError) as e:
        _parse(["--name", "x", *argv])
    assert str(e.value) == message


def test_library_code_gets_the_same_checks_as_the_command_line():
    with pytest.raises(UserError, match="--level medium: must be one of low, high"):
        Example(name="x", level="medium")
    with pytest.raises(UserError, match="--judge-concurrency 0: must be at least 1"):
        PipelineOptions(judge_concurrency=0)


def test_a_missing_required_flag_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        _parse([])
    assert e.value.code == 2 and "--name" in capsys.readouterr().err
