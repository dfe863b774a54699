"""End to end through `alignslm-eval`: real speech, offline tokenizer, tiny TWIST-style checkpoint on disk."""

import csv
import json
from pathlib import Path

import pytest

from alignslm_eval.cli.eval import main
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.tokenizers.offline import OfflineTokenizer
from alignslm_eval.models.vocab import UnitVocabulary
from tests.benchmark_fixtures import make_benchmark, make_model_dir

TASKS = "swuggy,sblimp,sstorycloze"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, request):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("e2e")
    return make_benchmark(SHARED_DATA, root / "data"), make_model_dir(SHARED_DATA, root / "model")


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def eval_args(data, model, out, *extra):
    return ["--model", model, "--tasks", TASKS, "--data-root", data, "--output-path", out, *extra]


def results_of(out_dir: Path) -> dict:
    files = sorted(out_dir.glob("*/results_*.json"))
    assert files, f"no results under {out_dir}"
    return json.loads(files[-1].read_text())


def test_full_run_writes_every_file(setup, tmp_path, capsys):
    data, model = setup
    code, out, err = run(eval_args(data, model, tmp_path / "runs", "--log-samples"), capsys)
    assert code == 0, err
    assert "| swuggy | **accuracy** |" in out and "| sblimp | by_type: agreement |" in out
    res = results_of(tmp_path / "runs")
    assert res["schema_version"] == 1
    assert res["tokenizer"]["kind"] == "offline" and len(res["tokenizer"]["fingerprint"]) == 16
    assert res["model"]["vocab"]["convention"] == "twist" and res["model"]["weights_fingerprint"]
    assert res["environment"]["packages"]["torch"]
    for task, n_choices in (("swuggy", 6), ("sblimp", 2), ("sstorycloze", 2)):
        entry = res["tasks"][task]
        assert entry["dataset"]["n_choices"] == n_choices and len(entry["dataset"]["sha256"]) == 64
        assert entry["protocol"]["reduction"] in ("sum", "mean") and "add_bos" in entry["protocol"]
        headline = entry["result"]["metrics"][entry["result"]["headline"]]
        assert 0.0 <= headline["value"] <= 1.0
        samples = [json.loads(l) for l in open(entry["files"]["samples"])]
        assert len(samples) == n_choices and all(len(s["candidates"]) == 2 for s in samples)
    submission = Path(res["tasks"]["swuggy"]["files"]["submission"][0])
    assert submission.name == "dev.txt" and len(submission.read_text().splitlines()) == 12
    # The submission file re-scores to the same numbers through the standalone scorer.
    code, out, _ = run(["zerospeech-score", submission, "--gold", data / "lexical" / "dev", "--kind", "lexical",
                        "--output", tmp_path / "z.json"], capsys)
    assert code == 0
    rescored = json.loads((tmp_path / "z.json").read_text())["tasks"]["lexical"]["result"]["metrics"]
    assert rescored["accuracy"]["value"] == pytest.approx(
        res["tasks"]["swuggy"]["result"]["metrics"]["accuracy"]["value"])


def test_scores_do_not_depend_on_batch_size(setup, tmp_path, capsys):
    data, model = setup
    values = []
    for bs in (1, 7):
        out = tmp_path / f"bs{bs}"
        assert run(eval_args(data, model, out, "--batch-size", bs, "--log-samples"), capsys)[0] == 0
        res = results_of(out)
        samples = [json.loads(l) for l in open(res["tasks"]["sstorycloze"]["files"]["samples"])]
        values.append(([c["ll_sum"] for s in samples for c in s["candidates"]],
                       {t: e["result"]["metrics"] for t, e in res["tasks"].items()}))
    assert values[0][0] == pytest.approx(values[1][0], abs=1e-4)
    assert values[0][1] == values[1][1]


def test_interrupted_run_resumes_without_rescoring(setup, tmp_path, capsys, monkeypatch):
    data, model = setup
    calls = {"n": 0}
    original = HFUnitLM._score_batch

    def interrupt_on_third_batch(self, seqs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, seqs)

    monkeypatch.setattr(HFUnitLM, "_score_batch", interrupt_on_third_batch)
    code, _, err = run(eval_args(data, model, tmp_path / "r", "--batch-size", 2, "--tasks", "swuggy"), capsys)
    assert code == 130 and "rerun the same command to resume" in err
    log = next((tmp_path / "r").glob("*/items/swuggy-*.jsonl"))
    assert len(log.read_text().splitlines()) == 4  # two finished batches of two were kept
    scored = []
    monkeypatch.setattr(HFUnitLM, "_score_batch", lambda self, seqs: scored.append(len(seqs)) or original(self, seqs))
    code, _, err = run(eval_args(data, model, tmp_path / "r", "--batch-size", 2, "--tasks", "swuggy"), capsys)
    assert code == 0, err
    assert sum(scored) == 12 - 4
    keys = [json.loads(l)["key"] for l in log.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 12


def test_warm_unit_cache_skips_the_tokenizer(setup, tmp_path, capsys, monkeypatch):
    data, model = setup
    encoded = []
    original = OfflineTokenizer.encode
    monkeypatch.setattr(OfflineTokenizer, "encode", lambda self, wav: encoded.append(1) or original(self, wav))
    args = eval_args(data, model, tmp_path / "a", "--cache-dir", tmp_path / "cache")
    assert run(args, capsys)[0] == 0
    first = len(encoded)
    assert first == 12 + 4 + 4
    args = eval_args(data, model, tmp_path / "b", "--cache-dir", tmp_path / "cache")
    assert run(args, capsys)[0] == 0
    assert len(encoded) == first


def test_limit_and_overrides_are_recorded(setup, tmp_path, capsys):
    data, model = setup
    args = eval_args(data, model, tmp_path / "o", "--limit", 1, "--set", "sstorycloze.reduction=sum",
                     "--seed", 7)
    assert run(args, capsys)[0] == 0
    res = results_of(next((tmp_path / "o").iterdir()))  # under <model>/limit-1/
    assert res["seed"] == 7
    assert res["tasks"]["sstorycloze"]["protocol"]["reduction"] == "sum"
    assert all(t["dataset"]["n_choices"] == 1 and t["dataset"]["limit"] == 1 for t in res["tasks"].values())


def test_ls_lists_components(capsys):
    code, out, _ = run(["ls"], capsys)
    assert code == 0
    for name in ("swuggy", "sblimp", "sstorycloze", "tstorycloze", "salmon", "hf", "hubert", "offline",
                 "likelihood_choice"):
        assert name in out


def assert_one_line_error(code, err, *needles):
    assert code == 2
    # Progress bars may precede it; the error itself is the single last line.
    last = err.strip().splitlines()[-1]
    assert last.startswith("alignslm-eval: error: ") and err.count("alignslm-eval: error:") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in last


def copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_missing_data_root(setup, tmp_path, capsys):
    _, model = setup
    code, _, err = run(eval_args(tmp_path / "nowhere", model, tmp_path / "o"), capsys)
    assert_one_line_error(code, err, "nowhere", "does not exist")


def test_gold_missing_column(setup, tmp_path, capsys):
    data, model = setup
    data = copy_tree(data, tmp_path / "d")
    gold = data / "lexical" / "dev" / "gold.csv"
    rows = list(csv.reader(open(gold)))
    with open(gold, "w", newline="") as f:
        csv.writer(f).writerows([r[:3] + r[4:] for r in rows])  # drop "frequency"
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "swuggy"), capsys)
    assert_one_line_error(code, err, "gold.csv", "frequency")


def test_listed_wav_absent(setup, tmp_path, capsys):
    data, model = setup
    data = copy_tree(data, tmp_path / "d")
    (data / "lexical" / "dev" / "f003.wav").unlink()
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "swuggy"), capsys)
    assert_one_line_error(code, err, "f003")


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00garbage" * 10])
def test_corrupt_or_empty_wav(setup, tmp_path, capsys, content):
    data, model = setup
    data = copy_tree(data, tmp_path / "d")
    (data / "sSC" / "1_st2_incorrect.wav").write_bytes(content)
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "sstorycloze",
                                 "--cache-dir", tmp_path / "c"), capsys)
    assert_one_line_error(code, err, "1_st2_incorrect.wav")


def test_unit_outside_model_vocabulary(setup, tmp_path, capsys):
    data, model = setup
    model = copy_tree(model, tmp_path / "m")
    UnitVocabulary.twist(8, 4, 0, 2, 1).save(model)  # the model now knows 8 units; the tokenizer makes 16
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "sstorycloze",
                                 "--cache-dir", tmp_path / "c"), capsys)
    assert_one_line_error(code, err, "alignslm_tokenizer.json", "makes 16 units", "unit vocabulary has 8",
                          "--n-units 16")


def test_checkpoint_without_config(setup, tmp_path, capsys):
    data, model = setup
    model = copy_tree(model, tmp_path / "m")
    (model / "config.json").unlink()
    code, _, err = run(eval_args(data, model, tmp_path / "o"), capsys)
    assert_one_line_error(code, err, "config.json")


def test_unknown_task_and_bad_flags(setup, tmp_path, capsys):
    data, model = setup
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "nope"), capsys)
    assert_one_line_error(code, err, "unknown task")
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--set", "oops"), capsys)
    assert_one_line_error(code, err, "--set")


@pytest.mark.parametrize("extra, needles", [
    (["--tasks", ","], ["--tasks", "names no task"]),
    (["--set", "sblimp.split=dev", "--tasks", "swuggy"], ["--set for sblimp", "not among the tasks run"]),
    (["--n-units", "0"], ["--n-units 0"]),
    (["--unit-offset", "-5"], ["--unit-offset -5"]),
    (["--unit-offset", "7"], ["--unit-offset 7", "alignslm_units.json"]),
    (["--judge-base-url", "htp:/bad url"], ["--judge-base-url", "http"]),
    (["--judge-concurrency", "0"], ["--judge-concurrency 0"]),
    (["--judge-answer-pattern", "rate (\\d"], ["--judge-answer-pattern 'rate (\\d'", "not a valid regular expression"]),
    (["--asr-args", "language"], ["--asr-args", "key=value"]),
    (["--set", "swuggy.reductio=mean", "--tasks", "swuggy"], ["reductio", "'reduction'"]),
])
def test_bad_flags_fail_before_any_work(setup, tmp_path, capsys, extra, needles):
    data, model = setup
    code, _, err = run(eval_args(data, model, tmp_path / "o", *extra), capsys)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("results_*.json"))


@pytest.mark.parametrize("flag", ["--output-path", "--cache-dir", "--data-root"])
def test_a_file_where_a_directory_belongs_is_named(setup, tmp_path, capsys, flag):
    data, model = setup
    (tmp_path / "afile.txt").write_text("x")
    # argparse keeps the last value of a repeated flag
    code, _, err = run(eval_args(data, model, tmp_path / "o", flag, tmp_path / "afile.txt"), capsys)
    assert_one_line_error(code, err, flag, "afile.txt", "not a directory")
    # An input directory is never created for the user, so its message does not say it would be.
    assert ("(created if missing)" in err) == (flag != "--data-root")


def test_argparse_errors_are_one_line_too(setup, tmp_path, capsys):
    data, model = setup
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in eval_args(data, model, tmp_path / "o", "--dtype", "nonsense")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and "--dtype" in err and "--help" in err


def test_changing_the_reduction_reuses_the_scored_items(setup, tmp_path, capsys, monkeypatch):
    data, model = setup
    args = eval_args(data, model, tmp_path / "o", "--tasks", "sstorycloze", "--log-samples")
    assert run(args, capsys)[0] == 0
    monkeypatch.setattr(HFUnitLM, "_score_batch", lambda *a: pytest.fail("scored again"))
    assert run([*args, "--set", "sstorycloze.reduction=sum"], capsys)[0] == 0
    newest = sorted((tmp_path / "o").glob("*/results_*.json"))[-1]
    assert json.loads(newest.read_text())["tasks"]["sstorycloze"]["protocol"]["reduction"] == "sum"


@pytest.mark.parametrize("task, setting, needles", [
    ("sblimp", "reduction=median", ["sblimp.yaml with --set sblimp.reduction", "'sum' or 'mean'"]),
    ("continuation", "temperature=0", ["continuation: setting temperature=0 must be greater than 0"]),
    ("signal_quality", "scorers=silence_ratio", ["setting scorers='silence_ratio' must be a non-empty list",
                                                "--set signal_quality.scorers=[...]"]),
])
def test_bad_task_settings_fail_before_the_demo_is_built(tmp_path, capsys, monkeypatch, task, setting, needles):
    import alignslm_eval.demo

    monkeypatch.setattr(alignslm_eval.demo, "ensure_demo", lambda *a, **k: pytest.fail("demo built"))
    code, _, err = run(["--model", "demo", "--tasks", task, "--set", f"{task}.{setting}",
                        "--output-path", tmp_path / "o"], capsys)
    assert_one_line_error(code, err, *needles)


def test_nan_burst_in_a_benchmark_file_is_a_one_line_error(setup, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    data, model = setup
    data = copy_tree(data, tmp_path / "d")
    path = data / "lexical" / "dev" / "f004.wav"
    wav, sr = sf.read(str(path), dtype="float32")
    wav[100:2100] = np.nan
    sf.write(str(path), wav, sr, subtype="FLOAT")
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "swuggy", "--cache-dir", tmp_path / "c"),
                       capsys)
    assert_one_line_error(code, err, "f004.wav", "2000 of", "NaN or infinite")


def test_a_fifo_named_like_a_benchmark_file_is_refused_not_hashed_forever(setup, tmp_path, capsys):
    import os

    data, model = setup
    data = copy_tree(data, tmp_path / "d")
    (data / "sSC" / "1_st2_incorrect.wav").unlink()
    os.mkfifo(data / "sSC" / "1_st2_incorrect.wav")
    code, _, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "sstorycloze"), capsys)
    assert_one_line_error(code, err, "1_st2_incorrect.wav", "not a regular file")


def test_a_limit_run_writes_beside_the_full_run_never_over_it(setup, tmp_path, capsys):
    data, model = setup
    out = tmp_path / "o"
    assert run(eval_args(data, model, out, "--tasks", "swuggy", "--log-samples"), capsys)[0] == 0
    full = results_of(out)
    files = [Path(p) for p in (full["tasks"]["swuggy"]["files"]["samples"],
                               *full["tasks"]["swuggy"]["files"]["submission"])]
    before = {p: p.read_bytes() for p in files}
    assert run(eval_args(data, model, out, "--tasks", "swuggy", "--log-samples", "--limit", 2), capsys)[0] == 0
    assert {p: p.read_bytes() for p in files} == before  # the full run's files are untouched
    partial = json.loads(next(out.glob("*/limit-2/results_*.json")).read_text())
    assert partial["tasks"]["swuggy"]["dataset"]["limit"] == 2
    assert all("/limit-2/" in p for p in partial["tasks"]["swuggy"]["files"]["submission"])
    assert len(list(out.glob("*/results_*.json"))) == 1


def test_credentials_in_the_judge_url_reach_no_file_and_no_terminal(setup, tmp_path, capsys):
    data, model = setup
    url = "http://user:sk-userinfo-secret@127.0.0.1:9/v1?api-key=sk-query-secret"
    code, out, err = run(eval_args(data, model, tmp_path / "o", "--tasks", "sstorycloze", "--judge-base-url", url),
                         capsys)
    assert code == 0, err
    code, out2, err2 = run(eval_args(data, model, tmp_path / "o", "--tasks", "nope", "--judge-base-url", url), capsys)
    assert code == 2
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "o").rglob("*") if p.is_file())
    for text in (written, out, err, out2, err2):
        assert "secret" not in text
    assert "http://127.0.0.1:9/v1?api-key=***" in json.dumps(results_of(tmp_path / "o")["command"])
