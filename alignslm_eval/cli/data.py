"""`alignslm-data`: build spoken benchmarks from text with espeak-ng (`synth`), list the voices (`voices`).

    alignslm-data synth sblimp --input blimp/*.jsonl --out DATA --voices en-us,en-us+f3 --limit 100
    alignslm-data synth swuggy --input words.csv --out DATA [--ipa]
    alignslm-data synth storycloze --input cloze_test_val__spring2016.csv --out DATA --limit 500
    alignslm-data synth pairs --input pairs.csv --out DATA --positive-col good --negative-col bad
    alignslm-data voices
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from alignslm_eval.io.errors import ArgumentParser, UserError, run_command

PROG = "alignslm-data"
SYNTH_KINDS = ("sblimp", "swuggy", "storycloze", "pairs")

_LIMIT_HELP = {
    "sblimp": "keep a seeded random sample of N pairs per phenomenon (UID)",
    "swuggy": "keep a seeded random sample of N word/nonword pairs",
    "storycloze": "keep a seeded random sample of N stories",
    "pairs": "keep a seeded random sample of N pairs",
}
_INPUT_HELP = {
    "sblimp": "BLiMP .jsonl file(s), one per phenomenon",
    "swuggy": "CSV/TSV with word,nonword[,frequency], or BabySLM's lexical CSV (word, non words, ...)",
    "storycloze": "StoryCloze CSV (InputStoryid, InputSentence1-4, RandomFifthSentenceQuiz1/2, AnswerRightEnding)",
    "pairs": "CSV, TSV or JSONL with a positive and a negative text per row",
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Build spoken benchmarks (sBLIMP, sWUGGY, sSC/tSC, custom pairs) from text with espeak-ng, in "
        "the layouts `alignslm-eval --data-root` reads.",
    )
    commands = p.add_subparsers(dest="command", metavar="{synth,voices}")
    commands.required = True
    synth = commands.add_parser("synth", help="synthesise a benchmark from text")
    kinds = synth.add_subparsers(dest="kind", metavar="{" + ",".join(SYNTH_KINDS) + "}")
    kinds.required = True
    for kind in SYNTH_KINDS:
        k = kinds.add_parser(kind, help=_INPUT_HELP[kind])
        k.add_argument("--input", nargs="+", required=True, type=Path, metavar="FILE", help=_INPUT_HELP[kind])
        k.add_argument("--out", required=True, type=Path, metavar="DIR", help="output root (the --data-root)")
        k.add_argument(
            "--voices", default="en-us",
            help="comma-separated espeak-ng voices, NAME[+VARIANT][:rRATE][:pPITCH], e.g. en-us,en-us+f3:r150 "
            "(default: en-us; see `alignslm-data voices`)",
        )
        k.add_argument("--limit", type=_positive_int, metavar="N", help=_LIMIT_HELP[kind])
        k.add_argument("--seed", type=int, default=0, help="seed for sampling, voice choice and file names")
        k.add_argument("--overwrite", action="store_true", help="replace the files of a previous build")
        k.add_argument("--quiet", action="store_true", help="no progress bar")
        if kind in ("sblimp", "swuggy"):
            k.add_argument("--split", default="dev", help="split folder name (default: dev)")
        if kind == "swuggy":
            k.add_argument("--ipa", action="store_true", help="words are IPA phonemes, not text")
        if kind == "pairs":
            k.add_argument("--positive-col", default="positive")
            k.add_argument("--negative-col", default="negative")
            k.add_argument("--id-col", help="column with a unique id per pair (default: the row number from 0)")
            k.add_argument("--name", help="output folder under --out (default: the input file's stem)")
    voices = commands.add_parser("voices", help="list espeak-ng voices and voice variants")
    voices.add_argument("--all", action="store_true", help="all languages, not only English")
    return p


def _single_input(args: argparse.Namespace) -> Path:
    if len(args.input) != 1:
        raise UserError(f"--input: synth {args.kind} takes one file, got {len(args.input)}")
    return args.input[0]


def cmd_synth(args: argparse.Namespace) -> int:
    from alignslm_eval.builders import benchmarks as bb

    common = dict(overwrite=args.overwrite, progress=not args.quiet)
    if args.kind == "sblimp":
        report = bb.build_sblimp(args.input, args.out, args.voices, split=args.split, n_per_phenomenon=args.limit,
                                 seed=args.seed, **common)
    elif args.kind == "swuggy":
        report = bb.build_swuggy(_single_input(args), args.out, args.voices, split=args.split, ipa=args.ipa,
                                 seed=args.seed, limit=args.limit, **common)
    elif args.kind == "storycloze":
        report = bb.build_storycloze(_single_input(args), args.out, args.voices, n_stories=args.limit,
                                     seed=args.seed, **common)
    else:
        report = bb.build_pairs(_single_input(args), args.out, args.voices, positive_col=args.positive_col,
                                negative_col=args.negative_col, id_col=args.id_col, seed=args.seed, name=args.name,
                                limit=args.limit, **common)
    folders = ", ".join(str(f) for f in report.folders)
    print(f"{report.benchmark}: {report.n_items} items, {report.n_files} files, "
          f"{report.audio_seconds / 60:.1f} min of audio in {folders}; card: {report.card}")
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    from alignslm_eval.builders.tts import default_tts

    tts = default_tts()
    print(f"espeak-ng {tts.version}; use NAME[+VARIANT][:rRATE][:pPITCH] in --voices")
    for voice in tts.voices():
        if args.all or voice.language.startswith("en"):
            print(f"  {voice.language:20s} {voice.name}")
    if not args.all:
        print("  (--all lists every language)")
    print("variants (+NAME): " + ", ".join(tts.variants()))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `alignslm-data`; returns the exit status (2 for bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return int(e.code or 0)
    return run_command(PROG, lambda: cmd_synth(args) if args.command == "synth" else cmd_voices(args),
                       "rerun with --overwrite to rebuild the partial output")


if __name__ == "__main__":
    sys.exit(main())
