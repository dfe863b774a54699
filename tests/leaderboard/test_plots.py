"""Plots from hand-made eval_log.jsonl / scores.jsonl and a leaderboard: plotted data, valid PNG and SVG files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from alignslm_eval.errors import UserError
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
