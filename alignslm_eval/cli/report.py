"""`alignslm-eval report` and `alignslm-train report`: one HTML page to read and listen to a run.

    alignslm-eval report runs/demo/ [--output report.html] [--embed-audio]
    alignslm-train report runs/align/ [--round K]

Flags are `alignslm_eval.report.ReportOptions`'; the dispatch lives in cli/eval.py and alignslm_train/cli.py, which
run these under `run_command` (bad input: one line, exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alignslm_eval.api.options import add_options, from_namespace
from alignslm_eval.io.errors import ArgumentParser
from alignslm_eval.report import ReportOptions, build_eval_report, build_train_report


def eval_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="alignslm-eval report",
                       description="Write one HTML page (works offline, from file://) showing eval runs: the header "
                       "(model, adapters, tokenizer, datasets, packages, command), every task's metrics with "
                       "standard errors and protocol, each continuation sample with its audio, transcripts, scores "
                       "and judge answers, and each likelihood choice with its candidates.")
    p.add_argument("runs", nargs="+", type=Path,
                   help="a run dir (runs/<model>/), a folder of runs (searched for results_*.json) or results files")
    add_options(p, ReportOptions)
    return p


def train_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="alignslm-train report",
                       description="Write one HTML page (works offline, from file://) showing a training run: per "
                       "round the pair counts and why prompts gave none, score histograms, each chosen / rejected "
                       "pair with both audios, transcripts and ratings, the DPO log, and the mid-training "
                       "evaluation curve.")
    p.add_argument("out_dir", type=Path, metavar="TRAIN_OUT_DIR", help="the --output-dir of alignslm-train")
    p.add_argument("--round", type=int, dest="round_k", metavar="K", help="only round K (default: every round)")
    add_options(p, ReportOptions)
    return p


def eval_main(argv: list[str]) -> int:
    args = eval_parser().parse_args(argv)
    page, warnings = build_eval_report(args.runs, from_namespace(ReportOptions, args))
    for warning in warnings:
        print(f"alignslm-eval report: warning: skipped {warning}", file=sys.stderr)
    print(f"report: {page}")
    return 0


def train_main(argv: list[str]) -> int:
    args = train_parser().parse_args(argv)
    page = build_train_report(args.out_dir, args.round_k, from_namespace(ReportOptions, args))
    print(f"report: {page}")
    return 0
