"""Build the leaderboard table (columns, best marks, footnotes) and write it as Markdown, CSV, HTML or LaTeX.

Every format carries the same cells: value ± standard error (accuracies in percent, published numbers with their
own digits), the best value per column (by the metric's direction; toplines excluded) and footnote numbers for a
missing metric, for rows whose scoring protocols differ within a column, and for rows merged from several files.

Names, paths and notes come from results and reference files, so they are free text: the table holds them as one
line of printable text (`plain_text`), and each format escapes what is special to it.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import (
    GENERATION_FIELD,
    LIKELIHOOD_FIELDS,
    METRIC_ORDER,
    NOT_STATED,
    PROTOCOL_FIELDS,
    TASK_ORDER,
    Column,
    Measurement,
    ProtocolField,
    Row,
    preset_covers,
    registered_column,
)
from alignslm_eval.leaderboard.reference import Source

HEAD = ("model", "size", "adapter", "source")
TASK_LABELS = {"swuggy": "sWUGGY", "sblimp": "sBLIMP", "sstorycloze": "sSC", "tstorycloze": "tSC", "salmon": "SALMon"}
METRIC_LABELS = {"accuracy": "acc", "accuracy_micro": "micro acc", "in_vocab": "in-vocab acc", "genppl": "GenPPL",
                 "auto_bleu": "auto-BLEU"}
ARROWS = {"higher": "↑", "lower": "↓"}
FIELD_LABELS = {"tokenizer": "tokenizer", "reduction": "likelihood", "bos_eos": "BOS/EOS", "dedup": "dedup",
                "dataset": "dataset", GENERATION_FIELD: "generation"}
LEGEND = ("↑ higher is better, ↓ lower is better. Accuracies in %; value ± standard error where the run recorded "
          "one (published numbers have none). Bold: best in its column among the rows scored on the same dataset "
          "with the same protocol (toplines excluded; a row with no such peer is not marked). [n]: see notes.")


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False
    notes: tuple[int, ...] = ()


@dataclass
class Table:
    columns: list[Column]
    header: list[str]
    rows: list[Row]
    cells: list[list[Cell]]
    notes: list[str]
    sources: dict[str, Source]


def column_label(column: Column) -> str:
    task = TASK_LABELS.get(column.task, column.task)
    metric = METRIC_LABELS.get(column.metric, column.metric.replace("/", ": "))
    unit = " (%)" if column.percent else ""
    return f"{task} {metric}{unit} {ARROWS.get(column.direction or '', '(direction unknown)')}"


def _order(column: Column) -> tuple:
    rank = TASK_ORDER.index(column.task) if column.task in TASK_ORDER else len(TASK_ORDER)
    if "/" in column.metric:
        kind = len(METRIC_ORDER) + 1
    else:
        kind = METRIC_ORDER.index(column.metric) if column.metric in METRIC_ORDER else len(METRIC_ORDER)
    return rank, column.task, kind, column.metric


def default_columns(rows: Sequence[Row], all_metrics: bool = False) -> list[Column]:
    """Each run's headline metrics (every metric with all_metrics) and the reference rows' metrics, no breakdowns."""
    chosen: set[Column] = set()
    for row in rows:
        if row.kind == "run":
            chosen.update(row.headlines)
            if all_metrics:
                chosen.update(c for c in row.values if "/" not in c.metric)
        else:
            chosen.update(c for c in row.values if "/" not in c.metric)
    return sorted(chosen, key=_order)


def _number(column: Column, m: Measurement) -> str:
    return m.text or (f"{m.value * 100:.2f}" if column.percent else f"{m.value:.4g}")


def _stderr(column: Column, m: Measurement) -> str:
    if m.stderr is None:
        return ""
    return f"{m.stderr * 100:.2f}" if column.percent else f"{m.stderr:.3g}"


def format_value(column: Column, m: Measurement) -> str:
    """`value ± stderr` in display units; a published number keeps its own digits."""
    return _number(column, m) + (f" ± {_stderr(column, m)}" if m.stderr is not None else "")


def plain_text(text: str) -> str:
    """`text` on one line: any run of whitespace (line breaks and tabs included) becomes one space, and other
    unprintable characters (controls, bidi overrides, lone surrogates) are shown as escapes such as \\x1b."""
    shown = "".join(ch if ch.isprintable() or ch.isspace() else ascii(ch)[1:-1] for ch in text)
    return " ".join(shown.split())


class _Notes:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def number(self, text: str) -> int:
        text = plain_text(text)
        if text not in self.texts:
            self.texts.append(text)
        return self.texts.index(text) + 1


def build_table(
    rows: Sequence[Row],
    sources: Optional[dict[str, Source]] = None,
    columns: Optional[Sequence[Column]] = None,
    tasks: Optional[Sequence[str]] = None,
    all_metrics: bool = False,
) -> Table:
    if not rows:
        raise UserError("nothing to show: no results files and no reference rows")
    cols = _with_info(list(columns) if columns else default_columns(rows, all_metrics), rows)
    if tasks:
        cols = [c for c in cols if c.task in tasks]
    if not cols:
        raise UserError("no columns to show: check --tasks / --columns against the tasks in the results files")
    # A published row with nothing in the chosen columns is noise; a run row stays to show what it lacks.
    rows = [r for r in rows if r.kind == "run" or any(c in r.values for c in cols)]
    notes = _Notes()
    best = {c: _best_by_peers(rows, c) for c in cols}
    differing = {c: _differing(rows, c) for c in cols}
    cells = []
    for row in rows:
        name = Cell(plain_text(row.name), notes=tuple(notes.number(n) for n in row.notes))
        line = [name, *(Cell(plain_text(text)) for text in (row.size, row.adapter, row.source))]
        for c in cols:
            line.append(_cell(row, c, best[c].get(_peer_key(row, c)), differing[c], notes))
        cells.append(line)
    used = {r.source for r in rows if r.kind != "run"}
    return Table(cols, [*HEAD, *(plain_text(column_label(c)) for c in cols)], list(rows), cells, notes.texts,
                 {k: s for k, s in (sources or {}).items() if k in used})


def _with_info(columns: Sequence[Column], rows: Sequence[Row]) -> list[Column]:
    """Each column with what its metric is, as the rows holding it say (they must agree on its direction and on
    percent), else as the registries say (rows made by hand)."""
    held: dict[Column, tuple[Column, Row]] = {}
    for row in rows:
        for column in (*row.headlines, *row.values, *row.missing):
            if column.info is None:
                continue
            first, first_row = held.setdefault(column, (column, row))
            if (first.info.direction, first.info.percent) != (column.info.direction, column.info.percent):
                said = [f"{r.name} ({r.source}): direction {c.info.direction}, "
                        f"{'a percentage' if c.info.percent else 'not a percentage'}"
                        for c, r in ((first, first_row), (column, row))]
                raise UserError(f"{column.key}: the rows disagree on what the metric is ({'; '.join(said)}); leave "
                                "one of them out of this leaderboard")
    return [held[c][0] if c in held else registered_column(c.task, c.metric) for c in columns]


def _peer_key(row: Row, column: Column) -> tuple:
    """What a value must share with another to be compared with it: the dataset and every protocol field (two
    unstated fields are equal only within one source, an unrecorded one equals nothing)."""
    if column.task not in row.protocols:
        return ("no protocol", row.name, row.source)
    fields: list[str] = list(PROTOCOL_FIELDS)
    if GENERATION_FIELD in row.protocols[column.task]:
        # a sampling task has no likelihood to reduce: its pipeline stands in their place
        fields = [f for f in fields if f not in LIKELIHOOD_FIELDS or f in row.protocols[column.task]]
        fields.append(GENERATION_FIELD)
    return tuple(_field(row, column.task, f).key for f in fields)


def _best_by_peers(rows: Sequence[Row], column: Column) -> dict[tuple, float]:
    """The best value of each group of peers (`_peer_key`) that holds two rows or more; toplines are in no group.
    A demo run on its own benchmark is thus never marked best above published models scored on another."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r.kind != "topline" and column in r.values:
            groups.setdefault(_peer_key(r, column), []).append(r.values[column].value)
    if column.direction is None:
        return {}
    pick = max if column.direction == "higher" else min
    return {key: pick(values) for key, values in groups.items() if len(values) > 1}


def _field(row: Row, task: str, name: str) -> ProtocolField:
    """A protocol field, or what its absence means: unrecorded for a run, unstated by a reference's source."""
    protocol = row.protocols[task]
    if name in protocol:
        return protocol[name]
    if row.kind == "run":
        return ProtocolField(f"not recorded:{row.task_files.get(task)}", "not recorded")
    return ProtocolField(f"{NOT_STATED}:{row.source}", f"{NOT_STATED} by {row.source}")


def _differing(rows: Sequence[Row], column: Column) -> list[str]:
    shown = [r for r in rows if column in r.values and column.task in r.protocols]
    fields = list(PROTOCOL_FIELDS)
    if any(GENERATION_FIELD in r.protocols[column.task] for r in shown):
        fields.append(GENERATION_FIELD)
    # A local generation run shows the column is a sampling task: likelihood fields do not apply to any row.
    if any(r.kind == "run" and GENERATION_FIELD in r.protocols[column.task] for r in shown):
        fields = [f for f in fields if f not in LIKELIHOOD_FIELDS]
    return [f for f in fields if len({_field(r, column.task, f).key for r in shown}) > 1]


def _cell(row: Row, column: Column, best: Optional[float], differing: list[str], notes: _Notes) -> Cell:
    m = row.values.get(column)
    if m is None:
        missing = row.missing.get(column)
        if missing is None and row.kind == "run" and column.task in row.protocols:
            missing = f"{row.task_files[column.task]}: {column.task} has no {column.metric!r} metric."
        return Cell("", notes=(notes.number(missing),)) if missing else Cell("–")
    marks = []
    if differing and column.task in row.protocols:
        fields = {f: _field(row, column.task, f) for f in differing}
        marks.append(notes.number(
            f"Scoring protocols differ in this column ({', '.join(FIELD_LABELS[f] for f in differing)}); this row: "
            + _describe(fields, row.presets.get(column.task), column.task) + "."))
    is_best = best is not None and row.kind != "topline" and math.isclose(m.value, best, rel_tol=1e-12, abs_tol=0)
    return Cell(plain_text(format_value(column, m)), is_best, tuple(marks))


def _describe(fields: dict[str, ProtocolField], preset: Optional[str] = None, task: str = "") -> str:
    """The row's values of the differing fields; those a named protocol sets are said by its name."""
    named = []
    if preset:
        covered = [f for f in preset_covers(preset, task) if f in fields]
        if covered:
            # the preset's values are on the protocol docs page and in the results file
            named = [f"scored with {preset}'s protocol"]
            fields = {f: v for f, v in fields.items() if f not in covered}
    stated = named + [f"{FIELD_LABELS[f]}: {v.text}" for f, v in fields.items() if not v.text.startswith(NOT_STATED)]
    unstated: dict[str, list[str]] = {}
    for f, v in fields.items():
        if v.text.startswith(NOT_STATED):
            unstated.setdefault(v.text, []).append(FIELD_LABELS[f])
    return "; ".join(stated + [f"{text}: {', '.join(labels)}" for text, labels in unstated.items()])


def _marks(cell: Cell) -> str:
    return "".join(f"[{n}]" for n in cell.notes)


def _source_lines(table: Table) -> list[str]:
    lines = []
    if any(r.kind == "run" for r in table.rows):
        lines.append("runs: alignslm-eval results files; the source column is the file's path under the runs dir.")
    for s in table.sources.values():
        stated = "; ".join(f"{FIELD_LABELS[f]}: {s.protocol[f]}" for f in FIELD_LABELS if f in s.protocol)
        lines.append(f"{s.key}: {s.citation} Where: {s.where} Stated protocol: {stated}.")
    return [plain_text(line) for line in lines]


# Backslash-escaped wherever they stand: table pipes, inline code, emphasis, links, raw HTML and entities, GitHub's
# strikethrough and math. `_` is escaped only where it could open or close emphasis (not inside a word).
MARKDOWN_SPECIAL = frozenset("\\`*[]<>|&~$")


def markdown_escape(text: str) -> str:
    def inside_word(i: int) -> bool:
        return 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()

    return "".join("\\" + ch if ch in MARKDOWN_SPECIAL or (ch == "_" and not inside_word(i)) else ch
                   for i, ch in enumerate(text))


def render_markdown(table: Table) -> str:
    def cell(c: Cell) -> str:
        text = markdown_escape(c.text)
        return (f"**{text}**" if c.best and text else text) + _marks(c)

    out = ["| " + " | ".join(map(markdown_escape, table.header)) + " |",
           "|" + "---|" * len(HEAD) + "---:|" * len(table.columns)]
    out += ["| " + " | ".join(map(cell, line)) + " |" for line in table.cells]
    out += ["", LEGEND, ""]
    if table.notes:
        out += ["**Notes**", ""] + [f"- [{i}] {markdown_escape(t)}" for i, t in enumerate(table.notes, 1)] + [""]
    out += ["**Sources**", ""] + [f"- {markdown_escape(line)}" for line in _source_lines(table)]
    return "\n".join(out) + "\n"


def render_html(table: Table) -> str:
    def cell(tag: str, c: Cell) -> str:
        text = html.escape(c.text)
        text = f"<strong>{text}</strong>" if c.best and text else text
        marks = "".join(f'<sup><a href="#note-{n}">[{n}]</a></sup>' for n in c.notes)
        return f"<{tag}>{text}{marks}</{tag}>"

    out = ['<!DOCTYPE html>', '<html lang="en">', '<head><meta charset="utf-8"><title>alignslm leaderboard</title>',
           "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
           "td{text-align:right}td:first-child{text-align:left}</style></head>", "<body>", "<table>", "<thead>",
           "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header) + "</tr>", "</thead>", "<tbody>"]
    out += ["<tr>" + "".join(cell("td", c) for c in line) + "</tr>" for line in table.cells]
    out += ["</tbody>", "</table>", f"<p>{html.escape(LEGEND)}</p>"]
    if table.notes:
        out += ["<h2>Notes</h2>", "<ol>"] + [f'<li id="note-{i}">{html.escape(t)}</li>'
                                             for i, t in enumerate(table.notes, 1)] + ["</ol>"]
    out += ["<h2>Sources</h2>", "<ul>"] + [f"<li>{html.escape(s)}</li>" for s in _source_lines(table)]
    out += ["</ul>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                 # Braced so that a line starting with "[" is not read as the length argument of the \\ before it.
                 "[": "{[}", "]": "{]}",
                 "↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "–": "--"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(table: Table) -> str:
    def cell(c: Cell) -> str:
        text = latex_escape(c.text)
        text = rf"\textbf{{{text}}}" if c.best and text else text
        return text + (rf"\textsuperscript{{{latex_escape(_marks(c))}}}" if c.notes else "")

    out = [r"% alignslm-leaderboard table; needs \usepackage{booktabs}",
           r"\begin{tabular}{" + "l" * len(HEAD) + "r" * len(table.columns) + "}", r"\toprule",
           " & ".join(latex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    out += [" & ".join(map(cell, line)) + r" \\" for line in table.cells]
    out += [r"\bottomrule", r"\end{tabular}", "", r"\begin{flushleft}\footnotesize", latex_escape(LEGEND) + r"\\"]
    out += [latex_escape(f"[{i}] {t}") + r"\\" for i, t in enumerate(table.notes, 1)]
    out += [latex_escape(line) + r"\\" for line in _source_lines(table)]
    out += [r"\end{flushleft}"]
    return "\n".join(out) + "\n"


# OWASP's CSV-injection advice: a spreadsheet runs a cell starting with one of these as a formula.
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(text: str) -> str:
    """A text cell no spreadsheet runs as a formula: one that starts like a formula gets a single quote before it."""
    return "'" + text if text.startswith(CSV_FORMULA_START) else text


def render_csv(table: Table) -> str:
    """One line per row; per column: value, stderr, best (`*`), notes (their full text).

    Text cells go through `csv_text`. Value and stderr cells do not: they hold numbers (a published value must parse
    as one), so a leading minus there is a sign, not a formula."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = [*HEAD, "kind", "row notes"]
    for c in table.columns:
        unit = "%, " if c.percent else ""
        header += [f"{c.key} ({unit}{c.direction or 'unknown direction'}{' is better' if c.direction else ''})",
                   f"{c.key} stderr", f"{c.key} best", f"{c.key} notes"]
    writer.writerow([csv_text(plain_text(h)) for h in header])

    def texts(c: Cell) -> str:
        return csv_text(" | ".join(f"[{n}] {table.notes[n - 1]}" for n in c.notes))

    for row, line in zip(table.rows, table.cells):
        out = [*(csv_text(c.text) for c in line[:len(HEAD)]), row.kind, texts(line[0])]
        for c, cell in zip(table.columns, line[len(HEAD):]):
            m = row.values.get(c)
            out += ["" if m is None else plain_text(_number(c, m)), "" if m is None else _stderr(c, m),
                    "*" if cell.best else "", texts(cell)]
        writer.writerow(out)
    return buf.getvalue()


RENDERERS: dict[str, Callable[[Table], str]] = {
    "md": render_markdown,
    "csv": render_csv,
    "html": render_html,
    "latex": render_latex,
}
