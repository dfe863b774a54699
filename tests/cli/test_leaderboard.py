"""`alignslm-leaderboard` end to end: formats, files, one-line errors with exit status 2, plot commands."""

from __future__ import annotations

import json

from alignslm_eval.cli.leaderboard import main, table_parser
from tests.leaderboard.factory import results_doc, task_entry, write


def runs_dir(tmp_path, peer: bool = False):
    write(tmp_path / "runs" / "tiny-lm" / "results_1.json",
          results_doc({"sblimp": task_entry(0.625), "tstorycloze": task_entry(0.5, reduction="mean")}))
    if peer:  # another model scored on the same data the same way: values to be best among
        write(tmp_path / "runs" / "peer-lm" / "results_1.json",
              results_doc({"sblimp": task_entry(0.6)}, model_path="/ckpt/peer-lm", weights="c3" * 32))
    return tmp_path / "runs"


def test_markdown_to_stdout(tmp_path, capsys):
    assert main([str(runs_dir(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| model | size | adapter | source | sBLIMP acc (%) ↑ | tSC acc (%) ↑ |")
    # one row has no peer to be best among: nothing is bold
    assert "**" not in out.split("\n\n")[0]
    assert "| tiny-lm | 40K |  | tiny-lm/results_1.json | 62.50 ± 1.00 |" in out


def test_format_from_output_suffix_and_bar_chart(tmp_path, capsys):
    out = tmp_path / "board" / "lb.html"
    assert main([str(runs_dir(tmp_path)), "--reference", "--output", str(out), "--bar-chart",
                 str(tmp_path / "board" / "bars")]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "slamkit-docs" in out.read_text()
    assert (tmp_path / "board" / "bars.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "board" / "bars.svg").is_file()
    printed = capsys.readouterr().out
    assert f"leaderboard: {out}" in printed and "bars.svg" in printed


def test_csv_and_latex_formats(tmp_path, capsys):
    runs = str(runs_dir(tmp_path, peer=True))
    assert main([runs, "--format", "csv", "--tasks", "sblimp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("tiny-lm,40K,,tiny-lm/results_1.json,run,,62.50,1.00,*") for line in lines)
    assert main([runs, "--format", "latex"]) == 0
    assert r"\textbf{62.50 $\pm$ 1.00}" in capsys.readouterr().out


def test_old_schema_is_one_line_error_with_status_2(tmp_path, capsys):
    runs = runs_dir(tmp_path)
    old = write(runs / "tiny-lm" / "results_0.json", results_doc({"sblimp": task_entry(0.5)}, schema_version=0))
    assert main([str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"alignslm-leaderboard: error: {old}: results schema_version 0 is older")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_skip_invalid_warns_and_lists_the_files(tmp_path, capsys):
    runs = runs_dir(tmp_path)
    write(runs / "tiny-lm" / "results_broken.json", "not json at all")
    assert main([str(runs)]) == 2
    assert "results_broken.json: not a JSON results file" in capsys.readouterr().err
    assert main([str(runs), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    warning = captured.err.strip()
    assert warning.startswith("alignslm-leaderboard: warning: skipped 1 invalid file(s):")
    assert "results_broken.json" in warning
    assert len(warning.splitlines()) == 1
    assert "tiny-lm" in captured.out


def test_reference_only_and_nothing_given(tmp_path, capsys):
    assert main(["--reference", "--tasks", "tstorycloze"]) == 0
    assert "| TWIST-1.3B | 1.3B |  | storycloze-readme | 61.3" in capsys.readouterr().out
    assert main([]) == 2
    assert "give runs dirs or results files" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty)]) == 2
    assert "empty: no results_*.json files under it" in capsys.readouterr().err


def test_reference_file_option(tmp_path, capsys):
    ref = tmp_path / "ref.yaml"
    ref.write_text("version: 1\nunit: percent\nsources:\n  p: {citation: 'A (2024). arXiv:1.', where: T1, protocol: "
                   "{tokenizer: x, reduction: sum, bos_eos: x, dedup: x, dataset: x}}\n"
                   "models:\n  - {name: Other, source: p, results: {sblimp: {accuracy: '70.0'}}}\n")
    assert main([str(runs_dir(tmp_path)), "--reference-file", str(ref)]) == 0
    out = capsys.readouterr().out
    # the published row is alone in its source: shown, with no peer to be best among
    assert "| Other |  |  | p | 70.0[" in out and "TWIST" not in out


def test_bad_columns_argument(tmp_path, capsys):
    assert main([str(runs_dir(tmp_path)), "--columns", "sblimp"]) == 2
    assert "expected TASK.METRIC" in capsys.readouterr().err


def test_plot_commands(tmp_path, capsys):
    log = tmp_path / "eval_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "task": "sblimp", "metric": "accuracy", "value": 0.5 + s / 1e4})
                           + "\n" for s in (0, 100, 200)))
    scores = tmp_path / "scores.jsonl"
    scores.write_text("".join(json.dumps({"prompt_id": "p", "sample": i, "score": i, "scorer": "judge"}) + "\n"
                              for i in range(3)))
    assert main(["plot-training", str(log), "--output", str(tmp_path / "plots" / "training")]) == 0
    assert main(["plot-scores", str(scores), "--output", str(tmp_path / "plots" / "scores")]) == 0
    for name in ("training", "scores"):
        assert (tmp_path / "plots" / f"{name}.png").is_file() and (tmp_path / "plots" / f"{name}.svg").is_file()
    capsys.readouterr()
    assert main(["plot-scores", str(log), "--output", str(tmp_path / "x")]) == 2
    assert "field 'prompt_id' must be a non-empty string" in capsys.readouterr().err


def last_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_output_that_is_a_directory(tmp_path, capsys):
    board = tmp_path / "board"
    board.mkdir()
    assert main([str(runs_dir(tmp_path)), "--output", str(board)]) == 2
    assert last_error(capsys).startswith(f"alignslm-leaderboard: error: --output {board}: is a directory")


def test_output_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    runs = str(runs_dir(tmp_path))
    assert main([runs, "--bar-chart", str(afile / "bar")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no table printed before the chart fails
    assert f"--bar-chart {afile / 'bar'}: {afile} is a file, not a directory" in captured.err
    assert main([runs, "--output", str(afile / "lb.md")]) == 2
    assert f"--output {afile / 'lb.md'}: {afile} is a file" in last_error(capsys)
    assert main([runs, "--bar-chart", str(tmp_path)]) == 2
    assert f"--bar-chart {tmp_path}: is a directory" in last_error(capsys)


def test_plot_output_under_a_file_and_input_directory(tmp_path, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    assert main(["plot-scores", str(afile), "--output", str(afile / "scores")]) == 2
    assert f"--output {afile / 'scores'}: {afile} is a file" in last_error(capsys)
    assert main(["plot-training", str(tmp_path), "--output", str(tmp_path / "t")]) == 2
    assert f"{tmp_path}: is a directory; give the JSONL file itself" in last_error(capsys)


def test_output_suffix_sets_or_contradicts_the_format(tmp_path, capsys):
    runs = str(runs_dir(tmp_path))
    assert main([runs, "--output", str(tmp_path / "lb.csv")]) == 0
    assert (tmp_path / "lb.csv").read_text().startswith("model,size,adapter,source,kind")
    assert main([runs, "--output", str(tmp_path / "lb.xlsx")]) == 2
    assert f"--output {tmp_path / 'lb.xlsx'}: no table format for .xlsx files" in last_error(capsys)
    assert not (tmp_path / "lb.xlsx").exists()
    assert main([runs, "--format", "csv", "--output", str(tmp_path / "lb.md")]) == 2
    assert "the suffix .md means md, but --format csv was given" in last_error(capsys)
    assert main([runs, "--format", "latex", "--output", str(tmp_path / "lb.txt")]) == 0
    assert (tmp_path / "lb.txt").read_text().startswith("% alignslm-leaderboard table")
    assert main([runs, "--output", str(tmp_path / "LEADERBOARD")]) == 0
    assert (tmp_path / "LEADERBOARD").read_text().startswith("| model |")


def test_unknown_column_or_task_suggests_close_matches(tmp_path, capsys):
    runs = str(runs_dir(tmp_path))
    assert main([runs, "--columns", "sblimp.acuracy"]) == 2
    assert last_error(capsys).endswith("--columns 'sblimp.acuracy': not in the results files or reference rows; "
                                       "did you mean sblimp.accuracy?")
    assert main([runs, "--columns", "zzz.qqq"]) == 2
    assert last_error(capsys).endswith("available: sblimp.accuracy, tstorycloze.accuracy")
    assert main([runs, "--tasks", "sblimp,sblmp"]) == 2
    assert "--tasks 'sblmp'" in last_error(capsys)


def test_skip_invalid_hint_only_when_not_passed(tmp_path, capsys):
    runs = runs_dir(tmp_path)
    write(runs / "tiny-lm" / "results_broken.json", "not json at all")
    assert main([str(runs)]) == 2
    assert last_error(capsys).endswith("remove it from the runs dir, or pass --skip-invalid to skip it")
    assert main([str(runs), "--skip-invalid"]) == 0
    assert "--skip-invalid" not in capsys.readouterr().err


def test_dir_with_json_but_no_results_files(tmp_path, capsys):
    good = write(tmp_path / "good" / "good.json", results_doc({"sblimp": task_entry(0.5)})).parent
    assert main([str(good)]) == 2
    assert f"{good}: holds 1 JSON file(s) (good.json) but none named results_*.json" in last_error(capsys)
    assert main([str(good), "--reference"]) == 0
    assert f"warning: {good}: holds 1 JSON file(s)" in capsys.readouterr().err
    assert main([str(good / "good.json")]) == 0  # named directly, any file name is read
    assert "results_*.json" in table_parser().format_help()


def test_a_value_out_of_range_stops_before_anything_is_written(tmp_path, capsys):
    runs = runs_dir(tmp_path)
    bad = write(runs / "other" / "results_1.json",
                results_doc({"sblimp": task_entry(1e308, stderr=1e308)}, model_path="/ckpt/other", weights="b" * 64))
    out, bars = tmp_path / "board" / "lb.md", tmp_path / "board" / "bars"
    assert main([str(runs), "--output", str(out), "--bar-chart", str(bars)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"alignslm-leaderboard: error: {bad}: tasks.sblimp.result.metrics.accuracy.value 1e+308 "
                           "is outside [0, 1]")
    assert line.endswith("re-run alignslm-eval to rewrite this file, or pass --skip-invalid to skip it")
    assert not out.exists() and not bars.with_suffix(".png").exists()


def test_hostile_model_name_and_empty_column_end_to_end(tmp_path, capsys):
    doc = results_doc({"sblimp": task_entry(0.5), "tstorycloze": task_entry(float("nan"), stderr=float("nan"))})
    doc["model"]["name"] = "=cmd|' /C calc'!A0\n$x^$ <script>"
    runs = write(tmp_path / "runs" / "results_1.json", doc).parent
    bars = tmp_path / "bars"
    assert main([str(runs), "--bar-chart", str(bars)]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(table) == 2 and table[1].startswith(r"| =cmd\|' /C calc'!A0 \$x^\$ \<script\> | 40K |")
    assert bars.with_suffix(".png").read_bytes()[:4] == b"\x89PNG" and bars.with_suffix(".svg").is_file()
    assert main([str(runs), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("'=cmd|' /C calc'!A0 $x^$ <script>,40K,")
