"""Plots, written as PNG and SVG through matplotlib's Agg canvas (no display, no pyplot state).

- `leaderboard_figure`: one horizontal bar panel per leaderboard column, ± standard error, best value highlighted.
- `training_figure`: metric vs training step, from mid-training evaluations (`eval_log.jsonl`).
- `scores_figure`: preference-score distributions (`scores.jsonl`).

The two JSONL inputs are what `alignslm-train` writes; other trainers can write them as below.

`eval_log.jsonl`, one mid-training evaluation per line:
    {"step": 1200, "task": "sblimp", "metric": "accuracy", "value": 0.571, "stderr": 0.012, "run": "dpo-round1"}
  step: integer >= 0. task, metric: names as in results files. value: results-file units (accuracies are fractions
  in [0, 1] and are plotted in %). stderr: number or null, optional. run: optional label to overlay several runs.
  A (run, task, metric, step) logged twice keeps its last line, since a resumed trainer re-logs the step.

`scores.jsonl`, one scored sampled continuation per line, either one score per line:
    {"prompt_id": "1272-128104-0000", "sample": 3, "score": 4.0, "scorer": "mistral-judge"}
  or, as `alignslm-train` writes a round's scores, every scorer's score of the sample at once (null: unscored):
    {"prompt_id": "1272-128104-0000", "sample": 3, "scores": {"semantic_rating": 4.0, "auto_bleu": null}, ...}
  prompt_id: string. sample: integer index of the continuation for that prompt. score: number. scorer: string
  (an LLM judge, perplexity, auto-BLEU...). Each scorer gets a histogram of its scores (its title counting the
  unscored samples left out) and one of the per-prompt spread between the best and worst sample, the margin a
  chosen/rejected preference pair can have.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import METRIC_ORDER, Column, Measurement, registered_column, value_problem
from alignslm_eval.leaderboard.render import ARROWS, HEAD, Table, plain_text

COLORS = {"run": "tab:blue", "reference": "tab:gray", "topline": "lightgray", "best": "tab:orange"}


@dataclass(frozen=True)
class EvalPoint:
    step: int
    task: str
    metric: str
    value: float
    stderr: Optional[float] = None
    run: str = ""


@dataclass(frozen=True)
class Score:
    prompt_id: str
    sample: int
    #: None: the scorer could not score this sample (an unparsable judge answer, an empty transcript)
    score: Optional[float]
    scorer: str


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if Path(path).is_dir():
        raise UserError(f"{path}: is a directory; give the JSONL file itself")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise UserError(f"{path}: line {number}: not JSON ({e}); expected one JSON object per line")
        if not isinstance(obj, dict):
            raise UserError(f"{path}: line {number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def _get(path: Path, number: int, obj: dict[str, Any], key: str, kind: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "number": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "str": isinstance(value, str) and bool(value),
    }[kind]
    if not ok:
        wanted = {"int": "an integer >= 0", "number": "a finite number", "str": "a non-empty string"}[kind]
        raise UserError(f"{path}: line {number}: field {key!r} must be {wanted}, got {value!r}")
    return value


def literal_label(text: str) -> str:
    """`text` as matplotlib shows it literally: one line, and every `$` escaped, since a pair of them (or one
    unclosed) would be parsed as mathtext, which fails on most names that hold one."""
    return plain_text(text).replace("$", r"\$")


def read_eval_log(path: Path) -> list[EvalPoint]:
    points: dict[tuple[str, str, str, int], EvalPoint] = {}
    columns: dict[tuple[str, str], Column] = {}
    for n, obj in _lines(path):
        point = EvalPoint(
            step=_get(path, n, obj, "step", "int"),
            task=_get(path, n, obj, "task", "str"),
            metric=_get(path, n, obj, "metric", "str"),
            value=float(_get(path, n, obj, "value", "number")),
            stderr=_get(path, n, obj, "stderr", "number", optional=True),
            run=_get(path, n, obj, "run", "str", optional=True) or "",
        )
        if (point.task, point.metric) not in columns:
            columns[point.task, point.metric] = registered_column(point.task, point.metric)
        problem = value_problem(columns[point.task, point.metric], point.value)
        if problem:
            raise UserError(f"{path}: line {n}: value {point.value!r} of {point.task}.{point.metric} {problem} "
                            "(values are in results-file units: accuracies as fractions)")
        if point.stderr is not None and point.stderr < 0:
            raise UserError(f"{path}: line {n}: stderr {point.stderr!r} is negative; a standard error is >= 0")
        points[(point.run, point.task, point.metric, point.step)] = point
    if not points:
        raise UserError(f"{path}: no evaluations; expected lines like {{\"step\", \"task\", \"metric\", \"value\"}}")
    return list(points.values())


def read_scores(path: Path) -> list[Score]:
    scores: dict[tuple[str, int, str], int] = {}
    out = []
    for n, obj in _lines(path):
        prompt_id, sample = str(_get(path, n, obj, "prompt_id", "str")), _get(path, n, obj, "sample", "int")
        if isinstance(obj.get("scores"), dict):  # alignslm-train's round scores: every scorer on one line
            line = [Score(prompt_id, sample, None if v is None else float(_get(path, n, obj["scores"], m, "number")),
                          m) for m, v in obj["scores"].items()]
        else:
            line = [Score(prompt_id, sample, float(_get(path, n, obj, "score", "number")),
                          _get(path, n, obj, "scorer", "str"))]
        for score in line:
            key = (score.prompt_id, score.sample, score.scorer)
            if key in scores:
                raise UserError(f"{path}: line {n}: prompt {score.prompt_id!r} sample {score.sample} scored by "
                                f"{score.scorer!r} again (first on line {scores[key]}); write each score once")
            scores[key] = n
            out.append(score)
    if not out:
        raise UserError(f"{path}: no scores; expected lines like {{\"prompt_id\", \"sample\", \"score\", \"scorer\"}}")
    return out


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("plots need matplotlib: pip install matplotlib")

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _metric_order(metric: str) -> tuple:
    return (METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER), metric)


def training_figure(points: Sequence[EvalPoint]):
    """One panel per metric, one line per (task, run), shaded ± stderr where logged."""
    if not points:
        raise UserError("no mid-training evaluations to plot")
    metrics = sorted({p.metric for p in points}, key=_metric_order)
    fig = _figure(7.0, 3.2 * len(metrics))
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics):
        series = sorted({(p.task, p.run) for p in points if p.metric == metric})
        for task, run in series:
            column = registered_column(task, metric)
            scale = 100.0 if column.percent else 1.0
            pts = sorted((p for p in points if (p.task, p.run, p.metric) == (task, run, metric)), key=lambda p: p.step)
            x = [p.step for p in pts]
            y = [p.value * scale for p in pts]
            (line,) = ax.plot(x, y, marker="o", markersize=3,
                              label=literal_label(f"{task} ({run})" if run else task))
            if any(p.stderr is not None for p in pts):
                err = [(p.stderr or 0.0) * scale for p in pts]
                ax.fill_between(x, [v - e for v, e in zip(y, err)], [v + e for v, e in zip(y, err)],
                                color=line.get_color(), alpha=0.2, linewidth=0)
        column = registered_column(series[0][0], metric)
        ax.set_title(literal_label(f"{metric} {ARROWS.get(column.direction or '', '')}"))
        ax.set_xlabel("training step")
        ax.set_ylabel(literal_label(f"{metric} (%)" if column.percent else metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def _bins(values: Sequence[float], bins: int) -> int:
    """`bins`, or one bin for values equal up to rounding (matplotlib cannot split a range of 1e-17 in 20)."""
    return bins if max(values) - min(values) > 1e-9 * max(1.0, abs(max(values))) else 1


def scores_figure(scores: Sequence[Score], bins: int = 20):
    """Per scorer: the histogram of all scores, and of each prompt's best-minus-worst sample score."""
    if not scores:
        raise UserError("no preference scores to plot")
    scorers = sorted({s.scorer for s in scores})
    fig = _figure(9.0, 3.0 * len(scorers))
    axes = fig.subplots(len(scorers), 2, squeeze=False)
    for (left, right), scorer in zip(axes, scorers):
        unscored = sum(1 for s in scores if s.scorer == scorer and s.score is None)
        mine = [(s.prompt_id, s.score) for s in scores if s.scorer == scorer and s.score is not None]
        values = [value for _, value in mine]
        by_prompt: dict[str, list[float]] = {}
        for prompt_id, value in mine:
            by_prompt.setdefault(prompt_id, []).append(value)
        left.set_title(literal_label(f"{scorer}: {len(values)} scores"
                                     + (f" ({unscored} unscored)" if unscored else "") + f", {len(by_prompt)} prompts"))
        if values:
            left.hist(values, bins=_bins(values, bins), color=COLORS["run"])
            mean = sum(values) / len(values)
            left.axvline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.3g}")
            left.legend(fontsize="small")
        left.set_xlabel("score")
        left.set_ylabel("samples")
        spreads = [max(v) - min(v) for v in by_prompt.values() if len(v) > 1]
        if spreads:
            right.hist(spreads, bins=_bins(spreads, bins), color=COLORS["best"])
        else:
            right.text(0.5, 0.5, "no prompt has two samples", ha="center", va="center", transform=right.transAxes)
        right.set_title(literal_label(f"{scorer}: best - worst sample per prompt"))
        right.set_xlabel("score spread")
        right.set_ylabel("prompts")
    return fig


def leaderboard_figure(table: Table):
    """One horizontal bar panel per column with values: rows top to bottom as in the table, best in orange. Columns
    where no row has a value are named in the figure's title instead."""
    panels = [(i, c) for i, c in enumerate(table.columns) if any(c in r.values for r in table.rows)]
    empty = [table.header[len(HEAD) + i] for i, c in enumerate(table.columns) if (i, c) not in panels]
    legend = ["blue: local runs, grey: published (light: toplines), orange: best in column"]
    if empty:
        legend.append("no value in any row: " + "; ".join(empty))
    title = "\n".join(map(literal_label, legend))
    if not panels:
        fig = _figure(7.5, 1.5)
        fig.suptitle(title, fontsize="small")
        ax = fig.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no column of the leaderboard has a value; see the table's notes", ha="center",
                va="center", transform=ax.transAxes)
        return fig
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    counts = [sum(c in r.values for r in table.rows) for _, c in panels]
    # Each grid row as tall as its longest panel, so every bar has the same thickness.
    tallest = [max(counts[k:k + ncols]) for k in range(0, len(panels), ncols)]
    fig = _figure(7.5 * ncols, sum(0.9 + 0.24 * t for t in tallest) + 0.2 * (len(legend) - 1))
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={"height_ratios": [0.9 + 0.24 * t for t in tallest]})
    axes = axes.ravel()
    for k, (ax, (i, column)) in enumerate(zip(axes, panels)):
        scale = 100.0 if column.percent else 1.0
        shown = [(r, line) for r, line in zip(table.rows, table.cells) if column in r.values]
        # The table's cells, not the rows' fields: the same one-line text as every table format.
        labels = [literal_label(line[0].text if r.kind == "run" else f"{line[0].text} [{line[3].text}]")
                  for r, line in shown]
        measurements = [r.values[column] for r, _ in shown]
        exponent = _axis_exponent(measurements, scale)
        unit = 10.0 ** (math.log10(scale) - exponent)  # display units per plotted unit, without overflowing
        values = [m.value * unit for m in measurements]
        colors = [COLORS["best"] if line[len(HEAD) + i].best else COLORS[r.kind] for r, line in shown]
        y = list(range(len(shown)))
        ax.barh(y, values, color=colors, height=0.7)
        if exponent:
            ax.set_xlabel(f"× 1e{exponent}")
        with_err = [(k, m.stderr * unit) for k, m in enumerate(measurements) if m.stderr is not None]
        if with_err:
            ax.errorbar([values[k] for k, _ in with_err], [k for k, _ in with_err], xerr=[e for _, e in with_err],
                        fmt="none", ecolor="black", elinewidth=1, capsize=2)
        # e.g. a tiny model's GenPPL beside published ones; a bar at or below zero has no place on a log axis.
        if min(values) > 0 and max(values) > 100 * min(values):
            ax.set_xscale("log")
        ax.set_yticks(y, labels, fontsize="small")
        # Same bar thickness in every panel, first row on top.
        ax.set_ylim(tallest[k // ncols] - 0.5, -0.5)
        ax.set_title(literal_label(table.header[len(HEAD) + i]))
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize="small")
    return fig


def _axis_exponent(measurements: Sequence[Measurement], scale: float) -> int:
    """The power of ten to divide a panel's numbers (times `scale`) by, so that matplotlib's limit and transform
    arithmetic (spans, margins, products) stays finite for values near the float range; 0 for any ordinary one."""
    biggest = max(max(abs(m.value), m.stderr or 0.0) for m in measurements)
    exponent = math.floor(math.log10(biggest) + math.log10(scale)) if biggest > 0 else 0
    return exponent if exponent > 100 else 0


def save_figure(fig, prefix: Path) -> list[Path]:
    """Write `<prefix>.png` and `<prefix>.svg`; both are byte-stable for the same figure."""
    import matplotlib

    prefix = Path(prefix)
    if prefix.suffix.lower() in (".png", ".svg"):
        prefix = prefix.with_suffix("")
    png, svg = prefix.with_name(prefix.name + ".png"), prefix.with_name(prefix.name + ".svg")
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        # A fixed hash salt and no date keep regenerated SVGs diffable.
        with matplotlib.rc_context({"svg.hashsalt": "alignslm"}):
            fig.savefig(png, format="png", dpi=120, metadata={"Software": None})
            fig.savefig(svg, format="svg", metadata={"Date": None})
    except OSError as e:
        raise UserError(f"{prefix}: cannot write the plot ({e.strerror or e}); choose another output prefix")
    return [png, svg]
