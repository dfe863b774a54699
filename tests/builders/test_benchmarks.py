import csv
import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from alignslm_eval.io.audio import file_sha256
from alignslm_eval.builders.benchmarks import (
    LEXICAL_COLUMNS,
    MANIFEST_COLUMNS,
    SYNTACTIC_COLUMNS,
    build_pairs,
    build_sblimp,
    build_storycloze,
    build_swuggy,
)
from alignslm_eval.io.errors import UserError
from alignslm_tasks.choice import storycloze_from_manifest, storycloze_from_names
from alignslm_tasks.zerospeech import LEXICAL, SYNTACTIC, load_split

PHENOMENA = ("adjunct_island.jsonl", "passive_1.jsonl")
VOICES = ["en-us", "en-us+f3"]
STORIES = "cloze_test_val__spring2016.csv"
OPAQUE = re.compile(r"^[0-9a-f]{16}$")


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def check_wav(path: Path) -> None:
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == 16000 and data.ndim == 1 and len(data) > 0.2 * 16000 and abs(data).max() > 500


@pytest.fixture(scope="module")
def sblimp(tmp_path_factory, shared_data):
    sources = [shared_data / "blimp" / name for name in PHENOMENA]
    roots = [tmp_path_factory.mktemp(f"sblimp{i}") for i in range(2)]
    reports = [build_sblimp(sources, root, VOICES, n_per_phenomenon=20, seed=0, progress=False) for root in roots]
    return sources, roots, reports


@pytest.fixture(scope="module")
def storycloze(tmp_path_factory, shared_data):
    source = shared_data / "storycloze" / STORIES
    roots = [tmp_path_factory.mktemp(f"sc{i}") for i in range(2)]
    for root in roots:
        build_storycloze(source, root, ["en-us", "en-us+m3"], n_stories=20, seed=0, progress=False)
    return source, roots


# ------------------------------------------------------------------------------------------------------ sBLIMP


def test_sblimp_gold(sblimp):
    sources, (root, _), (report, _) = sblimp
    assert report.n_items == 40 and report.n_files == 160
    columns, rows = read_csv(root / "syntactic" / "dev" / "gold.csv")
    assert columns == list(SYNTACTIC_COLUMNS)
    assert len(rows) == 2 * 20 * 2 * 2
    blimp = {}
    for source in sources:
        for line in source.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            blimp[(item["UID"], item["sentence_good"])] = item
    pairs: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for row in rows:
        pairs.setdefault((row["id"], row["voice"]), {})[row["correct"]] = row
        assert row["voice"] in VOICES
    assert len(pairs) == 40 * 2 and len({pid for pid, _ in pairs}) == 40
    for (pair_id, voice), by_label in pairs.items():
        good, bad = by_label["1"], by_label["0"]
        item = blimp[(good["subtype"], good["transcription"])]
        assert bad["transcription"] == item["sentence_bad"]
        assert good["type"] == bad["type"] == item["linguistics_term"]
    assert {r["subtype"] for r in rows} == {"adjunct_island", "passive_1"}


def test_sblimp_files_decode_at_16k_and_names_are_opaque(sblimp):
    _, (root, _), _ = sblimp
    folder = root / "syntactic" / "dev"
    _, rows = read_csv(folder / "gold.csv")
    for row in rows:
        assert OPAQUE.match(row["filename"])
        check_wav(folder / f"{row['filename']}.wav")
    assert {p.stem for p in folder.glob("*.wav")} == {r["filename"] for r in rows}


def test_sblimp_reads_as_the_task_does(sblimp):
    _, (root, _), _ = sblimp
    data = load_split(root / "syntactic" / "dev", SYNTACTIC)
    assert len(data.choices) == 80 and len(data.items) == 160


def test_sblimp_builds_are_byte_identical(sblimp):
    _, (a, b), _ = sblimp
    hashes = tree_hashes(a)
    assert len(hashes) == 160 + 3  # wavs, gold.csv and the two card files
    assert hashes == tree_hashes(b)


def test_sblimp_card(sblimp):
    sources, (root, _), _ = sblimp
    card = json.loads((root / "dataset_card.json").read_text(encoding="utf-8"))
    entry = card["benchmarks"]["syntactic/dev"]
    assert entry["sources"] == [
        {"file": s.name, "sha256": file_sha256(s), "bytes": s.stat().st_size} for s in sources
    ]
    assert entry["tts"]["engine"] == "espeak-ng" and entry["tts"]["version"]
    assert entry["voices"] == VOICES and entry["seed"] == 0 and entry["counts"]["pairs"] == 40
    assert entry["builder_version"]
    text = (root / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert file_sha256(sources[0]) in text and "en-us+f3" in text


def test_sblimp_seed_changes_sample_and_names(tmp_path, shared_data):
    source = shared_data / "blimp" / "passive_1.jsonl"
    names = []
    for seed in (0, 1):
        build_sblimp([source], tmp_path / str(seed), ["en-us"], n_per_phenomenon=2, seed=seed, progress=False)
        _, rows = read_csv(tmp_path / str(seed) / "syntactic" / "dev" / "gold.csv")
        names.append({r["filename"] for r in rows})
    assert not names[0] & names[1]


# -------------------------------------------------------------------------------------------------- StoryCloze


def test_storycloze_layout(storycloze):
    _, (root, _) = storycloze
    pattern = re.compile(r"^(\d+)_([0-9a-f\-]+)_(correct|incorrect)$")
    for subset in ("sSC", "tSC"):
        wavs = sorted((root / subset).glob("*.wav"))
        assert len(wavs) == 40
        for wav in wavs:
            assert pattern.match(wav.stem)
            check_wav(wav)
        data = storycloze_from_names(root / subset)
        assert len(data.choices) == 20


def test_storycloze_endings(storycloze):
    source, (root, _) = storycloze
    table = pd.read_csv(source)
    stories = {
        r.InputStoryid: r for r in table.itertuples()
    }

    def right(story) -> str:
        return getattr(story, f"RandomFifthSentenceQuiz{story.AnswerRightEnding}")

    def wrong(story) -> str:
        return getattr(story, f"RandomFifthSentenceQuiz{3 - story.AnswerRightEnding}")

    transcripts = {s: read_csv(root / s / "transcripts.csv")[1] for s in ("sSC", "tSC")}
    for subset, rows in transcripts.items():
        assert len(rows) == 40
        by_story: dict[str, dict[str, dict[str, str]]] = {}
        for row in rows:
            label = row["filename"].rsplit("_", 1)[1].removesuffix(".wav")
            by_story.setdefault(row["storyid"], {})[label] = row
        for story_id, files in by_story.items():
            story = stories[story_id]
            assert files["correct"]["voice"] == files["incorrect"]["voice"]  # one voice per story
            assert files["correct"]["text"].startswith(story.InputSentence1)
            assert files["correct"]["text"].endswith(right(story))
            incorrect = files["incorrect"]
            if subset == "sSC":
                assert incorrect["ending_from"] == story_id and incorrect["text"].endswith(wrong(story))
            else:
                # tSC: the wrong ending is another story's real ending
                assert incorrect["ending_from"] != story_id
                assert incorrect["text"].endswith(right(stories[incorrect["ending_from"]]))
    # the correct candidate is the same recording in both sets
    for row in transcripts["sSC"]:
        if row["filename"].endswith("_correct.wav"):
            assert (root / "sSC" / row["filename"]).read_bytes() == (root / "tSC" / row["filename"]).read_bytes()


def test_storycloze_builds_are_byte_identical(storycloze):
    _, (a, b) = storycloze
    hashes = tree_hashes(a)
    assert len(hashes) == 80 + 2 + 2
    assert hashes == tree_hashes(b)


# ------------------------------------------------------------------------------------------------------ sWUGGY


def test_swuggy_from_babyslm(tmp_path, shared_data):
    source = shared_data / "babyslm" / "babyslm_lexical_dev_by_pair.csv"
    report = build_swuggy(source, tmp_path, VOICES, limit=10, progress=False)
    assert report.n_items == 10 and report.n_files == 40
    folder = tmp_path / "lexical" / "dev"
    columns, rows = read_csv(folder / "gold.csv")
    assert columns == list(LEXICAL_COLUMNS)
    table = pd.read_csv(source)
    first_nonword = {w: nw.split("/")[0] for w, nw in zip(table["word"], table["non words"])}
    pairs: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for row in rows:
        pairs.setdefault((row["id"], row["voice"]), {})[row["correct"]] = row
        assert OPAQUE.match(row["filename"])
        check_wav(folder / f"{row['filename']}.wav")
        assert row["phones"] == row["word"]  # IPA input: phones as given
        assert int(row["length"]) == len(row["phones"].split()) and row["frequency"] == "0"
    for by_label in pairs.values():
        assert first_nonword[by_label["1"]["word"]] == by_label["0"]["word"]
    assert len(load_split(folder, LEXICAL).choices) == 20


def test_swuggy_from_text_words(tmp_path):
    source = tmp_path / "words.tsv"
    source.write_text("word\tnonword\tfrequency\nbrick\tblick\t120\nhouse\tmouse\t\n", encoding="utf-8")
    build_swuggy(source, tmp_path / "out", ["en-us"], split="test", progress=False)
    _, rows = read_csv(tmp_path / "out" / "lexical" / "test" / "gold.csv")
    by_word = {r["word"]: r for r in rows}
    assert by_word["brick"]["phones"] == "b ɹ ɪ k" and by_word["brick"]["length"] == "4"
    assert by_word["blick"]["frequency"] == "120" and by_word["blick"]["correct"] == "0"
    assert by_word["house"]["frequency"] == "0"


# ------------------------------------------------------------------------------------------------------- pairs


def test_pairs_manifest(tmp_path, shared_data):
    source = tmp_path / "minimal.jsonl"
    lines = [{"key": f"p{i}", "good": f"The cat sat on mat number {i}.", "bad": f"The cat sat mat on number {i}."}
             for i in range(3)]
    source.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    report = build_pairs(source, tmp_path / "out", VOICES, positive_col="good", negative_col="bad", id_col="key",
                         progress=False)
    folder = tmp_path / "out" / "minimal"
    columns, rows = read_csv(folder / "manifest.csv")
    assert columns == list(MANIFEST_COLUMNS)
    assert [r["id"] for r in rows] == [f"p{i}@{v}" for i in range(3) for v in VOICES]
    for row in rows:
        for column in ("positive", "negative"):
            assert OPAQUE.match(Path(row[column]).stem)
            check_wav(folder / row[column])
    assert len(storycloze_from_manifest(folder, folder / "manifest.csv").choices) == 6
    assert report.card == tmp_path / "out" / "dataset_card.json"


# --------------------------------------------------------------------------------------------------- bad input


def test_blimp_line_missing_a_field(tmp_path, shared_data):
    lines = (shared_data / "blimp" / "passive_1.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    item = json.loads(lines[2])
    del item["sentence_bad"]
    lines[2] = json.dumps(item)
    source = tmp_path / "broken.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"broken\.jsonl: line 3: missing field\(s\) sentence_bad"):
        build_sblimp([source], tmp_path / "out", ["en-us"], progress=False)
    assert not (tmp_path / "out").exists()  # nothing is written before the input is checked


def test_blimp_empty_sentence(tmp_path, shared_data):
    lines = (shared_data / "blimp" / "passive_1.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    item = json.loads(lines[1])
    item["sentence_good"] = "  "
    lines[1] = json.dumps(item)
    source = tmp_path / "blank.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"blank\.jsonl: line 2: empty 'sentence_good'"):
        build_sblimp([source], tmp_path / "out", ["en-us"], progress=False)


def test_storycloze_missing_column(tmp_path, shared_data):
    table = pd.read_csv(shared_data / "storycloze" / STORIES, nrows=3).drop(columns=["AnswerRightEnding"])
    source = tmp_path / "stories.csv"
    table.to_csv(source, index=False)
    with pytest.raises(UserError, match=r"stories\.csv: line 1: missing column\(s\) AnswerRightEnding"):
        build_storycloze(source, tmp_path / "out", ["en-us"], progress=False)


def test_storycloze_empty_sentence(tmp_path, shared_data):
    table = pd.read_csv(shared_data / "storycloze" / STORIES, nrows=4)
    table.loc[2, "InputSentence3"] = ""
    source = tmp_path / "stories.csv"
    table.to_csv(source, index=False)
    with pytest.raises(UserError, match=r"stories\.csv: line 4: empty 'InputSentence3'"):
        build_storycloze(source, tmp_path / "out", ["en-us"], progress=False)


def test_unknown_voice(tmp_path, shared_data):
    with pytest.raises(UserError, match="en-us\\+nosuch"):
        build_sblimp([shared_data / "blimp" / "passive_1.jsonl"], tmp_path, ["en-us", "en-us+nosuch"],
                     progress=False)
    with pytest.raises(UserError, match="xx-nowhere"):
        build_storycloze(shared_data / "storycloze" / STORIES, tmp_path, "xx-nowhere", progress=False)


def test_swuggy_bad_frequency_and_ipa(tmp_path):
    source = tmp_path / "words.csv"
    source.write_text("word,nonword,frequency\nbrick,blick,3\nhouse,mouse,often\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"words\.csv: line 3: frequency"):
        build_swuggy(source, tmp_path / "out", ["en-us"], progress=False)
    source.write_text("word,nonword\nb ɹ ɪ k,b l ɪ k\nh aʊ s,h ʘ s\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"words\.csv: line 3: nonword: .*ʘ"):
        build_swuggy(source, tmp_path / "out", ["en-us"], ipa=True, progress=False)


def test_pairs_missing_column(tmp_path):
    source = tmp_path / "pairs.csv"
    source.write_text("positive,wrong\na cat,cat a\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"pairs\.csv: line 1: missing column\(s\) negative"):
        build_pairs(source, tmp_path / "out", ["en-us"], progress=False)


def test_existing_output_needs_overwrite(tmp_path, shared_data):
    source = shared_data / "blimp" / "passive_1.jsonl"
    build_sblimp([source], tmp_path, ["en-us", "en-us+f3"], n_per_phenomenon=1, progress=False)
    folder = tmp_path / "syntactic" / "dev"
    with pytest.raises(UserError, match="--overwrite"):
        build_sblimp([source], tmp_path, ["en-us"], n_per_phenomenon=1, progress=False)
    build_sblimp([source], tmp_path, ["en-us"], n_per_phenomenon=1, overwrite=True, progress=False)
    _, rows = read_csv(folder / "gold.csv")
    assert {p.stem for p in folder.glob("*.wav")} == {r["filename"] for r in rows} and len(rows) == 2


# ---------------------------------------------------------------------------------------------- end to end


def test_built_sets_evaluate_end_to_end(sblimp, storycloze, tmp_path, shared_data, capsys):
    """The built sBLIMP, sSC and tSC sets go through `alignslm-eval` on a tiny TWIST-style checkpoint."""
    from alignslm_eval.cli.eval import main
    from tests.benchmark_fixtures import make_model_dir

    model = make_model_dir(shared_data, tmp_path / "model")
    args = ["--model", str(model), "--tasks", "sblimp,sstorycloze,tstorycloze",
            "--task-data", f"sblimp={sblimp[1][0] / 'syntactic'}", "--task-data", f"sstorycloze={storycloze[1][0] / 'sSC'}",
            "--task-data", f"tstorycloze={storycloze[1][0] / 'tSC'}", "--output-path", str(tmp_path / "runs")]
    assert main(args) == 0, capsys.readouterr().err
    results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
    assert results["tasks"]["sblimp"]["dataset"]["n_choices"] == 2 * 20 * len(VOICES)
    assert results["tasks"]["sstorycloze"]["dataset"]["n_choices"] == 20
    assert results["tasks"]["tstorycloze"]["dataset"]["n_choices"] == 20
    by_type = results["tasks"]["sblimp"]["result"]["breakdowns"]["by_type"]
    assert len(by_type) == 2 and all(m["n"] == 20 for m in by_type.values())


def test_output_blocked_by_a_file(tmp_path, shared_data):
    from alignslm_eval.builders.salmon import build_salmon

    source = shared_data / "blimp" / "passive_1.jsonl"
    (tmp_path / "syntactic").write_text("x")
    with pytest.raises(UserError, match=r"syntactic is a file, not a directory"):
        build_sblimp([source], tmp_path, ["en-us"], n_per_phenomenon=1, progress=False)
    (tmp_path / "card").mkdir()
    (tmp_path / "card" / "dataset_card.json").mkdir()
    with pytest.raises(UserError, match=r"dataset_card\.json is a folder"):
        build_sblimp([source], tmp_path / "card", ["en-us"], n_per_phenomenon=1, progress=False)
    with pytest.raises(UserError, match=r"--out .*: it is a file, not a directory"):
        build_salmon(["one two three four"], tmp_path / "syntactic")


def test_a_tsc_distractor_is_never_worded_as_the_right_ending(tmp_path, shared_data):
    table = pd.read_csv(shared_data / "storycloze" / STORIES, nrows=4)
    right = [f"RandomFifthSentenceQuiz{a}" for a in table["AnswerRightEnding"]]
    for i in range(3):  # three stories share one right ending; only the fourth's differs
        table.loc[i, right[i]] = "They went home."
    source = tmp_path / "stories.csv"
    table.to_csv(source, index=False)
    build_storycloze(source, tmp_path / "out", ["en-us"], progress=False)
    rows = read_csv(tmp_path / "out" / "tSC" / "transcripts.csv")[1]
    texts = {(r["storyid"], r["filename"].rsplit("_", 1)[1]): r["text"] for r in rows}
    assert len(texts) == 8
    for story_id in table["InputStoryid"]:
        assert texts[story_id, "correct.wav"] != texts[story_id, "incorrect.wav"]

    for i in range(4):
        table.loc[i, right[i]] = "They went home."
    table.to_csv(source, index=False)
    with pytest.raises(UserError, match=r"stories\.csv: every story has the same right ending"):
        build_storycloze(source, tmp_path / "again", ["en-us"], progress=False)
