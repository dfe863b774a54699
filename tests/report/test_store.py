"""Rows read back from a continuation run directory agree with the samples log the run wrote."""

import json
from pathlib import Path

from alignslm_eval.api.results import ResultsDocument
from alignslm_eval.evaluate.continuation_store import ContinuationRun
from alignslm_eval.report.store import rows_from_run, rows_from_samples_log


def test_rows_from_the_run_dir_equal_the_samples_log(demo_results):
    doc = ResultsDocument.from_json(json.loads(demo_results.read_text()))
    entry = doc.tasks["continuation"]
    logged = rows_from_samples_log(Path(entry.files["samples"]))
    pipeline = entry.pipeline
    stored = rows_from_run(Path(pipeline["run_dir"]), list(pipeline["scorers"]), pipeline["scorers"],
                           pipeline["vocoder"], pipeline["asr"])
    assert len(stored) == len(logged) == entry.dataset["n_samples"]
    for a, b in zip(stored, logged):
        # The wav path is where the store's vocode put it: the report's naming follows the store's.
        assert Path(a.wav).resolve() == Path(b.wav).resolve() and Path(a.wav).is_file()
        assert (a.prompt_id, a.sample, a.text, a.prompt_text, a.n_units) == (b.prompt_id, b.sample, b.text,
                                                                             b.prompt_text, b.n_units)
        assert a.scores == b.scores and set(a.scores) == {"genppl", "auto_bleu"}


def test_without_a_pipeline_record_the_runs_own_records_are_used(demo_results):
    entry = ResultsDocument.from_json(json.loads(demo_results.read_text())).tasks["signal_quality"]
    run_dir = Path(entry.pipeline["run_dir"])
    rows = rows_from_run(run_dir, ["silence_ratio"])
    logged = {r.key: r for r in rows_from_samples_log(Path(entry.files["samples"]))}
    assert rows and all(r.scores["silence_ratio"] == logged[r.key].scores["silence_ratio"] for r in rows)
    vocoder = entry.pipeline["vocoder"]
    assert all(Path(r.wav) == ContinuationRun(run_dir).wav_path(vocoder, r.prompt_id, r.sample) and Path(r.wav).is_file()
               for r in rows)
