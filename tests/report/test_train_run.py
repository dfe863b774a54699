"""The training report's data from a real (tiny) alignslm-train run: pairs with both sides' audio and ratings,
histograms and the eval curve from the round's own files; --round and a folder with no round."""

import json

import pytest

from alignslm_eval.io.jsonl import read_jsonl
from alignslm_train.cli import main as train_cli
from alignslm_eval.report.train_run import train_report

pytestmark = pytest.mark.slow


def test_rounds_pairs_histograms_and_curve_are_the_runs_files(training_run, tmp_path):
    summary, tables = train_report(training_run, tmp_path)
    assert [r["round"] for r in summary["rounds"]] == [1, 2] and all(r["complete"] for r in summary["rounds"])
    for r in summary["rounds"]:
        folder = training_run / f"round-{r['round']}"
        pairs = read_jsonl(folder / "pairs.jsonl")
        shown = tables[r["pairs_table"]["id"]]
        assert [p["pair_id"] for p in shown] == [p["pair_id"] for p in pairs] and pairs
        for got, want in zip(shown, pairs):
            for side in ("chosen", "rejected"):
                assert {m: s["value"] for m, s in got[side]["scores"].items()} == want[side]["scores"]
                assert got[side]["text"] == want[side]["text"] and "src" in got[side]["audio"]
                assert "answer" in got[side]["scores"]["semantic_rating"]  # the judge's raw answer
        scores = read_jsonl(folder / "scores.jsonl")
        assert r["histograms"]["semantic_rating"] == [s["scores"]["semantic_rating"] for s in scores
                                                      if s["scores"]["semantic_rating"] is not None]
        assert len(tables[r["samples_table"]["id"]]) == len(scores)
        assert r["report"] == json.loads((folder / "pairs_report.json").read_text())
    logged = sum(len(read_jsonl(training_run / f"round-{k}" / "eval_log.jsonl")) for k in (1, 2))
    assert len(summary["eval_curve"]) == logged > 0


def test_round_flag_and_a_folder_with_no_round(training_run, tmp_path, capsys):
    assert train_cli(["report", str(training_run), "--round", "2", "--output", str(tmp_path / "r2.html")]) == 0
    data = (tmp_path / "r2.html").read_text()
    assert '"round":2' in data and '"round":1,' not in data
    for argv, expected in ((["report", str(training_run), "--round", "5"], "--round 5"),
                           (["report", str(tmp_path)], "no round-K folders")):
        capsys.readouterr()
        assert train_cli(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and "Traceback" not in err
