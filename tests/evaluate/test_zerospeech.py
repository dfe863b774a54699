"""Scoring a ZeroSpeech 2021 submission file against gold.csv alone (no audio)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.cli.eval import main
from alignslm_eval.evaluate.zerospeech import read_submission, score_submission

LEX_COLUMNS = ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]

# filename -> (id, voice, frequency, length, correct, score)
GOLD = {
    "aa": ("1", "Alex", 12, 4, 1, -1.0),
    "ab": ("1", "Alex", "", 4, 0, -2.0),  # 1
    "ac": ("1", "Bob", 12, 4, 1, -3.0),
    "ad": ("1", "Bob", "", 4, 0, -3.0),  # tie: 0.5 -> id 1: 0.75
    "ae": ("2", "Alex", 0, 6, 1, -5.0),
    "af": ("2", "Alex", "", 6, 0, float("-inf")),  # 1 -> id 2: 1 (oov)
    "ag": ("3", "Alex", 300, 2, 1, -9.0),
    "ah": ("3", "Alex", "", 2, 0, -1.0),  # 0 -> id 3: 0
}


def build_gold(split_dir: Path) -> None:
    """Only gold.csv: submissions are scored without the audio."""
    split_dir.mkdir(parents=True, exist_ok=True)
    with (split_dir / "gold.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LEX_COLUMNS)
        for name, (id_, voice, freq, length, correct, _) in GOLD.items():
            writer.writerow([name, id_, voice, freq, "w", "a", length, correct])


def write_submission(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def full_lines() -> list[str]:
    return [f"{name} {values[-1]!r}" for name, values in GOLD.items()]


def test_scores_a_submission_without_audio(tmp_path):
    gold_dir = tmp_path / "lexical" / "dev"
    build_gold(gold_dir)
    sub = write_submission(tmp_path / "dev.txt", full_lines())
    result = score_submission(sub, gold_dir, "lexical")
    assert result.metrics["accuracy"].value == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    assert result.metrics["accuracy"].n == 3
    assert result.metrics["in_vocab"].value == pytest.approx(0.375)
    # every band is listed, an empty one with n = 0, as the official scorer does
    assert {k: (m.value, m.n) for k, m in result.breakdowns["by_frequency"].items() if m.n} == {
        "oov": (1.0, 1), "6-20": (0.75, 1), ">100": (0.0, 1)}
    assert [k for k, m in result.breakdowns["by_frequency"].items() if m.n == 0] == ["1-5", "21-100"]
    assert {k: m.value for k, m in result.breakdowns["by_length"].items()} == {"2": 0.0, "4": 0.75, "6": 1.0}


def test_read_submission_accepts_wav_suffix_blank_lines_and_tabs(tmp_path):
    sub = write_submission(tmp_path / "s.txt", ["aa.wav -1.5", "", "ab\t-2e3", "ac  -inf"])
    assert read_submission(sub) == {"aa": -1.5, "ab": -2000.0, "ac": float("-inf")}


@pytest.mark.parametrize(
    "bad, message",
    [
        ("ab", r"line 2: expected '<filename> <score>', got 'ab'"),
        ("ab -1 extra", r"line 2: expected '<filename> <score>', got 'ab -1 extra'"),
        ("ab minus-one", r"line 2: score must be a number, not 'minus-one'"),
        ("ab nan", r"line 2: score must be a number, not 'nan'"),
        ("aa -4", r"line 2: 'aa' already scored on line 1"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    gold_dir = tmp_path / "dev"
    build_gold(gold_dir)
    sub = write_submission(tmp_path / "dev.txt", ["aa -1", bad] + full_lines()[2:])
    with pytest.raises(UserError, match=rf"dev.txt: {message}"):
        score_submission(sub, gold_dir, "lexical")


def test_missing_and_extra_filenames(tmp_path):
    gold_dir = tmp_path / "dev"
    build_gold(gold_dir)
    lines = full_lines()
    sub = write_submission(tmp_path / "dev.txt", lines[:2] + lines[3:])
    with pytest.raises(UserError, match=r"dev.txt: no score for 'ac' \(listed in .*gold.csv; 1 missing in total\)"):
        score_submission(sub, gold_dir, "lexical")
    sub = write_submission(tmp_path / "dev.txt", lines + ["zz -1"])
    with pytest.raises(UserError, match=r"dev.txt: 1 filename\(s\) not in .*gold.csv, e.g. 'zz'"):
        score_submission(sub, gold_dir, "lexical")


def test_bad_kind_missing_gold_and_missing_file(tmp_path):
    gold_dir = tmp_path / "dev"
    build_gold(gold_dir)
    sub = write_submission(tmp_path / "dev.txt", full_lines())
    with pytest.raises(UserError, match=r"kind must be one of \['lexical', 'syntactic'\], not 'semantic'"):
        score_submission(sub, gold_dir, "semantic")
    with pytest.raises(UserError, match=r"nogold/gold.csv: gold file not found"):
        (tmp_path / "nogold").mkdir()
        score_submission(sub, tmp_path / "nogold", "lexical")
    with pytest.raises(UserError, match=r"--gold .*/dev/gold.csv: give the folder holding gold.csv, i.e. --gold .*/dev$"):
        score_submission(sub, gold_dir / "gold.csv", "lexical")
    with pytest.raises(UserError, match=r"--gold .*/missing: folder not found; give the ZeroSpeech 2021 lexical split"):
        score_submission(sub, tmp_path / "missing", "lexical")
    with pytest.raises(UserError, match=r"absent.txt: cannot read submission file"):
        score_submission(tmp_path / "absent.txt", gold_dir, "lexical")
    # lexical gold read as syntactic: the missing columns are named
    with pytest.raises(UserError, match=r"gold.csv: missing column\(s\) type, subtype, transcription"):
        score_submission(sub, gold_dir, "syntactic")


def test_command_line(tmp_path, capsys):
    gold_dir = tmp_path / "dev"
    build_gold(gold_dir)
    sub = write_submission(tmp_path / "dev.txt", full_lines())
    assert main(["zerospeech-score", str(sub), "--gold", str(gold_dir), "--kind", "lexical",
                 "--output", str(tmp_path / "r.json")]) == 0
    assert "| lexical | **accuracy** |" in capsys.readouterr().out
    result = json.loads((tmp_path / "r.json").read_text())["tasks"]["lexical"]["result"]
    assert result["headline"] == "accuracy" and result["metrics"]["accuracy"]["n"] == 3
    write_submission(sub, ["aa"])
    assert main(["zerospeech-score", str(sub), "--gold", str(gold_dir), "--kind", "lexical"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alignslm-eval: error: ") and "dev.txt: line 1" in err and "\n" not in err


def test_gold_filename_with_a_space_is_refused_on_one_line(tmp_path, capsys):
    # eval refuses the same row at load (tests/tasks/test_zerospeech.py), so no submission it wrote can hit this
    gold_dir = tmp_path / "dev"
    build_gold(gold_dir)
    gold = gold_dir / "gold.csv"
    gold.write_text(gold.read_text().replace("\nac,", "\na c,"))
    sub = write_submission(tmp_path / "dev.txt", [line.replace("ac ", "a c ") for line in full_lines()])
    assert main(["zerospeech-score", str(sub), "--gold", str(gold_dir), "--kind", "lexical"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"alignslm-eval: error: {gold}: line 4: filename 'a c' contains whitespace, which a ZeroSpeech "
                   "submission line ('<filename> <score>') cannot hold; rename the file and its gold row without "
                   "spaces")
