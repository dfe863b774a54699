"""The published reference rows: the repository's data file, unit conversion, and clear errors for bad files."""

from __future__ import annotations

import textwrap

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import Column, collect
from alignslm_eval.leaderboard.reference import DEFAULT_REFERENCE, load_reference
from alignslm_eval.leaderboard.render import build_table, render_markdown
from tests.leaderboard.factory import results_doc, task_entry, write

TSC = Column("tstorycloze", "accuracy")


def test_repository_reference_file_loads_with_a_citation_for_every_row():
    rows, sources = load_reference(DEFAULT_REFERENCE)
    assert len(rows) >= 20
    for row in rows:
        source = sources[row.source]
        assert "arXiv" in source.citation and source.where
        assert row.values and set(row.protocols) == {c.task for c in row.values}
    names = {r.name for r in rows}
    assert {"GSLM", "TWIST-350M", "TWIST-1.3B", "TWIST-7B", "TWIST-13B", "Align-SLM 1.3B", "Align-SLM 7B",
            "Slam"} <= names
    assert any(n.startswith("SpiritLM") for n in names)


def test_disagreeing_published_tsc_for_twist_13b_are_both_kept():
    rows, _ = load_reference(DEFAULT_REFERENCE)
    tsc = {(r.source, r.values[TSC].text) for r in rows if r.name == "TWIST-1.3B" and TSC in r.values}
    assert tsc == {("slamkit-docs", "70.6"), ("storycloze-readme", "61.3")}


def test_percentages_become_fractions_and_raw_metrics_stay():
    rows, _ = load_reference(DEFAULT_REFERENCE)
    twist = next(r for r in rows if r.name == "TWIST-1.3B" and r.source == "slamkit-docs")
    assert twist.values[TSC].value == pytest.approx(0.706) and twist.values[TSC].text == "70.6"
    assert twist.values[Column("continuation", "genppl")].value == pytest.approx(131.8)
    assert twist.values[Column("continuation", "auto_bleu")].text == "3.20"


def test_local_run_against_reference_shows_sources_and_protocol_footnotes(tmp_path):
    run = results_doc({"tstorycloze": task_entry(0.5, reduction="mean")})
    runs, _ = collect([write(tmp_path / "results_r.json", run)])
    reference, sources = load_reference(DEFAULT_REFERENCE)
    table = build_table(runs + reference, sources, tasks=["tstorycloze"])
    text = render_markdown(table)
    assert "storycloze-readme: Hassid et al. (2023)" in text and "arXiv:2305.13009" in text
    assert all(line[4].notes for line in table.cells if line[4].text not in ("", "–"))
    best = {(row.source, line[0].text) for row, line in zip(table.rows, table.cells) if line[4].best}
    # Best only among rows of one source that state the same protocol: the run (scored on its own data) has no
    # peer, and the LLaMA text topline (98.3) is never best.
    assert ("slamkit-docs", "Align-SLM 7B") in best and ("storycloze-readme", "TWIST-7B") in best
    assert not any(source == "results_r.json" or "LLaMA" in name for source, name in best)
    assert ("slamkit-docs", "Align-SLM 1.3B") not in best  # below Align-SLM 7B in the same table


def write_reference(tmp_path, body: str):
    path = tmp_path / "reference.yaml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD_SOURCE = textwrap.dedent("""
    sources:
      p:
        citation: Someone (2024). A paper. arXiv:0000.00000.
        where: Table 1
        protocol: {tokenizer: not stated, reduction: mean, bos_eos: not stated, dedup: not stated,
                   dataset: not stated}
""")


HEAD = "version: 1\nunit: percent\n" + GOOD_SOURCE + "models:\n"


@pytest.mark.parametrize("body, message", [
    ("version: 2\nunit: percent\n", "version: 1"),
    ("version: 1\nunit: fraction\n", "unit: percent"),
    (HEAD + "  - {name: X, source: q, results: {sblimp: {accuracy: '5'}}}\n",
     "models[0].source 'q' is not one of sources"),
    (HEAD + "  - {name: X, source: p, results: {sblimp: {accuracy: 'n/a'}}}\n",
     "models[0].results.sblimp.accuracy: expected a number"),
    (HEAD + "  - {name: X, source: p, results: {sblimp: {accuracy: '157'}}}\n", "not a percentage"),
    (HEAD + "  - {name: X, source: p, results: {sblimp: {accuracy: 'nan'}}}\n", "'nan' is not a percentage"),
    (HEAD + "  - {name: X, source: p, results: {sblimp: {accuracy: true}}}\n", "expected a number"),
    (HEAD + "  - {name: X, source: p, results: {continuation: {genppl: 'inf'}}}\n",
     "models[0].results.continuation.genppl: 'inf' is not a finite number"),
    (HEAD + "  - {name: X, source: p, results: {continuation: {genppl: '-3.5'}}}\n",
     "'-3.5' is outside (0, inf), the range of a perplexity"),
    (HEAD + "  - {name: X, source: p, results: {continuation: {gpt4o_score: '7'}}}\n",
     "'7' is outside [1, 5], the range of a 1-5 judge score"),
    (HEAD + "  - {name: X, source: p, protocol: {vocoder: x}, results: {sblimp: {accuracy: '57'}}}\n",
     "unknown field(s) vocoder"),
    ("version: 1\nunit: percent\nsources:\n  p: {citation: c, where: w, protocol: {tokenizer: x}}\nmodels: []\n",
     "write 'not stated' where the source does not say"),
    ("version: [1\n", "not readable YAML"),
])
def test_bad_reference_files_name_file_and_field(tmp_path, body, message):
    path = write_reference(tmp_path, body)
    with pytest.raises(UserError) as e:
        load_reference(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_row_protocol_overrides_the_source(tmp_path):
    path = write_reference(tmp_path, "version: 1\nunit: percent\n" + GOOD_SOURCE + textwrap.dedent("""
        models:
          - {name: X, variant: big, size: 1B, adapter: LoRA, topline: true, source: p,
             protocol: {tokenizer: mHuBERT}, results: {sblimp: {accuracy: "57.25"}}}
    """))
    (row,), _ = load_reference(path)
    assert (row.name, row.size, row.adapter, row.kind) == ("X (big)", "1B", "LoRA", "topline")
    protocol = row.protocols["sblimp"]
    assert protocol["tokenizer"].text == "mHuBERT" and protocol["reduction"].text == "mean"
    assert protocol["dataset"].key == "not stated:p" and protocol["dataset"].text == "not stated by p"


def test_missing_reference_file(tmp_path):
    with pytest.raises(UserError, match="reference file not found; pass --reference-file PATH"):
        load_reference(tmp_path / "nope.yaml")


def test_reference_file_that_is_a_directory(tmp_path):
    with pytest.raises(UserError, match="is a directory; pass --reference-file the YAML file itself"):
        load_reference(tmp_path)


def test_a_run_with_a_preset_and_a_reference_row_naming_it_compare_on_the_preset(tmp_path):
    slamkit_entry = task_entry(0.6, reduction="mean")
    slamkit_entry["protocol"].update(add_eos=True, preset={"name": "slamkit", "set_by_preset": ["add_bos", "add_eos",
                                                                                                 "dedup", "reduction"],
                                                           "overridden_by_set": {}})
    runs, _ = collect([write(tmp_path / "results_s.json", results_doc({"sblimp": slamkit_entry}))])
    assert runs[0].presets == {"sblimp": "slamkit"}
    reference, sources = load_reference(DEFAULT_REFERENCE)
    slam = [r for r in reference if r.name == "Slam"][0]
    assert slam.presets["sblimp"] == "slamkit" and "inferred, not stated" in slam.notes[0]
    # the scoring fields equal the run's: only tokenizer and dataset can differ
    assert all(slam.protocols["sblimp"][f].key == runs[0].protocols["sblimp"][f].key
               for f in ("reduction", "bos_eos", "dedup"))
    table = build_table(runs + [slam, [r for r in reference if r.name == "GSLM"][0]], sources, tasks=["sblimp"])
    notes = {line[0].text: [table.notes[n - 1] for n in line[4].notes] for line in table.cells}
    assert any("scored with slamkit's protocol" in n for n in notes["Slam"])
    assert any("scored with slamkit's protocol" in n for n in notes[runs[0].name])
    assert not any("likelihood: mean" in n for n in notes["Slam"] + notes[runs[0].name])


def test_a_row_naming_an_unknown_preset_or_no_basis_is_refused(tmp_path):
    body = """
        version: 1
        unit: percent
        sources:
          s: {citation: c, where: w, protocol: {tokenizer: not stated, reduction: not stated, bos_eos: not stated,
              dedup: not stated, dataset: not stated}}
        models:
          - {name: M, source: s, preset: %s, results: {sblimp: {accuracy: "50.0"}}}
    """
    with pytest.raises(UserError, match=r"models\[0\]\.preset 'slam' is not a protocol; choose one of"):
        load_reference(write_reference(tmp_path, body % "slam, preset_basis: b"))
    with pytest.raises(UserError, match=r"models\[0\]\.preset needs preset_basis"):
        load_reference(write_reference(tmp_path, body % "slamkit"))
