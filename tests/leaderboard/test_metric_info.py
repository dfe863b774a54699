"""What a column's metric is (direction, percent, range) comes from the results file's `metric_info`, else from the
registered scorer or task kind that defines the metric: a scorer's declared direction decides the best mark, files
written before metric_info was recorded still read, and a damaged metric_info is an error naming the field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from alignslm_eval.api.registry import SCORERS
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.scorer import ContinuationScorer, Score
from alignslm_eval.evaluate.generation import generation_metric_info
from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import Column, collect, load_results, registered_info
from alignslm_eval.leaderboard.render import build_table
from alignslm_tasks.continuation import ContinuationTask
from tests.leaderboard.factory import results_doc, task_entry, write

HESITATIONS = Column("speech", "hesitations")


class Hesitations(ContinuationScorer):
    """A plugin's scorer that no built-in table knows: hesitations per continuation, fewer is better."""

    metric = "hesitations"
    metric_info = MetricInfo("a count of hesitations", "lower", low=0.0)

    def score(self, items):
        return [Score(0.0) for _ in items]

    def describe(self) -> dict[str, Any]:
        return {"scorer": "hesitations"}


@pytest.fixture
def installed(monkeypatch):
    SCORERS.names()  # the built-in scorers first; the plugin's is one more, removed after the test
    monkeypatch.setitem(SCORERS._items, "hesitations", Hesitations)


def generation_entry(value: float, recorded: bool) -> dict[str, Any]:
    entry = task_entry(value, stderr=0.5, headline="hesitations", sha="prompts-v1",
                       breakdowns={"scored_fraction": {"hesitations": {"value": 1.0, "stderr": None, "n": 100}}})
    entry["protocol"].update(kind="continuation", settings={"scorers": ["hesitations"]})
    entry["pipeline"] = {"run_dir": "/runs/x", "sampling": {"temperature": 0.8}, "vocoder": {"name": "hifigan"}}
    if recorded:
        entry["metric_info"] = generation_metric_info(entry["result"], [Hesitations()], ContinuationTask)
    return entry


def two_runs(tmp_path, recorded: bool):
    for name, value in (("a", 2.0), ("b", 5.0)):
        write(tmp_path / name / "results_1.json", results_doc({"speech": generation_entry(value, recorded)},
                                                             model_path=f"/ckpt/model-{name}", weights=name * 64))
    rows = sorted(collect([tmp_path])[0], key=lambda r: r.name)
    return build_table(rows, columns=[HESITATIONS, Column("speech", "scored_fraction/hesitations")])


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded in the file", "from the registered scorer"])
def test_a_scorer_declaring_lower_is_better_marks_the_lowest_value(tmp_path, installed, recorded):
    table = two_runs(tmp_path, recorded)
    assert table.header[4:] == ["speech hesitations ↓", "speech scored_fraction: hesitations (%) ↑"]
    a, b = table.cells
    assert (a[4].text, b[4].text) == ("2 ± 0.5", "5 ± 0.5")
    assert a[4].best and not b[4].best


def test_a_recorded_file_needs_no_installed_scorer_and_an_old_one_does(tmp_path):
    table = two_runs(tmp_path / "new", recorded=True)
    assert table.header[4] == "speech hesitations ↓" and table.cells[0][4].best
    # Written before metric_info was recorded, and its scorer is not installed: nothing says which way is better.
    table = two_runs(tmp_path / "old", recorded=False)
    assert table.header[4] == "speech hesitations (direction unknown)"
    assert not any(line[4].best for line in table.cells)
    assert table.header[5] == "speech scored_fraction: hesitations (%) ↑"  # the continuation kind's own breakdown


def test_the_recorded_range_is_checked(tmp_path, installed):
    entry = generation_entry(12.0, recorded=True)
    entry["metric_info"]["hesitations"]["high"] = 10.0
    path = write(tmp_path / "results_r.json", results_doc({"speech": entry}))
    with pytest.raises(UserError, match=r"tasks\.speech\.result\.metrics\.hesitations\.value 12\.0 is outside "
                                        r"\[0, 10\], the range of a count of hesitations"):
        load_results(path)


@pytest.mark.parametrize("change, message", [
    ({"direction": "sideways"}, "metric_info.hesitations: direction 'sideways' is not one of higher, lower, neutral"),
    ({"percent": "yes"}, "metric_info.hesitations: percent is 'yes', not a bool"),
    ({"low": "0"}, "metric_info.hesitations: low is '0', not a number or null"),
    ({"low": 3.0, "high": 1.0}, "metric_info.hesitations: range low 3.0 is above high 1.0"),
])
def test_a_damaged_metric_info_names_the_field(tmp_path, change, message):
    entry = generation_entry(2.0, recorded=True)
    entry["metric_info"]["hesitations"].update(change)
    path = write(tmp_path / "results_r.json", results_doc({"speech": entry}))
    with pytest.raises(UserError, match=f"results_r.json: tasks.speech.{message}; re-run alignslm-eval"):
        load_results(path)


def test_metric_info_that_is_not_a_mapping_is_an_error(tmp_path):
    entry = generation_entry(2.0, recorded=True)
    entry["metric_info"] = ["lower"]
    path = write(tmp_path / "results_r.json", results_doc({"speech": entry}))
    with pytest.raises(UserError, match=r"tasks\.speech\.metric_info is not a dict of metric infos"):
        load_results(path)


def test_files_that_disagree_on_a_metric_cannot_share_its_column(tmp_path):
    higher = generation_entry(2.0, recorded=True)
    higher["metric_info"]["hesitations"]["direction"] = "higher"
    write(tmp_path / "a" / "results_1.json", results_doc({"speech": generation_entry(2.0, recorded=True)},
                                                         model_path="/ckpt/model-a", weights="a" * 64))
    write(tmp_path / "b" / "results_1.json", results_doc({"speech": higher}, model_path="/ckpt/model-b",
                                                         weights="b" * 64))
    rows, _ = collect([tmp_path])
    with pytest.raises(UserError, match=r"speech\.hesitations: the rows disagree on what the metric is") as error:
        build_table(rows, columns=[HESITATIONS])
    said = str(error.value)
    assert "model-a (a/results_1.json): direction lower, not a percentage" in said
    assert "model-b (b/results_1.json): direction higher, not a percentage" in said


def test_squim_mos_is_still_read_under_its_old_name():
    assert registered_info("mos") == registered_info("squim_mos") == SCORERS.get("squim_mos").metric_info
    assert registered_info("mos").direction == "higher" and math.isinf(registered_info("mos").high)


def test_the_task_kind_is_asked_first_then_the_scorers_then_any_kind():
    accuracy = registered_info("accuracy", "zerospeech_lexical")
    assert accuracy == registered_info("by_length", "zerospeech_lexical") == registered_info("accuracy")
    assert (accuracy.direction, accuracy.percent, accuracy.low, accuracy.high) == ("higher", True, 0.0, 1.0)
    assert registered_info("genppl", "continuation") == SCORERS.get("genppl").metric_info
    assert registered_info("scored_fraction").percent  # declared by the continuation kind alone
    assert registered_info("llm_judge") == SCORERS.get("judge_gpt4o").metric_info  # the registered judges' base
    assert registered_info("mystery") is None and registered_info("by_part", "no_such_kind") is not None


@pytest.mark.parametrize("info", [
    MetricInfo("a perplexity", "lower", low=0.0, low_open=True),
    MetricInfo.fraction("higher", percent=True),
    MetricInfo("a MOS estimate", "higher"),
    MetricInfo("a score"),
])
def test_metric_info_json_round_trips_as_strict_json(info):
    text = json.dumps(info.to_json(), allow_nan=False)  # no Infinity: an open end is null
    assert MetricInfo.from_json(json.loads(text)) == info
