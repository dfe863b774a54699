"""Reading results files into rows: values, merging, protocols, and clear errors for files that are not results."""

from __future__ import annotations

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import (Column, adapter_name, collect, format_size, load_results,
                                               model_name)
from tests.leaderboard.factory import results_doc, task_entry, write

SBLIMP = Column("sblimp", "accuracy")
SWUGGY = Column("swuggy", "accuracy")


def test_values_stderr_and_row_fields(tmp_path):
    doc = results_doc({"sblimp": task_entry(0.625, stderr=0.02),
                       "swuggy": task_entry(0.7, extra={"in_vocab": {"value": 0.8, "stderr": 0.03, "n": 90}},
                                            breakdowns={"by_length": {"4": {"value": 0.5, "stderr": 0.1, "n": 4}}})},
                      n_parameters=1_300_000_000, adapter={"name": "lora-r8", "path": "/x/lora-r8"})
    write(tmp_path / "tiny-lm" / "results_a.json", doc)
    (row,), skipped = collect([tmp_path])
    assert skipped == []
    assert (row.name, row.size, row.adapter, row.kind) == ("tiny-lm", "1.3B", "lora-r8", "run")
    assert row.source == "tiny-lm/results_a.json"
    assert row.values[SBLIMP].value == 0.625 and row.values[SBLIMP].stderr == 0.02
    assert row.values[Column("swuggy", "in_vocab")].value == 0.8
    assert row.values[Column("swuggy", "by_length/4")].value == 0.5
    assert set(row.headlines) == {SBLIMP, SWUGGY}
    assert row.protocols["sblimp"]["reduction"].text == "sum"


def test_newest_file_per_task_wins_and_the_row_says_so(tmp_path):
    old = results_doc({"sblimp": task_entry(0.50), "swuggy": task_entry(0.60)}, created="2026-01-01T00-00-00")
    new = results_doc({"sblimp": task_entry(0.55)}, created="2026-02-01T00-00-00")
    write(tmp_path / "m" / "results_old.json", old)
    write(tmp_path / "m" / "results_new.json", new)
    (row,), _ = collect([tmp_path])
    assert row.values[SBLIMP].value == 0.55
    assert row.values[SWUGGY].value == 0.60
    assert row.task_files == {"sblimp": "m/results_new.json", "swuggy": "m/results_old.json"}
    assert row.source == "2 results files"
    assert any("m/results_old.json also scored sblimp" in n for n in row.notes)
    assert any("sblimp from m/results_new.json" in n for n in row.notes)


def test_other_protocol_or_tokenizer_or_weights_make_separate_rows(tmp_path):
    variants = [
        ({"sblimp": task_entry(0.5)}, {}),
        ({"sblimp": task_entry(0.6, reduction="mean")}, {}),
        ({"swuggy": task_entry(0.7)}, {"tokenizer_fp": "tok-b"}),
        ({"sblimp": task_entry(0.4)}, {"weights": "b2" * 32}),
    ]
    for day, (tasks, model) in enumerate(variants, start=1):
        write(tmp_path / f"results_{day}.json", results_doc(tasks, created=f"2026-01-0{day}T00-00-00", **model))
    rows, _ = collect([tmp_path])
    assert len(rows) == 4
    names = sorted(r.name for r in rows)
    # Same name: the weights tell different checkpoints apart, the run time tells protocols apart.
    assert "tiny-lm (weights b2b2b2b2)" in names
    assert sum("weights a1a1a1a1, 2026-01-0" in n for n in names) == 3


def test_model_name_prefers_name_then_hub_id_then_model_argument():
    assert model_name({"name": "my-lm", "path": "/x/model"}) == "my-lm"
    assert model_name({"hub_id": "slprl/slam", "local_dir": "/cache/abc"}) == "slprl/slam"
    assert model_name({"path": "/cache/demo/v1/model"}, ["alignslm-eval", "--model", "demo"]) == "demo"
    assert model_name({"path": "/ckpt/twist-350m"}) == "twist-350m"


def test_format_size():
    assert [format_size(n) for n in (40_000, 648_320, 1_300_000_000, 7_000_000_000, 999, None)] == [
        "40K", "648K", "1.3B", "7B", "999", ""]


def test_missing_headline_metric_is_a_note_not_a_crash(tmp_path):
    write(tmp_path / "results_r.json", results_doc({"sblimp": task_entry(None)}))
    (row,), _ = collect([tmp_path])
    assert SBLIMP not in row.values
    assert "headline metric 'accuracy' of sblimp is not in its metrics" in row.missing[SBLIMP]


def test_nan_value_is_missing(tmp_path):
    write(tmp_path / "results_r.json", results_doc({"sblimp": task_entry(float("nan"))}))
    (row,), _ = collect([tmp_path])
    assert "has no value" in row.missing[SBLIMP]


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a JSON results file"),
    ({"submission": "dev.txt", "gold": "g", "tasks": {}}, "not an alignslm-eval results file"),
    ([1, 2], "not an alignslm-eval results file"),
])
def test_non_results_files_name_the_file(tmp_path, content, message):
    path = write(tmp_path / "runs" / "m" / "results_stray.json", content)
    with pytest.raises(UserError) as e:
        collect([tmp_path / "runs"])
    assert str(path) in str(e.value) and message in str(e.value) and "--skip-invalid" in str(e.value)


def test_older_schema_says_rerun(tmp_path):
    path = write(tmp_path / "results_old.json", results_doc({"sblimp": task_entry(0.5)}, schema_version=0))
    with pytest.raises(UserError) as e:
        load_results(path)
    assert str(path) in str(e.value) and "older" in str(e.value) and "re-run alignslm-eval" in str(e.value)


def test_unknown_schema_value(tmp_path):
    path = write(tmp_path / "results_x.json", results_doc({"sblimp": task_entry(0.5)}, schema_version="v1"))
    with pytest.raises(UserError, match="unknown results schema_version 'v1'"):
        load_results(path)


def test_newer_schema_says_upgrade(tmp_path):
    path = write(tmp_path / "results_new.json", results_doc({"sblimp": task_entry(0.5)}, schema_version=2))
    with pytest.raises(UserError, match="upgrade alignslm"):
        load_results(path)


def test_malformed_metric_names_the_field(tmp_path):
    doc = results_doc({"sblimp": task_entry(0.5)})
    doc["tasks"]["sblimp"]["result"]["metrics"]["accuracy"] = 0.5
    path = write(tmp_path / "results_r.json", doc)
    with pytest.raises(UserError, match=r"tasks\.sblimp\.result\.metrics\.accuracy"):
        load_results(path)


def test_skip_invalid_collects_the_rest_and_lists_skipped(tmp_path):
    write(tmp_path / "results_good.json", results_doc({"sblimp": task_entry(0.5)}))
    write(tmp_path / "results_old.json", results_doc({"sblimp": task_entry(0.5)}, schema_version=0))
    write(tmp_path / "results_junk.json", "]")
    rows, skipped = collect([tmp_path], skip_invalid=True)
    assert len(rows) == 1 and len(skipped) == 2
    assert any("results_old.json" in s for s in skipped) and any("results_junk.json" in s for s in skipped)


def test_only_results_files_are_read_and_missing_paths_fail(tmp_path):
    write(tmp_path / "m" / "results_a.json", results_doc({"sblimp": task_entry(0.5)}))
    write(tmp_path / "m" / "results_a.md", "| table |")
    write(tmp_path / "m" / "items" / "sblimp-x.jsonl", "{}\n")
    write(tmp_path / "m" / "continuations" / "abc" / "run.json", {"sampling": {}})  # alignslm-eval's own manifest
    rows, _ = collect([tmp_path])
    assert len(rows) == 1
    given = write(tmp_path / "notes.json", {"not": "results"})  # a file named on the command line is checked
    with pytest.raises(UserError, match="not an alignslm-eval results file"):
        collect([given])
    with pytest.raises(UserError, match="no such file or directory"):
        collect([tmp_path / "nope"])


def test_adapter_chain_label():
    chain = [{"path": "/runs/align/round-1/adapter", "weights_fingerprint": "a"},
             {"path": "/runs/align/round-2/adapter", "weights_fingerprint": "b"}]
    assert adapter_name(chain) == "round-2/adapter (chain of 2)"
    assert adapter_name(chain[:1]) == "round-1/adapter"
    assert adapter_name([]) == "" and adapter_name(None) == ""
    assert adapter_name({"name": "lora-r32"}) == "lora-r32"


def judge_entry(value, stderr=0.1):
    return task_entry(value, stderr=stderr, headline="gpt4o_score")


@pytest.mark.parametrize("entry, field, message", [
    (task_entry(1e308), "metrics.accuracy.value", "outside [0, 1], the range of a fraction"),
    (task_entry(-7.5), "metrics.accuracy.value", "-7.5 is outside [0, 1]"),
    (task_entry(float("inf")), "metrics.accuracy.value", "is not a finite number"),
    (task_entry(0.5, stderr=-0.01), "metrics.accuracy.stderr", "not a standard error (a finite number >= 0)"),
    (task_entry(0.5, stderr=float("-inf")), "metrics.accuracy.stderr", "not a standard error"),
    (task_entry(0.0, headline="genppl"), "metrics.genppl.value", "0.0 is outside (0, inf), the range of a perplexity"),
    (judge_entry(0.5), "metrics.gpt4o_score.value", "0.5 is outside [1, 5], the range of a 1-5 judge score"),
    (judge_entry(5.5), "metrics.gpt4o_score.value", "a 1-5 judge score"),
    (task_entry(0.1, headline="silence_ratio"), None, None),
    (task_entry(1.5, headline="silence_ratio"), "metrics.silence_ratio.value", "the range of a fraction"),
    (task_entry(0.5, breakdowns={"by_part": {"rir": {"value": 2.0, "stderr": 0.1, "n": 3}}}),
     "breakdowns.by_part.rir.value", "the range of a fraction"),
    (task_entry(0.5, headline="genppl", breakdowns={"scored_fraction": {"genppl": {"value": 1.2, "n": 3}}}),
     "breakdowns.scored_fraction.genppl.value", "the range of a fraction"),
    (task_entry(0.5, breakdowns={"by_part": {"rir": 0.5}}), "breakdowns.by_part.rir", "expected {value, stderr, n}"),
    (task_entry(0.5, breakdowns={"by_part": [0.5]}), "breakdowns.by_part", "not a dict of groups"),
    (task_entry("0.5"), "metrics.accuracy.value", "'0.5', not a number"),
    (task_entry(True), "metrics.accuracy.value", "True, not a number"),
    (task_entry(0.5, stderr="small"), "metrics.accuracy.stderr", "'small', not a number"),
])
def test_values_outside_their_range_or_not_finite_name_file_and_field(tmp_path, entry, field, message):
    path = write(tmp_path / "runs" / "results_r.json", results_doc({"sblimp": entry}))
    if field is None:  # the control: a valid value of the same kind loads
        assert load_results(path)
        return
    with pytest.raises(UserError) as e:
        collect([tmp_path / "runs"])
    text = str(e.value)
    assert text.startswith(f"{path}: tasks.sblimp.result.{field}") and message in text
    assert "re-run alignslm-eval" in text and text.endswith("or pass --skip-invalid to skip it")
    assert "\n" not in text


@pytest.mark.parametrize("size", [float("nan"), float("inf"), -1, "1.3B", True])
def test_parameter_count_must_be_a_finite_count(tmp_path, size):
    doc = results_doc({"sblimp": task_entry(0.5)})
    doc["model"]["n_parameters"] = size
    path = write(tmp_path / "results_r.json", doc)
    with pytest.raises(UserError, match=r"model\.n_parameters is .*, not a parameter count"):
        load_results(path)


def test_range_ends_unranged_kinds_and_unscored_values_load(tmp_path):
    metrics = {
        "in_vocab": {"value": 1.0, "stderr": 0.0, "n": 5},
        "gpt4o_score": {"value": 5.0, "stderr": None, "n": 1},
        "semantic_rating": {"value": 1.0, "stderr": float("nan"), "n": 1},  # one item: no standard error
        "genppl": {"value": 1e6, "stderr": 3.0, "n": 5},
        "utmos": {"value": 5.2, "stderr": 0.1, "n": 5},  # run without range clipping: only finite is required
        "duration_s": {"value": 0.0, "stderr": 0.0, "n": 5},
        "mystery": {"value": -1e300, "stderr": 1e300, "n": 5},  # a kind with no declared range
        "llm_judge": {"value": float("nan"), "stderr": float("nan"), "n": 0},  # nothing scored
        "wer": {"value": None, "stderr": None, "n": 0},
    }
    write(tmp_path / "results_r.json", results_doc({"swuggy": task_entry(0.0, stderr=0.0, extra=metrics)}))
    (row,), _ = collect([tmp_path])
    values = {c.metric: (m.value, m.stderr) for c, m in row.values.items()}
    assert values["accuracy"] == (0.0, 0.0) and values["in_vocab"] == (1.0, 0.0)
    assert values["gpt4o_score"] == (5.0, None) and values["semantic_rating"] == (1.0, None)
    assert values["utmos"] == (5.2, 0.1) and values["mystery"] == (-1e300, 1e300)
    assert {c.metric for c in row.missing} == {"llm_judge", "wer"}


def test_skip_invalid_skips_a_file_with_a_bad_value_and_says_which(tmp_path):
    write(tmp_path / "results_good.json", results_doc({"sblimp": task_entry(0.5)}))
    write(tmp_path / "results_bad.json", results_doc({"sblimp": task_entry(-7.5)}, weights="b" * 64))
    rows, skipped = collect([tmp_path], skip_invalid=True)
    assert len(rows) == 1 and rows[0].values[SBLIMP].value == 0.5
    (message,) = skipped
    assert "results_bad.json: tasks.sblimp.result.metrics.accuracy.value -7.5 is outside" in message
