"""The continuation pipeline end to end: real speech prompts -> tiny unit LM -> Griffin-Lim -> pocketsphinx ->
GenPPL (tiny text LM), auto-BLEU, silence; resuming, re-scoring, prompt cutting."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from alignslm_eval.cli.eval import main
from alignslm_eval.evaluate.continuation_store import find_prompts
from alignslm_eval.demo.train_lm import train_text_lm
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from tests.benchmark_fixtures import make_model_dir, make_prompts


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    root = tmp_path_factory.mktemp("cont")
    model = make_model_dir(SHARED_DATA, root / "model")
    make_prompts(SHARED_DATA, root / "data" / "prompts")
    text_lm = root / "text_lm"
    train_text_lm(["if the reader will excuse me", "i will say nothing of my antecedents",
                   "nor of the circumstances which led me"], text_lm, steps=20)
    return root, model, text_lm


def run_eval(root, model, text_lm, out, *extra):
    args = ["--model", str(model), "--tasks", "continuation,signal_quality", "--data-root", str(root / "data"),
            "--text-lm", str(text_lm), "--output-path", str(out), "--set", "continuation.max_new_tokens=40",
            "--set", "signal_quality.max_new_tokens=40", "--log-samples", *extra]
    return main(args)


def test_pipeline_writes_scores_and_samples(setup, tmp_path, capsys):
    root, model, text_lm = setup
    assert run_eval(root, model, text_lm, tmp_path / "runs") == 0, capsys.readouterr().err
    results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
    cont = results["tasks"]["continuation"]
    assert set(cont["result"]["metrics"]) == {"genppl", "auto_bleu"}
    assert "pocketsphinx" in json.dumps(cont["pipeline"]["asr"]) and "griffin_lim" in json.dumps(cont["pipeline"])
    assert cont["pipeline"]["scorers"]["genppl"]["direction"] == "lower"
    assert cont["pipeline"]["sampling"]["max_new_tokens"] == 40
    quality = results["tasks"]["signal_quality"]
    # The two tasks sample with the same settings, so they share one run of continuations, and one prompt set.
    assert quality["pipeline"]["run_dir"] == cont["pipeline"]["run_dir"]
    assert len(cont["dataset"]["sha256"]) == 64 and quality["dataset"]["sha256"] == cont["dataset"]["sha256"]
    # The hash follows the prompts' audio: another prompt set, another hash.
    from alignslm_eval.evaluate.continuation_store import ContinuationRun, find_prompts

    run = ContinuationRun(Path(cont["pipeline"]["run_dir"]))
    prompts = find_prompts(root / "data" / "prompts", 3.0)
    assert run.dataset_sha256(prompts) == cont["dataset"]["sha256"] != run.dataset_sha256(prompts[:-1])
    rows = [json.loads(l) for l in open(cont["files"]["samples"])]
    assert len(rows) == 3
    for row in rows:
        assert Path(row["wav"]).is_file() and row["text"] is not None and row["prompt_text"] is not None
        assert set(row["scores"]) == {"genppl", "auto_bleu"}
        wav, rate = sf.read(row["wav"])
        assert rate == 16000
        # Saved durations are the ones the vocoder used: one per unit, and they fix the wav's length.
        assert len(row["durations"]) == len(row["units"])
        assert len(wav) == sum(row["durations"]) * cont["pipeline"]["vocoder"]["hop"]
    out = capsys.readouterr().out
    assert "| continuation | **genppl** |" in out and "%" not in out.split("| continuation | **genppl** |")[1].split("\n")[0]


def test_genppl_prompt_setting_is_a_task_setting_and_recorded(setup, tmp_path, capsys):
    root, model, text_lm = setup
    values = {}
    for include in ("false", "true"):
        args = ["--model", str(model), "--tasks", "continuation", "--data-root", str(root / "data"), "--text-lm",
                str(text_lm), "--output-path", str(tmp_path / include), "--set", "continuation.max_new_tokens=40",
                "--set", f"continuation.genppl_include_prompt={include}"]
        assert main(args) == 0, capsys.readouterr().err
        entry = json.loads(next((tmp_path / include / "model").glob("results_*.json")).read_text())["tasks"]["continuation"]
        assert entry["pipeline"]["scorers"]["genppl"]["include_prompt"] is (include == "true")
        assert entry["protocol"]["settings"]["genppl_include_prompt"] is (include == "true")
        values[include] = entry["result"]["metrics"]["genppl"]["value"]
    assert values["false"] != values["true"]
    assert main(["--model", str(model), "--tasks", "continuation", "--data-root", str(root / "data"), "--text-lm",
                 str(text_lm), "--set", "continuation.genppl_include_promt=true"]) == 2
    assert "genppl_include_prompt" in capsys.readouterr().err.strip().splitlines()[-1]


def test_with_an_alignment_the_asr_is_checked_against_the_prompt_transcripts(setup, tmp_path, capsys):
    import shutil as sh

    root, model, text_lm = setup
    data = tmp_path / "data"
    sh.copytree(root / "data", data)
    # p0 is the opening of LibriSpeech 2412-153948-0000: "if the reader will excuse me i will say ..."
    words = "if the reader will excuse me i will say nothing".split()
    (data / "prompts" / "alignment.ctm").write_text(
        "".join(f"p0 1 {0.3 * i:.2f} 0.28 {w}\n" for i, w in enumerate(words)))
    args = ["--model", str(model), "--tasks", "continuation", "--data-root", str(data), "--text-lm", str(text_lm),
            "--output-path", str(tmp_path / "runs"), "--set", "continuation.max_new_tokens=20"]
    assert main(args) == 0, capsys.readouterr().err
    entry = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())["tasks"]["continuation"]
    check = entry["pipeline"]["asr_prompt_error_rate"]
    print("pocketsphinx WER on the aligned prompt:", check["wer"])
    assert check["n_utterances"] == 1 and check["reference_words"] == 10 and 0 <= check["wer"] < 1.0


def test_rerun_resamples_nothing_and_rescoring_needs_no_model(setup, tmp_path, capsys, monkeypatch):
    root, model, text_lm = setup
    assert run_eval(root, model, text_lm, tmp_path / "runs") == 0
    monkeypatch.setattr(HFUnitLM, "generate", lambda *a, **k: pytest.fail("sampled again"))
    assert run_eval(root, model, text_lm, tmp_path / "runs") == 0
    results = json.loads(sorted((tmp_path / "runs" / "model").glob("results_*.json"))[-1].read_text())
    run_dir = results["tasks"]["continuation"]["pipeline"]["run_dir"]
    monkeypatch.setattr(HFUnitLM, "from_args", lambda *a, **k: pytest.fail("loaded a model"))
    code = main(["score", run_dir, "--scorers", "auto_bleu,silence_ratio", "--output", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr().err
    rescored = json.loads((tmp_path / "r.json").read_text())["tasks"]["rescore"]
    assert set(rescored["result"]["metrics"]) == {"auto_bleu", "silence_ratio"}
    original = results["tasks"]["continuation"]["result"]["metrics"]["auto_bleu"]
    assert rescored["result"]["metrics"]["auto_bleu"] == original
    # The re-scoring records its metrics' kinds as the first run does, so the leaderboard reads both alike.
    assert rescored["metric_info"]["auto_bleu"] == results["tasks"]["continuation"]["metric_info"]["auto_bleu"]
    assert rescored["metric_info"]["silence_ratio"]["direction"] == "lower"
    # A MOS predictor added afterwards rates the stored audio.
    from tests.tiny_models import save_utmos

    checkpoint = save_utmos(tmp_path / "utmos.pt", "speechmos")
    code = main(["score", run_dir, "--scorers", "utmos", "--mos-checkpoint", str(checkpoint), "--output",
                 str(tmp_path / "u.json")])
    assert code == 0, capsys.readouterr().err
    utmos = json.loads((tmp_path / "u.json").read_text())["tasks"]["rescore"]["result"]["metrics"]["utmos"]
    assert utmos["n"] > 0 and math.isfinite(utmos["value"])


def test_rescoring_reuses_the_runs_own_wavs_and_transcripts_without_loading_their_makers(
        setup, tmp_path, capsys, monkeypatch):
    from alignslm_eval.asr.sphinx import PocketSphinxASR
    from alignslm_eval.vocoders.griffin_lim import GriffinLimVocoder

    root, model, text_lm = setup
    assert run_eval(root, model, text_lm, tmp_path / "runs") == 0
    results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
    entry = results["tasks"]["continuation"]
    run_dir = entry["pipeline"]["run_dir"]
    monkeypatch.setattr(PocketSphinxASR, "__init__", lambda *a, **k: pytest.fail("loaded the ASR"))
    monkeypatch.setattr(GriffinLimVocoder, "from_args", lambda *a, **k: pytest.fail("loaded the vocoder"))
    import shutil

    shutil.rmtree(Path(run_dir) / "scores")  # so GenPPL is computed again, from the reused transcripts
    out = tmp_path / "new" / "r.json"  # a folder that does not exist yet
    code = main(["score", run_dir, "--scorers", "genppl,auto_bleu", "--text-lm", str(text_lm), "--output", str(out),
                 "--log-samples", "--set", "auto_bleu_n=3"])
    assert code == 0, capsys.readouterr().err
    rescored = json.loads(out.read_text())["tasks"]["rescore"]
    assert rescored["pipeline"]["asr"] == entry["pipeline"]["asr"]
    assert rescored["pipeline"]["vocoder"] == entry["pipeline"]["vocoder"]
    assert rescored["settings"] == {"auto_bleu_n": 3} and rescored["pipeline"]["scorers"]["auto_bleu"]["n"] == 3
    # Same transcripts, same GenPPL setting: the same scores as the run's own.
    assert rescored["result"]["metrics"]["genppl"] == entry["result"]["metrics"]["genppl"]
    samples = [json.loads(line) for line in open(rescored["files"]["samples"])]
    original = [json.loads(line) for line in open(entry["files"]["samples"])]
    assert [(r["prompt_text"], r["text"], r["wav"]) for r in samples] == \
        [(r["prompt_text"], r["text"], r["wav"]) for r in original]
    assert all(set(r["scores"]) == {"genppl", "auto_bleu"} for r in samples)

    for setting, message in (("auto_blue_n=3", "--set auto_blue_n: not a setting of the scorers auto_bleu (theirs: "
                                                "auto_bleu_n"),
                             ("auto_bleu_n=three", "setting auto_bleu_n='three': must be an integer"),
                             ("auto_bleu_n=0", "setting auto_bleu_n=0: must be an integer")):
        code = main(["score", run_dir, "--scorers", "auto_bleu", "--set", setting])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in err[-1], err[-1]
    code = main(["score", run_dir, "--scorers", "genppl", "--text-lm", str(text_lm), "--set",
                 "genppl_include_prompt=maybe"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "setting genppl_include_prompt='maybe': must be true or false" in err[-1]


def test_another_vocoder_gets_its_own_transcripts_and_then_a_choice_is_needed(setup, tmp_path, capsys, monkeypatch):
    from alignslm_eval.asr.sphinx import PocketSphinxASR

    root, model, text_lm = setup
    assert run_eval(root, model, text_lm, tmp_path / "runs") == 0
    entry = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())["tasks"]["continuation"]
    run_dir = Path(entry["pipeline"]["run_dir"])
    heard: list[int] = []
    transcribe = PocketSphinxASR.transcribe
    monkeypatch.setattr(PocketSphinxASR, "transcribe", lambda self, wavs: heard.append(len(wavs)) or transcribe(self, wavs))
    out = tmp_path / "r.json"
    vocoder = f"griffin_lim:{model / 'tokenizer.npz'}"
    args = ["score", str(run_dir), "--scorers", "auto_bleu", "--vocoder", vocoder, "--vocoder-args", "n_iter=2",
            "--output", str(out), "--log-samples"]
    # New wavs need transcribing: the run's recorded ASR is only a record, so the ASR must be named.
    assert main(args) == 2 and "pass --asr to transcribe" in capsys.readouterr().err.strip().splitlines()[-1]
    code = main([*args, "--asr", "pocketsphinx"])
    assert code == 0, capsys.readouterr().err
    rescored = json.loads(out.read_text())["tasks"]["rescore"]
    assert rescored["pipeline"]["vocoder"]["n_iter"] == 2 != entry["pipeline"]["vocoder"]["n_iter"]
    # Every new wav was transcribed (prompts were not: their audio is the same), and each row's text is its own wav's.
    n_samples = entry["dataset"]["n_samples"]
    assert sum(heard) == n_samples
    from alignslm_eval.evaluate.continuation_store import read_generated

    rows = [json.loads(line) for line in open(rescored["files"]["samples"])]
    old_wavs = {json.loads(line)["wav"] for line in open(entry["files"]["samples"])}
    assert all(r["wav"] not in old_wavs for r in rows)
    assert [r["text"] for r in rows] == transcribe(PocketSphinxASR(), [read_generated(r["wav"]) for r in rows])

    # The run now holds two vocoders' wavs: re-scoring must be told which.
    code = main(["score", str(run_dir), "--scorers", "auto_bleu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "holds the output of 2 vocoders" in err[-1] and "pass --vocoder" in err[-1]
    # A record cut short by a kill is named, not a traceback.
    record = next(run_dir.glob("wav/*/vocoder.json"))
    record.write_text('{"kind": "griffin')
    code = main(["score", str(run_dir), "--scorers", "auto_bleu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and f"{record}: not valid JSON" in err[-1] and "pass --vocoder" in err[-1]


def test_continuations_are_reproducible_and_independent_of_other_prompts(setup):
    root, model, _ = setup
    from alignslm_eval.api.model import SamplingConfig

    lm = HFUnitLM.from_args(str(model))
    prompt = np.arange(30) % 16
    config = SamplingConfig(n=4, max_new_tokens=20)
    [first] = lm.generate([prompt], config, seeds=[11])
    lm.generate([np.arange(5)], config, seeds=[3])  # another prompt in between
    again = lm.generate([np.arange(5), prompt], config, seeds=[3, 11])[1]  # and beside it in one batch
    assert len(first) == 4 and all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(c.min() >= 0 and c.max() < lm.vocab.n_units for c in first if len(c))


def test_eval_batch_size_sets_prompts_per_sampling_batch_and_changes_no_result(setup, tmp_path, monkeypatch):
    root, model, text_lm = setup
    calls = []
    original = HFUnitLM.generate

    def counting(self, prompts, *a, **k):
        calls.append(len(prompts))
        return original(self, prompts, *a, **k)

    monkeypatch.setattr(HFUnitLM, "generate", counting)
    results = {}
    for batch in (1, 3):
        calls.clear()
        assert run_eval(root, model, text_lm, tmp_path / f"b{batch}", "--batch-size", str(batch)) == 0
        assert max(calls) == min(batch, 3)
        doc = json.loads(next((tmp_path / f"b{batch}" / "model").glob("results_*.json")).read_text())
        results[batch] = {name: entry["result"] for name, entry in doc["tasks"].items()}
        samples = sorted((tmp_path / f"b{batch}" / "model" / "continuations").glob("*/samples.jsonl"))
        results[batch]["samples"] = [path.read_text() for path in samples]
    assert results[1] == results[3]


def test_sampling_in_batches_keeps_samples_and_rows_and_resumes_after_a_failed_batch(setup, tmp_path, monkeypatch):
    from alignslm_eval.api.model import SamplingConfig
    from alignslm_eval.evaluate.continuation_store import ContinuationRun
    from alignslm_eval.tokenizers.offline import OfflineTokenizer

    root, model, _ = setup
    lm = HFUnitLM.from_args(str(model))
    tokenizer = OfflineTokenizer.load(model / "tokenizer.npz")
    prompts = find_prompts(root / "data" / "prompts", 3.0)
    config = SamplingConfig(n=2, max_new_tokens=12)

    def rows(run):
        return [json.loads(line) for line in open(run.root / "samples.jsonl")]

    one_by_one = ContinuationRun.create(tmp_path / "single", lm, tokenizer, config)
    one_by_one.sample(prompts, lm, tokenizer, prompts_per_batch=1)
    together = ContinuationRun.create(tmp_path / "batched", lm, tokenizer, config)
    items = together.sample(prompts, lm, tokenizer, prompts_per_batch=3)
    assert rows(together) == rows(one_by_one) and len(rows(together)) == len(prompts) == 3
    assert [(i.prompt_id, i.sample) for i in items] == [(p.id, k) for p in prompts for k in range(2)]
    assert list(rows(together)[0]) == ["prompt_id", "audio", "audio_sha256", "cut_s", "requested_cut_s", "reference",
                                       "prompt_units", "seed", "continuations"]
    # The sampler is part of the run's identity, so samples of another sampler never land in this directory.
    assert together.identity["sampler"] == HFUnitLM.sampler == "alignslm per-row v1"

    # Killed during the second batch: the first batch's prompts are on disk and are not sampled again.
    generate, calls = HFUnitLM.generate, []

    def fails_on_second_batch(self, batch, *args):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return generate(self, batch, *args)

    monkeypatch.setattr(HFUnitLM, "generate", fails_on_second_batch)
    resumed = ContinuationRun.create(tmp_path / "resumed", lm, tokenizer, config)
    with pytest.raises(KeyboardInterrupt):
        resumed.sample(prompts, lm, tokenizer, prompts_per_batch=2)
    assert rows(resumed) == rows(one_by_one)[:2]
    resumed.sample(prompts, lm, tokenizer, prompts_per_batch=2)
    assert calls == [2, 1, 1] and rows(resumed) == rows(one_by_one)


def test_prompt_cut_at_the_word_end_nearest_3s(tmp_path):
    (tmp_path / "utt1.wav").write_bytes(b"")
    sf.write(tmp_path / "utt1.wav", np.zeros(16000 * 5, dtype=np.float32), 16000)
    (tmp_path / "align.ctm").write_text(
        "utt1 1 0.10 0.50 the\nutt1 1 0.70 0.90 cat\nutt1 1 1.70 1.40 walked\nutt1 1 3.20 0.60 home\n")
    [prompt] = find_prompts(tmp_path, 3.0, tmp_path / "align.ctm")
    assert prompt.cut_s == pytest.approx(3.1) and prompt.reference == "the cat walked"
    [plain] = find_prompts(tmp_path, 3.0)
    assert plain.cut_s is None and plain.reference is None


def test_alignment_skips_silences_matches_ids_and_warns_about_uncovered_prompts(tmp_path, caplog):
    for name in ("a/utt", "b/utt", "c/solo", "d/other"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / f"{name}.wav", np.zeros(16000 * 4, dtype=np.float32), 16000)
    # "sil" ends nearest 3 s but is no word; "b/utt" is matched by its id; the stem "utt" is shared by two prompts,
    # so it names neither; "solo" is a unique stem.
    (tmp_path / "align.ctm").write_text(
        "b/utt 1 0.10 0.50 the\nb/utt 1 0.70 1.40 dog\nb/utt 1 2.10 0.90 sil\nb/utt 1 3.40 0.60 barked\n"
        "utt 1 0.10 2.80 wrong\nsolo 1 0.20 2.70 <eps>\nsolo 1 0.20 2.75 hello\n")
    with caplog.at_level("WARNING"):
        prompts = {p.id: p for p in find_prompts(tmp_path, 3.0, tmp_path / "align.ctm")}
    assert (prompts["b/utt"].reference, prompts["b/utt"].cut_s) == ("the dog", pytest.approx(2.1))
    assert (prompts["c/solo"].reference, prompts["c/solo"].cut_s) == ("hello", pytest.approx(2.95))
    assert prompts["a/utt"].cut_s is None and prompts["d/other"].cut_s is None
    assert "covers 2 of 4 prompts; the other 2 (e.g. a/utt) are cut at 3 s" in caplog.text


def test_missing_text_lm_is_a_one_line_error(setup, tmp_path, capsys):
    root, model, _ = setup
    code = main(["--model", str(model), "--tasks", "continuation", "--data-root", str(root / "data"),
                 "--output-path", str(tmp_path)])
    assert code == 2 and "--text-lm" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_unit_lm_given_as_text_lm_is_named_with_what_to_give(setup, tmp_path, capsys):
    root, model, _ = setup  # the unit LM has no text tokenizer
    code = run_eval(root, model, model, tmp_path / "o")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and f"--text-lm {model}: has no loadable text tokenizer" in err[-1]
    assert err[-1].endswith("(a unit LM has none)")


@pytest.mark.parametrize("setting, wanted", [
    ("temperature=0", "greater than 0"),
    ("top_p=1.5", "in (0, 1], or none"),
    ("top_k=-1", "0 or more, or none"),
    ("samples=0", "at least 1"),
    ("samples=2.5", "an integer"),
    ("samples=.inf", "an integer"),
    ("temperature=.inf", "a number"),
    ("max_new_tokens=many", "an integer"),
    ("repetition_penalty=[1]", "a number"),
    ("prompt_seconds=0", "greater than 0"),
])
def test_bad_sampling_settings_fail_before_the_model_loads(setup, tmp_path, capsys, monkeypatch, setting, wanted):
    root, model, text_lm = setup
    monkeypatch.setattr(HFUnitLM, "from_args", lambda *a, **k: pytest.fail("loaded a model"))
    code = run_eval(root, model, text_lm, tmp_path / "o", "--set", f"continuation.{setting}")
    err = capsys.readouterr().err.strip().splitlines()
    key = setting.split("=")[0]
    assert code == 2 and f"continuation: setting {key}=" in err[-1] and f"must be {wanted}" in err[-1], err[-1]
    assert f"--set continuation.{key}=" in err[-1]


def test_a_task_that_scores_nothing_exits_1_and_keeps_its_results(setup, tmp_path, capsys):
    """Every judge request fails (HTTP 500 throughout): the results are written, the reason counted, exit status 1."""
    from tests.judge_server import JudgeServer, fail

    root, model, _ = setup
    with JudgeServer(default=fail(500)) as server:
        args = ["--model", str(model), "--tasks", "gpt4o_score", "--data-root", str(root / "data"),
                "--output-path", str(tmp_path / "runs"), "--set", "gpt4o_score.max_new_tokens=40",
                "--judge-model", "judge-test", "--judge-base-url", server.base_url, "--judge-max-retries", "0"]
        assert main(args) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert "gpt4o_score: no sample could be scored" in err[-1] and "a rerun retries the failed requests" in err[-1]
        entry = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
        entry = entry["tasks"]["gpt4o_score"]
        assert entry["result"]["metrics"]["gpt4o_score"]["n"] == 0
        assert sum(entry["unscored"]["gpt4o_score"].values()) == 3
        # Re-scoring that scores nothing says so the same way, and records why.
        out = tmp_path / "r.json"
        assert main(["score", entry["pipeline"]["run_dir"], "--scorers", "judge_gpt4o", "--judge-model", "judge-test",
                     "--judge-base-url", server.base_url, "--judge-max-retries", "0", "--output", str(out)]) == 1
    assert "rescore: no sample could be scored" in capsys.readouterr().err.strip().splitlines()[-1]
    assert sum(json.loads(out.read_text())["tasks"]["rescore"]["unscored"]["gpt4o_score"].values()) == 3


def test_a_bad_vocoder_fails_before_sampling(setup, tmp_path, capsys, monkeypatch):
    root, model, text_lm = setup
    monkeypatch.setattr(HFUnitLM, "generate", lambda *a, **k: pytest.fail("sampled before checking the vocoder"))
    (tmp_path / "v.pt").write_bytes(b"x")
    code = main(["--model", str(model), "--tasks", "signal_quality", "--data-root", str(root / "data"),
                 "--output-path", str(tmp_path / "runs"), "--vocoder", f"code_hifigan:{tmp_path / 'v.pt'}"])
    assert code == 2 and "--vocoder-args config=PATH" in capsys.readouterr().err.strip().splitlines()[-1]


def test_rescoring_refuses_an_empty_scorer_list_and_a_directory_as_output(setup, tmp_path, capsys):
    root, model, text_lm = setup
    assert run_eval(root, model, text_lm, tmp_path / "runs") == 0
    results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
    run_dir = results["tasks"]["continuation"]["pipeline"]["run_dir"]
    capsys.readouterr()
    assert main(["score", run_dir, "--scorers", ","]) == 2
    assert "--scorers" in capsys.readouterr().err.strip().splitlines()[-1]
    assert main(["score", run_dir, "--scorers", "auto_bleu", "--output", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not list(tmp_path.parent.glob(tmp_path.name + ".tmp"))


def test_whole_chain_with_the_loopback_judge(setup, tmp_path, capsys, monkeypatch):
    """units -> Griffin-Lim wav -> pocketsphinx -> OpenAI-protocol judge on 127.0.0.1 -> scores in the results."""
    from tests.judge_server import JudgeServer

    root, model, text_lm = setup
    monkeypatch.setenv("ALIGNSLM_TEST_JUDGE_KEY", "sk-test-secret-123")
    with JudgeServer() as server:
        args = ["--model", str(model), "--tasks", "gpt4o_score", "--data-root", str(root / "data"),
                "--output-path", str(tmp_path / "runs"), "--set", "gpt4o_score.max_new_tokens=40",
                "--judge-model", "judge-test", "--judge-base-url", server.base_url,
                "--judge-api-key-env", "ALIGNSLM_TEST_JUDGE_KEY", "--log-samples"]
        assert main(args) == 0, capsys.readouterr().err
        sent = server.total
        results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
        entry = results["tasks"]["gpt4o_score"]
        rows = [json.loads(l) for l in open(entry["files"]["samples"])]
        answered = [r for r in rows if r["scores"]["gpt4o_score"]["status"] == "ok"]
        # Prompts whose continuation transcribes to nothing are not sent; every sent one got the server's 3.
        assert sent == len(answered) > 0 and all(r["scores"]["gpt4o_score"]["value"] == 3 for r in answered)
        assert all("\\boxed{3}" in r["scores"]["gpt4o_score"]["detail"]["answer"] for r in answered)
        assert entry["pipeline"]["scorers"]["gpt4o_score"]["judge_model"] == "judge-test"
        # A second run re-asks nothing.
        assert main(args) == 0
        assert server.total == sent
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert b"sk-test-secret-123" not in path.read_bytes()


@pytest.mark.parametrize("fmt", ["lightning", "speechmos"])
def test_audio_quality_rates_with_utmos_weights_in_each_published_format(setup, tmp_path, capsys, fmt):
    """Random weights in the authors' Lightning checkpoint format and in SpeechMOS's, loaded from disk."""
    from tests.tiny_models import save_utmos

    root, model, _ = setup
    checkpoint = save_utmos(tmp_path / "utmos.ckpt", fmt)
    args = ["--model", str(model), "--tasks", "audio_quality", "--data-root", str(root / "data"), "--output-path",
            str(tmp_path / "runs"), "--set", "audio_quality.max_new_tokens=40", "--mos-checkpoint", str(checkpoint),
            "--log-samples"]
    assert main(args) == 0, capsys.readouterr().err
    results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
    entry = results["tasks"]["audio_quality"]
    assert entry["result"]["headline"] == "utmos"
    described = entry["pipeline"]["scorers"]["utmos"]
    assert described["format"] == fmt and described["judge_id"] == 288 and described["sha256"]
    rows = [json.loads(l) for l in open(entry["files"]["samples"])]
    rated = [r["scores"]["utmos"]["value"] for r in rows if r["scores"]["utmos"]["status"] == "ok"]
    assert rated and all(math.isfinite(v) for v in rated)
    assert entry["result"]["metrics"]["utmos"]["value"] == pytest.approx(sum(rated) / len(rated))
    assert all("silence_ratio" in r["scores"] for r in rows)


def test_mos_checkpoint_errors_name_the_file_and_the_right_scorer(setup, tmp_path, capsys):
    import torch
    from torchaudio.models import squim_subjective_base

    root, model, _ = setup
    torch.manual_seed(0)
    torch.save(squim_subjective_base().state_dict(), tmp_path / "squim.pth")
    args = ["--model", str(model), "--tasks", "audio_quality", "--data-root", str(root / "data"), "--output-path",
            str(tmp_path / "runs"), "--set", "audio_quality.max_new_tokens=40"]
    assert main([*args, "--mos-checkpoint", str(tmp_path / "squim.pth")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "squim.pth" in last and "squim_mos" in last
    # The SQUIM weights do score once the task is told to use that scorer.
    squim = [*args, "--mos-checkpoint", str(tmp_path / "squim.pth"), "--set",
             "audio_quality.scorers=[squim_mos,silence_ratio]"]
    assert main(squim) == 0, capsys.readouterr().err
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    assert main([*args, "--mos-checkpoint", str(tmp_path / "bad.ckpt")]) == 2
    assert "bad.ckpt" in capsys.readouterr().err.strip().splitlines()[-1]
    assert main(args) == 2
    assert "--mos-checkpoint" in capsys.readouterr().err.strip().splitlines()[-1]


def test_changed_prompt_audio_is_refused_not_silently_reused(setup, tmp_path, capsys):
    import shutil as sh

    root, model, text_lm = setup
    data = tmp_path / "data"
    sh.copytree(root / "data", data)
    args = ["--model", str(model), "--tasks", "signal_quality", "--data-root", str(data), "--output-path",
            str(tmp_path / "runs"), "--set", "signal_quality.max_new_tokens=20"]
    assert main(args) == 0
    wav, rate = sf.read(data / "prompts" / "p0.wav")
    sf.write(data / "prompts" / "p0.wav", wav[::-1].copy(), rate)
    assert main(args) == 2
    assert "p0" in capsys.readouterr().err.strip().splitlines()[-1]


def test_scores_are_keyed_by_the_asr_and_vocoder_that_made_their_inputs(tmp_path):
    from alignslm_eval.api.scorer import Continuation
    from alignslm_eval.evaluate.continuation_store import ContinuationRun
    from alignslm_eval.scoring.auto_bleu import AutoBLEU

    (tmp_path / "run.json").write_text("{}")
    run = ContinuationRun(tmp_path)
    item = Continuation("p", 0, [1, 2], text="the cat the cat the cat")
    assert run.score([item], AutoBLEU(), {"asr": {"kind": "a"}})[0].value == 1.0
    item.text = "a quick brown fox jumps"
    assert run.score([item], AutoBLEU(), {"asr": {"kind": "b"}})[0].value == 0.0


@pytest.mark.slow
def test_two_processes_on_one_output_path_both_finish_with_the_same_scores(setup, tmp_path):
    import os
    import subprocess
    import sys

    root, model, _ = setup
    args = [sys.executable, "-m", "alignslm_eval.cli.eval", "--model", str(model), "--tasks", "signal_quality",
            "--data-root", str(root / "data"), "--output-path", str(tmp_path / "runs"),
            "--set", "signal_quality.max_new_tokens=40", "--set", "signal_quality.samples=16", "--log-samples"]
    env = {**os.environ, "ALIGNSLM_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outcomes):
        assert proc.returncode == 0, err
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs" / "model").glob("results_*.json"))]
    assert len(results) == 2
    assert results[0]["tasks"]["signal_quality"]["result"] == results[1]["tasks"]["signal_quality"]["result"]
    run_dir = Path(results[0]["tasks"]["signal_quality"]["pipeline"]["run_dir"])
    assert not list(run_dir.rglob("*.tmp")) and len(list(run_dir.rglob("*.wav"))) == 3 * 16


def test_two_rescorings_in_one_second_keep_both_files(setup, tmp_path, capsys, monkeypatch):
    import alignslm_eval.api.results

    root, model, text_lm = setup
    assert run_eval(root, model, text_lm, tmp_path / "runs") == 0
    results = json.loads(next((tmp_path / "runs" / "model").glob("results_*.json")).read_text())
    run_dir = Path(results["tasks"]["continuation"]["pipeline"]["run_dir"])
    monkeypatch.setattr(alignslm_eval.api.results, "timestamp", lambda: "2026-12-02T00-00-00")
    for scorers in ("auto_bleu", "silence_ratio"):
        assert main(["score", str(run_dir), "--scorers", scorers, "--log-samples"]) == 0, capsys.readouterr().err
    first, second = (json.loads((run_dir / name).read_text()) for name in
                     ("rescored_2026-12-02T00-00-00.json", "rescored_2026-12-02T00-00-00_2.json"))
    assert set(first["tasks"]["rescore"]["result"]["metrics"]) == {"auto_bleu"}
    assert set(second["tasks"]["rescore"]["result"]["metrics"]) == {"silence_ratio"}
    assert second["tasks"]["rescore"]["files"]["samples"].endswith("rescored_2026-12-02T00-00-00_2_samples.jsonl")


def test_log_lines_of_another_shape_are_redone_not_a_traceback(setup, tmp_path, monkeypatch):
    """A line that is JSON but not a record of its log (an edit, another version) counts as a line a kill cut short:
    only its work is redone, and the results are those of an untouched run."""
    root, model, text_lm = setup
    out = tmp_path / "runs"
    assert run_eval(root, model, text_lm, out) == 0
    first = json.loads(next((out / "model").glob("results_*.json")).read_text())
    logs = [p for p in (out / "model" / "continuations").rglob("*.jsonl")]
    assert {p.parent.name for p in logs} >= {"transcripts", "scores"} and any(p.name == "samples.jsonl" for p in logs)
    for log in logs:
        lines = log.read_text().splitlines()
        # The first record loses its key fields; garbage of other shapes is added.
        broken = {k: v for k, v in json.loads(lines[0]).items() if k not in ("key", "prompt_id")}
        log.write_text("\n".join([json.dumps(broken), "[1, 2]", "null", "7", *lines[1:]]) + "\n")
    generated = []
    original = HFUnitLM.generate
    monkeypatch.setattr(HFUnitLM, "generate", lambda self, prompts, *a, **k: generated.extend(prompts)
                        or original(self, prompts, *a, **k))
    assert run_eval(root, model, text_lm, out) == 0
    # The first prompt of each sampling run (the two tasks may share one), and nothing else.
    assert len(generated) == sum(p.name == "samples.jsonl" for p in logs) > 0
    last = json.loads(sorted((out / "model").glob("results_*.json"))[-1].read_text())
    assert ({t: e["result"] for t, e in last["tasks"].items()} == {t: e["result"] for t, e in first["tasks"].items()})
