"""The eval report's data: metrics as the results file holds them, rows per sample and per choice, missing wavs,
and a folder with no run refused in one line."""

import json
import math
from pathlib import Path

import pytest

from alignslm_eval.cli.eval import main as eval_cli
from alignslm_eval.io.errors import UserError
from alignslm_eval.report.eval_run import eval_report
from tests.report.runs import synthetic_run


@pytest.fixture
def run(tmp_path):
    return synthetic_run(tmp_path / "runs" / "tiny-lm", 30)


def test_metrics_and_rows_are_the_results_files(run, tmp_path):
    summary, tables, warnings = eval_report([run.parent], tmp_path)
    assert not warnings and len(summary["runs"]) == 1
    results = json.loads(run.read_text())
    task = summary["runs"][0]["tasks"][0]
    expected = results["tasks"]["continuation"]["result"]
    for m in task["metrics"]:
        source = expected["metrics"][m["name"]] if m["group"] is None else expected["breakdowns"][m["name"]][m["group"]]
        assert m["value"] == source["value"] and m["n"] == source["n"]
        assert m["stderr"] == source["stderr"] or (math.isnan(source["stderr"]) and m["stderr"] is not None
                                                   and math.isnan(m["stderr"]))
    assert [m["percent"] for m in task["metrics"] if m["name"] == "scored_fraction"] == [True, True]
    rows = tables[task["table"]["id"]]
    samples = [json.loads(line) for line in open(run.parent / "samples_continuation.jsonl")]
    assert [(r["prompt_id"], r["sample"]) for r in rows] == [(s["prompt_id"], s["sample"]) for s in samples]
    assert all(r["audio"]["src"].endswith(".wav") and "missing" not in r["audio"] for r in rows)
    by_status = {s["scores"]["semantic_rating"]["status"] for s in samples}
    assert {"ok", "unparsable", "error: judge timed out"} <= by_status
    for row, sample in zip(rows, samples):
        status = sample["scores"]["semantic_rating"]["status"]
        assert ("failed" in row["flags"]) == status.startswith("error")
        assert ("unparsable" in row["flags"]) == (status == "unparsable")
        assert row["scores"]["semantic_rating"].get("answer") == sample["scores"]["semantic_rating"].get(
            "detail", {}).get("answer")


def test_deleted_wavs_are_rows_marked_missing(run, tmp_path):
    gone = sorted((run.parent / "continuations").rglob("*.wav"))[:3]
    for path in gone:
        path.unlink()
    summary, tables, _ = eval_report([run.parent], tmp_path)
    rows = tables[summary["runs"][0]["tasks"][0]["table"]["id"]]
    missing = [r for r in rows if "missing audio" in r["flags"]]
    assert sorted(Path(r["audio"]["missing"]).name for r in missing) == sorted(p.name for p in gone)


def test_likelihood_choices_name_the_winner_under_the_tasks_reduction(demo_results, tmp_path):
    summary, tables, _ = eval_report([demo_results], tmp_path)
    results = json.loads(demo_results.read_text())
    for task in summary["runs"][0]["tasks"]:
        if task["table"] is None or task["table"]["type"] != "choices":
            continue
        rows = tables[task["table"]["id"]]
        assert len(rows) == results["tasks"][task["name"]]["dataset"]["n_choices"]
        for row in rows:
            key = row["reduction"]
            values = [c[key] for c in row["candidates"]]
            positive = next(c for c in row["candidates"] if c["positive"])
            assert [c["won"] for c in row["candidates"]] == [v == max(values) for v in values]
            # The recorded score says the same as the winner does: 1 when the positive alone won.
            assert (row["score"] == 1) == (positive["won"] and sum(c["won"] for c in row["candidates"]) == 1)


def test_a_run_without_log_samples_points_to_the_flag(demo_results, tmp_path):
    doc = json.loads(demo_results.read_text())
    del doc["tasks"]["swuggy"]["files"]["samples"]
    del doc["tasks"]["continuation"]["files"]["samples"]
    copy = tmp_path / "copy" / "results_x.json"
    copy.parent.mkdir()
    copy.write_text(json.dumps(doc))
    summary, tables, _ = eval_report([copy], tmp_path)
    tasks = {t["name"]: t for t in summary["runs"][0]["tasks"]}
    assert tasks["swuggy"]["table"] is None and "--log-samples" in tasks["swuggy"]["note"]
    # A continuation task's rows come from its run directory instead.
    assert len(tables[tasks["continuation"]["table"]["id"]]) == doc["tasks"]["continuation"]["dataset"]["n_samples"]


def test_a_folder_with_no_run_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError):
        eval_report([tmp_path / "empty"], tmp_path)
    assert eval_cli(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no results_*.json" in err and "Traceback" not in err
    assert not (tmp_path / "empty" / "report.html").exists()


def test_cli_writes_the_page_beside_the_run(run, capsys):
    assert eval_cli(["report", str(run.parent)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {run.parent / 'report.html'}"
    assert (run.parent / "report.html").stat().st_size > 0
