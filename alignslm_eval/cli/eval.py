"""`alignslm-eval`: score a speech unit LM on registered tasks; `ls`; `zerospeech-score`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from alignslm_eval.api.options import Options, add_options, from_namespace, option
from alignslm_eval.api.protocol import DEFAULT_PROTOCOL, all_presets, load_preset, preset_files
from alignslm_eval.components import (DEMO_NAME, ModelOptions, PipelineOptions, TokenizerOptions, UnitCounts,
                                      build_pipeline, build_tokenizer, build_unit_lm, resolve_model,
                                      tokenizer_source, unrunnable_tasks)
from alignslm_eval.evaluate.world import World, parse_shard
from alignslm_eval.io.errors import ArgumentParser, UserError, run_command
from alignslm_eval.io.paths import check_output_file, directory_rule
from alignslm_eval.io.redaction import redact_command, redact_text

def _yaml_setting(item: str, usage: str) -> tuple[str, Any]:
    """`--set KEY=VALUE` -> (KEY, the VALUE read as YAML)."""
    if "=" not in item:
        raise UserError(f"--set {item!r}: expected {usage}")
    key, value = item.split("=", 1)
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise UserError(f"--set {item!r}: the value is not valid YAML (quote strings, e.g. '[a, b]')")


def _task_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        usage = "TASK.KEY=VALUE, e.g. sstorycloze.reduction=sum"
        target, value = _yaml_setting(item, usage)
        if "." not in target:
            raise UserError(f"--set {item!r}: expected {usage}")
        task, key = target.split(".", 1)
        out.setdefault(task, {})[key] = value
    return out


def _task_data(items: Sequence[str], flag: str = "--task-data", what: str = "DIR") -> dict[str, Path]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"{flag} {item!r}: expected TASK={what}")
        task, path = item.split("=", 1)
        out[task] = Path(path)
    return out


@dataclass
class RunOptions(Options):
    """What `alignslm-eval` runs and where it writes; the model, tokenizer and pipeline have options of their own
    (alignslm_eval.components)."""

    tasks: str = option(help="comma-separated task names, or 'all'")
    data_root: Optional[Path] = option(None, must=directory_rule("--data-root", must_exist=True),
                                       help="folder holding each task's data_dir (e.g. lexical/, sSC/)")
    task_data: list[str] = option(default_factory=list, metavar="TASK=DIR", help="data dir for one task")
    task_units: list[str] = option(default_factory=list, flag="--units", metavar="TASK=FILE",
                                   help="score a likelihood task from a units JSONL instead of tokenizing its audio: "
                                        "slamkit's features ({file_name, units, duration}) or `alignslm-eval units "
                                        "export` files, matched to items by key or file name (docs/tasks.md)")
    task_settings: list[str] = option(default_factory=list, flag="--set", metavar="TASK.KEY=VALUE",
                                      help="override a task setting, e.g. swuggy.split=test or "
                                           "sstorycloze.reduction=sum")
    protocol: str = option(DEFAULT_PROTOCOL, must=(lambda v: v in preset_files(),
                                                   "one of " + ", ".join(preset_files())),
                           help="named scoring protocol (tasks/protocols/NAME.yaml): alignslm (the task files' own "
                                "values), slamkit or twist; sets BOS/EOS, sum or mean, dedup per task and the unit "
                                "LM's dtype as that toolkit scores (docs/scoring-protocol.md). --set and --dtype "
                                "still override one value")
    include_path: list[Path] = option(default_factory=list, help="extra folder of task YAMLs")
    output_path: Path = option(Path("runs"), must=directory_rule("--output-path"),
                               help="results go under OUTPUT/<model name>/")
    cache_dir: Optional[Path] = option(None, must=directory_rule("--cache-dir"),
                                       help="cache root for units and the demo build (default "
                                            "$ALIGNSLM_CACHE or ~/.cache/alignslm)")
    batch_size: int = option(8, must=(lambda v: v >= 1, "at least 1"),
                             help="sequences per unit LM forward pass (likelihood tasks); prompts per sampling batch, "
                                  "each with all its samples (generation tasks). Scores and samples do not depend "
                                  "on it")
    limit: Optional[int] = option(None, must=(lambda v: v >= 1, "at least 1"),
                                  help="score only the first N choices of each task")
    seed: int = option(0, help="seed of sampling and of every random generator")
    log_samples: bool = option(False, help="write samples_<task>.jsonl with every item's scores")
    shard: Optional[str] = option(None, metavar="I/N", must=(lambda v: bool(parse_shard(v)), "I/N, e.g. 0/4"),
                                  help="score only shard I of N, as one of N independent jobs (e.g. a SLURM array); "
                                       "the same command without --shard then scores what is missing and writes "
                                       "the results. Under torchrun the ranks shard by themselves")


def run_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="alignslm-eval",
        description="Score a textless speech LM on spoken benchmarks. Other commands: `alignslm-eval ls`, "
        "`alignslm-eval score` (re-score a saved continuation run), `alignslm-eval zerospeech-score`, "
        "`alignslm-eval units export` (write the units a run scored), `alignslm-eval report` (an HTML page of a run).",
    )
    add_options(p, ModelOptions)
    add_options(p, RunOptions)
    add_options(p, TokenizerOptions)
    add_options(p.add_argument_group(PipelineOptions._argument_group), PipelineOptions)
    return p


def model_name(model: str, adapter: Optional[str] = None) -> str:
    """Folder name of a run: the checkpoint dir's name or the hub id, plus the adapter's round when one is applied."""
    path = Path(model)
    name = (path.name if path.exists() else model.replace("/", "__")) or "model"
    if adapter:
        a = Path(adapter).resolve()
        name += "+" + (a.parent.name if a.name == "adapter" else a.name)
    return name


def recorded_settings(*options: Options) -> dict[str, Any]:
    """Every setting of a command, as results files record it (a URL's credentials scrubbed)."""
    values = {k: v for o in options for k, v in o.recorded().items()}
    return {k: redact_text(v) if isinstance(v, str) else v for k, v in values.items()}


def given_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The destinations of the flags `argv` gives (however abbreviated), as against those left at their default."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return set(vars(parser.parse_args(argv)))


def cmd_run(argv: Sequence[str]) -> int:
    args = run_parser().parse_args(argv)
    model_options, run_options = from_namespace(ModelOptions, args), from_namespace(RunOptions, args)
    preset = load_preset(run_options.protocol)
    if "dtype" in preset.model and "dtype" not in given_flags(run_parser(), argv):
        model_options = replace(model_options, dtype=preset.model["dtype"].value)
    tokenizer_options, pipeline_options = from_namespace(TokenizerOptions, args), from_namespace(PipelineOptions, args)
    from alignslm_eval.api.task import load_specs
    from alignslm_eval.evaluate.likelihood import EvalSettings, evaluate, prepare_tasks
    from alignslm_eval.api.results import markdown_summary
    from alignslm_eval.io.cache import default_cache_dir

    overrides = _task_overrides(run_options.task_settings)
    requested = [t.strip() for t in run_options.tasks.split(",") if t.strip()]
    if not requested:
        raise UserError(f"--tasks {run_options.tasks!r}: names no task; give comma-separated names (see "
                        "`alignslm-eval ls`) or all")
    not_run = sorted(set(overrides) - set(requested)) if requested != ["all"] else []
    if not_run:
        raise UserError(f"--set for {', '.join(not_run)}: not among the tasks run ({run_options.tasks}); add it to "
                        "--tasks or drop the --set")
    include_paths = tuple(run_options.include_path)
    data_root, cache_dir = run_options.data_root, run_options.cache_dir or default_cache_dir()
    if model_options.model == DEMO_NAME:
        # Task files and --set values are checked before the demo is built (a first build takes a minute or more).
        from alignslm_eval.api.registry import TASK_KINDS

        for spec in load_specs(requested, include_paths, overrides, preset):
            TASK_KINDS.get(spec.kind)(spec)
    world = World.from_env(run_options.shard)
    # One rank builds the demo into the shared cache; the others then find it built.
    resolved = world.rank0_first(lambda: resolve_model(model_options.model, cache_dir))
    if resolved.demo is not None and data_root is None:
        data_root = resolved.data_root
        # The demo builds the SALMon parts a TTS can make; the override is recorded in the results.
        overrides.setdefault("salmon", {}).setdefault("parts", list(resolved.demo.salmon_parts))
    pipeline_options.text_lm = pipeline_options.text_lm or resolved.text_lm
    specs = load_specs(requested, include_paths, overrides, preset)
    scorer_options = pipeline_options.scorer_options(model_options.device)
    skipped = unrunnable_tasks(specs, scorer_options) if requested == ["all"] else {}
    for name, reason in skipped.items():
        # Only `--tasks all` skips, and says so here and in the results file; a named task fails instead.
        print(f"alignslm-eval: skipping {name}: {reason}", file=sys.stderr)
    specs = [s for s in specs if s.name not in skipped]
    task_data = _task_data(run_options.task_data)
    task_units = _task_data(run_options.task_units, "--units", "FILE")
    for flag, given in (("--task-data", task_data), ("--units", task_units)):
        unknown = sorted(set(given) - {s.name for s in specs} - set(skipped))
        if unknown:
            raise UserError(f"{flag} for {', '.join(unknown)}: not among the tasks run ({run_options.tasks})")
    output_dir = run_options.output_path / model_name(model_options.model, model_options.adapter)
    if run_options.limit is not None:
        # A partial run's files (submission, samples, items) go beside the full run's, never over them.
        output_dir = output_dir / f"limit-{run_options.limit}"
    settings = EvalSettings(
        output_dir=output_dir,
        data_root=data_root,
        task_data=task_data,
        task_units=task_units,
        cache_dir=cache_dir,
        batch_size=run_options.batch_size,
        limit=run_options.limit,
        seed=run_options.seed,
        log_samples=run_options.log_samples,
        command=redact_command(["alignslm-eval", *argv]),
        settings=recorded_settings(model_options, tokenizer_options, pipeline_options, run_options),
        skipped=skipped,
        world=world,
    )
    tasks = prepare_tasks(specs, settings)
    lm = build_unit_lm(replace(model_options, device=world.device(model_options.device)), resolved.path)
    model_dir = lm.describe().get("local_dir")
    if all(t.spec.name in task_units for t in tasks) and not tokenizer_options.tokenizer:
        # every task scores supplied units: no speech tokenizer is loaded, so none need be at hand
        tokenizer, counts = None, None
    else:
        tokenizer = build_tokenizer(tokenizer_options, model_dir)
        source = tokenizer_source(tokenizer_options, model_dir)
        lm.vocab.check_tokenizer(tokenizer.n_units, source)
        counts = UnitCounts(lm.vocab, tokenizer.n_units, source)
    settings.components = build_pipeline(pipeline_options, model_dir, world.device(model_options.device), counts)
    results, path = evaluate(tasks, lm, tokenizer, settings)
    if results is None:
        if not world.group:
            print(f"alignslm-eval: {world.label} scored; run the same command without --shard to score what is "
                  "missing and write the results", file=sys.stderr)
        return 0
    print(markdown_summary(results))
    print(f"results: {path}")
    return _report_unscored_tasks(results)

def _report_unscored_tasks(results: dict[str, Any]) -> int:
    """Exit status 1 (results kept) when a generation task scored no sample at all, e.g. every judge call failed."""
    failed = 0
    for name, entry in results["tasks"].items():
        headline = entry["result"]["headline"]
        if "pipeline" in entry and entry["result"]["metrics"][headline]["n"] == 0:
            reasons = entry.get("unscored", {}).get(headline, {})
            top = next(iter(reasons), "no sample")
            retry = ", and a rerun retries the failed requests" if str(top).startswith("error") else ""
            print(f"alignslm-eval: {name}: no sample could be scored ({top!r} x{reasons.get(top, 0)}); the results "
                  f"file is kept{retry}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_ls(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="alignslm-eval ls", description="List registered tasks and components.")
    p.add_argument("--include-path", action="append", default=[], type=Path)
    args = p.parse_args(argv)
    from alignslm_eval.api.registry import ASRS, MODELS, SCORERS, TASK_KINDS, TOKENIZERS, VOCODERS
    from alignslm_eval.api.task import task_files

    print("tasks:")
    for name, path in task_files(tuple(args.include_path)).items():
        print(f"  {name:16s} {path}")
    print("scoring protocols (--protocol):")
    for preset in all_presets():
        print(f"  {preset.name:16s} {preset.description} [{preset.path}]")
    for title, registry in (("model back-ends", MODELS), ("speech tokenizers", TOKENIZERS), ("vocoders", VOCODERS),
                            ("ASR", ASRS), ("task kinds", TASK_KINDS), ("scorers", SCORERS)):
        print(f"{title}: {', '.join(registry.names())}")
    return 0


def cmd_zerospeech_score(argv: Sequence[str]) -> int:
    p = ArgumentParser(
        prog="alignslm-eval zerospeech-score",
        description="Score a ZeroSpeech 2021 submission file (`<filename> <score>` lines) against a gold.csv.",
    )
    p.add_argument("submission", type=Path, help="e.g. submission/lexical/dev.txt")
    p.add_argument("--gold", type=Path, required=True, help="folder holding gold.csv (e.g. DATA/lexical/dev)")
    p.add_argument("--kind", choices=["lexical", "syntactic"], required=True)
    p.add_argument("--output", type=Path, help="also write the result as JSON here")
    args = p.parse_args(argv)
    from alignslm_eval.api.results import markdown_summary, write_json
    from alignslm_eval.evaluate.zerospeech import score_submission

    result = score_submission(args.submission, args.gold, args.kind).to_json()
    doc = {"tasks": {args.kind: {"result": result}}}
    print(markdown_summary(doc))
    if args.output:
        write_json(args.output, {"submission": str(args.submission), "gold": str(args.gold), **doc})
    return 0


def cmd_score(argv: Sequence[str]) -> int:
    p = ArgumentParser(
        prog="alignslm-eval score",
        description="Re-score a saved continuation run with other scorers, without sampling again. The run's own "
        "wavs and transcripts are reused (their vocoder and ASR are not loaded); --vocoder / --asr choose others, and "
        "make what the run lacks.",
    )
    p.add_argument("run_dir", type=Path, help="a continuation run dir (the run_dir recorded in a results file)")
    p.add_argument("--scorers", required=True, help="comma-separated registered scorers, e.g. genppl,auto_bleu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a scorer setting, as a task sets it, e.g. genppl_include_prompt=true or auto_bleu_n=3")
    p.add_argument("--output", type=Path, help="results JSON (default: RUN_DIR/rescored_<timestamp>.json)")
    p.add_argument("--log-samples", action="store_true", help="also write every sample's scores, beside --output")
    p.add_argument("--device", default="cpu", help="torch device of the scorers' models, e.g. cuda")
    add_options(p.add_argument_group(PipelineOptions._argument_group), PipelineOptions)
    args = p.parse_args(argv)
    pipeline_options = from_namespace(PipelineOptions, args)
    from alignslm_eval.api.registry import SCORERS
    from alignslm_eval.evaluate.continuation_store import ContinuationRun
    from alignslm_eval.evaluate.generation import (generation_metric_info, prepare_scorers, score_continuations,
                                                   unscored_reasons, write_samples_log)
    from alignslm_eval.api.results import ResultsDocument, TaskEntry, markdown_summary, timestamp, write_json
    from alignslm_tasks.continuation import ContinuationTask, aggregate_scores

    run = ContinuationRun(args.run_dir)
    names = [n.strip() for n in args.scorers.split(",") if n.strip()]
    if not names:
        raise UserError(f"--scorers {args.scorers!r}: names no scorer; see `alignslm-eval ls` for the scorers")
    scorers = [SCORERS.get(n) for n in names]
    if not all(isinstance(s, type) and hasattr(s, "from_options") for s in scorers):
        raise UserError(f"--scorers {args.scorers}: only continuation scorers can re-score a run")
    settings = dict(_yaml_setting(item, "KEY=VALUE, e.g. genppl_include_prompt=true") for item in args.set)
    accepted = sorted({key for s in scorers for key in s.task_settings})
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise UserError(f"--set {', '.join(unknown)}: not a setting of the scorers {args.scorers} (theirs: "
                        f"{', '.join(accepted) or 'none'})")
    created = timestamp()
    if args.output:
        check_output_file(args.output, "--output", "rescored.json")
    components = build_pipeline(pipeline_options, run.identity["model"].get("local_dir"), args.device)
    # The run's own wavs and transcripts, unless the flags name another vocoder or ASR (its arguments alone do too).
    needs = {need for s in scorers for need in s.needs}
    if needs & {"wav", "text"} and not (args.vocoder or args.vocoder_args):
        components.recorded_vocoder = run.recorded("vocoder")
    if "text" in needs and not (args.asr or args.asr_args):
        components.recorded_asr = run.recorded("asr")
    scorers = prepare_scorers(names, components, settings)
    items = run.items()
    scores, pipeline = score_continuations(run, items, run.prompts(), scorers, components)
    files = {"run_dir": str(run.root)}
    entry = TaskEntry(settings=settings, pipeline=pipeline, result=aggregate_scores(scores).to_json(),
                      unscored=unscored_reasons(scores), files=files)
    entry.metric_info = generation_metric_info(entry.result, scorers, ContinuationTask)
    document = ResultsDocument(tasks={"rescore": entry}, created=created,
                               command=redact_command(["alignslm-eval", "score", *argv]),
                               settings=recorded_settings(pipeline_options), model=run.identity["model"])
    if args.output:
        output = args.output
        write_json(output, document.to_json())
    else:  # a name of its own: two re-scorings of one run finishing in the same second keep both files
        output = document.write(run.root, f"rescored_{created}")
    if args.log_samples:
        files["samples"] = str(write_samples_log(output.with_name(f"{output.stem}_samples.jsonl"), items, scores))
        write_json(output, document.to_json())
    doc = document.to_json()
    print(markdown_summary(doc))
    print(f"results: {output}")
    return _report_unscored_tasks(doc)


def cmd_units(argv: Sequence[str]) -> int:
    p = ArgumentParser(
        prog="alignslm-eval units",
        description="`alignslm-eval units export RUN` writes the units a run scored, one <task>.jsonl per likelihood "
        "task ({key, file_name, units, duration} per line), for `alignslm-eval --units TASK=FILE`.",
    )
    p.add_argument("action", choices=["export"])
    p.add_argument("run", type=Path, help="a run dir (runs/<model>/) or its results_<timestamp>.json")
    p.add_argument("--output", type=Path, required=True, help="folder to write <task>.jsonl into")
    p.add_argument("--cache-dir", type=Path, help="the cache root the run used (default $ALIGNSLM_CACHE or "
                                                  "~/.cache/alignslm)")
    args = p.parse_args(argv)
    from alignslm_eval.evaluate.units_export import export_units, newest_results
    from alignslm_eval.io.cache import default_cache_dir

    for path in export_units(newest_results(args.run), args.output, args.cache_dir or default_cache_dir()):
        print(f"units: {path}")
    return 0


def cmd_report(argv: Sequence[str]) -> int:
    # imported on use: the report's module is not needed to score
    from alignslm_eval.cli.report import eval_main
    return eval_main(list(argv))


COMMANDS = {"ls": cmd_ls, "zerospeech-score": cmd_zerospeech_score, "score": cmd_score, "units": cmd_units,
            "report": cmd_report}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    return run_command("alignslm-eval", lambda: command(argv[1:]) if command else cmd_run(argv),
                       "scored items and units are saved, rerun the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
