"""`alignslm-train`: the Align-SLM loop (sample -> score -> pairs -> DPO, over curriculum rounds), resumable.

    alignslm-train --model CKPT --prompts DIR --judge-model M [--judge-base-url URL] --rounds 3 --output-dir runs/align
    alignslm-train --stage pairs --round 2 ...      # one stage of one round, alone
    alignslm-train merge --model CKPT --adapter runs/align/round-3/adapter --output merged/
    alignslm-train demo-experiment                  # the loop on the story world, 3 seeds: leaderboards/align-demo.md

OUTPUT/config.json lists the commands run there and, once a round is complete, the settings its results depend on;
a later command with other settings is refused rather than mixed into or written over those results.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from alignslm_eval.api.options import Options, add_options, from_namespace, option_fields
from alignslm_eval.api.task import load_specs
from alignslm_eval.components import (DEMO_NAME, ModelOptions, PipelineOptions, TokenizerOptions, UnitCounts,
                                      build_pipeline, build_tokenizer, missing_options, resolve_model,
                                      tokenizer_source, unrunnable_tasks)
from alignslm_eval.evaluate.world import World
from alignslm_eval.io.atomic import write_text
from alignslm_eval.io.errors import ArgumentParser, UserError, run_command
from alignslm_eval.io.redaction import redact_command
from alignslm_train.config import RULE_SCORERS, AlignConfig, DPOSettings

STAGES = ("sample", "score", "pairs", "dpo")


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="alignslm-train", description=__doc__.splitlines()[0] + " Also: `alignslm-train merge` "
                       "writes a checkpoint with a trained adapter merged in.")
    add_options(p, AlignConfig)
    p.add_argument("--stage", choices=[*STAGES, "all"], default="all", help="run one stage only (with --round)")
    p.add_argument("--round", type=int, help="the round --stage applies to (default: every round)")
    p.add_argument("--cache-dir", type=Path, help="cache root for units and the demo build")
    # --model, --seed and the DPO's device are the loop's; the model dir's loading options are ModelOptions'
    add_options(p, ModelOptions, skip=("model", "model_backend", "adapter", "dtype"))
    add_options(p, TokenizerOptions)
    add_options(p.add_argument_group(DPOSettings._argument_group), DPOSettings, skip=("seed", "device"))
    add_options(p.add_argument_group(PipelineOptions._argument_group), PipelineOptions)
    return p


#: The config.json sections a stage's results depend on (every stage reads the sampled continuations). Which
#: setting belongs to which section is said by its field (`section=`); "dpo" is every DPOSettings field.
STAGE_SECTIONS = {"sample": ("sample",), "score": ("sample", "score"), "pairs": ("sample", "pairs"),
                  "dpo": ("sample", "pairs", "dpo")}


def _check(args: argparse.Namespace, stages: tuple[str, ...], config: AlignConfig, pipeline: PipelineOptions,
           device: str) -> None:
    """What the settings classes cannot check alone, before anything is loaded, so bad input fails before any model
    or judge work."""
    if args.round is not None and args.round < 1:
        raise UserError(f"--round {args.round}: must be at least 1")
    if "dpo" in stages and not (device == "cpu" or device.startswith("cuda")):
        raise UserError(f"--device {device}: DPO trains on cpu or cuda; choose one of them")
    options = pipeline.scorer_options(device)
    if config.model == DEMO_NAME:
        options["text_lm"] = options["text_lm"] or "demo"  # the demo brings its own text LM
    if "score" in stages:
        for name, flags in missing_options(RULE_SCORERS[config.pair_rule], options).items():
            raise UserError(f"--pair-rule {config.pair_rule} scores with {name}, which needs {flags}; pass it")
    if config.eval_tasks:
        try:
            specs = load_specs(config.eval_tasks)
        except UserError as e:
            raise UserError(f"--eval-tasks {','.join(config.eval_tasks)}: {e}")
        unrunnable = unrunnable_tasks(specs, options) if "dpo" in stages else {}
        if unrunnable:
            raise UserError("--eval-tasks: " + "; ".join(f"{task}: {why}" for task, why in unrunnable.items()))
    try:
        config.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--output-dir {config.output_dir}: cannot create it ({e.strerror or e}); give a directory "
                        "path")


def options_of(args: argparse.Namespace) -> tuple[AlignConfig, ModelOptions, TokenizerOptions, PipelineOptions,
                                                 DPOSettings]:
    """The settings of a training command, each checked as it is made."""
    config = from_namespace(AlignConfig, args)
    model = from_namespace(ModelOptions, args, model=config.model)
    dpo = from_namespace(DPOSettings, args, seed=config.seed, device=model.device)
    return config, model, from_namespace(TokenizerOptions, args), from_namespace(PipelineOptions, args), dpo


def _result_settings(*options: Options) -> dict[str, dict[str, Any]]:
    """config.json's sections from the settings' `section`s ("dpo": every DPOSettings field), with local paths made
    absolute so the same run compares equal."""
    sections: dict[str, dict[str, Any]] = {}
    dpo = next(o for o in options if isinstance(o, DPOSettings))
    for o in options:
        recorded = o.recorded()
        for f in option_fields(o):
            if f.metadata.get("section"):
                sections.setdefault(f.metadata["section"], {})[f.name] = recorded[f.name]
    # The default ASR by name, so a later --asr for the same rounds is refused like any other change.
    sections["score"]["asr"] = sections["score"]["asr"] or "pocketsphinx"
    for section, key in (("sample", "model"), ("sample", "prompts"), ("score", "text_lm"), ("score", "judge_prompt")):
        value = sections[section][key]
        if value is not None and Path(value).exists():
            sections[section][key] = str(Path(value).resolve())
    return json.loads(json.dumps({**sections, "dpo": asdict(dpo)}, default=str))


def _stored(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e}); restore it, or use a new --output-dir")


def _refuse_other_settings(output_dir: Path, settings: dict[str, dict[str, Any]]) -> None:
    """Completed rounds in `output_dir` are skipped, built on by later rounds and overwritten by single stages, so
    they must come from the settings given now; unfinished work is keyed by its settings and needs no check."""
    stored = _stored(output_dir).get("settings", {})
    differ = [f"{key} {old!r} -> {new!r}" for section, values in settings.items() for key, new in values.items()
              if (old := stored.get(section, {}).get(key)) is not None and new is not None and old != new]
    if differ:
        raise UserError(f"--output-dir {output_dir}: its results were made with other settings ({'; '.join(differ)});"
                        f" use a new --output-dir for these, or rerun with the ones in {output_dir / 'config.json'}")


def _record(output_dir: Path, sections: dict[str, dict[str, Any]], command: list[str]) -> None:
    """Add the command that starts work and the settings of a completed round to config.json (settings already
    there are kept)."""
    stored = _stored(output_dir)
    settings = stored.get("settings", {})
    for name, values in sections.items():
        old = settings.get(name, {})
        settings[name] = {**values, **{k: v for k, v in old.items() if v is not None}}
    # Older versions kept only the last command, under "command".
    commands = stored.get("commands") or ([stored["command"]] if "command" in stored else [])
    if commands[-1:] != [command]:
        commands.append(command)
    write_text(output_dir / "config.json", json.dumps({"settings": settings, "commands": commands}, indent=2) + "\n")


def cmd_train(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    stages = STAGES if args.stage == "all" else (args.stage,)
    config, model_options, tokenizer_options, pipeline, dpo = options_of(args)
    _check(args, stages, config, pipeline, model_options.device)
    world = World.from_env()
    model_options = replace(model_options, device=world.device(model_options.device))
    from alignslm_eval.io.cache import default_cache_dir
    from alignslm_eval.models.hf_unit_lm import HFUnitLM
    from alignslm_train.dpo import check_target_modules, layer_skeleton
    from alignslm_train.loop import (COMPLETE, policy, rule_scorers, sampling_run, stage_dpo, stage_pairs,
                                     stage_sample, stage_score)

    settings = _result_settings(config, model_options, tokenizer_options, pipeline, dpo)
    settings = {s: settings[s] for stage in stages for s in STAGE_SECTIONS[stage]}
    _refuse_other_settings(config.output_dir, settings)
    command = redact_command(["alignslm-train", *argv])

    cache_dir = args.cache_dir or default_cache_dir()
    resolved = world.rank0_first(lambda: resolve_model(config.model, cache_dir))
    pipeline.text_lm = pipeline.text_lm or resolved.text_lm
    config = replace(config, model=resolved.path)
    rounds = [args.round] if args.round is not None else list(range(1, args.rounds + 1))
    components = None
    for k in rounds:
        if args.stage == "all" and (config.round_dir(k) / COMPLETE).is_file():
            print(f"round {k}: already complete, skipped", file=sys.stderr)
            continue
        lm = policy(config, k, model_options, world)  # refuses a round whose previous one is unfinished
        config.round_dir(k).mkdir(parents=True, exist_ok=True)
        if "dpo" in stages:
            check_target_modules(lm.model if isinstance(lm, HFUnitLM) else layer_skeleton(config.model), dpo)
        if components is None:
            # Every round's policy lives on the base model's directory, so these are built once.
            model_dir = lm.describe().get("local_dir")
            tokenizer = build_tokenizer(tokenizer_options, model_dir)
            source = tokenizer_source(tokenizer_options, model_dir)
            lm.vocab.check_tokenizer(tokenizer.n_units, source)
            components = build_pipeline(pipeline, model_dir, model_options.device,
                                        UnitCounts(lm.vocab, tokenizer.n_units, source))
            scorers = rule_scorers(config, components, world) if "score" in stages else []
            if world.writes_final_files:
                _record(config.output_dir, {}, command)
        if "sample" in stages:
            run = stage_sample(config, k, lm, tokenizer, world)
        else:
            run = sampling_run(config, k, lm, tokenizer, world)
            if not run.sampled():
                raise UserError(f"round {k} has no continuations sampled with these settings; run --stage sample "
                                f"--round {k}")
        if "score" in stages:
            stage_score(config, k, run, components, scorers, world)
        if "pairs" in stages or "dpo" in stages:
            pairs = stage_pairs(config, k, run, write=world.writes_final_files)
            if world.writes_final_files:
                print(f"round {k}: {len(pairs)} preference pairs", file=sys.stderr)
        if "dpo" in stages:
            callbacks = []
            if config.eval_tasks and config.eval_every:
                from alignslm_train.callback import EvalCallback

                callbacks.append(EvalCallback(config.eval_tasks, config.eval_every, config.round_dir(k), lm.vocab,
                                              tokenizer, config.eval_data_root, config.eval_limit, cache_dir,
                                              f"round-{k}", components, world=world))
            adapter = stage_dpo(config, k, pairs, dpo, callbacks, world)
            if world.writes_final_files:
                _record(config.output_dir, settings, command)
                print(f"round {k}: adapter {adapter}", file=sys.stderr)
    return 0


def cmd_merge(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="alignslm-train merge",
                                description="Write a checkpoint with a trained adapter (and its chain) merged in.")
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path, help="where `--model demo` is built (as for training)")
    args = p.parse_args(argv)
    from alignslm_eval.io.cache import default_cache_dir
    from alignslm_eval.models.adapters import MERGED_FROM_FILE
    from alignslm_train.loop import merge_adapter

    if not Path(args.adapter).is_dir():
        raise UserError(f"--adapter {args.adapter}: directory does not exist; pass a round's adapter dir, e.g. "
                        "runs/align/round-1/adapter")
    out = args.output
    # Never write a checkpoint over other files (e.g. the base model's own dir); redoing a merge is fine.
    if out.exists() and not (out / MERGED_FROM_FILE).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--output {out}: exists and is not an empty directory; give a new directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--output {out}: cannot create it ({e.strerror or e}); give a directory path")
    model = resolve_model(args.model, args.cache_dir or default_cache_dir()).path
    merge_adapter(model, Path(args.adapter), out, shown_model=args.model)
    print(f"merged checkpoint: {args.output}")
    return 0


def cmd_experiment(argv: Sequence[str]) -> int:
    from alignslm_train.experiment import ExperimentConfig

    p = ArgumentParser(prog="alignslm-train demo-experiment",
                       description="Train Align-SLM rounds on the story world over several seeds and write a table of "
                                   "held-out metrics per round with 95% confidence intervals (docs/align-demo.md).")
    add_options(p, ExperimentConfig)
    p.add_argument("--cache-dir", type=Path, help="where the story world is built (default: the alignslm cache)")
    args = p.parse_args(argv)
    config = from_namespace(ExperimentConfig, args)
    from alignslm_eval.io.cache import default_cache_dir
    from alignslm_train.experiment import run_experiment

    out = run_experiment(config, args.cache_dir or default_cache_dir(),
                         redact_command(["alignslm-train", "demo-experiment", *argv]))
    print(out.read_text())
    print(f"table: {out}; numbers: {out.with_suffix('.json')}; plot: {out.with_suffix('.png')}")
    return 0


def cmd_report(argv: Sequence[str]) -> int:
    from alignslm_eval.cli.report import train_main
    return train_main(list(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"merge": cmd_merge, "report": cmd_report, "demo-experiment": cmd_experiment}
    command = commands.get(argv[0]) if argv else None
    return run_command("alignslm-train", lambda: command(argv[1:]) if command else cmd_train(argv),
                       "finished stages and items are saved, rerun the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
