import csv

import pandas as pd

from alignslm_eval.cli.data import main


def error_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_voices(capsys):
    assert main(["voices"]) == 0
    out = capsys.readouterr().out
    assert "en-us" in out and "f3" in out


def test_synth_sblimp(tmp_path, shared_data, capsys):
    args = ["synth", "sblimp", "--input", str(shared_data / "blimp" / "passive_1.jsonl"),
            str(shared_data / "blimp" / "adjunct_island.jsonl"), "--out", str(tmp_path),
            "--voices", "en-us,en+m3:r150", "--limit", "2", "--seed", "3", "--quiet"]
    assert main(args) == 0
    assert "sblimp: 4 items, 16 files" in capsys.readouterr().out
    with (tmp_path / "syntactic" / "dev" / "gold.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {r["voice"] for r in rows} == {"en-us", "en+m3:r150"}


def test_synth_storycloze_and_pairs(tmp_path, shared_data):
    stories = shared_data / "storycloze" / "cloze_test_test__spring2016.csv"
    assert main(["synth", "storycloze", "--input", str(stories), "--out", str(tmp_path), "--limit", "3",
                 "--quiet"]) == 0
    assert len(list((tmp_path / "tSC").glob("*_incorrect.wav"))) == 3
    pairs = shared_data / "babyslm" / "babyslm_syntactic_dev_by_pair.csv"
    assert main(["synth", "pairs", "--input", str(pairs), "--out", str(tmp_path), "--positive-col", "sentence",
                 "--negative-col", "non sentence", "--name", "babyslm_syntax", "--limit", "2", "--quiet"]) == 0
    manifest = pd.read_csv(tmp_path / "babyslm_syntax" / "manifest.csv")
    assert list(manifest.columns) == ["id", "positive", "negative"] and len(manifest) == 2


def test_bad_input_prints_one_line_and_returns_2(tmp_path, shared_data, capsys):
    source = tmp_path / "stories.csv"
    table = pd.read_csv(shared_data / "storycloze" / "cloze_test_val__spring2016.csv", nrows=5)
    table.loc[3, "RandomFifthSentenceQuiz2"] = None
    table.to_csv(source, index=False)
    assert main(["synth", "storycloze", "--input", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1
    assert lines[0].startswith("alignslm-data: error: ") and "line 5" in lines[0]
    assert "RandomFifthSentenceQuiz2" in lines[0]


def test_missing_column_and_unknown_voice(tmp_path, shared_data, capsys):
    source = tmp_path / "words.csv"
    source.write_text("word,non_word\nbrick,blick\n", encoding="utf-8")
    assert main(["synth", "swuggy", "--input", str(source), "--out", str(tmp_path / "out")]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "words.csv: line 1: missing column(s) nonword" in lines[0]

    blimp = shared_data / "blimp" / "passive_1.jsonl"
    assert main(["synth", "sblimp", "--input", str(blimp), "--out", str(tmp_path / "out"),
                 "--voices", "en-us,xx-nowhere"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "xx-nowhere" in lines[0]


def test_usage_errors_return_2(tmp_path, shared_data, capsys):
    stories = shared_data / "storycloze" / "cloze_test_val__spring2016.csv"
    assert main(["synth", "storycloze", "--input", str(stories), str(stories), "--out", str(tmp_path)]) == 2
    assert "takes one file" in capsys.readouterr().err
    assert main(["synth", "sblimp", "--input", str(stories)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["synth", "sblimp", "--input", str(stories), "--out", str(tmp_path), "--limit", "0"]) == 2


def test_out_that_is_a_file(tmp_path, capsys):
    words = tmp_path / "words.csv"
    words.write_text("word,nonword\nbrick,blick\n", encoding="utf-8")
    assert main(["synth", "swuggy", "--input", str(words), "--out", str(words), "--quiet"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"alignslm-data: error: --out {words}: it is a file, not a directory")
    assert main(["synth", "swuggy", "--input", str(words), "--out", str(words / "sub"), "--quiet"]) == 2
    assert f"--out {words / 'sub'}: {words} is a file, not a directory" in error_lines(capsys)[-1]


def test_input_that_is_a_directory(tmp_path, capsys):
    assert main(["synth", "swuggy", "--input", str(tmp_path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and f"--input {tmp_path}: is a directory, not a word list" in lines[0]
    assert main(["synth", "pairs", "--input", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out")]) == 2
    assert f"--input {tmp_path / 'nope.csv'}: input file not found" in error_lines(capsys)[-1]


def test_overwrite_message_names_only_the_flag(tmp_path, capsys):
    words = tmp_path / "words.csv"
    words.write_text("word,nonword\nbrick,blick\n", encoding="utf-8")
    args = ["synth", "swuggy", "--input", str(words), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    line = error_lines(capsys)[-1]
    assert "pass --overwrite to replace a previous build" in line and "overwrite=True" not in line
