"""ZeroSpeech 2021 lexical (sWUGGY) and syntactic (sBLIMP) task kinds: loading, pairing, aggregation, outputs."""

from __future__ import annotations

import csv
import json
import math
import random
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import alignslm_tasks
from alignslm_eval.api.registry import TASK_KINDS
from alignslm_eval.api.task import TaskData, TaskResult, parse_spec
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.choice import likelihood_choice
from alignslm_eval.evaluate.zerospeech import score_submission
from alignslm_tasks.zerospeech import ZeroSpeechLexical, ZeroSpeechSyntactic, frequency_band

TASKS_DIR = Path(alignslm_tasks.__file__).parent
LEX_COLUMNS = ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]
SYN_COLUMNS = ["filename", "id", "voice", "type", "subtype", "transcription", "correct"]

# (id, voice, frequency, phone length, word, positive score, negative score) -> pair score
LEXICAL_PAIRS = [
    ("1", "Alex", 0, 3, "blick", -10.0, -12.0),  # 1
    ("1", "Bob", 0, 3, "blick", -7.0, -7.0),  # tie: 0.5
    ("2", "Alex", 3, 4, "table", -5.0, -9.0),  # 1
    ("2", "Bob", 3, 4, "table", -9.0, -5.0),  # 0
    ("3", "Alex", 5, 4, "stone", -8.0, -3.0),  # 0
    ("4", "Alex", 6, 5, "garden", -1.0, -2.0),  # 1
    ("4", "Bob", 6, 5, "garden", -1.5, -2.0),  # 1
    ("4", "Carl", 6, 5, "garden", -3.0, -2.0),  # 0
    ("5", "Alex", 150, 3, "the", -1.0, -4.0),  # 1
    ("6", "Alex", 21, 5, "castle", -6.0, -6.0),  # tie: 0.5
]
# per id, averaged over voices
LEXICAL_PER_ID = {"1": 0.75, "2": 0.5, "3": 0.0, "4": 2 / 3, "5": 1.0, "6": 0.5}

# (type, subtype, id, voice, positive score, negative score); id 0 recurs in several subtypes
SYNTACTIC_PAIRS = [
    ("morphology", "adj_noun", "0", "Alex", -1.0, -2.0),  # 1
    ("morphology", "adj_noun", "0", "Bob", -3.0, -2.0),  # 0
    ("morphology", "adj_noun", "1", "Alex", -1.0, -5.0),  # 1
    ("morphology", "plural", "0", "Alex", -4.0, -4.0),  # tie: 0.5
    ("morphology", "plural", "0", "Bob", -1.0, -9.0),  # 1
    ("syntax", "agreement", "0", "Alex", -9.0, -1.0),  # 0
]


def write_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(160, dtype=np.float32), 16000)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _names(n: int, seed: int | None) -> list[str]:
    if seed is None:
        return [f"f{i:03d}" for i in range(n)]
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    names: set[str] = set()
    while len(names) < n:
        names.add("".join(rng.choice(letters) for _ in range(10)))
    return sorted(names, key=lambda _: rng.random())


def build_lexical(split_dir: Path, pairs=LEXICAL_PAIRS, seed: int | None = None, wavs: bool = True) -> dict[str, float]:
    """gold.csv (+ wavs) for `pairs`; with `seed`, random file names and shuffled rows. Returns item scores."""
    names = _names(2 * len(pairs), seed)
    rows, scores = [], {}
    for i, (id_, voice, freq, length, word, pos, neg) in enumerate(pairs):
        pos_name, neg_name = names[2 * i], names[2 * i + 1]
        rows.append(dict(filename=pos_name, id=id_, voice=voice, frequency=freq, word=word, phones="a b",
                         length=length, correct=1))
        # non-word rows carry no frequency in this test, and their length must not be used
        rows.append(dict(filename=neg_name, id=id_, voice=voice, frequency="", word=word + "x", phones="a b",
                         length=length + 7, correct=0))
        scores[pos_name], scores[neg_name] = pos, neg
    if seed is not None:
        random.Random(seed).shuffle(rows)
    write_csv(split_dir / "gold.csv", LEX_COLUMNS, rows)
    if wavs:
        for name in scores:
            write_wav(split_dir / f"{name}.wav")
    return scores


def build_syntactic(split_dir: Path, pairs=SYNTACTIC_PAIRS, seed: int | None = None) -> dict[str, float]:
    names = _names(2 * len(pairs), seed)
    rows, scores = [], {}
    for i, (type_, subtype, id_, voice, pos, neg) in enumerate(pairs):
        pos_name, neg_name = names[2 * i], names[2 * i + 1]
        for name, correct in ((pos_name, 1), (neg_name, 0)):
            rows.append(dict(filename=name, id=id_, voice=voice, type=type_, subtype=subtype,
                             transcription="a sentence", correct=correct))
        scores[pos_name], scores[neg_name] = pos, neg
    if seed is not None:
        random.Random(seed).shuffle(rows)
    write_csv(split_dir / "gold.csv", SYN_COLUMNS, rows)
    for name in scores:
        write_wav(split_dir / f"{name}.wav")
    return scores


def spec(name: str, **settings):
    base = parse_spec(TASKS_DIR / f"{name}.yaml")
    return replace(base, settings={**base.settings, **settings})


def choice_scores(data: TaskData, item_scores: dict[str, float]) -> dict[str, float]:
    return {c.id: likelihood_choice([item_scores[k] for k in c.candidates], c.positive) for c in data.choices}


def evaluate(task, data_dir: Path, item_scores: dict[str, float]) -> tuple[TaskData, TaskResult]:
    data = task.load(data_dir)
    return data, task.aggregate(data, choice_scores(data, item_scores))


def as_json(result: TaskResult) -> str:
    return json.dumps(result.to_json(), sort_keys=True)


def sem(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values))


# ------------------------------------------------------------------------------------------------------ lexical


def test_registered_kinds():
    assert TASK_KINDS.get("zerospeech_lexical") is ZeroSpeechLexical
    assert TASK_KINDS.get("zerospeech_syntactic") is ZeroSpeechSyntactic


@pytest.mark.parametrize(
    "count, band",
    # the official ZeroSpeech 2021 script's half-open intervals [1, 5), [5, 20), [20, 100), [100, inf)
    [(0, "oov"), (1, "1-5"), (4, "1-5"), (5, "6-20"), (19, "6-20"), (20, "21-100"), (99, "21-100"), (100, ">100")],
)
def test_frequency_band_edges(count, band):
    assert frequency_band(count) == band


def test_lexical_choices_pair_rows_by_id_and_voice(tmp_path):
    scores = build_lexical(tmp_path / "lexical" / "dev")
    data = ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")
    assert len(data.choices) == len(LEXICAL_PAIRS)
    assert len(data.items) == 2 * len(LEXICAL_PAIRS)
    assert data.metadata_files == [tmp_path / "lexical" / "dev" / "gold.csv"]
    by_id = {c.id: c for c in data.choices}
    choice = by_id["4/Carl"]
    assert choice.positive == 0
    assert [scores[k] for k in choice.candidates] == [-3.0, -2.0]
    assert choice.meta == {"id": "4", "voice": "Carl", "frequency": 6, "length": 5, "word": "garden"}
    item = data.items[choice.candidates[0]]
    assert item.key == choice.candidates[0]
    assert item.path == tmp_path / "lexical" / "dev" / f"{choice.candidates[0]}.wav"


def test_lexical_metrics_by_hand(tmp_path):
    scores = build_lexical(tmp_path / "lexical" / "dev")
    _, result = evaluate(ZeroSpeechLexical(spec("swuggy")), tmp_path / "lexical", scores)
    per_id = list(LEXICAL_PER_ID.values())

    assert result.headline == "accuracy"
    acc = result.metrics["accuracy"]
    assert acc.n == 6
    assert acc.value == pytest.approx(sum(per_id) / 6)  # 0.569444...
    assert acc.stderr == pytest.approx(sem(per_id))

    in_vocab = [v for k, v in LEXICAL_PER_ID.items() if k != "1"]
    assert result.metrics["in_vocab"].n == 5
    assert result.metrics["in_vocab"].value == pytest.approx(sum(in_vocab) / 5)  # 0.5333...
    assert result.metrics["in_vocab"].stderr == pytest.approx(sem(in_vocab))

    by_freq = result.breakdowns["by_frequency"]
    assert list(by_freq) == ["oov", "1-5", "6-20", "21-100", ">100"]
    assert {k: (m.value, m.n) for k, m in by_freq.items()} == {
        "oov": (0.75, 1),
        "1-5": (0.5, 1),  # id 2 (count 3)
        "6-20": (pytest.approx(1 / 3), 2),  # ids 3 (count 5: official bands are half-open) and 4 (count 6)
        "21-100": (0.5, 1),
        ">100": (1.0, 1),
    }
    assert by_freq["6-20"].stderr == pytest.approx(sem([0.0, 2 / 3]))
    assert math.isnan(by_freq["oov"].stderr)

    by_len = result.breakdowns["by_length"]
    assert list(by_len) == ["3", "4", "5"]
    assert by_len["3"].value == pytest.approx((0.75 + 1.0) / 2)
    assert by_len["4"].value == pytest.approx(0.25)
    assert by_len["5"].value == pytest.approx((2 / 3 + 0.5) / 2)
    assert [m.n for m in by_len.values()] == [2, 2, 2]


def test_lexical_result_ignores_row_order_and_file_names(tmp_path):
    task = ZeroSpeechLexical(spec("swuggy"))
    plain = build_lexical(tmp_path / "a" / "lexical" / "dev")
    shuffled = build_lexical(tmp_path / "b" / "lexical" / "dev", seed=7)
    assert set(plain).isdisjoint(shuffled)
    gold_b = (tmp_path / "b" / "lexical" / "dev" / "gold.csv").read_text().splitlines()
    assert gold_b[1:] != sorted(gold_b[1:], key=lambda line: line.split(",")[1])  # really shuffled
    _, a = evaluate(task, tmp_path / "a" / "lexical", plain)
    _, b = evaluate(task, tmp_path / "b" / "lexical", shuffled)
    assert as_json(a) == as_json(b)


def test_lexical_split_setting_selects_folder(tmp_path):
    build_lexical(tmp_path / "lexical" / "dev")
    test_scores = build_lexical(tmp_path / "lexical" / "test", pairs=LEXICAL_PAIRS[:2], seed=3)
    task = ZeroSpeechLexical(spec("swuggy", split="test"))
    data, result = evaluate(task, tmp_path / "lexical", test_scores)
    assert set(data.items) == set(test_scores)
    assert result.metrics["accuracy"].value == pytest.approx(0.75)


def test_write_outputs_round_trips_through_score_submission(tmp_path):
    split_dir = tmp_path / "lexical" / "dev"
    scores = build_lexical(split_dir)
    scores[next(iter(scores))] = -1 / 3  # a value whose decimal form is long
    task = ZeroSpeechLexical(spec("swuggy"))
    data, result = evaluate(task, tmp_path / "lexical", scores)
    written = task.write_outputs(data, scores, tmp_path / "out")
    assert written == [tmp_path / "out" / "lexical" / "dev.txt"]
    lines = written[0].read_text().splitlines()
    assert [line.split()[0] for line in lines] == sorted(scores)
    assert {name: float(value) for name, value in (line.split() for line in lines)} == scores
    assert as_json(score_submission(written[0], split_dir, "lexical")) == as_json(result)


def test_write_outputs_syntactic_test_split(tmp_path):
    scores = build_syntactic(tmp_path / "syntactic" / "test")
    task = ZeroSpeechSyntactic(spec("sblimp", split="test"))
    data, result = evaluate(task, tmp_path / "syntactic", scores)
    [path] = task.write_outputs(data, scores, tmp_path / "out")
    assert path == tmp_path / "out" / "syntactic" / "test.txt"
    assert as_json(score_submission(path, tmp_path / "syntactic" / "test", "syntactic")) == as_json(result)


# ---------------------------------------------------------------------------------------------------- syntactic


def test_syntactic_metrics_by_hand(tmp_path):
    scores = build_syntactic(tmp_path / "syntactic" / "dev")
    data, result = evaluate(ZeroSpeechSyntactic(spec("sblimp")), tmp_path / "syntactic", scores)
    assert len(data.choices) == 6
    assert data.choices[0].meta.keys() == {"id", "voice", "type", "subtype"}
    # per (type, subtype, id): adj_noun/0 0.5, adj_noun/1 1, plural/0 0.75, agreement/0 0
    per_pair = [0.5, 1.0, 0.75, 0.0]
    assert result.headline == "accuracy"
    assert result.metrics["accuracy"].value == pytest.approx(0.5625)
    assert result.metrics["accuracy"].stderr == pytest.approx(sem(per_pair))
    assert result.metrics["accuracy"].n == 4
    by_type = result.breakdowns["by_type"]
    assert {k: (m.value, m.n) for k, m in by_type.items()} == {
        "morphology": (pytest.approx(0.75), 3),
        "syntax": (0.0, 1),
    }
    assert by_type["morphology"].stderr == pytest.approx(sem([0.5, 1.0, 0.75]))
    assert {k: (m.value, m.n) for k, m in result.breakdowns["by_subtype"].items()} == {
        "morphology/adj_noun": (0.75, 2),
        "morphology/plural": (0.75, 1),
        "syntax/agreement": (0.0, 1),
    }


def test_syntactic_result_ignores_file_names_and_reports_the_official_positional_rule_beside_it(tmp_path, caplog):
    task = ZeroSpeechSyntactic(spec("sblimp"))
    _, ordered = evaluate(task, tmp_path / "a" / "syntactic", build_syntactic(tmp_path / "a" / "syntactic" / "dev"))
    # ordered rows: the official positional pairing is the key pairing, one figure
    assert list(ordered.metrics) == ["accuracy"] and "positional" not in caplog.text
    with caplog.at_level("WARNING"):
        data, shuffled = evaluate(task, tmp_path / "b" / "syntactic",
                                  build_syntactic(tmp_path / "b" / "syntactic" / "dev", seed=11))
    # the key-paired figures do not depend on row order
    assert shuffled.metrics["accuracy"] == ordered.metrics["accuracy"]
    assert json.dumps(shuffled.to_json()["breakdowns"]) == json.dumps(ordered.to_json()["breakdowns"])
    # the official figure: k-th correct row against the k-th incorrect row, per the correct row's (type, subtype, id)
    scores = build_syntactic(tmp_path / "c" / "syntactic" / "dev", seed=11)
    with open(tmp_path / "c" / "syntactic" / "dev" / "gold.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    correct, incorrect = [r for r in rows if r["correct"] == "1"], [r for r in rows if r["correct"] == "0"]
    per_group: dict[tuple, list[float]] = {}
    for c, i in zip(correct, incorrect):
        pos, neg = scores[c["filename"]], scores[i["filename"]]
        per_group.setdefault((c["type"], c["subtype"], c["id"]), []).append(1.0 if pos > neg else 0.5 if pos == neg else 0.0)
    official = [sum(v) / len(v) for v in per_group.values()]
    assert shuffled.metrics["accuracy_official_positional"].value == pytest.approx(sum(official) / len(official))
    assert shuffled.metrics["accuracy_official_positional"].n == len(official)
    assert "pairs rows by position" in caplog.text and "accuracy_official_positional (the official rule)" in caplog.text


# ------------------------------------------------------------------------------------------------- bad inputs


def _rewrite_gold(gold: Path, edit) -> None:
    """Apply `edit(columns, rows) -> (columns, rows)` to a gold.csv (rows as dicts of strings)."""
    with gold.open(newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = list(reader.fieldnames), list(reader)
    columns, rows = edit(columns, rows)
    write_csv(gold, columns, rows)


def _drop_column(gold: Path, column: str) -> None:
    _rewrite_gold(gold, lambda cols, rows: ([c for c in cols if c != column],
                                            [{k: v for k, v in r.items() if k != column} for r in rows]))


def test_missing_data_dir(tmp_path):
    with pytest.raises(UserError, match=r"nowhere.*not found.*--data-root"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "nowhere")


def test_missing_split_dir(tmp_path):
    (tmp_path / "lexical").mkdir()
    with pytest.raises(UserError, match=r"lexical/dev: .*split folder not found"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


def test_missing_gold_csv(tmp_path):
    build_lexical(tmp_path / "lexical" / "dev")
    (tmp_path / "lexical" / "dev" / "gold.csv").unlink()
    with pytest.raises(UserError, match=r"dev/gold.csv: gold file not found"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


@pytest.mark.parametrize("column", ["frequency", "voice", "correct"])
def test_missing_lexical_column_is_named(tmp_path, column):
    build_lexical(tmp_path / "lexical" / "dev")
    gold = tmp_path / "lexical" / "dev" / "gold.csv"
    _drop_column(gold, column)
    with pytest.raises(UserError, match=rf"gold.csv: missing column\(s\) {column} "):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


def test_missing_syntactic_column_is_named(tmp_path):
    build_syntactic(tmp_path / "syntactic" / "dev")
    gold = tmp_path / "syntactic" / "dev" / "gold.csv"
    _drop_column(gold, "subtype")
    with pytest.raises(UserError, match=r"gold.csv: missing column\(s\) subtype "):
        ZeroSpeechSyntactic(spec("sblimp")).load(tmp_path / "syntactic")


def test_absent_wav_is_named(tmp_path):
    scores = build_lexical(tmp_path / "lexical" / "dev")
    victim = sorted(scores)[3]
    (tmp_path / "lexical" / "dev" / f"{victim}.wav").unlink()
    with pytest.raises(UserError, match=rf"{victim}\.wav: audio file listed in .*gold.csv not found \(1 missing"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


def test_group_with_two_correct_rows_is_named(tmp_path):
    build_lexical(tmp_path / "lexical" / "dev")
    gold = tmp_path / "lexical" / "dev" / "gold.csv"

    def edit(cols, rows):
        for r in rows:
            if r["id"] == "2" and r["voice"] == "Bob" and r["correct"] == "0":
                r["correct"] = "1"
                r["frequency"] = "3"
        return cols, rows

    _rewrite_gold(gold, edit)
    expected = r"gold.csv: id '2' voice 'Bob' has 2 correct and 0 incorrect row\(s\) \(line\(s\) 8, 9\)"
    with pytest.raises(UserError, match=expected):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


def test_group_missing_its_incorrect_row_is_named(tmp_path):
    build_syntactic(tmp_path / "syntactic" / "dev")
    gold = tmp_path / "syntactic" / "dev" / "gold.csv"

    def edit(cols, rows):
        return cols, [r for r in rows if (r["subtype"], r["voice"], r["correct"]) != ("plural", "Bob", "0")]

    _rewrite_gold(gold, edit)
    expected = r"type 'morphology' subtype 'plural' id '0' voice 'Bob' has 1 correct and 0 incorrect"
    with pytest.raises(UserError, match=expected):
        ZeroSpeechSyntactic(spec("sblimp")).load(tmp_path / "syntactic")


def test_bad_correct_value_names_line(tmp_path):
    build_lexical(tmp_path / "lexical" / "dev")
    gold = tmp_path / "lexical" / "dev" / "gold.csv"
    _rewrite_gold(gold, lambda cols, rows: (cols, [dict(r, correct="yes") if i == 2 else r
                                            for i, r in enumerate(rows)]))
    with pytest.raises(UserError, match=r"gold.csv: line 4: column 'correct' must be 0 or 1, not 'yes'"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


def test_bad_word_frequency_names_line(tmp_path):
    build_lexical(tmp_path / "lexical" / "dev")
    gold = tmp_path / "lexical" / "dev" / "gold.csv"
    _rewrite_gold(gold, lambda cols, rows: (cols, [dict(r, frequency="many") if i == 0 else r
                                            for i, r in enumerate(rows)]))
    expected = r"gold.csv: line 2: column 'frequency' must be a non-negative integer, not 'many'"
    with pytest.raises(UserError, match=expected):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


def test_duplicate_filename_names_both_lines(tmp_path):
    build_lexical(tmp_path / "lexical" / "dev")
    gold = tmp_path / "lexical" / "dev" / "gold.csv"
    _rewrite_gold(gold, lambda cols, rows: (cols, rows + [dict(rows[0], id="99")]))
    with pytest.raises(UserError, match=r"line 22: filename 'f000' already listed on line 2"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")


def test_bad_split_and_unknown_setting(tmp_path):
    with pytest.raises(UserError, match=r"swuggy.yaml: settings.split must be one of \['dev', 'test'\], not 'train'"):
        ZeroSpeechLexical(spec("swuggy", split="train"))
    with pytest.raises(UserError, match=r"sblimp.yaml: unknown setting\(s\) \['splt'\]"):
        ZeroSpeechSyntactic(spec("sblimp", splt="test"))


def test_gold_with_byte_order_mark_loads(tmp_path):
    scores = build_lexical(tmp_path / "lexical" / "dev")
    gold = tmp_path / "lexical" / "dev" / "gold.csv"
    gold.write_bytes(b"\xef\xbb\xbf" + gold.read_bytes())
    data = ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")
    assert set(data.items) == set(scores)


# ------------------------------------------- gold filenames: submission-safe, inside the split, one file per side


def _set_filename(gold: Path, old: str, new: str) -> None:
    _rewrite_gold(gold, lambda cols, rows: (cols, [dict(r, filename=new) if r["filename"] == old else r
                                                   for r in rows]))


@pytest.mark.parametrize(
    "name, message",
    [
        ("f 001", r"line 3: filename 'f 001' contains whitespace, which a ZeroSpeech submission line "
                  r"\('<filename> <score>'\) cannot hold; rename the file and its gold row without spaces"),
        ("f\t001", r"line 3: filename 'f\\t001' contains whitespace"),
        ("../outside", r"line 3: filename '../outside' is not a name inside .*lexical/dev: gold filenames are "
                       r"relative to the gold.csv folder \(no leading '/' or '..'\)"),
        ("sub/../../outside", r"line 3: filename 'sub/../../outside' is not a name inside"),
        ("ABSOLUTE", r"line 3: filename '/.*/outside' is not a name inside"),
        ("./f001", r"line 3: filename './f001' is not in plain form; write it as 'f001'"),
        ("sub/../f001", r"line 3: filename 'sub/../f001' is not in plain form; write it as 'f001'"),
        ("f001.wav", r"line 3: filename 'f001.wav' ends in .wav: gold filenames carry no extension .*write 'f001'"),
    ],
)
def test_gold_filename_that_eval_and_the_submission_scorer_cannot_both_use_is_refused(tmp_path, name, message):
    split_dir = tmp_path / "lexical" / "dev"
    build_lexical(split_dir)
    write_wav(tmp_path / "lexical" / "outside.wav")  # exists: only the check keeps it from being read
    name = str(tmp_path / "lexical" / "outside") if name == "ABSOLUTE" else name
    if "outside" not in name:
        write_wav(split_dir / f"{name}.wav")
    _set_filename(split_dir / "gold.csv", "f001", name)
    for load in (lambda: ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical"),
                 # zerospeech-score reads the same gold.csv the same way, so neither side accepts what the other refuses
                 lambda: score_submission(tmp_path / "unread.txt", split_dir, "lexical")):
        with pytest.raises(UserError, match=rf"^{split_dir / 'gold.csv'}: {message}") as err:
            load()
        assert "\n" not in str(err.value)


def test_gold_filename_in_a_subfolder_round_trips_through_the_submission(tmp_path):
    split_dir = tmp_path / "lexical" / "dev"
    scores = build_lexical(split_dir)
    _set_filename(split_dir / "gold.csv", "f001", "voices/f001")
    (split_dir / "voices").mkdir()
    (split_dir / "f001.wav").rename(split_dir / "voices" / "f001.wav")
    scores["voices/f001"] = scores.pop("f001")
    task = ZeroSpeechLexical(spec("swuggy"))
    data, result = evaluate(task, tmp_path / "lexical", scores)
    assert data.items["voices/f001"].path == split_dir / "voices" / "f001.wav"
    [written] = task.write_outputs(data, scores, tmp_path / "out")
    assert as_json(score_submission(written, split_dir, "lexical")) == as_json(result)


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_pair_whose_two_files_are_one_file_is_refused(tmp_path, link):
    split_dir = tmp_path / "syntactic" / "dev"
    build_syntactic(split_dir)
    # the pair on gold lines 4 and 5: f002 (correct) and f003 (incorrect)
    (split_dir / "f003.wav").unlink()
    if link == "symlink":
        (split_dir / "f003.wav").symlink_to("f002.wav")
    else:
        (split_dir / "f003.wav").hardlink_to(split_dir / "f002.wav")
    with pytest.raises(UserError) as err:
        ZeroSpeechSyntactic(spec("sblimp")).load(tmp_path / "syntactic")
    assert str(err.value).startswith(
        f"{split_dir / 'gold.csv'}: lines 4 and 5: f002.wav and f003.wav are the same file on disk (a link), so the "
        "pair would always score 0.5")
    # scoring a submission needs no audio, so the link does not matter there
    sub = tmp_path / "dev.txt"
    sub.write_text("".join(f"f{i:03d} -1.0\n" for i in range(2 * len(SYNTACTIC_PAIRS))))
    assert score_submission(sub, split_dir, "syntactic").metrics["accuracy"].value == pytest.approx(0.5)


def test_pairs_with_identical_audio_warn_once(tmp_path, caplog):
    split_dir = tmp_path / "lexical" / "dev"
    build_lexical(split_dir, pairs=LEXICAL_PAIRS[:3])  # write_wav writes the same silence into every file
    with caplog.at_level("WARNING", logger="alignslm_tasks.choice"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"{split_dir / 'gold.csv'}: 3 choice(s) compare two files with identical audio, e.g. 1/Alex: f000.wav and "
        "f001.wav; each scores 0.5 whatever the model")
    for i in range(6):
        sf.write(split_dir / f"f{i:03d}.wav", np.full(160, i / 10, dtype=np.float32), 16000)
    caplog.clear()
    with caplog.at_level("WARNING", logger="alignslm_tasks.choice"):
        ZeroSpeechLexical(spec("swuggy")).load(tmp_path / "lexical")
    assert caplog.records == []


@pytest.mark.parametrize("task_cls, name, sep, folder", [
    (ZeroSpeechLexical, "swuggy", "_", "swuggy_inter"), (ZeroSpeechSyntactic, "sblimp", "+", "sblimp")])
def test_slamkits_numbered_folder_layout_is_refused_rather_than_paired_by_guess(tmp_path, task_cls, name, sep, folder):
    # slamkit's layout: <data_path>/<subfolder>/<n><sep>...wav, pairs formed by n and directory order
    for n in range(2):
        for label in ("a", "b"):
            write_wav(tmp_path / folder / "part" / f"{n}{sep}{label}.wav")
    with pytest.raises(UserError, match=r"slamkit's (lexical|syntactic) folder layout .*does not guess a pairing"):
        task_cls(spec(name)).load(tmp_path / folder)
