"""DPO (Rafailov et al. 2023) with a LoRA adapter on a speech unit LM, through TRL 1.16's `DPOTrainer`.

TRL works on text, so unit sequences are written as `<u3> <u7> ...` and read back by a word-level tokenizer whose ids
are exactly the model's token ids (see `unit_tokenizer`). The reference policy is the model with its adapter disabled:
no second copy of the weights is kept. The trained adapter is saved with the tokenizer and the unit vocabulary, so it
loads with `peft.PeftModel.from_pretrained(base, adapter_dir)` and serves from vLLM as a LoRA over the base.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from alignslm_eval.io.errors import UserError
from alignslm_eval.io.jsonl import keep_whole_lines
from alignslm_eval.models.vocab import UnitVocabulary
from alignslm_train.config import DPOSettings

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer

ADAPTER_DIR = "adapter"
CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "dpo_log.jsonl"
_UNIT_TOKEN = re.compile(r"<u(\d+)>")
#: One token: `<...>` with no whitespace or nested brackets inside.
_TOKEN = r"<[^<>\s]+>"


@dataclass
class PreferencePair:
    """A prompt and two continuations, all as unit ids; `chosen` is preferred over `rejected`."""

    pair_id: str
    prompt_units: list[int]
    chosen_units: list[int]
    rejected_units: list[int]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DPOResult:
    adapter_dir: Path
    log_history: list[dict[str, Any]]
    train_loss_first: Optional[float]
    train_loss_last: Optional[float]
    reward_accuracy_first: Optional[float]
    reward_accuracy_last: Optional[float]
    steps: int
    seconds: float
    #: The trained PeftModel (adapter "default"); pass it to `train_dpo` again for the next curriculum round.
    model: Any = field(default=None, repr=False)


def units_to_text(units: Sequence[int]) -> str:
    """`[3, 7]` -> `"<u3> <u7>"`."""
    return " ".join(f"<u{int(u)}>" for u in units)


def text_to_units(text: str) -> list[int]:
    """The inverse of `units_to_text`; special tokens such as `<S>` are dropped, anything else is an error."""
    leftover = re.sub(_TOKEN, " ", text).split()
    if leftover:
        raise UserError(f"unit text: {leftover[0]!r} is not a token; expected '<uN>' tokens such as '<u3> <u7>'")
    matches = (_UNIT_TOKEN.fullmatch(token) for token in re.findall(_TOKEN, text))
    return [int(m.group(1)) for m in matches if m]


def _special_names(vocab: UnitVocabulary) -> dict[str, Optional[str]]:
    """Token strings of BOS/EOS/PAD: slamkit's `<S>` when one token both opens and closes, else `<s>`/`</s>`."""
    shared = vocab.bos_id is not None and vocab.bos_id == vocab.eos_id
    names: dict[int, str] = {}
    roles: dict[str, Optional[str]] = {}
    for role, token_id, name in (
        ("bos", vocab.bos_id, "<S>" if shared else "<s>"),
        ("eos", vocab.eos_id, "<S>" if shared else "</s>"),
        ("pad", vocab.pad_id, "<pad>"),
    ):
        if token_id is None:
            roles[role] = None
            continue
        if vocab.offset <= token_id < vocab.offset + vocab.n_units or token_id < 0:
            raise UserError(
                f"unit vocabulary: {role}_id {token_id} collides with the units at ids {vocab.offset}.."
                f"{vocab.offset + vocab.n_units - 1}; fix alignslm_units.json"
            )
        # A token serving two roles (e.g. pad = eos) keeps one name.
        roles[role] = names.setdefault(token_id, name)
    return roles


def unit_tokenizer(vocab: UnitVocabulary, vocab_size: Optional[int] = None) -> "PreTrainedTokenizerFast":
    """A word-level tokenizer with `<u{n}>` -> token id `n + vocab.offset` and the special tokens at their ids.

    Every other id below `vocab_size` (default: just past the last unit) gets a filler name `<extra_{id}>`, so token
    ids and embedding rows line up one to one. No BOS/EOS is ever inserted implicitly (no post-processor): the texts
    carry their special tokens, which keeps TRL's prompt-is-a-prefix check exact.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    end = vocab.offset + vocab.n_units
    size = end if vocab_size is None else int(vocab_size)
    if size < end:
        raise UserError(
            f"unit vocabulary: {vocab.n_units} units at offset {vocab.offset} need {end} token ids, "
            f"the model has {size}"
        )
    roles = _special_names(vocab)
    by_id = {getattr(vocab, f"{role}_id"): name for role, name in roles.items() if name is not None}
    for token_id in by_id:
        if token_id >= size:
            raise UserError(f"unit vocabulary: special token id {token_id} is outside the model's {size} token ids")
    table = {}
    for i in range(size):
        if vocab.offset <= i < end:
            table[f"<u{i - vocab.offset}>"] = i
        else:
            table[by_id.get(i, f"<extra_{i}>")] = i
    core = Tokenizer(models.WordLevel(table))  # no unk token: an unknown word fails loudly instead of mapping silently
    # Also split between tokens written without a space: TRL concatenates prompt and completion strings as they are.
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(_TOKEN), behavior="isolated")]
    )
    specials = {f"{role}_token": name for role, name in roles.items() if name is not None}
    return PreTrainedTokenizerFast(tokenizer_object=core, **specials)


def full_batches(pairs: Sequence[PreferencePair], batch_size: int) -> list[PreferencePair]:
    """`pairs` completed to a whole number of batches by repeating its first pairs (cyclically when there are fewer
    than one batch). Under several ranks accelerate fills a short last batch with samples from the epoch's start,
    while one process trains on it short, so the two would end an epoch with different steps; with full batches
    every world size takes the same ones."""
    return [*pairs, *itertools.islice(itertools.cycle(pairs), -len(pairs) % batch_size)]


def pairs_dataset(pairs: Sequence[PreferencePair], vocab: UnitVocabulary) -> "Dataset":
    """TRL's standard preference columns: `prompt` = BOS (if any) + prompt units, `chosen`/`rejected` = units + EOS.

    EOS is appended so the model learns where a continuation stops, which is also how sampling ends
    (`HFUnitLM.generate` stops at EOS). TRL 1.16 appends the tokenizer's EOS to every non-conversational completion
    that lacks one anyway; writing it here keeps the dataset text equal to what is trained. A vocabulary without EOS
    is therefore an error.
    """
    from datasets import Dataset

    if not pairs:
        raise UserError("DPO: no preference pairs to train on")
    roles = _special_names(vocab)
    if roles["eos"] is None:
        raise UserError(
            f"the {vocab.convention} unit vocabulary has no eos_id, and DPO ends every continuation with EOS; "
            "set eos_id in alignslm_units.json"
        )
    bos = [roles["bos"]] if roles["bos"] is not None else []
    columns: dict[str, list[str]] = {"pair_id": [], "prompt": [], "chosen": [], "rejected": []}
    for pair in pairs:
        for part in ("prompt", "chosen", "rejected"):
            vocab.encode(np.asarray(getattr(pair, f"{part}_units"), dtype=np.int64), add_bos=False, add_eos=False,
                         source=f"preference pair {pair.pair_id}: {part}")
        if not bos and len(pair.prompt_units) == 0:
            raise UserError(
                f"preference pair {pair.pair_id}: empty prompt and no BOS token, so the first continuation unit has "
                "no context to be scored from"
            )
        columns["pair_id"].append(str(pair.pair_id))
        columns["prompt"].append(" ".join(bos + [units_to_text(pair.prompt_units)]).strip())
        columns["chosen"].append(" ".join([units_to_text(pair.chosen_units), roles["eos"]]).strip())
        columns["rejected"].append(" ".join([units_to_text(pair.rejected_units), roles["eos"]]).strip())
    return Dataset.from_dict(columns)


def lora_config(settings: DPOSettings) -> "LoraConfig":
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM",
        r=settings.lora_rank,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.target_modules,
    )


def check_target_modules(model: torch.nn.Module, settings: DPOSettings) -> None:
    """Every target module name must match a layer LoRA can adapt: peft raises a bare error when none match and
    silently skips names that match nothing."""
    from transformers.pytorch_utils import Conv1D

    targets = settings.target_modules
    if targets == "all-linear":
        return
    layers = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding, Conv1D))]
    # peft's rules: a string is a regex over the full module name, a list entry a module name or its last parts.
    if isinstance(targets, str):
        missing = [] if any(re.fullmatch(targets, n) for n in layers) else [targets]
    else:
        missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in layers)]
    if missing:
        known = sorted({n.rsplit(".", 1)[-1] for n in layers})
        raise UserError(f"--target-modules {','.join(missing)}: no such layer in the model; give all-linear or "
                        f"comma-separated layer names such as {','.join(known[:10])}")


def layer_skeleton(checkpoint: str) -> torch.nn.Module:
    """The checkpoint's layers without weights (on the meta device): what `check_target_modules` needs when the
    sampling policy is served elsewhere (vLLM) and no torch model is loaded yet."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(checkpoint))


def per_device_batch(settings: DPOSettings, world_size: int) -> int:
    """Pairs each rank takes per forward pass, so that ranks x accumulation x this = `settings.batch_size`: the
    optimiser sees the same batch, and so takes the same steps, at every world size."""
    share = world_size * settings.gradient_accumulation_steps
    if settings.batch_size % share:
        raise UserError(f"--batch-size {settings.batch_size}: must be a multiple of {share} ({world_size} rank(s) x "
                        f"--gradient-accumulation-steps {settings.gradient_accumulation_steps}), so every rank takes "
                        "the same share of a step")
    return settings.batch_size // share


def dpo_config(settings: DPOSettings, output_dir: Path) -> "DPOConfig":
    """TRL's config for `settings`; CPU runs in float32 without activation checkpointing (TRL defaults to both on).
    Under torchrun, TRL (through accelerate) trains data-parallel over the ranks: WORLD_SIZE says how many."""
    from trl import DPOConfig

    if settings.device == "cpu":
        cuda = False
    elif settings.device.startswith("cuda"):
        cuda = True
    else:
        raise UserError(f"DPO device {settings.device!r}: choose 'cpu' or 'cuda'")
    return DPOConfig(
        output_dir=str(output_dir),
        beta=settings.beta,
        loss_type=["sigmoid"],
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler_type,
        # transformers 5 dropped warmup_ratio: a warmup_steps value below 1 is read as a fraction of the steps.
        warmup_steps=settings.warmup_ratio,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        per_device_train_batch_size=per_device_batch(settings, int(os.environ.get("WORLD_SIZE", "1"))),
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        num_train_epochs=settings.num_epochs,
        max_steps=settings.max_steps,
        seed=settings.seed,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        bf16=cuda,
        use_cpu=not cuda,
        activation_checkpointing=False,
        report_to="none",
        # Lengths are checked against the model in `build_trainer`: nothing is truncated silently.
        max_length=None,
        disable_dropout=True,
    )


def build_trainer(
    model: torch.nn.Module,
    vocab: UnitVocabulary,
    pairs: Sequence[PreferencePair],
    out_dir: Path,
    settings: DPOSettings,
    callbacks: Optional[list[TrainerCallback]] = None,
    ref_model: Optional[torch.nn.Module] = None,
) -> "DPOTrainer":
    """The `DPOTrainer` that `train_dpo` runs, checkpointing to `out_dir/checkpoints`, on `pairs` in full batches
    (`full_batches`).

    `model` is modified in place: a plain causal LM gets LoRA layers injected (and TRL's fused log-prob head); a
    PeftModel keeps training its "default" adapter. `ref_model` is only for comparisons: left as None, the reference
    is the adapter-disabled model (for a PeftModel, TRL's frozen copy of the starting adapter) and costs no second copy.
    """
    from peft import PeftModel
    from trl import DPOTrainer

    embeddings = model.get_input_embeddings().weight.shape[0]
    tokenizer = unit_tokenizer(vocab, vocab_size=embeddings)
    dataset = pairs_dataset(full_batches(pairs, settings.batch_size), vocab)
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if max_positions:
        bos = int(vocab.bos_id is not None)
        for pair in pairs:
            longest = bos + len(pair.prompt_units) + max(len(pair.chosen_units), len(pair.rejected_units)) + 1
            if longest > max_positions:
                raise UserError(
                    f"preference pair {pair.pair_id}: {longest} tokens, more than the model's {max_positions} "
                    "positions; use shorter prompts or continuations"
                )
    peft_config = None
    if isinstance(model, PeftModel):
        if "default" not in model.peft_config:
            raise UserError(
                f"DPO continues a PeftModel's adapter named 'default'; this model has {sorted(model.peft_config)}"
            )
        # PeftModel.from_pretrained loads adapters frozen unless is_trainable=True.
        model.set_requires_grad("default", True)
    else:
        check_target_modules(model, settings)
        peft_config = lora_config(settings)
    return DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=dpo_config(settings, Path(out_dir) / CHECKPOINT_DIR),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def train_dpo(
    model: torch.nn.Module,
    vocab: UnitVocabulary,
    pairs: Sequence[PreferencePair],
    out_dir: Path,
    settings: DPOSettings,
    callbacks: Optional[list[TrainerCallback]] = None,
    resume: bool = True,
) -> DPOResult:
    """Train a LoRA adapter with DPO and save it to `out_dir/adapter` with the unit tokenizer and vocabulary.

    `model` is a transformers causal LM, modified in place:
    - a plain model (first round) gets a fresh LoRA adapter; the reference is the same model with the adapter
      disabled, i.e. the model as it was passed in;
    - a PeftModel (a later curriculum round, e.g. `result.model` of the previous round, or
      `PeftModel.from_pretrained(base, adapter_dir)`) keeps training its "default" adapter (with that adapter's LoRA
      shape; the LoRA fields of `settings` apply to new adapters only); TRL adds a frozen copy of
      that adapter as the reference, so the reference is the previous round's policy, still without a second copy of
      the base weights.

    Checkpoints go to `out_dir/checkpoints` every `settings.save_steps` steps; with `resume` a rerun continues from the
    last complete one, without it stale checkpoints there are removed. Every logged step is a line of
    `out_dir/dpo_log.jsonl`.
    """
    out_dir = Path(out_dir)
    checkpoints = out_dir / CHECKPOINT_DIR
    log_path = out_dir / LOG_FILE
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = _last_checkpoint(checkpoints) if resume else None
    if not resume:
        for stale in checkpoints.glob("checkpoint-*"):
            shutil.rmtree(stale)
    _trim_log(log_path, _checkpoint_step(checkpoint) if checkpoint else 0)
    trainer = build_trainer(model, vocab, pairs, out_dir, settings, [*(callbacks or []), _JsonlLog(log_path)])
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    trained = trainer.model.eval()
    adapter_dir = out_dir / ADAPTER_DIR
    if trainer.is_world_process_zero():  # one writer of the adapter, whatever the world size
        # Only the trained adapter: a continued PeftModel also carries TRL's frozen "ref" adapter.
        trained.save_pretrained(adapter_dir, selected_adapters=["default"])
        trainer.processing_class.save_pretrained(adapter_dir)
        vocab.save(adapter_dir)
    trainer.accelerator.wait_for_everyone()  # the adapter is complete before any rank goes on to use it
    history = list(trainer.state.log_history)
    losses = [e["loss"] for e in history if "loss" in e]
    accuracies = [e["rewards/accuracies"] for e in history if "rewards/accuracies" in e]
    return DPOResult(
        adapter_dir=adapter_dir,
        log_history=history,
        train_loss_first=losses[0] if losses else None,
        train_loss_last=losses[-1] if losses else None,
        reward_accuracy_first=accuracies[0] if accuracies else None,
        reward_accuracy_last=accuracies[-1] if accuracies else None,
        steps=trainer.state.global_step,
        seconds=seconds,
        model=trained,
    )


def dpo_loss_by_hand(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Mean sigmoid DPO loss, -log σ(β[(log π(y_w) - log π_ref(y_w)) - (log π(y_l) - log π_ref(y_l))])."""
    margin = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(beta * margin).mean()


def _checkpoint_step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def _last_checkpoint(checkpoints: Path) -> Optional[Path]:
    """The newest complete checkpoint: trainer_state.json is written last, so a run killed mid-save is skipped."""
    if not checkpoints.is_dir():
        return None
    complete = [
        p for p in checkpoints.glob("checkpoint-*")
        if p.name.rsplit("-", 1)[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(complete, key=_checkpoint_step) if complete else None


def _trim_log(path: Path, keep_through_step: int) -> None:
    """Drop log lines past the step training restarts from, so a resumed run does not log a step twice."""
    keep_whole_lines(path, lambda row: isinstance(row.get("step"), int) and row["step"] <= keep_through_step)


class _JsonlLog(TrainerCallback):
    """Appends each training-step log (loss, rewards/*, logps/*, ...) to a JSON-lines file as it happens."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[dict[str, Any]] = None, **kwargs: Any) -> None:
        if not logs or "loss" not in logs or not state.is_world_process_zero:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, **logs}) + "\n")
