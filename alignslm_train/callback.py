"""Mid-training evaluation: run registered eval tasks on the policy being trained, every K optimiser steps.

Each evaluation writes an ordinary results file (under `<round>/eval/step-<n>/`) and one line per headline metric to
`<round>/eval_log.jsonl` ({step, task, metric, value, stderr, run}), the input of `alignslm-leaderboard
plot-training`. When TensorBoard or Weights & Biases is installed and active, the same numbers go there too.

Under DDP every rank calls the callback at the same step with the same weights: each scores its share of the eval
items (the evaluator's sharding) and rank 0 alone writes the results, the log and TensorBoard, so no rank idles
past a collective's timeout while another evaluates alone.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from transformers import TrainerCallback

from alignslm_eval.api.task import load_specs
from alignslm_eval.io.jsonl import keep_whole_lines, open_append
from alignslm_eval.evaluate.likelihood import EvalSettings, evaluate, prepare_tasks
from alignslm_eval.evaluate.world import World
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.models.vocab import UnitVocabulary


class EvalCallback(TrainerCallback):
    def __init__(self, tasks: list[str], every: int, out_dir: Path, vocab: UnitVocabulary, tokenizer,
                 data_root: Optional[Path], limit: Optional[int], cache_dir: Path, run_name: str,
                 components=None, batch_size: int = 8, world: World = World()):
        self.every = every
        self.world = world
        self.out_dir = Path(out_dir)
        self.vocab, self.tokenizer, self.run_name = vocab, tokenizer, run_name
        self.settings = EvalSettings(output_dir=self.out_dir / "eval", data_root=data_root, cache_dir=cache_dir,
                                     limit=limit, batch_size=batch_size, world=world)
        if components is not None:
            self.settings.components = components
        # Validate the tasks' data now, not at the first evaluation an hour into training.
        self.tasks = prepare_tasks(load_specs(tasks), self.settings)
        self._tensorboard = _tensorboard_writer(self.out_dir / "tensorboard") if world.writes_final_files else None
        if world.writes_final_files:
            keep_whole_lines(self.out_dir / "eval_log.jsonl")  # without a line a kill cut short

    def on_step_end(self, args, state, control, model=None, **kwargs: Any):
        if self.every and state.global_step % self.every == 0 and model is not None:
            self.run(model, state.global_step)
        return control

    def run(self, model, step: int) -> Optional[dict[str, Any]]:
        """Evaluate `model` at `step`; the results (None on a rank that does not write them)."""
        was_training = model.training
        # The trained weights name the model, so a retrained round never reuses another training's step-N scores.
        weights = hashlib.sha256()
        for name, p in model.named_parameters():
            if p.requires_grad:
                weights.update(name.encode())
                weights.update(p.detach().float().cpu().numpy().tobytes())
        # DDP keeps the weights equal, but a last-bit difference in their hash would put the ranks' scores under
        # different run keys: every rank takes rank 0's.
        weights_sha256 = self.world.from_rank0(weights.hexdigest())
        lm = HFUnitLM(model, self.vocab, {"backend": "hf", "training_run": self.run_name, "step": step,
                                          "trainable_weights_sha256": weights_sha256})
        self.settings.output_dir = self.out_dir / "eval" / f"step-{step}"
        rng = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
        try:
            results, path = evaluate(self.tasks, lm, self.tokenizer, self.settings)
        finally:
            # evaluate() seeds the global generators; training's dropout and shuffling must not notice the eval.
            random.setstate(rng[0])
            np.random.set_state(rng[1])
            torch.random.set_rng_state(rng[2])
            model.train(was_training)
        if results is None:
            return None
        with open_append(self.out_dir / "eval_log.jsonl") as log:
            for task, entry in results["tasks"].items():
                name = entry["result"]["headline"]
                metric = entry["result"]["metrics"][name]
                row = {"step": step, "task": task, "metric": name, "value": metric["value"],
                       "stderr": metric["stderr"], "run": self.run_name, "results": str(path)}
                log.write(json.dumps(row) + "\n")
                if self._tensorboard is not None:
                    self._tensorboard.add_scalar(f"eval/{task}/{name}", metric["value"], step)
                _wandb_log({f"eval/{task}/{name}": metric["value"]}, step)
        return results


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))


def _wandb_log(values: dict[str, float], step: int) -> None:
    try:
        import wandb
    except ImportError:  # wandb is optional
        return
    if wandb.run is not None:
        wandb.log(values, step=step)
