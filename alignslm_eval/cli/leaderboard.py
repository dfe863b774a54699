"""`alignslm-leaderboard`: aggregate results files (and published reference numbers) into one table; plots.

    alignslm-leaderboard runs/ --reference --output leaderboards/demo.md --bar-chart leaderboards/demo-bar
    alignslm-leaderboard plot-training eval_log.jsonl --output plots/training
    alignslm-leaderboard plot-scores scores.jsonl --output plots/scores
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Optional, Sequence

from alignslm_eval.io.errors import ArgumentParser, UserError, run_command
from alignslm_eval.io.paths import check_output_file

PROG = "alignslm-leaderboard"
FORMATS = ("md", "csv", "html", "latex")
SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".csv": "csv", ".html": "html", ".htm": "html",
                  ".tex": "latex"}


def table_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Aggregate alignslm-eval results files into one leaderboard table: a row per model and "
        "protocol, a column per task metric (± standard error), the best value per column marked, footnotes where "
        "scoring protocols differ. Other commands: `plot-training`, `plot-scores`.",
    )
    p.add_argument("runs", nargs="*", type=Path,
                   help="runs dirs (searched recursively for results_*.json; other JSON files are not read) or "
                   "results files named directly")
    p.add_argument("--format", choices=FORMATS,
                   help="output format (default: from --output's suffix: .md/.markdown, .csv, .html/.htm, .tex; md "
                   "on stdout or for a name without suffix). Another --output suffix needs --format, and a suffix "
                   "of another format is an error")
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


def table_format(given: Optional[str], output: Optional[Path]) -> str:
    """--format, else the format --output's suffix names (md without a suffix); any other suffix needs --format."""
    suffix = output.suffix.lower() if output else ""
    implied = SUFFIX_FORMATS.get(suffix)
    if given and implied and implied != given:
        raise UserError(f"--output {output}: the suffix {suffix} means {implied}, but --format {given} was given; "
                        "rename the file or drop --format")
    if not given and suffix and not implied:
        raise UserError(f"--output {output}: no table format for {suffix} files; use a {'/'.join(SUFFIX_FORMATS)} "
                        f"file, or pass --format {{{','.join(FORMATS)}}} to write one anyway")
    return given or implied or "md"


def check_known(flag: str, given: Sequence[str], available: Sequence[str]) -> None:
    """A task or column that no row has is a typo, not an empty column: name the closest known ones."""
    for name in given:
        if name not in available:
            close = difflib.get_close_matches(name, available, n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else f"available: {', '.join(available)}"
            raise UserError(f"{flag} {name!r}: not in the results files or reference rows; {hint}")


def cmd_table(argv: Sequence[str]) -> int:
    args = table_parser().parse_args(argv)
    from alignslm_eval.leaderboard.collect import Column, collect, dirs_without_results
    from alignslm_eval.leaderboard.reference import load_reference
    from alignslm_eval.leaderboard.render import RENDERERS, build_table

    args.reference = args.reference or args.reference_file is not None
    if not args.runs and not args.reference:
        raise UserError("give runs dirs or results files, and/or --reference")
    # Checked before any work, so a bad path does not leave a half-written table or chart behind.
    if args.output:
        check_output_file(args.output, "--output", "leaderboard.md")
    if args.bar_chart:
        check_output_file(args.bar_chart, "--bar-chart", "bar")
    fmt = table_format(args.format, args.output)
    rows, skipped = collect(args.runs, skip_invalid=args.skip_invalid) if args.runs else ([], [])
    if skipped:
        print(f"{PROG}: warning: skipped {len(skipped)} invalid file(s): " + " | ".join(skipped), file=sys.stderr)
    unread = dirs_without_results(args.runs)
    if args.runs and not rows and not args.reference:
        raise UserError("; ".join(unread) if unread else
                        f"every results file under {', '.join(map(str, args.runs))} was skipped as invalid")
    for message in unread:
        print(f"{PROG}: warning: {message}", file=sys.stderr)
    sources = {}
    if args.reference:
        reference, sources = load_reference(args.reference_file)
        rows += reference
    columns = [Column.parse(c) for c in args.columns.split(",") if c.strip()] if args.columns else None
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    known = {c for r in rows for c in (*r.values, *r.missing, *r.headlines)}
    check_known("--tasks", tasks or [], sorted({c.task for c in known}))
    check_known("--columns", [c.key for c in columns or []], sorted(c.key for c in known))
    table = build_table(rows, sources, columns=columns, tasks=tasks, all_metrics=args.all_metrics)
    text = RENDERERS[fmt](table)
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UserError(f"--output {args.output}: cannot write ({e.strerror or e}); choose another path")
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
            "plot-scores": "preference scores (a round's scores.jsonl from alignslm-train, or lines of prompt_id, "
                           "sample, score, scorer)"}[kind]
    p = ArgumentParser(prog=f"{PROG} {kind}", description=f"Plot {what} as PNG and SVG.")
    p.add_argument("input", type=Path, help="the JSONL file the trainer wrote")
    p.add_argument("--output", type=Path, required=True, metavar="PREFIX", help="writes PREFIX.png and PREFIX.svg")
    args = p.parse_args(argv)
    from alignslm_eval.leaderboard import plots

    check_output_file(args.output, "--output", kind.removeprefix("plot-"))
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
