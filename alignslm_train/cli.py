"""`alignslm-train`: the Align-SLM loop (sample -> score -> pairs -> DPO, over curriculum rounds), resumable.

    alignslm-train --model CKPT --prompts DIR --judge-model M [--judge-base-url URL] --rounds 3 --output-dir runs/align
    alignslm-train --stage pairs --round 2 ...      # one stage of one round, alone
    alignslm-train merge --model CKPT --adapter runs/align/round-3/adapter --output merged/

OUTPUT/config.json lists the commands run there and, once a round is complete, the settings its results depend on;
a later command with other settings is refused rather than mixed into or written over those results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, Sequence

from alignslm_eval.io.atomic import write_text
from alignslm_eval.io.errors import ArgumentParser, UserError, run_command
from alignslm_eval.io.paths import check_directory
from alignslm_eval.io.redaction import redact_command

STAGES = ("sample", "score", "pairs", "dpo")


def _schedule(text: str) -> list[list[float]]:
    """CHOSEN_MIN:REJECTED_MAX per round, validated before any sampling or judging happens."""
    usage = f"--schedule {text!r}: expected CHOSEN_MIN:REJECTED_MAX per round with CHOSEN_MIN > REJECTED_MAX, e.g. 3:1,4:2"
    try:
        steps = [[float(x) for x in step.split(":")] for step in text.split(",") if step.strip()]
    except ValueError:
        raise UserError(usage)
    if not steps or any(len(step) != 2 or step[0] <= step[1] for step in steps):
        raise UserError(usage)
    return steps


def parser() -> argparse.ArgumentParser:
    from alignslm_eval.cli.eval import add_pipeline_arguments

    p = ArgumentParser(prog="alignslm-train", description=__doc__.splitlines()[0] + " Also: `alignslm-train merge` "
                       "writes a checkpoint with a trained adapter merged in.")
    p.add_argument("--model", required=True, help="base unit LM: hub id or local dir (or 'demo')")
    p.add_argument("--prompts", type=Path, required=True, help="folder of prompt utterances (wav/flac)")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=1, help="curriculum rounds (the paper runs up to 3)")
    p.add_argument("--stage", choices=[*STAGES, "all"], default="all", help="run one stage only (with --round)")
    p.add_argument("--round", type=int, help="the round --stage applies to (default: every round)")
    p.add_argument("--tokenizer", help="speech tokenizer (default: the model dir's alignslm_tokenizer.json)")
    p.add_argument("--tokenizer-args", default="")
    p.add_argument("--cache-dir", type=Path, help="cache root for units, the demo build and judge answers")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("sampling and pairs")
    g.add_argument("--samples-per-prompt", type=int, default=5)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int, default=25)
    g.add_argument("--max-new-tokens", type=int, default=150)
    g.add_argument("--prompt-seconds", type=float, default=3.0)
    g.add_argument("--pair-rule", choices=["judge_threshold", "perplexity"], default="judge_threshold")
    g.add_argument("--schedule", default="3:1,4:2", help="judge thresholds per round, CHOSEN_MIN:REJECTED_MAX,...")
    g.add_argument("--max-auto-bleu", type=float, default=0.3, help="drop pairs whose prompt+chosen repeats this much")
    g.add_argument("--allow-unscored", action="store_true",
                   help="make pairs even when scoring failed for some samples (e.g. judge errors), from the scored "
                   "ones; the counts go into pairs_report.json and COMPLETE.json (default: refuse, rerun to retry)")
    d = p.add_argument_group("DPO and LoRA")
    d.add_argument("--beta", type=float, default=0.1)
    d.add_argument("--learning-rate", type=float, default=5e-5)
    d.add_argument("--lora-rank", type=int, default=32)
    d.add_argument("--lora-alpha", type=int, default=8)
    d.add_argument("--lora-dropout", type=float, default=0.0)
    d.add_argument("--target-modules", default="all-linear", help="'all-linear' or comma-separated module names")
    d.add_argument("--batch-size", type=int, default=4)
    d.add_argument("--epochs", type=float, default=1.0)
    d.add_argument("--max-steps", type=int, default=-1)
    e = p.add_argument_group("mid-training evaluation")
    e.add_argument("--eval-tasks", default="", help="registered tasks to run during DPO, e.g. sstorycloze")
    e.add_argument("--eval-every", type=int, default=0, help="every K optimiser steps (0: never)")
    e.add_argument("--eval-limit", type=int, default=20)
    e.add_argument("--eval-data-root", type=Path)
    add_pipeline_arguments(p)
    return p


#: config.json sections: the settings each stage's results depend on ("dpo": every DPOSettings field). Once a round
#: is complete they are fixed for its --output-dir.
RESULT_SETTINGS = {
    "sample": ("model", "prompts", "samples_per_prompt", "temperature", "top_k", "max_new_tokens", "prompt_seconds",
               "seed", "tokenizer", "tokenizer_args"),
    "score": ("pair_rule", "vocoder", "vocoder_args", "asr", "asr_args", "text_lm", "judge_model", "judge_prompt",
              "judge_answer_pattern", "judge_temperature", "judge_max_tokens"),
    "pairs": ("pair_rule", "schedule", "max_auto_bleu"),
}
#: The config.json sections a stage's results depend on (every stage reads the sampled continuations).
STAGE_SECTIONS = {"sample": ("sample",), "score": ("sample", "score"), "pairs": ("sample", "pairs"),
                  "dpo": ("sample", "pairs", "dpo")}


def _check(args: argparse.Namespace, stages: tuple[str, ...]) -> None:
    """Every flag that can be checked without loading anything, so bad input fails before any model or judge work."""
    from alignslm_eval.api.task import load_specs
    from alignslm_eval.cli.eval import (DEMO_NAME, check_pipeline_arguments, missing_options, scorer_options,
                                   unrunnable_tasks)
    from alignslm_train.loop import RULE_SCORERS

    check_pipeline_arguments(args)

    check_directory(args.output_dir, "--output-dir")
    check_directory(args.prompts, "--prompts", must_exist=True)
    check_directory(args.eval_data_root, "--eval-data-root", must_exist=True)
    limits = (
        ("--rounds", args.rounds, args.rounds >= 1, "at least 1"),
        ("--round", args.round, args.round is None or args.round >= 1, "at least 1"),
        ("--samples-per-prompt", args.samples_per_prompt, args.samples_per_prompt >= 2,
         "at least 2 (a pair is a chosen and a rejected continuation of one prompt)"),
        ("--temperature", args.temperature, args.temperature > 0, "greater than 0"),
        ("--top-k", args.top_k, args.top_k >= 0, "0 (no top-k filtering) or more"),
        ("--max-new-tokens", args.max_new_tokens, args.max_new_tokens >= 1, "at least 1"),
        ("--prompt-seconds", args.prompt_seconds, args.prompt_seconds > 0, "greater than 0"),
        ("--max-auto-bleu", args.max_auto_bleu, args.max_auto_bleu > 0, "greater than 0"),
        ("--beta", args.beta, args.beta > 0, "greater than 0"),
        ("--learning-rate", args.learning_rate, args.learning_rate > 0, "greater than 0"),
        ("--lora-rank", args.lora_rank, args.lora_rank >= 1, "at least 1"),
        ("--lora-alpha", args.lora_alpha, args.lora_alpha > 0, "greater than 0"),
        ("--lora-dropout", args.lora_dropout, 0 <= args.lora_dropout < 1, "in [0, 1)"),
        ("--batch-size", args.batch_size, args.batch_size >= 1, "at least 1"),
        ("--epochs", args.epochs, args.epochs > 0, "greater than 0"),
        ("--max-steps", args.max_steps, args.max_steps == -1 or args.max_steps >= 1, "-1 (run --epochs) or at least 1"),
        ("--eval-every", args.eval_every, args.eval_every >= 0, "0 (never) or more"),
        ("--eval-limit", args.eval_limit, args.eval_limit >= 1, "at least 1"),
    )
    for flag, value, ok, requirement in limits:
        if not ok:  # also catches nan, which fails every comparison
            raise UserError(f"{flag} {value}: must be {requirement}")
    _schedule(args.schedule)
    if not [t for t in args.target_modules.split(",") if t.strip()]:
        raise UserError(f"--target-modules {args.target_modules!r}: give all-linear or comma-separated layer names")
    if "dpo" in stages and not (args.device == "cpu" or args.device.startswith("cuda")):
        raise UserError(f"--device {args.device}: DPO trains on cpu or cuda; choose one of them")
    options = scorer_options(args)
    if args.model == DEMO_NAME:
        options["text_lm"] = options["text_lm"] or "demo"  # the demo brings its own text LM
    if "score" in stages:
        for name, flags in missing_options(RULE_SCORERS[args.pair_rule], options).items():
            raise UserError(f"--pair-rule {args.pair_rule} scores with {name}, which needs {flags}; pass it")
    tasks = [t.strip() for t in args.eval_tasks.split(",") if t.strip()]
    if bool(tasks) != bool(args.eval_every):
        raise UserError(f"--eval-tasks {args.eval_tasks!r} with --eval-every {args.eval_every}: mid-training "
                        "evaluation needs both (task names and every how many steps), or neither")
    if tasks:
        try:
            specs = load_specs(tasks)
        except UserError as e:
            raise UserError(f"--eval-tasks {args.eval_tasks}: {e}")
        unrunnable = unrunnable_tasks(specs, options) if "dpo" in stages else {}
        if unrunnable:
            raise UserError("--eval-tasks: " + "; ".join(f"{task}: {why}" for task, why in unrunnable.items()))
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--output-dir {args.output_dir}: cannot create it ({e.strerror or e}); give a directory path")


def _result_settings(args: argparse.Namespace, dpo) -> dict[str, dict[str, Any]]:
    """config.json's sections from the flags, with local paths made absolute so the same run compares equal."""
    # The default ASR by name, so a later --asr for the same rounds is refused like any other change.
    values = {**vars(args), "schedule": _schedule(args.schedule), "asr": args.asr or "pocketsphinx"}
    for key in ("model", "prompts", "text_lm", "judge_prompt"):
        if values[key] is not None and Path(values[key]).exists():
            values[key] = Path(values[key]).resolve()
    sections = {name: {key: values[key] for key in keys} for name, keys in RESULT_SETTINGS.items()}
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
    _check(args, stages)
    from alignslm_eval.io.cache import default_cache_dir
    from alignslm_eval.cli.eval import DEMO_NAME, pipeline_components, speech_tokenizer, tokenizer_source
    from alignslm_train.dpo import DPOSettings, check_target_modules
    from alignslm_train.loop import (COMPLETE, AlignConfig, policy, rule_scorers, stage_dpo, stage_pairs, stage_sample,
                                     stage_score)

    targets = args.target_modules if args.target_modules == "all-linear" else \
        [t.strip() for t in args.target_modules.split(",") if t.strip()]
    dpo = DPOSettings(beta=args.beta, learning_rate=args.learning_rate, lora_rank=args.lora_rank,
                      lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=targets,
                      per_device_batch_size=args.batch_size, num_epochs=args.epochs, max_steps=args.max_steps,
                      seed=args.seed, device=args.device)
    settings = _result_settings(args, dpo)
    settings = {s: settings[s] for stage in stages for s in STAGE_SECTIONS[stage]}
    _refuse_other_settings(args.output_dir, settings)
    command = redact_command(["alignslm-train", *argv])

    cache_dir = args.cache_dir or default_cache_dir()
    model = args.model
    if model == DEMO_NAME:
        from alignslm_eval.demo import ensure_demo

        demo = ensure_demo(cache_dir)
        model = str(demo.model_dir)
        args.text_lm = args.text_lm or str(demo.text_lm_dir)
    config = AlignConfig(
        model=model, prompts=args.prompts, output_dir=args.output_dir, rounds=args.rounds,
        samples_per_prompt=args.samples_per_prompt, temperature=args.temperature, top_k=args.top_k,
        max_new_tokens=args.max_new_tokens, prompt_seconds=args.prompt_seconds, pair_rule=args.pair_rule,
        schedule=_schedule(args.schedule), max_auto_bleu=args.max_auto_bleu, allow_unscored=args.allow_unscored,
        eval_tasks=[t.strip() for t in args.eval_tasks.split(",") if t.strip()], eval_every=args.eval_every,
        eval_limit=args.eval_limit, eval_data_root=args.eval_data_root, seed=args.seed,
    )
    rounds = [args.round] if args.round is not None else list(range(1, args.rounds + 1))
    components = None
    for k in rounds:
        if args.stage == "all" and (config.round_dir(k) / COMPLETE).is_file():
            print(f"round {k}: already complete, skipped", file=sys.stderr)
            continue
        lm = policy(config, k, device=args.device)  # refuses a round whose previous one is unfinished
        config.round_dir(k).mkdir(parents=True, exist_ok=True)
        if "dpo" in stages:
            check_target_modules(lm.model, dpo)
        if components is None:
            # Every round's policy lives on the base model's directory, so these are built once.
            tokenizer = speech_tokenizer(args, lm.describe().get("local_dir"))
            lm.vocab.check_tokenizer(tokenizer.n_units, tokenizer_source(args, lm.describe().get("local_dir")),
                                     n_units_flag=False)
            components = pipeline_components(args, lm.describe().get("local_dir"))
            scorers = rule_scorers(config, components) if "score" in stages else []
            _record(args.output_dir, {}, command)
        run = stage_sample(config, k, lm, tokenizer) if "sample" in stages else _existing_run(config, k, lm, tokenizer)
        if "score" in stages:
            stage_score(config, k, run, components, scorers)
        if "pairs" in stages or "dpo" in stages:
            pairs = stage_pairs(config, k, run)
            print(f"round {k}: {len(pairs)} preference pairs", file=sys.stderr)
        if "dpo" in stages:
            callbacks = []
            if config.eval_tasks and config.eval_every:
                from alignslm_train.callback import EvalCallback

                callbacks.append(EvalCallback(config.eval_tasks, config.eval_every, config.round_dir(k), lm.vocab,
                                              tokenizer, config.eval_data_root, config.eval_limit, cache_dir,
                                              f"round-{k}", components))
            adapter = stage_dpo(config, k, pairs, dpo, callbacks)
            _record(args.output_dir, settings, command)
            print(f"round {k}: adapter {adapter}", file=sys.stderr)
    return 0


def _existing_run(config, k: int, lm, tokenizer):
    """This configuration's sampled run of round k (not whichever run happens to be on disk)."""
    from alignslm_eval.evaluate.continuation_store import ContinuationRun

    run = ContinuationRun.create(config.round_dir(k) / "continuations", lm, tokenizer, config.sampling(),
                                 config.prompt_seconds)
    if not (run.root / "samples.jsonl").is_file():
        raise UserError(f"round {k} has no continuations sampled with these settings; run --stage sample --round {k}")
    return run


def cmd_merge(argv: Sequence[str]) -> int:
    p = ArgumentParser(prog="alignslm-train merge",
                                description="Write a checkpoint with a trained adapter (and its chain) merged in.")
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path, help="where `--model demo` is built (as for training)")
    args = p.parse_args(argv)
    from alignslm_eval.io.cache import default_cache_dir
    from alignslm_eval.cli.eval import DEMO_NAME
    from alignslm_eval.models.adapters import MERGED_FROM_FILE
    from alignslm_eval.models.hf_unit_lm import HFUnitLM

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
    model = args.model
    if model == DEMO_NAME:
        from alignslm_eval.demo import ensure_demo

        model = str(ensure_demo(args.cache_dir or default_cache_dir()).model_dir)
    lm = HFUnitLM.from_args(model, adapter=args.adapter)
    lm.model.save_pretrained(args.output)
    lm.vocab.save(args.output)
    source = Path(lm.describe()["local_dir"])
    # The speech tokenizer and vocoder the base model names travel with the merged checkpoint.
    for spec_name in ("alignslm_tokenizer.json", "alignslm_vocoder.json"):
        spec = source / spec_name
        if spec.is_file():
            shutil.copy(spec, args.output / spec_name)
            for value in json.loads(spec.read_text()).get("args", {}).values():
                if isinstance(value, str) and (source / value).is_file():
                    shutil.copy(source / value, args.output / value)
    write_text(args.output / MERGED_FROM_FILE, json.dumps(
        {"model": args.model, "local_dir": lm.describe().get("local_dir"), "adapter": lm.describe().get("adapter")},
        indent=2) + "\n")
    print(f"merged checkpoint: {args.output}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command("alignslm-train", lambda: cmd_merge(argv[1:]) if argv[:1] == ["merge"] else cmd_train(argv),
                       "finished stages and items are saved, rerun the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
