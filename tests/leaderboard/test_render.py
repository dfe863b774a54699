"""Tables from hand-made results files: values, standard errors, best marks, footnotes, and the four formats."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import Column, Measurement, ProtocolField, Row, collect, registered_column
from alignslm_eval.leaderboard.render import (
    build_table,
    csv_text,
    markdown_escape,
    plain_text,
    render_csv,
    render_html,
    render_latex,
    render_markdown,
)
from tests.leaderboard.factory import results_doc, task_entry, write

SBLIMP = Column("sblimp", "accuracy")
SWUGGY = Column("swuggy", "accuracy")
GENPPL = Column("continuation", "genppl")


def two_models(tmp_path, reduction_b: str = "sum"):
    write(tmp_path / "a" / "results_1.json",
          results_doc({"sblimp": task_entry(0.625, stderr=0.0125), "swuggy": task_entry(0.70, stderr=0.02)},
                      model_path="/ckpt/model-a", weights="a" * 64))
    write(tmp_path / "b" / "results_1.json",
          results_doc({"sblimp": task_entry(0.60, stderr=0.01, reduction=reduction_b),
                       "swuggy": task_entry(0.75, stderr=0.015)},
                      model_path="/ckpt/model-b", weights="b" * 64))
    rows, _ = collect([tmp_path])
    return sorted(rows, key=lambda r: r.name)


def cells_by_name(table):
    return {line[0].text: line for line in table.cells}


def test_values_stderr_and_best_marks(tmp_path):
    table = build_table(two_models(tmp_path))
    assert table.columns == [SWUGGY, SBLIMP]
    assert table.header[4:] == ["sWUGGY acc (%) ↑", "sBLIMP acc (%) ↑"]
    a, b = cells_by_name(table)["model-a"], cells_by_name(table)["model-b"]
    assert (a[4].text, a[5].text) == ("70.00 ± 2.00", "62.50 ± 1.25")
    assert (b[4].text, b[5].text) == ("75.00 ± 1.50", "60.00 ± 1.00")
    assert [a[4].best, a[5].best, b[4].best, b[5].best] == [False, True, True, False]
    assert table.notes == []  # same protocol everywhere: nothing to footnote


def published(name: str, values: dict[Column, float], kind: str = "reference", source: str = "paper",
              protocol_text: str = "not stated") -> Row:
    row = Row(name=name, source=source, kind=kind)
    for column, value in values.items():
        percent = registered_column(column.task, column.metric).percent
        row.values[column] = Measurement(value / 100 if percent else value, text=str(value))
        row.protocols[column.task] = {f: ProtocolField(f"{protocol_text}:{source}", f"{protocol_text} by {source}")
                                      for f in ("tokenizer", "reduction", "bos_eos", "dedup", "dataset")}
    return row


def test_direction_lower_is_better_and_toplines_are_never_best():
    rows = [
        published("slm-a", {GENPPL: 93.74, SBLIMP: 59.0}),
        published("slm-b", {GENPPL: 46.6, SBLIMP: 61.11}),
        published("text topline", {SBLIMP: 98.3}, kind="topline"),
    ]
    table = build_table(rows)
    by = cells_by_name(table)
    col = {c: 4 + i for i, c in enumerate(table.columns)}
    assert table.header[col[GENPPL]] == "continuation GenPPL ↓"
    assert by["slm-b"][col[GENPPL]].best and not by["slm-a"][col[GENPPL]].best
    assert by["slm-b"][col[SBLIMP]].best and not by["text topline"][col[SBLIMP]].best
    assert by["slm-a"][col[GENPPL]].text == "93.74"  # published digits kept


def test_best_is_marked_only_among_rows_of_the_same_dataset_and_protocol(tmp_path):
    # a demo-sized run scored on its own data beside two rows of one published table
    write(tmp_path / "results_demo.json", results_doc({"sblimp": task_entry(0.7143, sha="demo-data")},
                                                      model_path="/ckpt/demo"))
    rows = collect([tmp_path])[0] + [published("TWIST-1.3B", {SBLIMP: 57.0}, source="slamkit-docs"),
                                     published("Slam", {SBLIMP: 58.86}, source="slamkit-docs")]
    by = cells_by_name(build_table(rows))
    assert not by["demo"][4].best and by["demo"][4].text.startswith("71.43")
    assert by["Slam"][4].best and not by["TWIST-1.3B"][4].best


def test_unknown_direction_is_shown_and_never_marked():
    column = Column("newtask", "mystery")
    table = build_table([published("x", {column: 1.0}), published("y", {column: 2.0})])
    assert table.header[4] == "newtask mystery (direction unknown)"
    assert not any(line[4].best for line in table.cells)


def test_mixed_protocols_get_footnotes_on_the_differing_column_only(tmp_path):
    table = build_table(two_models(tmp_path, reduction_b="mean"))
    a, b = cells_by_name(table)["model-a"], cells_by_name(table)["model-b"]
    sblimp = 4 + table.columns.index(SBLIMP)
    swuggy = 4 + table.columns.index(SWUGGY)
    assert a[swuggy].notes == () and b[swuggy].notes == ()
    note_a, note_b = table.notes[a[sblimp].notes[0] - 1], table.notes[b[sblimp].notes[0] - 1]
    assert "differ in this column (likelihood)" in note_a
    assert note_a.endswith("likelihood: sum.") and note_b.endswith("likelihood: mean.")


def test_local_run_and_reference_row_footnoted(tmp_path):
    (run,) = collect([write(tmp_path / "results_r.json", results_doc({"sblimp": task_entry(0.58)}))])[0]
    ref = published("TWIST-1.3B", {SBLIMP: 57.0}, source="slamkit-docs")
    table = build_table([run, ref])
    run_cell, ref_cell = table.cells[0][4], table.cells[1][4]
    assert run_cell.notes and ref_cell.notes and run_cell.notes != ref_cell.notes
    run_note, ref_note = table.notes[run_cell.notes[0] - 1], table.notes[ref_cell.notes[0] - 1]
    assert "tokenizer: hubert, layer 11, 500 units" in run_note and "dataset: sha256 data-v1" in run_note
    assert "not stated by slamkit-docs: tokenizer, likelihood, BOS/EOS, dedup, dataset" in ref_note


def test_two_sources_disagreeing_are_both_shown_with_their_source():
    tsc = Column("tstorycloze", "accuracy")
    rows = [published("TWIST-1.3B", {tsc: 70.6}, source="slamkit-docs"),
            published("TWIST-1.3B", {tsc: 61.3}, source="storycloze-readme")]
    table = build_table(rows)
    assert [(line[0].text, line[3].text, line[4].text) for line in table.cells] == [
        ("TWIST-1.3B", "slamkit-docs", "70.6"), ("TWIST-1.3B", "storycloze-readme", "61.3")]
    assert all(line[4].notes for line in table.cells)  # unstated protocols of two sources are not assumed equal


def test_missing_metric_is_an_empty_cell_with_a_note(tmp_path):
    rows, _ = collect([write(tmp_path / "results_r.json", results_doc({"sblimp": task_entry(None)}))])
    table = build_table(rows, columns=[SBLIMP, Column("sblimp", "in_vocab"), SWUGGY])
    line = table.cells[0]
    assert line[4].text == "" and "headline metric 'accuracy'" in table.notes[line[4].notes[0] - 1]
    assert line[5].text == "" and "sblimp has no 'in_vocab' metric" in table.notes[line[5].notes[0] - 1]
    assert line[6].text == "–" and line[6].notes == ()  # not evaluated at all


def test_row_notes_mark_the_model_cell(tmp_path):
    write(tmp_path / "m" / "results_1.json", results_doc({"sblimp": task_entry(0.5)}, created="2026-01-01T00-00-00"))
    write(tmp_path / "m" / "results_2.json", results_doc({"sblimp": task_entry(0.6)}, created="2026-01-02T00-00-00"))
    table = build_table(collect([tmp_path])[0])
    assert table.cells[0][0].notes and "newest results file is shown" in table.notes[table.cells[0][0].notes[0] - 1]


def test_tasks_and_columns_select(tmp_path):
    rows = two_models(tmp_path)
    assert build_table(rows, tasks=["sblimp"]).columns == [SBLIMP]
    assert build_table(rows, columns=[SBLIMP, SWUGGY]).columns == [SBLIMP, SWUGGY]
    with pytest.raises(UserError, match="no columns to show"):
        build_table(rows, tasks=["salmon"])


# --- formats -------------------------------------------------------------------------------------------------


class TableCells(HTMLParser):
    """Collects the text of every th/td, and checks that elements nest and close."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.stack: list[str] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th"):
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def markdown_row(line: str) -> list[str]:
    """A table line's cells as a GFM reader sees them: split at unescaped pipes, backslash escapes undone."""
    cells, cell = [], ""
    for token in re.findall(r"\\.|[^\\]", line):
        if token == "|":
            cells.append(cell)
            cell = ""
        else:
            cell += token[-1]
    assert cell == "", f"text after the last pipe: {cell!r}"
    return [c.strip() for c in cells[1:]]


def markdown_cells(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[c.replace("**", "") for c in markdown_row(line)] for line in lines]


def mixed_table(tmp_path):
    rows = two_models(tmp_path, reduction_b="mean")
    rows.append(published("Paper <model> & co", {SBLIMP: 59.0, GENPPL: 62.8}, source="paper"))
    return build_table(rows)


def test_html_parses_and_holds_the_markdown_cells(tmp_path):
    table = mixed_table(tmp_path)
    parser = TableCells()
    parser.feed(render_html(table))
    parser.close()
    assert parser.stack == []
    assert parser.rows == markdown_cells(render_markdown(table))
    assert parser.rows[0][:4] == ["model", "size", "adapter", "source"]
    assert "Paper <model> & co" in [r[0] for r in parser.rows]


def test_markdown_bold_marks_best_and_lists_notes(tmp_path):
    table = mixed_table(tmp_path)
    text = render_markdown(table)
    assert "**75.00 ± 1.50**" in text
    assert "**Notes**" in text and "- [1] " in text
    assert "↑ higher is better, ↓ lower is better" in text


def test_csv_has_values_stderr_best_flag_and_note_texts(tmp_path):
    table = mixed_table(tmp_path)
    rows = list(csv.DictReader(io.StringIO(render_csv(table))))
    by = {r["model"]: r for r in rows}
    assert by["model-b"]["swuggy.accuracy (%, higher is better)"] == "75.00"
    assert by["model-b"]["swuggy.accuracy stderr"] == "1.50"
    assert by["model-b"]["swuggy.accuracy best"] == "*" and by["model-a"]["swuggy.accuracy best"] == ""
    assert by["Paper <model> & co"]["continuation.genppl (lower is better)"] == "62.8"
    assert "likelihood: mean" in by["model-b"]["sblimp.accuracy notes"]
    assert by["Paper <model> & co"]["kind"] == "reference"


def test_latex_escapes_and_bolds(tmp_path):
    text = render_latex(mixed_table(tmp_path))
    assert r"\textbf{75.00 $\pm$ 1.50}" in text
    assert r"sWUGGY acc (\%) $\uparrow$" in text and r"GenPPL $\downarrow$" in text
    assert r"Paper \textless{}model\textgreater{} \& co" in text
    assert text.count(r"\begin{tabular}") == 1 and text.count(r"\end{tabular}") == 1
    rows = [line for line in text.splitlines() if line.endswith(r"\\") and " & " in line]
    separators = {len(re.findall(r"(?<!\\)&", line)) for line in rows}
    assert len(rows) == 4 and separators == {3 + 3}  # header + 3 rows; 4 head + 3 metric columns


def continuation_entry(genppl: float, asr: str) -> dict:
    entry = task_entry(genppl, stderr=2.0, headline="genppl", sha="prompts-v1",
                       breakdowns={"scored_fraction": {"genppl": {"value": 0.9, "stderr": None, "n": 10}}})
    entry["pipeline"] = {"run_dir": f"/runs/{asr}", "sampling": {"temperature": 0.8, "top_k": 25},
                         "vocoder": {"name": "hifigan"}, "asr": {"name": asr}}
    return entry


def test_generation_pipeline_differences_are_footnoted(tmp_path):
    write(tmp_path / "results_a.json", results_doc({"continuation": continuation_entry(80.0, "whisper-small")},
                                           model_path="/ckpt/a", weights="a" * 64))
    write(tmp_path / "results_b.json", results_doc({"continuation": continuation_entry(70.0, "whisper-large")},
                                           model_path="/ckpt/b", weights="b" * 64))
    rows = sorted(collect([tmp_path])[0], key=lambda r: r.name)
    rows.append(published("Slam", {GENPPL: 62.8}, source="slamkit-docs"))
    fraction = Column("continuation", "scored_fraction/genppl")
    table = build_table(rows, columns=[GENPPL, fraction])
    assert table.header[4:] == ["continuation GenPPL ↓", "continuation scored_fraction: genppl (%) ↑"]
    a, b, slam = table.cells
    assert (a[4].text, b[4].text, slam[4].text) == ("80 ± 2", "70 ± 2", "62.8")
    # three protocols (two ASRs, one unstated): no row has a peer to be best among
    assert not any(line[4].best for line in (a, b, slam)) and a[5].text == "90.00"
    assert "ASR whisper-small" in table.notes[a[4].notes[0] - 1]
    assert "likelihood" not in table.notes[a[4].notes[0] - 1]  # a sampling task has no likelihood protocol
    assert "generation" in table.notes[slam[4].notes[0] - 1] and "not stated by slamkit-docs" in table.notes[
        slam[4].notes[0] - 1]
    # Only the ASR differs between the two runs: their scored_fraction column says so, no other field.
    assert "differ in this column (generation)" in table.notes[a[5].notes[0] - 1]


# --- free text from results files ------------------------------------------------------------------------------

HOSTILE = "evil | name\nsecond line\r\n\t<script>alert(1)</script> $x^$ 50% \\ & _a_ *b* [c](d) ~~e~~ `f` #g {h}"
HOSTILE_SHOWN = "evil | name second line <script>alert(1)</script> $x^$ 50% \\ & _a_ *b* [c](d) ~~e~~ `f` #g {h}"


def hostile_table(tmp_path):
    """A run whose model name, adapter, task name and file path are all hostile text, beside a plain run."""
    doc = results_doc({"sblimp": task_entry(0.5), "odd|task\nx": task_entry(0.4)}, model_path="/ckpt/m",
                      adapter={"name": "lora\n| r8 <b>"})
    doc["model"]["name"] = HOSTILE
    write(tmp_path / "we|ird\ndir" / "results_1.json", doc)
    write(tmp_path / "plain" / "results_1.json", results_doc({"sblimp": task_entry(0.6)}, model_path="/ckpt/plain",
                                                              weights="c" * 64, tokenizer_fp="tok-other"))
    rows, _ = collect([tmp_path])
    return build_table(sorted(rows, key=lambda r: r.name))


def test_plain_text_is_one_printable_line():
    assert plain_text("a\r\nb\tc\u2028d  e\n") == "a b c d e"
    assert plain_text("red\x1b[31m \u202eevil \ud800") == "red\\x1b[31m \\u202eevil \\ud800"
    assert plain_text("TWIST-1.3B (é, 日本)") == "TWIST-1.3B (é, 日本)"


def test_free_text_is_held_on_one_line(tmp_path):
    table = hostile_table(tmp_path)
    hostile = next(line for line in table.cells if line[0].text.startswith("evil"))
    assert hostile[0].text == HOSTILE_SHOWN
    assert hostile[2].text == "lora | r8 <b>" and hostile[3].text == "we|ird dir/results_1.json"
    assert "odd|task x acc (%) ↑" in table.header
    texts = [c.text for line in table.cells for c in line] + table.header + table.notes
    assert not any(ch in t for t in texts for ch in "\n\r\t")


def test_markdown_escapes_free_text(tmp_path):
    table = hostile_table(tmp_path)
    text = render_markdown(table)
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("|---")]
    assert len(rows) == 3  # header and two rows: no name broke a line
    assert {len(markdown_row(line)) for line in rows} == {4 + len(table.columns)}  # no name added a cell
    assert markdown_cells(text)[1:] == [[c.text + "".join(f"[{n}]" for n in c.notes) for c in line]
                                        for line in table.cells]
    assert "<script>" not in text and "<b>" not in text  # raw HTML would be rendered by most Markdown readers
    assert r"\<script\>alert(1)\</script\> \$x^\$ 50% \\ \& \_a\_ \*b\* \[c\](d) \~\~e\~\~ \`f\`" in text
    assert "odd\\|task x acc" in lines[0]
    # Underscores inside a word cannot start emphasis and stay as they are.
    assert markdown_escape("results_2026-01-01.json scored_fraction") == "results_2026-01-01.json scored_fraction"
    assert markdown_escape("__init__ _x") == r"\_\_init\_\_ \_x"


def test_html_shows_free_text_as_text(tmp_path):
    table = hostile_table(tmp_path)
    text = render_html(table)
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    parser = TableCells()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
    assert parser.rows == markdown_cells(render_markdown(table))
    assert HOSTILE_SHOWN in [r[0] for r in parser.rows]


def test_latex_escapes_free_text(tmp_path):
    table = hostile_table(tmp_path)
    text = render_latex(table)
    assert (r"evil \textbar{} name second line \textless{}script\textgreater{}alert(1)\textless{}/script"
            r"\textgreater{} \$x\textasciicircum{}\$ 50\% \textbackslash{} \& \_a\_ *b* {[}c{]}(d) "
            r"\textasciitilde{}\textasciitilde{}e\textasciitilde{}\textasciitilde{} `f` \#g \{h\}") in text
    body = text[text.index(r"\midrule"):text.index(r"\bottomrule")].splitlines()[1:]
    assert len(body) == 2 and all(line.endswith(r" \\") for line in body)
    assert {len(re.findall(r"(?<!\\)&", line)) for line in body} == {3 + len(table.columns)}
    # A line after \\ must not start with "[": LaTeX would read it as the \\'s optional length.
    assert not re.search(r"\\\\\n\s*\[", text)


def test_csv_keeps_free_text_on_one_line(tmp_path):
    table = hostile_table(tmp_path)
    rows = list(csv.reader(io.StringIO(render_csv(table))))
    assert len(rows) == 3 and render_csv(table).count("\n") == 3
    assert rows[1][0] == HOSTILE_SHOWN


def formula_table(tmp_path):
    mystery = Column("=2+5", "delta")  # a task named like a formula, with a metric of no declared range
    doc = results_doc({"=2+5": task_entry(-0.5, stderr=0.25, headline="delta")}, model_path="/ckpt/m",
                      adapter={"name": "+SUM(A1:A3)"})
    doc["model"]["name"] = "=HYPERLINK(\"http://x\",\"y\")"
    write(tmp_path / "@runs" / "results_1.json", doc)
    rows, _ = collect([tmp_path])
    return build_table(rows, columns=[mystery])


def test_csv_neutralises_formula_text_but_not_negative_numbers(tmp_path):
    text = render_csv(formula_table(tmp_path))
    header, row = list(csv.reader(io.StringIO(text)))
    assert header[6:] == ["'=2+5.delta (unknown direction)", "'=2+5.delta stderr", "'=2+5.delta best",
                          "'=2+5.delta notes"]
    assert row[:5] == ["'=HYPERLINK(\"http://x\",\"y\")", "40K", "'+SUM(A1:A3)", "'@runs/results_1.json", "run"]
    assert row[6:8] == ["-0.5", "0.25"]  # numbers keep their sign


@pytest.mark.parametrize("text, shown", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("a=1", "a=1"), ("", ""), ("'quoted", "'quoted"),
])
def test_csv_text_prefixes_a_quote_to_cells_that_start_like_formulas(text, shown):
    assert csv_text(text) == shown
