"""`alignslm-leaderboard`: aggregate results files (and published reference numbers) into one table; plots.

    alignslm-leaderboard runs/ --reference --output leaderboards/demo.md --bar-chart leaderboards/demo-bar
    alignslm-leaderboard plot-training eval_log.jsonl --output plots/training
    alignslm-leaderboard plot-scores scores.jsonl --output plots/scores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from alignslm_eval.errors import UserError, run_command

PROG = "alignslm-leaderboard"
FORMATS = ("md", "csv", "html", "latex")
SUFFIX_FORMATS = {".md": "md", ".csv": "csv", ".html": "html", ".htm": "html", ".tex": "latex"}


def table_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Aggregate alignslm-eval results files into one leaderboard table: a row per model and "
        "protocol, a column per task metric (± standard error), the best value per column marked, footnotes where "
        "scoring protocols differ. Other commands: `plot-training`, `plot-scores`.",
    )
    p.add_argument("runs", nargs="*", type=Path, help="runs dirs (searched for *.json) or results files")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from --output's suffix, else md)")
    p.add_argument("--output", type=Path, help="write the table here instead of stdout")
    p.add_argument("--reference", action="store_true",
                   help="add the published reference rows of leaderboards/reference.yaml")
    p.add_argument("--reference-file", type=Path, metavar="YAML", help="another reference file (implies --reference)")
    p.add_argument("--tasks", help="comma-separated tasks to show (default: all)")
    p.add_argument("--columns", help="comma-separated TASK.METRIC or TASK.BREAKDOWN/GROUP columns, in this order")
    p.add_argument("--all-metrics", action="store_true", help="show every metric of the runs, not only headlines")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unreadable, non-results or old-schema JSON files with a warning instead of failing")
    p.add_argument("--bar-chart", type=Path, metavar="PREFIX", help="also write PREFIX.png and PREFIX.svg")
    return p


def cmd_table(argv: Sequence[str]) -> int:
    args = table_parser().parse_args(argv)
    from alignslm_eval.leaderboard.collect import Column, collect
    from alignslm_eval.leaderboard.reference import load_reference
    from alignslm_eval.leaderboard.render import RENDERERS, build_table

    args.reference = args.reference or args.reference_file is not None
    if not args.runs and not args.reference:
        raise UserError("give runs dirs or results files, and/or --reference")
    rows, skipped = collect(args.runs, skip_invalid=args.skip_invalid) if args.runs else ([], [])
    if skipped:
        print(f"{PROG}: warning: skipped {len(skipped)} invalid file(s): " + " | ".join(skipped), file=sys.stderr)
    if args.runs and not rows and not args.reference:
        raise UserError(f"no results files under {', '.join(map(str, args.runs))}; run alignslm-eval first")
    sources = {}
    if args.reference:
        reference, sources = load_reference(args.reference_file)
        rows += reference
    columns = [Column.parse(c) for c in args.columns.split(",") if c.strip()] if args.columns else None
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    table = build_table(rows, sources, columns=columns, tasks=tasks, all_metrics=args.all_metrics)
    fmt = args.format or (SUFFIX_FORMATS.get(args.output.suffix.lower(), "md") if args.output else "md")
    text = RENDERERS[fmt](table)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"leaderboard: {args.output}")
    else:
        sys.stdout.write(text)
    if args.bar_chart:
        from alignslm_eval.leaderboard.plots import leaderboard_figure, save_figure

        for path in save_figure(leaderboard_figure(table), args.bar_chart):
            print(f"bar chart: {path}")
    return 0


def cmd_plot(argv: Sequence[str], kind: str) -> int:
    what = {"plot-training": "mid-training evaluations (eval_log.jsonl: step, task, metric, value, stderr)",
            "plot-scores": "preference scores (scores.jsonl: prompt_id, sample, score, scorer)"}[kind]
    p = argparse.ArgumentParser(prog=f"{PROG} {kind}", description=f"Plot {what} as PNG and SVG.")
    p.add_argument("input", type=Path, help="the JSONL file the trainer wrote")
    p.add_argument("--output", type=Path, required=True, metavar="PREFIX", help="writes PREFIX.png and PREFIX.svg")
    args = p.parse_args(argv)
    from alignslm_eval.leaderboard import plots

    if kind == "plot-training":
        fig = plots.training_figure(plots.read_eval_log(args.input))
    else:
        fig = plots.scores_figure(plots.read_scores(args.input))
    for path in plots.save_figure(fig, args.output):
        print(f"plot: {path}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    plot = argv[:1] in (["plot-training"], ["plot-scores"])
    return run_command(PROG, lambda: cmd_plot(argv[1:], argv[0]) if plot else cmd_table(argv),
                       "the results files are untouched; rerun the same command")


if __name__ == "__main__":
    sys.exit(main())
