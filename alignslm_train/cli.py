"""`alignslm-train`: the Align-SLM loop (sample -> score -> pairs -> DPO, over curriculum rounds), resumable.

    alignslm-train --model CKPT --prompts DIR --judge-model M [--judge-base-url URL] --rounds 3 --output-dir runs/align
    alignslm-train --stage pairs --round 2 ...      # one stage of one round, alone
    alignslm-train merge --model CKPT --adapter runs/align/round-3/adapter --output merged/
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

from alignslm_eval.errors import UserError, run_command

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
    from alignslm_eval.cli import add_pipeline_arguments

    p = argparse.ArgumentParser(prog="alignslm-train", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="base unit LM: hub id or local dir (or 'demo')")
    p.add_argument("--prompts", type=Path, required=True, help="folder of prompt utterances (wav/flac)")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--rounds", type=int, default=1, help="curriculum rounds (the paper runs up to 3)")
    p.add_argument("--stage", choices=[*STAGES, "all"], default="all", help="run one stage only (with --round)")
    p.add_argument("--round", type=int, help="the round --stage applies to (default: every round)")
    p.add_argument("--tokenizer", help="speech tokenizer (default: the model dir's alignslm_tokenizer.json)")
    p.add_argument("--tokenizer-args", default="")
    p.add_argument("--cache-dir", type=Path)
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


def cmd_train(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    from alignslm_eval.cache import default_cache_dir
    from alignslm_eval.cli import DEMO_NAME, pipeline_components, speech_tokenizer
    from alignslm_train.dpo import DPOSettings
    from alignslm_train.loop import COMPLETE, AlignConfig, policy, stage_dpo, stage_pairs, stage_sample, stage_score

    if not args.prompts.is_dir():
        raise UserError(f"--prompts {args.prompts}: directory does not exist")
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
        schedule=_schedule(args.schedule), max_auto_bleu=args.max_auto_bleu,
        eval_tasks=[t for t in args.eval_tasks.split(",") if t], eval_every=args.eval_every,
        eval_limit=args.eval_limit, eval_data_root=args.eval_data_root, seed=args.seed,
    )
    targets = args.target_modules if args.target_modules == "all-linear" else args.target_modules.split(",")
    dpo = DPOSettings(beta=args.beta, learning_rate=args.learning_rate, lora_rank=args.lora_rank,
                      lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=targets,
                      per_device_batch_size=args.batch_size, num_epochs=args.epochs, max_steps=args.max_steps,
                      seed=args.seed, device=args.device)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "config.json").write_text(json.dumps(
        {"command": ["alignslm-train", *argv], "align": json.loads(json.dumps(config.__dict__, default=str)),
         "dpo": dpo.__dict__}, indent=2, default=str) + "\n")
    if args.rounds < 1 or (args.round is not None and args.round < 1):
        raise UserError("--rounds and --round count from 1")
    rounds = [args.round] if args.round is not None else list(range(1, args.rounds + 1))
    stages = STAGES if args.stage == "all" else (args.stage,)
    for k in rounds:
        if args.stage == "all" and (config.round_dir(k) / COMPLETE).is_file():
            print(f"round {k}: already complete, skipped", file=sys.stderr)
            continue
        config.round_dir(k).mkdir(parents=True, exist_ok=True)
        lm = policy(config, k, device=args.device)
        tokenizer = speech_tokenizer(args, lm.describe().get("local_dir"))
        components = pipeline_components(args, lm.describe().get("local_dir"))
        run = stage_sample(config, k, lm, tokenizer) if "sample" in stages else _existing_run(config, k, lm, tokenizer)
        if "score" in stages:
            stage_score(config, k, run, components)
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
            print(f"round {k}: adapter {adapter}", file=sys.stderr)
    return 0


def _existing_run(config, k: int, lm, tokenizer):
    """This configuration's sampled run of round k (not whichever run happens to be on disk)."""
    from alignslm_eval.continuation import ContinuationRun

    run = ContinuationRun.create(config.round_dir(k) / "continuations", lm, tokenizer, config.sampling(),
                                 config.prompt_seconds)
    if not (run.root / "samples.jsonl").is_file():
        raise UserError(f"round {k} has no continuations sampled with these settings; run --stage sample --round {k}")
    return run


def cmd_merge(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="alignslm-train merge",
                                description="Write a checkpoint with a trained adapter (and its chain) merged in.")
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--output", type=Path, required=True)
    args = p.parse_args(argv)
    from alignslm_eval.models.hf_unit_lm import HFUnitLM

    lm = HFUnitLM.from_args(args.model, adapter=args.adapter)
    args.output.mkdir(parents=True, exist_ok=True)
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
    (args.output / "alignslm_merged_from.json").write_text(
        json.dumps({"model": args.model, "adapter": lm.describe().get("adapter")}, indent=2) + "\n")
    print(f"merged checkpoint: {args.output}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command("alignslm-train", lambda: cmd_merge(argv[1:]) if argv[:1] == ["merge"] else cmd_train(argv),
                       "finished stages and items are saved, rerun the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
