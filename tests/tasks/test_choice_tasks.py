"""StoryCloze and SALMon task kinds, and the built-in task YAML files."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import alignslm_tasks
from alignslm_eval.api.registry import TASK_KINDS
from alignslm_eval.api.task import Task, TaskData, parse_spec
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.choice import likelihood_choice
from alignslm_tasks.choice import SALMON_PARTS, Salmon, StoryCloze

TASKS_DIR = Path(alignslm_tasks.__file__).parent


def write_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(160, dtype=np.float32), 16000)


def spec(name: str, **settings):
    base = parse_spec(TASKS_DIR / f"{name}.yaml")
    return replace(base, settings={**base.settings, **settings})


def aggregate(task: Task, data: TaskData, item_scores: dict[str, float]):
    scores = {c.id: likelihood_choice([item_scores[k] for k in c.candidates], c.positive) for c in data.choices}
    return task.aggregate(data, scores)


# ------------------------------------------------------------------------------------------------ task YAML files

EXPECTED = {
    "swuggy": ("zerospeech_lexical", "lexical", "sum"),
    "sblimp": ("zerospeech_syntactic", "syntactic", "sum"),
    "sstorycloze": ("storycloze", "sSC", "mean"),
    "tstorycloze": ("storycloze", "tSC", "mean"),
    "salmon": ("salmon", "salmon", "mean"),
}


def test_builtin_yaml_files_are_installed():
    assert set(EXPECTED) <= {p.stem for p in TASKS_DIR.glob("*.yaml")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_yaml_parses_and_its_kind_is_registered(name):
    s = parse_spec(TASKS_DIR / f"{name}.yaml")
    assert (s.name, s.kind, s.data_dir, s.reduction) == (name, *EXPECTED[name])
    assert s.scorer == "likelihood_choice"
    assert "arXiv:" in s.citation and s.description
    kind = TASK_KINDS.get(s.kind)
    assert issubclass(kind, Task)
    assert isinstance(kind(s), kind)


# ---------------------------------------------------------------------------------------------------- StoryCloze


def build_named_storycloze(root: Path) -> None:
    for stem in ("0_abc", "1_def", "nested/2_ghi"):
        write_wav(root / f"{stem}_correct.wav")
        write_wav(root / f"{stem}_incorrect.wav")
    write_wav(root / "notes" / "unrelated.wav")  # not part of the naming scheme: ignored


def test_storycloze_pairs_from_file_names(tmp_path):
    root = tmp_path / "sSC"
    build_named_storycloze(root)
    task = StoryCloze(spec("sstorycloze"))
    data = task.load(root)
    assert [c.id for c in data.choices] == ["0_abc", "1_def", "nested/2_ghi"]
    assert data.choices[2].candidates == ("nested/2_ghi_correct", "nested/2_ghi_incorrect")
    assert all(c.positive == 0 for c in data.choices)
    assert data.items["nested/2_ghi_incorrect"].path == root / "nested" / "2_ghi_incorrect.wav"
    assert len(data.items) == 6

    scores = {"0_abc_correct": -1.0, "0_abc_incorrect": -2.0, "1_def_correct": -3.0, "1_def_incorrect": -3.0,
              "nested/2_ghi_correct": -5.0, "nested/2_ghi_incorrect": -4.0}
    result = aggregate(task, data, scores)
    assert result.headline == "accuracy"
    acc = result.metrics["accuracy"]
    assert (acc.value, acc.n) == (pytest.approx(0.5), 3)
    assert acc.stderr == pytest.approx(statistics.stdev([1.0, 0.5, 0.0]) / math.sqrt(3))


@pytest.mark.parametrize("remove, present", [("incorrect", "correct"), ("correct", "incorrect")])
def test_storycloze_missing_twin_is_named(tmp_path, remove, present):
    root = tmp_path / "tSC"
    build_named_storycloze(root)
    (root / "1_def_" f"{remove}.wav").unlink()
    with pytest.raises(UserError, match=rf"1_def_{present}\.wav: no matching 1_def_{remove}\.wav"):
        StoryCloze(spec("tstorycloze")).load(root)


def test_storycloze_without_pairs(tmp_path):
    write_wav(tmp_path / "sSC" / "story.wav")
    with pytest.raises(UserError, match=r"sSC: no <n>_<storyid>_correct.wav"):
        StoryCloze(spec("sstorycloze")).load(tmp_path / "sSC")
    with pytest.raises(UserError, match=r"absent: sstorycloze data folder not found"):
        StoryCloze(spec("sstorycloze")).load(tmp_path / "absent")


def write_manifest(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_storycloze_manifest_csv_takes_precedence_over_names(tmp_path):
    root = tmp_path / "sSC"
    build_named_storycloze(root)
    write_wav(root / "audio" / "good.wav")
    write_wav(root / "audio" / "bad.flac")
    write_manifest(
        root / "manifest.csv",
        "id,positive,negative\np1,audio/good.wav,audio/bad.flac\np2,1_def_correct.wav,0_abc_correct.wav\n",
    )
    task = StoryCloze(spec("sstorycloze"))
    data = task.load(root)
    assert [(c.id, c.candidates) for c in data.choices] == [
        ("p1", ("audio/good", "audio/bad")),
        ("p2", ("1_def_correct", "0_abc_correct")),
    ]
    assert data.items["audio/bad"].path == root / "audio" / "bad.flac"
    assert data.metadata_files == [root / "manifest.csv"]
    scores = {"audio/good": -1.0, "audio/bad": -2.0, "1_def_correct": -9.0, "0_abc_correct": -1.0}
    result = aggregate(task, data, scores)
    assert result.metrics["accuracy"].value == pytest.approx(0.5)


def test_storycloze_manifest_setting_relative_and_absolute(tmp_path):
    root = tmp_path / "tSC"
    write_wav(root / "a.wav")
    write_wav(root / "b.wav")
    write_manifest(root / "lists" / "pairs.csv", "negative,id,positive\nb.wav,x,a.wav\n")
    data = StoryCloze(spec("tstorycloze", manifest="lists/pairs.csv")).load(root)
    assert [(c.id, c.candidates) for c in data.choices] == [("x", ("a", "b"))]
    outside = tmp_path / "elsewhere" / "pairs.csv"
    write_manifest(outside, f"id,positive,negative\ny,{root / 'b.wav'},a.wav\n")
    data = StoryCloze(spec("tstorycloze", manifest=str(outside))).load(root)
    assert [(c.id, c.candidates) for c in data.choices] == [("y", ("b", "a"))]
    assert data.metadata_files == [outside]


def test_storycloze_manifest_errors(tmp_path):
    root = tmp_path / "sSC"
    write_wav(root / "a.wav")
    write_wav(root / "b.wav")
    with pytest.raises(UserError, match=r"sstorycloze.yaml: settings.manifest: .*missing.csv not found"):
        StoryCloze(spec("sstorycloze", manifest="missing.csv")).load(root)
    write_manifest(root / "manifest.csv", "id,positive\nx,a.wav\n")
    with pytest.raises(UserError, match=r"manifest.csv: missing column\(s\) negative"):
        StoryCloze(spec("sstorycloze")).load(root)
    write_manifest(root / "manifest.csv", "id,positive,negative\nx,a.wav,b.wav\ny,a.wav,c.wav\n")
    with pytest.raises(UserError, match=r"manifest.csv: line 3: negative file .*c.wav not found"):
        StoryCloze(spec("sstorycloze")).load(root)
    write_manifest(root / "manifest.csv", "id,positive,negative\nx,a.wav,b.wav\nx,b.wav,a.wav\n")
    with pytest.raises(UserError, match=r"manifest.csv: line 3: id 'x' already used on line 2"):
        StoryCloze(spec("sstorycloze")).load(root)
    with pytest.raises(UserError, match=r"unknown setting\(s\) \['parts'\]"):
        StoryCloze(spec("sstorycloze", parts="all"))


# -------------------------------------------------------------------------------------------------------- SALMon

# part -> sample index -> candidate scores by k (k = 0 is the positive)
SALMON_SCORES = {
    "speaker_consistency": {
        0: {0: -1.0, 1: -2.0, 2: -3.0},
        1: {0: -2.0, 1: -1.0, 2: -3.0},
        2: {0: -1.0, 1: -1.0, 2: -5.0},
    },
    "gender_consistency": {0: {0: -1.0, 1: -2.0, 2: -2.0}, 1: {0: -1.0, 1: -3.0}, 12: {0: -1.0, 2: -4.0, 10: -0.5}},
}
# per part: speaker 1, 0, 0.5 -> 0.5; gender 1, 1, 0 -> 2/3


def build_salmon(root: Path, scores=SALMON_SCORES) -> dict[str, float]:
    item_scores = {}
    for part, samples in scores.items():
        for idx, by_k in samples.items():
            for k, score in by_k.items():
                write_wav(root / part / f"sample_{idx}_{k}.wav")
                item_scores[f"{part}/sample_{idx}_{k}"] = score
    return item_scores


def test_salmon_multi_candidate_choices_and_macro_accuracy(tmp_path):
    root = tmp_path / "salmon"
    item_scores = build_salmon(root)
    task = Salmon(spec("salmon", parts=["speaker_consistency", "gender_consistency"]))
    data = task.load(root)
    by_id = {c.id: c for c in data.choices}
    assert sorted(by_id) == sorted(f"{p}/sample_{i}" for p, s in SALMON_SCORES.items() for i in s)
    # candidates sorted by k numerically (10 after 2), the positive first
    assert by_id["gender_consistency/sample_12"].candidates == (
        "gender_consistency/sample_12_0", "gender_consistency/sample_12_2", "gender_consistency/sample_12_10")
    assert by_id["speaker_consistency/sample_0"].meta == {"part": "speaker_consistency", "sample": 0}
    assert len(by_id["speaker_consistency/sample_1"].candidates) == 3

    result = aggregate(task, data, item_scores)
    by_part = result.breakdowns["by_part"]
    assert list(by_part) == ["gender_consistency", "speaker_consistency"]
    assert (by_part["speaker_consistency"].value, by_part["speaker_consistency"].n) == (pytest.approx(0.5), 3)
    assert (by_part["gender_consistency"].value, by_part["gender_consistency"].n) == (pytest.approx(2 / 3), 3)
    assert result.headline == "accuracy"
    macro = result.metrics["accuracy"]
    assert macro.value == pytest.approx((0.5 + 2 / 3) / 2)
    assert macro.n == 6
    se = [statistics.stdev(v) / math.sqrt(3) for v in ([1.0, 0.0, 0.5], [1.0, 1.0, 0.0])]
    assert macro.stderr == pytest.approx(math.sqrt(se[0] ** 2 + se[1] ** 2) / 2)
    micro = result.metrics["accuracy_micro"]
    assert (micro.value, micro.n) == (pytest.approx(3.5 / 6), 6)


def test_salmon_missing_part_lists_present_ones(tmp_path):
    root = tmp_path / "salmon"
    build_salmon(root)
    with pytest.raises(UserError) as err:
        Salmon(spec("salmon")).load(root)
    message = str(err.value)
    assert "bg_alignment" in message and "speaker_consistency, " not in message.split("present:")[0]
    assert "present: gender_consistency, speaker_consistency" in message
    assert "--set salmon.parts=gender_consistency,speaker_consistency" in message


def test_salmon_parts_setting(tmp_path):
    root = tmp_path / "salmon"
    build_salmon(root)
    data = Salmon(spec("salmon", parts="speaker_consistency")).load(root)
    assert {c.meta["part"] for c in data.choices} == {"speaker_consistency"}
    assert Salmon(spec("salmon")).parts == SALMON_PARTS
    with pytest.raises(UserError, match=r"salmon.yaml: settings.parts: unknown part\(s\) speaker; choose 'all' or"):
        Salmon(spec("salmon", parts=["speaker"]))
    with pytest.raises(UserError, match=r"salmon.yaml: settings.parts must be a list"):
        Salmon(spec("salmon", parts=3))


def test_salmon_bad_files(tmp_path):
    root = tmp_path / "salmon"
    build_salmon(root, {"rir_consistency": {0: {0: -1.0, 1: -2.0}}})
    task = Salmon(spec("salmon", parts=["rir_consistency"]))
    write_wav(root / "rir_consistency" / "sample_1_1.wav")
    with pytest.raises(UserError, match=r"rir_consistency: sample 1 needs sample_1_0.wav .*found k = \[1\]"):
        task.load(root)
    (root / "rir_consistency" / "sample_1_1.wav").unlink()
    write_wav(root / "rir_consistency" / "sample_0_01.wav")
    with pytest.raises(UserError, match=r"sample_0_0?1.wav: same sample and candidate numbers as .*sample_0_0?1.wav"):
        task.load(root)
    (root / "rir_consistency" / "sample_0_01.wav").unlink()
    write_wav(root / "rir_consistency" / "readme.wav")
    with pytest.raises(UserError, match=r"readme.wav: not a SALMon sample name"):
        task.load(root)


# ------------------------------------------------- candidates that are one file, paths outside the data folder


def write_tone(path: Path, hz: float) -> None:
    """A wav whose bytes differ from write_wav's silence and from other frequencies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.sin(np.arange(160, dtype=np.float32) * hz / 16000).astype(np.float32), 16000)


def manifest_root(tmp_path: Path) -> Path:
    root = tmp_path / "sSC"
    write_tone(root / "a.wav", 100)
    write_tone(root / "b.wav", 200)
    (root / "sub").mkdir()
    return root


@pytest.mark.parametrize("spelling", ["a.wav", "./sub/../a.wav", "sub//../a.wav", "symlink", "hardlink", "absolute"])
def test_storycloze_manifest_row_pairing_a_file_with_itself_is_refused(tmp_path, spelling):
    root = manifest_root(tmp_path)
    if spelling == "symlink":
        (root / "sub" / "link.wav").symlink_to(root / "a.wav")
        spelling = "sub/link.wav"
    elif spelling == "hardlink":
        (root / "copy.wav").hardlink_to(root / "a.wav")
        spelling = "copy.wav"
    elif spelling == "absolute":
        spelling = str(root / "a.wav")
    write_manifest(root / "manifest.csv", f"id,positive,negative\nok,a.wav,b.wav\nself,a.wav,{spelling}\n")
    with pytest.raises(UserError) as err:
        StoryCloze(spec("sstorycloze")).load(root)
    message = str(err.value)
    assert message.startswith(f"{root / 'manifest.csv'}: line 3: positive 'a.wav' and negative {spelling!r} are the "
                              "same file on disk")
    assert "two different recordings" in message and "\n" not in message


@pytest.mark.parametrize("where", ["../outside.wav", "sub/../../outside.wav", "absolute", "symlinked-absolute"])
def test_storycloze_manifest_path_outside_the_data_folder_is_refused(tmp_path, where):
    root = manifest_root(tmp_path)
    write_tone(tmp_path / "outside.wav", 300)  # exists: only the check stops it from being read
    if where == "absolute":
        where = str(tmp_path / "outside.wav")
    elif where == "symlinked-absolute":
        (tmp_path / "alias").symlink_to(tmp_path)  # outside however it is spelled
        where = str(tmp_path / "alias" / "outside.wav")
    write_manifest(root / "manifest.csv", f"id,positive,negative\nok,a.wav,b.wav\nout,a.wav,{where}\n")
    with pytest.raises(UserError) as err:
        StoryCloze(spec("sstorycloze")).load(root)
    message = str(err.value)
    assert message.startswith(f"{root / 'manifest.csv'}: line 3: negative path {where!r} is outside the data folder "
                              f"{root}; move the audio under it")
    assert "\n" not in message


def test_storycloze_manifest_paths_inside_the_data_folder_under_any_spelling(tmp_path):
    root = manifest_root(tmp_path)
    (tmp_path / "alias").symlink_to(root)
    # `sub/../b.wav` folds to b.wav (one item, not two); an absolute path through a link to the data folder is inside
    write_manifest(root / "manifest.csv",
                   f"id,positive,negative\np,a.wav,sub/../b.wav\nq,{tmp_path / 'alias' / 'b.wav'},./a.wav\n")
    data = StoryCloze(spec("sstorycloze")).load(root)
    assert data.choices[0].candidates == ("a", "b")
    assert data.items["b"].path == root / "b.wav"
    assert data.choices[1].candidates[1] == "a"
    assert data.items[data.choices[1].candidates[0]].path == tmp_path / "alias" / "b.wav"


def test_storycloze_identical_audio_under_two_names_warns(tmp_path, caplog, monkeypatch):
    import alignslm_tasks.choice as choice_module

    root = manifest_root(tmp_path)
    write_tone(root / "a_copy.wav", 100)
    write_tone(root / "long.wav", 100)
    with sf.SoundFile(root / "long.wav", "r+") as f:  # a different size: never hashed
        f.seek(0, sf.SEEK_END)
        f.write(np.zeros(16, dtype=np.float32))
    hashed = []

    def counting_sha256(path: Path) -> str:
        hashed.append(Path(path).name)
        return file_sha256(path)

    monkeypatch.setattr(choice_module, "file_sha256", counting_sha256)
    write_manifest(root / "manifest.csv",
                   "id,positive,negative\nfine,a.wav,long.wav\ndup,a.wav,a_copy.wav\nalso,b.wav,a.wav\n")
    with caplog.at_level("WARNING", logger="alignslm_tasks.choice"):
        data = StoryCloze(spec("sstorycloze")).load(root)
    assert len(data.choices) == 3  # not refused: two files, but the warning says they cannot be told apart
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"{root / 'manifest.csv'}: 1 choice(s) compare two files with identical audio, e.g. line 3 (dup): a.wav and "
        "a_copy.wav; each scores 0.5 whatever the model")
    assert "long.wav" not in hashed and sorted(hashed) == ["a.wav", "a.wav", "a_copy.wav", "b.wav"]


def test_storycloze_names_linked_twin_is_refused(tmp_path):
    root = tmp_path / "sSC"
    build_named_storycloze(root)
    (root / "1_def_incorrect.wav").unlink()
    (root / "1_def_incorrect.wav").symlink_to(root / "1_def_correct.wav")
    with pytest.raises(UserError, match=r"1_def_incorrect\.wav: the same file on disk as .*1_def_correct\.wav \(a "):
        StoryCloze(spec("sstorycloze")).load(root)


def test_salmon_linked_candidate_is_refused_and_identical_audio_warns(tmp_path, caplog):
    root = tmp_path / "salmon"
    build_salmon(root, {"rir_consistency": {0: {0: -1.0, 1: -2.0, 2: -3.0}, 1: {0: -1.0, 1: -2.0}}})
    task = Salmon(spec("salmon", parts=["rir_consistency"]))
    for idx, k in ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1)):
        write_tone(root / "rir_consistency" / f"sample_{idx}_{k}.wav", 50 + 10 * idx + k)
    with caplog.at_level("WARNING", logger="alignslm_tasks.choice"):
        task.load(root)
    assert caplog.records == []
    write_tone(root / "rir_consistency" / "sample_1_1.wav", 60)  # the same bytes as sample_1_0.wav
    with caplog.at_level("WARNING", logger="alignslm_tasks.choice"):
        task.load(root)
    assert "1 choice(s) compare two files with identical audio, e.g. rir_consistency/sample_1: sample_1_0.wav and " \
           "sample_1_1.wav" in caplog.text
    (root / "rir_consistency" / "sample_0_2.wav").unlink()
    (root / "rir_consistency" / "sample_0_2.wav").symlink_to("sample_0_0.wav")
    with pytest.raises(UserError, match=r"sample_0_2\.wav: the same file on disk as .*sample_0_0\.wav \(a link\); "
                                        r"sample 0 would compare a recording with itself"):
        task.load(root)


def test_storycloze_names_dangling_link_is_named(tmp_path):
    root = tmp_path / "sSC"
    build_named_storycloze(root)
    (root / "0_abc_incorrect.wav").unlink()
    (root / "0_abc_incorrect.wav").symlink_to(tmp_path / "gone.wav")
    with pytest.raises(UserError, match=r"0_abc_incorrect\.wav: cannot read file \(No such file or directory\); "
                                        r"restore it or remove it"):
        StoryCloze(spec("sstorycloze")).load(root)
