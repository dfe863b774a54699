"""`alignslm-eval`: score a speech unit LM on registered tasks; `ls`; `zerospeech-score`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from alignslm_eval.errors import UserError

TOKENIZER_FILE = "alignslm_tokenizer.json"
DEMO_NAME = "demo"  # `--model demo`: the embedded tiny model and benchmark, built offline on first use


def _key_values(text: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UserError(f"{flag} {text!r}: expected key=value pairs separated by commas")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _task_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UserError(f"--set {item!r}: expected TASK.KEY=VALUE, e.g. sstorycloze.reduction=sum")
        target, value = item.split("=", 1)
        task, key = target.split(".", 1)
        out.setdefault(task, {})[key] = yaml.safe_load(value)
    return out


def _task_data(items: Sequence[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--task-data {item!r}: expected TASK=DIR")
        task, path = item.split("=", 1)
        out[task] = Path(path)
    return out


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alignslm-eval",
        description="Score a textless speech LM on spoken benchmarks. Other commands: `alignslm-eval ls`, "
        "`alignslm-eval zerospeech-score`.",
    )
    p.add_argument("--model", required=True,
                   help="hub id, local checkpoint dir, or 'demo' (tiny model + benchmark built offline on first use)")
    p.add_argument("--model-backend", default="hf", help="registered model back-end (see `alignslm-eval ls`)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--unit-convention", choices=["twist", "slam"], help="override how units map to token ids")
    p.add_argument("--unit-offset", type=int, help="TWIST convention: token id of unit 0")
    p.add_argument("--n-units", type=int, help="size of the unit inventory (default: from the checkpoint)")
    p.add_argument("--tasks", required=True, help="comma-separated task names, or 'all'")
    p.add_argument("--data-root", type=Path, help="folder holding each task's data_dir (e.g. lexical/, sSC/)")
    p.add_argument("--task-data", action="append", default=[], metavar="TASK=DIR", help="data dir for one task")
    p.add_argument("--set", action="append", default=[], metavar="TASK.KEY=VALUE",
                   help="override a task setting, e.g. swuggy.split=test or sstorycloze.reduction=sum")
    p.add_argument("--include-path", action="append", default=[], type=Path, help="extra folder of task YAMLs")
    p.add_argument("--tokenizer", help=f"registered speech tokenizer (default: the model dir's {TOKENIZER_FILE})")
    p.add_argument("--tokenizer-args", default="", help="key=value,... for the tokenizer, e.g. path=DIR,kmeans=F")
    p.add_argument("--output-path", type=Path, default=Path("runs"), help="results go under OUTPUT/<model name>/")
    p.add_argument("--cache-dir", type=Path, help="unit cache (default $ALIGNSLM_CACHE or ~/.cache/alignslm)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--limit", type=int, help="score only the first N choices of each task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-samples", action="store_true", help="write samples_<task>.jsonl with every item's scores")
    return p


def model_name(model: str) -> str:
    path = Path(model)
    name = path.name if path.exists() else model.replace("/", "__")
    return name or "model"


def _tokenizer(args: argparse.Namespace, model_dir: Optional[str]):
    from alignslm_eval.api.registry import TOKENIZERS

    if args.tokenizer:
        return TOKENIZERS.get(args.tokenizer).from_args(**_key_values(args.tokenizer_args, "--tokenizer-args"))
    spec_file = Path(model_dir) / TOKENIZER_FILE if model_dir else None
    if spec_file is None or not spec_file.is_file():
        raise UserError(
            f"no speech tokenizer: pass --tokenizer NAME --tokenizer-args ... (see `alignslm-eval ls`), or put "
            f"{TOKENIZER_FILE} in the model dir"
        )
    try:
        spec = json.loads(spec_file.read_text())
        name, targs = spec["name"], dict(spec.get("args", {}))
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{spec_file}: expected {{\"name\": ..., \"args\": {{...}}}} ({e})")
    # Paths in the file are relative to the model dir, so the dir can move.
    for key in ("path", "kmeans"):
        if key in targs and not Path(targs[key]).is_absolute():
            targs[key] = str(Path(model_dir) / targs[key])
    targs.update(_key_values(args.tokenizer_args, "--tokenizer-args"))
    return TOKENIZERS.get(name).from_args(**targs)


def cmd_run(argv: Sequence[str]) -> int:
    args = run_parser().parse_args(argv)
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.data_root is not None and not args.data_root.is_dir():
        raise UserError(f"--data-root {args.data_root}: directory does not exist")
    from alignslm_eval.api.registry import MODELS
    from alignslm_eval.api.task import load_specs
    from alignslm_eval.cache import default_cache_dir
    from alignslm_eval.evaluator import EvalSettings, evaluate, prepare_tasks
    from alignslm_eval.results import markdown_summary

    overrides = _task_overrides(args.set)
    model, data_root, cache_dir = args.model, args.data_root, args.cache_dir or default_cache_dir()
    if args.model == DEMO_NAME:
        from alignslm_eval.demo import ensure_demo

        demo = ensure_demo(cache_dir)
        model = str(demo.model_dir)
        if data_root is None:
            data_root = demo.data_root
            # The demo builds the SALMon parts a TTS can make; the override is recorded in the results.
            overrides.setdefault("salmon", {}).setdefault("parts", list(demo.salmon_parts))
    specs = load_specs([t.strip() for t in args.tasks.split(",") if t.strip()], tuple(args.include_path), overrides)
    settings = EvalSettings(
        output_dir=args.output_path / model_name(args.model),
        data_root=data_root,
        task_data=_task_data(args.task_data),
        cache_dir=cache_dir,
        batch_size=args.batch_size,
        limit=args.limit,
        seed=args.seed,
        log_samples=args.log_samples,
        command=["alignslm-eval", *argv],
    )
    tasks = prepare_tasks(specs, settings)
    lm = MODELS.get(args.model_backend).from_args(
        model, device=args.device, dtype=args.dtype, revision=args.revision,
        unit_convention=args.unit_convention, unit_offset=args.unit_offset, n_units=args.n_units,
    )
    tokenizer = _tokenizer(args, lm.describe().get("local_dir"))
    results, path = evaluate(tasks, lm, tokenizer, settings)
    print(markdown_summary(results))
    print(f"results: {path}")
    return 0


def cmd_ls(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="alignslm-eval ls", description="List registered tasks and components.")
    p.add_argument("--include-path", action="append", default=[], type=Path)
    args = p.parse_args(argv)
    from alignslm_eval.api.registry import MODELS, SCORERS, TASK_KINDS, TOKENIZERS
    from alignslm_eval.api.task import task_files

    print("tasks:")
    for name, path in task_files(tuple(args.include_path)).items():
        print(f"  {name:16s} {path}")
    for title, registry in (("model back-ends", MODELS), ("speech tokenizers", TOKENIZERS),
                            ("task kinds", TASK_KINDS), ("scorers", SCORERS)):
        print(f"{title}: {', '.join(registry.names())}")
    return 0


def cmd_zerospeech_score(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="alignslm-eval zerospeech-score",
        description="Score a ZeroSpeech 2021 submission file (`<filename> <score>` lines) against a gold.csv.",
    )
    p.add_argument("submission", type=Path, help="e.g. submission/lexical/dev.txt")
    p.add_argument("--gold", type=Path, required=True, help="folder holding gold.csv (e.g. DATA/lexical/dev)")
    p.add_argument("--kind", choices=["lexical", "syntactic"], required=True)
    p.add_argument("--output", type=Path, help="also write the result as JSON here")
    args = p.parse_args(argv)
    from alignslm_eval.results import markdown_summary, write_json
    from alignslm_eval.zerospeech_score import score_submission

    result = score_submission(args.submission, args.gold, args.kind).to_json()
    doc = {"tasks": {args.kind: {"result": result}}}
    print(markdown_summary(doc))
    if args.output:
        write_json(args.output, {"submission": str(args.submission), "gold": str(args.gold), **doc})
    return 0


COMMANDS = {"ls": cmd_ls, "zerospeech-score": cmd_zerospeech_score}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else cmd_run(argv)
    except UserError as e:
        print(f"alignslm-eval: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("alignslm-eval: interrupted; scored items and units are saved, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
