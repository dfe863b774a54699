"""A self-contained HTML report of an evaluation or training run, to read and listen to.

    alignslm-eval report runs/demo/ [--output report.html]     # one run dir, a folder of runs, or results files
    alignslm-train report runs/align/ [--round K]              # a training run's rounds

`build_eval_report` and `build_train_report` are what the commands call: they read the run's files (nothing is
recomputed), write one HTML page whose audio is linked by paths relative to it (or embedded, `embed_audio`), and
return its path. What the page shows, and how it stays usable for runs of 10,000 samples: docs/report.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from alignslm_eval.api.options import Options, option

DEFAULT_PAGE = "report.html"


@dataclass
class ReportOptions(Options):
    """The settings of both report commands."""

    output: Optional[Path] = option(None, metavar="HTML",
                                    help="the page to write (default: report.html in the run dir, or "
                                         "report-round-K.html with --round); its row files go beside it in "
                                         "<name>_files/")
    embed_audio: bool = option(False, help="put the audio into the page as data: URIs, so the page travels alone "
                                           "(refused past 64 MiB of audio); default: link the wavs by relative path")


def default_output(folder: Path, round_k: Optional[int] = None) -> Path:
    """Where a report goes without --output: in the run's folder (a results file's own folder)."""
    folder = Path(folder)
    folder = folder if folder.is_dir() else folder.parent
    return folder / (f"report-round-{round_k}.html" if round_k else DEFAULT_PAGE)


def build_eval_report(paths: Sequence[Path], options: ReportOptions = ReportOptions()) -> tuple[Path, list[str]]:
    """Write the report of the eval runs under `paths`; returns the page and warnings (results files skipped)."""
    from alignslm_eval.io.paths import check_output_file
    from alignslm_eval.report.eval_run import eval_report
    from alignslm_eval.report.page import write_page

    output = Path(options.output) if options.output else default_output(paths[0])
    check_output_file(output, "--output", DEFAULT_PAGE)
    summary, tables, warnings = eval_report(paths, output.parent, options.embed_audio)
    return write_page(output, summary, tables), warnings


def build_train_report(out_dir: Path, round_k: Optional[int] = None,
                       options: ReportOptions = ReportOptions()) -> Path:
    """Write the report of the training run in `out_dir` (only round `round_k` when given); returns the page."""
    from alignslm_eval.io.paths import check_output_file
    from alignslm_eval.report.page import write_page
    from alignslm_eval.report.train_run import train_report

    output = Path(options.output) if options.output else default_output(out_dir, round_k)
    check_output_file(output, "--output", DEFAULT_PAGE)
    summary, tables = train_report(out_dir, output.parent, round_k, options.embed_audio)
    return write_page(output, summary, tables)
