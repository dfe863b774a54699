"""Plots from hand-made eval_log.jsonl / scores.jsonl and a leaderboard: plotted data, valid PNG and SVG files."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import Column, Measurement, Row
from alignslm_eval.leaderboard.plots import (
    leaderboard_figure,
    read_eval_log,
    read_scores,
    save_figure,
    scores_figure,
    training_figure,
)
from alignslm_eval.leaderboard.render import build_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


EVAL_LOG = [
    {"step": 200, "task": "sblimp", "metric": "accuracy", "value": 0.55, "stderr": 0.01},
    {"step": 0, "task": "sblimp", "metric": "accuracy", "value": 0.50, "stderr": 0.01},
    {"step": 100, "task": "sblimp", "metric": "accuracy", "value": 0.52, "stderr": 0.02},
    {"step": 100, "task": "sblimp", "metric": "accuracy", "value": 0.53, "stderr": 0.02},  # re-logged: last wins
    {"step": 0, "task": "tstorycloze", "metric": "accuracy", "value": 0.70},
    {"step": 200, "task": "tstorycloze", "metric": "accuracy", "value": 0.74},
    {"step": 0, "task": "continuation", "metric": "genppl", "value": 130.0, "run": "dpo"},
    {"step": 200, "task": "continuation", "metric": "genppl", "value": 90.0, "run": "dpo"},
]


def valid_images(paths):
    png, svg = paths
    assert png.suffix == ".png" and png.read_bytes().startswith(PNG_MAGIC)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")


def test_training_curves_hold_the_logged_points(tmp_path):
    points = read_eval_log(write_jsonl(tmp_path / "eval_log.jsonl", EVAL_LOG))
    fig = training_figure(points)
    acc_ax, ppl_ax = fig.axes
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in acc_ax.get_lines()}
    assert lines["sblimp"] == ([0, 100, 200], pytest.approx([50.0, 53.0, 55.0]))
    assert lines["tstorycloze"] == ([0, 200], pytest.approx([70.0, 74.0]))
    ((x, y),) = [(list(line.get_xdata()), list(line.get_ydata())) for line in ppl_ax.get_lines()]
    assert (x, y) == ([0, 200], [130.0, 90.0])
    assert ppl_ax.get_lines()[0].get_label() == "continuation (dpo)"
    assert acc_ax.get_title() == "accuracy ↑" and ppl_ax.get_title() == "genppl ↓"
    assert len(acc_ax.collections) == 1  # the stderr band of sblimp; tstorycloze logged none
    valid_images(save_figure(fig, tmp_path / "out" / "training"))


def test_score_histograms_count_every_score_and_prompt_spread(tmp_path):
    records = [{"prompt_id": f"p{p}", "sample": s, "score": float(p + s), "scorer": "judge"}
               for p in range(3) for s in range(4)]
    records.append({"prompt_id": "solo", "sample": 0, "score": 2.0, "scorer": "judge"})
    records += [{"prompt_id": "p0", "sample": s, "score": 10.0 * s, "scorer": "ppl"} for s in range(2)]
    fig = scores_figure(read_scores(write_jsonl(tmp_path / "scores.jsonl", records)), bins=5)
    (judge_all, judge_spread, ppl_all, ppl_spread) = fig.axes
    assert sum(p.get_height() for p in judge_all.patches) == 13
    assert sum(p.get_height() for p in judge_spread.patches) == 3  # prompts with two or more samples
    assert judge_all.get_title() == "judge: 13 scores, 4 prompts"
    assert sum(p.get_height() for p in ppl_all.patches) == 2 and ppl_all.get_title().startswith("ppl: 2 scores")
    # every judge prompt spans 3 points (sample 0 to 3)
    (filled,) = [p for p in judge_spread.patches if p.get_height()]
    assert filled.get_x() <= 3.0 < filled.get_x() + filled.get_width()
    valid_images(save_figure(fig, tmp_path / "scores.svg"))  # a suffix on the prefix is dropped
    assert (tmp_path / "scores.png").is_file()


def test_leaderboard_bars_match_the_table():
    acc, ppl = Column("sblimp", "accuracy"), Column("continuation", "genppl")
    run = Row(name="mine", values={acc: Measurement(0.6, 0.02)})
    ref = Row(name="TWIST-7B", source="slamkit-docs", kind="reference",
              values={acc: Measurement(0.59, text="59.0"), ppl: Measurement(93.74, text="93.74")})
    fig = leaderboard_figure(build_table([run, ref]))
    acc_ax, ppl_ax = [ax for ax in fig.axes if ax.get_visible()]
    assert [p.get_width() for p in acc_ax.patches] == pytest.approx([60.0, 59.0])
    assert [t.get_text() for t in acc_ax.get_yticklabels()] == ["mine", "TWIST-7B [slamkit-docs]"]
    assert acc_ax.patches[0].get_facecolor() != acc_ax.patches[1].get_facecolor()  # best highlighted
    assert [p.get_width() for p in ppl_ax.patches] == pytest.approx([93.74])
    assert acc_ax.get_title() == "sBLIMP acc (%) ↑"


def test_saved_svg_is_stable(tmp_path):
    points = read_eval_log(write_jsonl(tmp_path / "e.jsonl", EVAL_LOG[:3]))
    first = save_figure(training_figure(points), tmp_path / "a")[1].read_bytes()
    second = save_figure(training_figure(points), tmp_path / "b")[1].read_bytes()
    assert first == second


@pytest.mark.parametrize("line, message", [
    ("not json", "line 1: not JSON"),
    ("[1]", "line 1: expected a JSON object"),
    ('{"step": -1, "task": "t", "metric": "m", "value": 1}', "'step' must be an integer >= 0"),
    ('{"step": 1, "task": "", "metric": "m", "value": 1}', "'task' must be a non-empty string"),
    ('{"step": 1, "task": "t", "metric": "m", "value": "high"}', "'value' must be a finite number"),
    ('{"step": 1, "task": "sblimp", "metric": "accuracy", "value": -7.5}',
     "line 1: value -7.5 of sblimp.accuracy is outside [0, 1], the range of a fraction"),
    ('{"step": 1, "task": "c", "metric": "genppl", "value": 0}', "is outside (0, inf), the range of a perplexity"),
    ('{"step": 1, "task": "t", "metric": "m", "value": 1, "stderr": -1}', "stderr -1 is negative"),
])
def test_bad_eval_log_lines_name_file_and_line(tmp_path, line, message):
    path = write_jsonl(tmp_path / "eval_log.jsonl", [line])
    with pytest.raises(UserError) as e:
        read_eval_log(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_bad_scores(tmp_path):
    dup = {"prompt_id": "p", "sample": 0, "score": 1.0, "scorer": "s"}
    with pytest.raises(UserError, match="line 2: prompt 'p' sample 0 scored by 's' again"):
        read_scores(write_jsonl(tmp_path / "s.jsonl", [dup, dup]))
    with pytest.raises(UserError, match="no scores"):
        read_scores(write_jsonl(tmp_path / "empty.jsonl", []))


def test_the_trainers_round_scores_plot_as_they_are(tmp_path):
    rows = [{"run": "r", "prompt_id": f"p{i // 2}", "sample": i % 2, "text": "x", "prompt_text": "y", "units": [1],
             "scores": {"semantic_rating": None if i == 3 else float(1 + i % 5), "auto_bleu": 0.1 * i},
             "status": {"semantic_rating": "unparsable" if i == 3 else "ok", "auto_bleu": "ok"}} for i in range(6)]
    scores = read_scores(write_jsonl(tmp_path / "scores.jsonl", rows))
    assert len(scores) == 12 and [s.score for s in scores if s.scorer == "semantic_rating"].count(None) == 1
    fig = scores_figure(scores)
    titles = [ax.get_title() for ax in fig.axes]
    assert "semantic_rating: 5 scores (1 unscored), 3 prompts" in titles and "auto_bleu: 6 scores, 3 prompts" in titles
    rows[0]["scores"]["auto_bleu"] = "high"
    with pytest.raises(UserError, match="line 1: field 'auto_bleu' must be a finite number"):
        read_scores(write_jsonl(tmp_path / "bad.jsonl", rows))


ACC, PPL, ODD = Column("sblimp", "accuracy"), Column("continuation", "genppl"), Column("newtask", "delta")


def run_row(name, values, missing=()):
    return Row(name=name, values={c: Measurement(*v) for c, v in values.items()},
               missing={c: f"{c.key} has no value" for c in missing}, headlines=[*values, *missing])


@pytest.mark.parametrize("rows, columns", [
    ([run_row("only", {ACC: (0.5, 0.05)})], None),  # a single model, a single task
    ([run_row("a", {ACC: (0.5, None)}, missing=[PPL]), run_row("b", {ACC: (0.6, 0.01)}, missing=[PPL])], None),
    ([run_row("a", {}, missing=[ACC, PPL]), run_row("b", {}, missing=[ACC])], None),  # every column empty
    ([run_row("$x^$ and $", {ACC: (0.5, 0.1)}), run_row(r"a\$b $\frac$", {ACC: (0.4, None)})], None),
    ([run_row("big", {ODD: (1e308, 1e308)}), run_row("small", {ODD: (-1e308, 1e308)})], None),
    ([run_row("neg", {ODD: (-5.0, 1.0)}), run_row("pos", {ODD: (1000.0, 1.0)}), run_row("p", {ODD: (1.0, 2.0)})], None),
    ([run_row("zero", {ODD: (0.0, None)}), run_row("pos", {ODD: (1000.0, 1.0)})], None),
    ([run_row("tiny", {PPL: (5e-324, 1.0)}), run_row("huge", {PPL: (1e300, 1e299)})], None),
    ([run_row("wide", {ACC: (0.5, 1e308)}), run_row("none", {ACC: (0.0, 0.0)})], None),  # 100 x stderr overflows
])
def test_leaderboard_chart_is_drawn_for_any_checked_input(tmp_path, rows, columns):
    table = build_table(rows, columns=columns)
    valid_images(save_figure(leaderboard_figure(table), tmp_path / "bars"))


def test_columns_without_values_are_named_on_the_chart(tmp_path):
    table = build_table([run_row("a", {ACC: (0.5, 0.1)}, missing=[PPL])])
    fig = leaderboard_figure(table)
    (ax,) = [ax for ax in fig.axes if ax.get_visible()]
    assert ax.get_title() == "sBLIMP acc (%) ↑"
    assert fig.get_suptitle().endswith("\nno value in any row: continuation GenPPL ↓")
    empty = build_table([run_row("a", {}, missing=[ACC])])
    fig = leaderboard_figure(empty)
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == [
        "no column of the leaderboard has a value; see the table's notes"]
    valid_images(save_figure(fig, tmp_path / "empty"))


def test_chart_labels_are_one_line_and_shown_literally(tmp_path):
    table = build_table([run_row("cost $5\nor $6", {ACC: (0.5, 0.1)})])
    fig = leaderboard_figure(table)
    (ax,) = [ax for ax in fig.axes if ax.get_visible()]
    assert [t.get_text() for t in ax.get_yticklabels()] == [r"cost \$5 or \$6"]
    png, _ = save_figure(fig, tmp_path / "bars")
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_log_axis_only_when_every_bar_is_positive():
    spread = build_table([run_row("a", {PPL: (2.0, None)}), run_row("b", {PPL: (500.0, None)})])
    (ax,) = [ax for ax in leaderboard_figure(spread).axes if ax.get_visible()]
    assert ax.get_xscale() == "log"
    signed = build_table([run_row("a", {ODD: (-2.0, None)}), run_row("b", {ODD: (2.0, None)}),
                          run_row("c", {ODD: (500.0, None)})])
    (ax,) = [ax for ax in leaderboard_figure(signed).axes if ax.get_visible()]
    assert ax.get_xscale() == "linear"


def test_values_near_the_float_range_are_plotted_in_a_stated_power_of_ten():
    table = build_table([run_row("big", {ODD: (1e308, 1e308)}), run_row("small", {ODD: (-5e307, 1e307)})])
    (ax,) = [ax for ax in leaderboard_figure(table).axes if ax.get_visible()]
    assert ax.get_xlabel() == "× 1e308"
    assert [p.get_width() for p in ax.patches] == pytest.approx([1.0, -0.5])
    assert all(math.isfinite(v) for v in ax.get_xlim())
