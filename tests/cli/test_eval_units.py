"""Scoring from units: `alignslm-eval --units TASK=FILE` and `alignslm-eval units export`."""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.benchmark_fixtures import make_benchmark, make_model_dir
from tests.cli.test_eval import run
from tests.tiny_models import save_twist_llama

TASKS = "swuggy,sblimp,sstorycloze"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("units")
    return make_benchmark(SHARED_DATA, root / "data"), make_model_dir(SHARED_DATA, root / "model")


def newest(out_dir: Path) -> dict:
    return json.loads(sorted(out_dir.glob("*/results_*.json"))[-1].read_text())


def item_scores(results: dict) -> dict:
    out = {}
    for task, entry in results["tasks"].items():
        for line in Path(entry["files"]["samples"]).read_text().splitlines():
            for c in json.loads(line)["candidates"]:
                out[(task, c["key"])] = (c["ll_sum"], c["n_tokens"])
    return out


def test_exported_units_score_exactly_as_the_audio_they_came_from_with_no_tokenizer(setup, tmp_path, capsys):
    data, model = setup
    cache = tmp_path / "cache"
    base = ["--tasks", TASKS, "--data-root", data, "--cache-dir", cache, "--log-samples"]
    code, _, err = run(["--model", model, *base, "--output-path", tmp_path / "audio"], capsys)
    assert code == 0, err
    audio = newest(tmp_path / "audio")
    code, out, err = run(["units", "export", tmp_path / "audio" / "model", "--output", tmp_path / "units",
                          "--cache-dir", cache], capsys)
    assert code == 0, err
    files = {task: tmp_path / "units" / f"{task}.jsonl" for task in TASKS.split(",")}
    assert all(f.is_file() for f in files.values()) and out.count("units: ") == 3
    first = json.loads(files["swuggy"].read_text().splitlines()[0])
    assert set(first) == {"key", "file_name", "units", "duration"} and first["file_name"].endswith(".wav")
    # the units alone: a model dir without its tokenizer, and the audio of sWUGGY and sBLIMP gone
    bare = tmp_path / "bare-model"
    shutil.copytree(model, bare)
    (bare / "alignslm_tokenizer.json").unlink()
    data_copy = tmp_path / "data"
    shutil.copytree(data, data_copy)
    for wav in [*(data_copy / "lexical").rglob("*.wav"), *(data_copy / "syntactic").rglob("*.wav")]:
        wav.unlink()
    units_flags = [a for task, f in files.items() for a in ("--units", f"{task}={f}")]
    code, _, err = run(["--model", bare, "--tasks", TASKS, "--data-root", data_copy, "--log-samples",
                        "--output-path", tmp_path / "from-units", *units_flags], capsys)
    assert code == 0, err
    supplied = newest(tmp_path / "from-units")
    assert item_scores(supplied) == item_scores(audio)  # exactly: the same units, the same forward passes
    for task in TASKS.split(","):
        assert supplied["tasks"][task]["result"]["metrics"] == audio["tasks"][task]["result"]["metrics"]
        assert supplied["tasks"][task]["protocol"]["units"]["sha256"] == hashlib.sha256(
            files[task].read_bytes()).hexdigest()
    assert supplied["tokenizer"]["kind"] == "supplied units"


@pytest.fixture(scope="module")
def slamkit_task(tmp_path_factory):
    """A lexical split whose gold.csv names the two utterances of slamkit's example features, and no audio."""
    root = tmp_path_factory.mktemp("slamkit-units")
    split = root / "data" / "lexical" / "dev"
    split.mkdir(parents=True)
    with open(split / "gold.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"])
        w.writerow(["audio1", "w1", "v1", 3, "word", "w er d", 3, 1])
        w.writerow(["audio2", "w1", "v1", "", "wurd", "w er d", 3, 0])
    return root / "data", save_twist_llama(root / "twist")  # 500 units at offset 4, as TWIST's tokenizer makes


def test_slamkits_real_feature_file_scores_end_to_end(slamkit_task, shared_data, tmp_path, capsys):
    data, model = slamkit_task
    features = shared_data / "units" / "slamkit_features.jsonl"
    code, out, err = run(["--model", model, "--tasks", "swuggy", "--data-root", data, "--units", f"swuggy={features}",
                          "--output-path", tmp_path / "runs", "--log-samples"], capsys)
    assert code == 0, err
    results = newest(tmp_path / "runs")
    scored = item_scores(results)
    # 288 and 328 deduplicated units (shared/data/MANIFEST.md); BOS conditioned on, no EOS: one token per unit
    assert scored[("swuggy", "audio1")][1] == 288 and scored[("swuggy", "audio2")][1] == 328
    assert results["tasks"]["swuggy"]["result"]["metrics"]["accuracy"]["n"] == 1


def test_a_units_file_missing_an_item_is_a_one_line_error(slamkit_task, tmp_path, capsys):
    data, model = slamkit_task
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({"file_name": "audio1.flac", "units": [3, 4], "duration": [1, 2]}) + "\n")
    code, _, err = run(["--model", model, "--tasks", "swuggy", "--data-root", data, "--units", f"swuggy={partial}",
                        "--output-path", tmp_path / "runs"], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{partial}: no units for item audio2 (1 of 2 missing)" in err


def test_units_outside_the_vocabulary_are_a_one_line_error(setup, shared_data, tmp_path, capsys):
    data, model = setup  # a 16-unit model: slamkit's 500-unit ids do not fit
    features = shared_data / "units" / "slamkit_features.jsonl"
    records = [json.loads(line) for line in features.read_text().splitlines()]
    keyed = tmp_path / "keyed.jsonl"
    # name the real records after the first choice's two lexical items (--limit 1), so only the ids are wrong
    keyed.write_text("".join(json.dumps({**r, "key": k}) + "\n" for r, k in zip(records, ("f000", "f001"))))
    code, _, err = run(["--model", model, "--tasks", "swuggy", "--data-root", data, "--units", f"swuggy={keyed}",
                        "--limit", 1, "--output-path", tmp_path / "runs"], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{keyed}: item f000: unit id" in err and "outside the model's 16-unit vocabulary" in err
