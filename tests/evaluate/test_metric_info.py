"""What each metric is (direction, percent, range) is recorded in results files by the demo run, as the task kinds
and scorers declare it, and a file without it (written before it was recorded) reads the same in the leaderboard."""

from __future__ import annotations

import json

import pytest

from alignslm_eval.api.registry import SCORERS, TASK_KINDS
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.cli.eval import main
from alignslm_eval.leaderboard.collect import collect

DEMO_TASKS = {"swuggy", "sblimp", "sstorycloze", "tstorycloze", "salmon", "continuation", "signal_quality"}


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory, demo):
    root = tmp_path_factory.mktemp("metric-info")
    code = main(["--model", "demo", "--tasks", "all", "--limit", "2", "--cache-dir", str(demo.root.parent.parent),
                 "--output-path", str(root / "runs")])
    assert code == 0
    path = next((root / "runs" / "demo" / "limit-2").glob("results_*.json"))
    return path, json.loads(path.read_text())


def declared(entry: dict) -> dict[str, MetricInfo]:
    """What the entry's task kind and, for a generation task, its scorers declare."""
    info = dict(TASK_KINDS.get(entry["protocol"]["kind"]).metric_info)
    for name in entry["protocol"]["settings"].get("scorers", []):
        info[SCORERS.get(name).metric] = SCORERS.get(name).metric_info
    return info


def test_every_demo_task_records_what_each_metric_and_breakdown_is(demo_results):
    _, results = demo_results
    assert set(results["tasks"]) == DEMO_TASKS
    for name, entry in results["tasks"].items():
        result = entry["result"]
        # Written last, after wall_time_s.
        assert list(entry)[-2:] == ["wall_time_s", "metric_info"], name
        assert list(entry["metric_info"]) == [*result["metrics"], *result["breakdowns"]], name
        known = declared(entry)
        assert {k: MetricInfo.from_json(v) for k, v in entry["metric_info"].items()} == {
            k: known[k] for k in entry["metric_info"]}, name
    recorded = results["tasks"]
    assert recorded["swuggy"]["metric_info"]["by_length"] == {
        "direction": "higher", "percent": True, "low": 0.0, "high": 1.0, "low_open": False,
        "what": "a fraction (results files store accuracies and shares as fractions)"}
    assert recorded["continuation"]["metric_info"]["genppl"] == {
        "direction": "lower", "percent": False, "low": 0.0, "high": None, "low_open": True, "what": "a perplexity"}
    assert recorded["continuation"]["metric_info"]["auto_bleu"]["percent"] is True
    assert recorded["signal_quality"]["metric_info"]["duration_s"]["direction"] == "neutral"
    assert recorded["signal_quality"]["metric_info"]["scored_fraction"]["percent"] is True


def test_a_file_without_metric_info_reads_with_the_same_directions(demo_results, tmp_path):
    path, results = demo_results
    old = json.loads(json.dumps(results))
    for entry in old["tasks"].values():
        del entry["metric_info"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / path.name).write_text(json.dumps(old))

    def columns(folder):
        (row,), _ = collect([folder])
        return {c: (c.direction, c.percent, c.info) for c in [*row.values, *row.missing, *row.headlines]}

    new, before = columns(path.parent), columns(tmp_path / "old")
    assert new == before
    assert {c.task for c in new} == DEMO_TASKS and all(info is not None for _, _, info in new.values())
    by_key = {c.key: shown for c, shown in new.items()}
    part = next(key for key in by_key if key.startswith("salmon.by_part/"))
    assert by_key["swuggy.accuracy"][:2] == by_key["salmon.accuracy_micro"][:2] == by_key[part][:2] == ("higher", True)
    assert by_key["continuation.genppl"][:2] == ("lower", False)
    assert by_key["continuation.auto_bleu"][:2] == ("lower", True)
    assert by_key["continuation.scored_fraction/genppl"][:2] == ("higher", True)
    assert by_key["signal_quality.silence_ratio"][:2] == ("lower", False)
    assert by_key["signal_quality.duration_s"][:2] == (None, False)  # neutral: no best mark
