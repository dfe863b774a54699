"""The settings of `alignslm-train`: the Align-SLM loop's (`AlignConfig`) and DPO's (`DPOSettings`).

Each field is a flag, its default, its help and its check (`alignslm_eval.api.options`). They live apart from the loop
and the trainer so that reading them (`alignslm-train --help`, a library user's config) loads no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from alignslm_eval.api.model import SamplingConfig
from alignslm_eval.api.options import Options, option
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.paths import directory_rule

#: chosen_min, rejected_max of the judge rule per round; later rounds reuse the last entry. Secondary summary of the
#: Align-SLM paper (exact values not verifiable offline): round 1 >= 3 / <= 1, round 2 >= 4 / <= 2.
DEFAULT_SCHEDULE = [[3.0, 1.0], [4.0, 2.0]]
#: The scorers `stage_score` runs for each pair rule.
RULE_SCORERS = {"judge_threshold": ("judge_rating", "auto_bleu"), "perplexity": ("genppl", "auto_bleu")}


def parse_schedule(text: str) -> list[list[float]]:
    """`--schedule` CHOSEN_MIN:REJECTED_MAX per round, checked before any sampling or judging happens."""
    usage = (f"--schedule {text!r}: expected CHOSEN_MIN:REJECTED_MAX per round with CHOSEN_MIN > REJECTED_MAX, e.g. "
             "3:1,4:2")
    try:
        steps = [[float(x) for x in step.split(":")] for step in text.split(",") if step.strip()]
    except ValueError:
        raise UserError(usage)
    if not steps or any(len(step) != 2 or step[0] <= step[1] for step in steps):
        raise UserError(usage)
    return steps


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


_SAMPLING = SamplingConfig()  # the sampling defaults are SamplingConfig's, declared there once


@dataclass
class AlignConfig(Options):
    """The loop's settings. `section` says which config.json section a setting's results depend on: once a round
    is complete, a later command must give the same value."""

    model: str = option(help="base unit LM: hub id or local dir (or 'demo')", section="sample")
    prompts: Path = option(help="folder of prompt utterances (wav/flac)", section="sample",
                           must=directory_rule("--prompts", must_exist=True))
    output_dir: Path = option(help="where the rounds are written, one folder each",
                              must=directory_rule("--output-dir"))
    rounds: int = option(1, must=(lambda v: v >= 1, "at least 1"), help="curriculum rounds (the paper runs up to 3)")
    samples_per_prompt: int = option(
        5, section="sample", must=(lambda v: v >= 2, "at least 2 (a pair is a chosen and a rejected continuation of "
                                                     "one prompt)"),
        help="continuations per prompt (Align-SLM samples several; 5 per a secondary summary, not verifiable offline)")
    temperature: float = option(_SAMPLING.temperature, section="sample", must=(lambda v: v > 0, "greater than 0"),
                                help="sampling temperature (TWIST/slamkit continuation sampling)")
    top_k: Optional[int] = option(_SAMPLING.top_k, section="sample",
                                  must=(lambda v: v >= 0, "0 (no top-k filtering) or more"),
                                  help="sample from the K most likely units")
    top_p: Optional[float] = option(_SAMPLING.top_p, section="sample", must=(lambda v: 0 < v <= 1, "in (0, 1]"),
                                    help="nucleus sampling: the smallest set of units holding this probability")
    max_new_tokens: int = option(_SAMPLING.max_new_tokens, section="sample", must=(lambda v: v >= 1, "at least 1"),
                                 help="most units of one continuation")
    prompt_seconds: float = option(3.0, section="sample", must=(lambda v: v > 0, "greater than 0"),
                                   help="prompt length (Align-SLM and slamkit use 3 s prompts)")
    pair_rule: str = option("judge_threshold", section="score", choices=("judge_threshold", "perplexity"),
                            help="how pairs are chosen: judge ratings against --schedule, or GenPPL")
    schedule: list[list[float]] = option(
        default_factory=lambda: [list(x) for x in DEFAULT_SCHEDULE], parse=parse_schedule, section="pairs",
        help="judge thresholds per round, CHOSEN_MIN:REJECTED_MAX,... (default: 3:1,4:2)")
    max_auto_bleu: Optional[float] = option(0.3, section="pairs", must=(lambda v: v > 0, "greater than 0"),
                                            help="drop pairs whose prompt+chosen repeats this much (slamkit's filter)")
    allow_unscored: bool = option(False, help="make pairs even when scoring failed for some samples (e.g. judge "
                                  "errors), from the scored ones; the counts go into pairs_report.json and "
                                  "COMPLETE.json (default: refuse, rerun to retry)")
    eval_tasks: list[str] = option(default_factory=list, parse=_names,
                                   help="registered tasks to run during DPO, e.g. sstorycloze")
    eval_every: int = option(0, must=(lambda v: v >= 0, "0 (never) or more"),
                             help="evaluate every K optimiser steps (0: never)")
    eval_limit: Optional[int] = option(20, must=(lambda v: v >= 1, "at least 1"),
                                       help="choices per task of each mid-training evaluation")
    eval_data_root: Optional[Path] = option(None, must=directory_rule("--eval-data-root", must_exist=True),
                                            help="--data-root of the mid-training evaluation")
    seed: int = option(0, section="sample", help="seed of sampling and of DPO")

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.eval_tasks) != bool(self.eval_every):
            raise UserError(f"--eval-tasks {','.join(self.eval_tasks)!r} with --eval-every {self.eval_every}: "
                            "mid-training evaluation needs both (task names and every how many steps), or neither")

    def round_dir(self, k: int) -> Path:
        return Path(self.output_dir) / f"round-{k}"

    def rule_args(self, k: int) -> dict[str, Any]:
        if self.pair_rule != "judge_threshold":
            return {}
        chosen_min, rejected_max = self.schedule[min(k, len(self.schedule)) - 1]
        return {"chosen_min": chosen_min, "rejected_max": rejected_max}

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(n=self.samples_per_prompt, temperature=self.temperature, top_k=self.top_k,
                              top_p=self.top_p, max_new_tokens=self.max_new_tokens, seed=self.seed)


def _target_modules(text: str) -> Union[str, list[str]]:
    """`--target-modules`: all-linear, or comma-separated module names."""
    if text.strip() == "all-linear":
        return "all-linear"
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError(f"--target-modules {text!r}: give all-linear or comma-separated layer names")
    return names


POSITIVE = (lambda v: v > 0, "greater than 0")
AT_LEAST_1 = (lambda v: v >= 1, "at least 1")


@dataclass
class DPOSettings(Options):
    """DPO and LoRA hyperparameters. Align-SLM (Lin et al. 2025) reports few of them; each help names its source."""

    _argument_group = "DPO and LoRA"

    beta: float = option(0.1, must=POSITIVE, help="DPO beta: slamkit's DPO config (config/training_args/"
                         "dpo_training_args.yaml; Maimon et al. 2025, \"Slamming\"), also TRL's default; the "
                         "Align-SLM paper's own could not be verified offline")
    learning_rate: float = option(5e-5, must=POSITIVE,
                                  help="slamkit, config/training_args/dpo_training_args.yaml")
    lora_rank: int = option(32, must=AT_LEAST_1, help="reported for Align-SLM by a secondary summary of the paper; "
                            "not verified against the paper itself")
    lora_alpha: int = option(8, must=POSITIVE, help="same secondary source as --lora-rank; unverified")
    lora_dropout: float = option(0.0, must=(lambda v: 0 <= v < 1, "in [0, 1)"), help="not stated")
    target_modules: Union[str, list[str]] = option(
        "all-linear", parse=_target_modules,
        help="'all-linear' or comma-separated module names; not stated. all-linear is every linear layer except the "
             "output head (TRL cannot train an adapter on lm_head)")
    batch_size: int = option(4, must=AT_LEAST_1,
                             help="pairs per optimiser step, over every rank and accumulation step (each rank takes "
                                  "batch / (ranks x --gradient-accumulation-steps)); not stated for Align-SLM, slamkit "
                                  "uses 8 per GPU, 4 keeps a CPU step small")
    gradient_accumulation_steps: int = option(1, must=AT_LEAST_1, help="slamkit, config/training_args/default.yaml")
    num_epochs: float = option(1.0, flag="--epochs", must=POSITIVE, help="slamkit, config/training_args/default.yaml")
    max_steps: int = option(-1, must=(lambda v: v == -1 or v >= 1, "-1 (run --epochs) or at least 1"),
                            help="not stated; -1 runs --epochs epochs, a positive value overrides them")
    warmup_ratio: float = option(0.0, must=(lambda v: 0 <= v < 1, "in [0, 1)"),
                                 help="not stated for Align-SLM (slamkit warms up for max(100 steps, 1%%))")
    lr_scheduler_type: str = option("constant_with_warmup",
                                    help="slamkit: cosine_with_min_lr whose min_lr (5e-5) equals the DPO learning "
                                         "rate, i.e. constant after warmup")
    max_grad_norm: float = option(0.5, must=POSITIVE, help="slamkit, config/training_args/default.yaml")
    weight_decay: float = option(0.0, must=(lambda v: v >= 0, "0 or more"), help="not stated; transformers' default")
    seed: int = option(0, help="not stated; fixes the LoRA initialisation and the data order")
    logging_steps: int = option(1, must=AT_LEAST_1, help="not stated; every step, since DPO stages are short and the "
                                "log is their record")
    save_steps: int = option(500, must=AT_LEAST_1, help="not stated; transformers' default. A killed run resumes "
                             "from the last of these checkpoints")
    save_total_limit: Optional[int] = option(2, must=AT_LEAST_1, help="slamkit, config/training_args/default.yaml")
    device: str = option("cpu", help="cpu trains in float32; cuda turns on bf16 mixed precision (not stated; "
                                     "slamkit trains in bf16)")
