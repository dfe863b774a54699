"""Train the demo's tiny language models from scratch: a unit LM over Slam-convention unit tokens, and a word-level
text LM that scores transcripts for GenPPL. Next-token loss, seeded, a minute or less on two CPU cores."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from alignslm_eval.io.threads import TRAINING_THREADS, torch_threads
from alignslm_eval.models.vocab import UnitVocabulary

#: Small enough to train on two CPU cores in about a minute; big enough to learn unit bigram-level statistics.
DEMO_LM_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 1024,
}
TEXT_SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


@torch_threads(TRAINING_THREADS)
def train_causal_lm(
    sequences: list[np.ndarray], vocab_size: int, special_ids: dict[str, int], out_dir: Path, steps: int,
    batch_size: int = 16, learning_rate: float = 3e-3, seed: int = 0, desc: str = "training",
    held_out: Optional[list[np.ndarray]] = None, shape: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Train a small Llama on token-id sequences (already wrapped in BOS/EOS), save it, return the record. With
    `held_out` sequences, their mean next-token loss is measured ten times during training and recorded beside the
    training loss, so whether the model generalises or memorises is on file."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    shape = shape or DEMO_LM_SHAPE
    config = LlamaConfig(vocab_size=vocab_size, tie_word_embeddings=True, **special_ids, **shape)
    model = LlamaForCausalLM(config)
    encoded = [torch.from_numpy(np.asarray(s, dtype=np.int64)) for s in sequences]
    held = [torch.from_numpy(np.asarray(s, dtype=np.int64)) for s in held_out or []]
    held_curve: list[tuple[int, float, float]] = []
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    pad = special_ids["pad_token_id"]
    losses = []
    model.train()
    for step in tqdm(range(steps), desc=desc, unit="step"):
        if held and step % max(1, steps // 10) == 0:
            held_curve.append((step, _mean_loss(model, encoded[: len(held)], pad), _mean_loss(model, held, pad)))
        batch = [encoded[i] for i in rng.choice(len(encoded), size=min(batch_size, len(encoded)), replace=False)]
        loss = model(**_padded(batch, pad)).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    held_record = {}
    if held:
        held_curve.append((steps, _mean_loss(model, encoded[: len(held)], pad), _mean_loss(model, held, pad)))
        held_record = {
            "n_held_out": len(held), "train_loss": round(held_curve[-1][1], 4),
            "held_out_loss": round(held_curve[-1][2], 4),
            "held_out_curve": [{"step": s, "train_loss": round(a, 4), "held_out_loss": round(b, 4)}
                               for s, a, b in held_curve],
        }
    record = {
        "steps": steps, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
        "n_sequences": len(sequences), "vocab_size": vocab_size, "shape": shape, **held_record,
        "loss_first_50_steps": float(np.mean(losses[:50])), "loss_last_50_steps": float(np.mean(losses[-50:])),
        "loss_curve_every_10_steps": [round(float(x), 4) for x in losses[::10]],
    }
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _padded(batch: list[torch.Tensor], pad: int) -> dict[str, torch.Tensor]:
    longest = max(len(b) for b in batch)
    ids = torch.full((len(batch), longest), pad, dtype=torch.long)
    labels = torch.full((len(batch), longest), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, b in enumerate(batch):
        ids[row, : len(b)] = b
        labels[row, : len(b)] = b
        mask[row, : len(b)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _mean_loss(model: Any, sequences: list[torch.Tensor], pad: int, batch_size: int = 32) -> float:
    """Mean next-token loss over every predicted token of `sequences` (token-weighted)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size]
            n = sum(len(b) - 1 for b in batch)
            total += model(**_padded(batch, pad)).loss.item() * n
            count += n
    model.train(was_training)
    return total / max(count, 1)


def train_unit_lm(sequences: list[np.ndarray], n_units: int, out_dir: Path, steps: int = 600,
                  seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """The demo unit LM: units wrapped in `<S>` ... `<S>` (Slam convention), saved with its vocabulary file.
    `kwargs` go to `train_causal_lm` (held_out, shape, batch_size, learning_rate)."""
    vocab = UnitVocabulary.slam(n_units)
    wrap = lambda seqs: [vocab.encode(s, add_bos=True, add_eos=True) for s in seqs]  # noqa: E731
    if kwargs.get("held_out") is not None:
        kwargs["held_out"] = wrap(kwargs["held_out"])
    specials = {"pad_token_id": vocab.pad_id, "bos_token_id": vocab.bos_id, "eos_token_id": vocab.eos_id}
    record = train_causal_lm(wrap(sequences), n_units + vocab.offset, specials, out_dir, steps, seed=seed,
                             desc="demo: training unit LM", **kwargs)
    vocab.save(out_dir)
    return record


def train_text_lm(sentences: list[str], out_dir: Path, steps: int = 300, seed: int = 0,
                  held_out: Optional[list[str]] = None) -> dict[str, Any]:
    """The demo text LM for GenPPL: a word-level tokenizer over the sentences (lower-cased, punctuation split
    off; unseen words map to <unk>) and a small Llama, saved together so `--text-lm DIR` loads them. `held_out`
    sentences are only measured (their loss is recorded), never trained on."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = list(TEXT_SPECIALS.values())
    words = sorted({w for s in sentences for w in _words(s)})
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=TEXT_SPECIALS["unk_token"]))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **TEXT_SPECIALS)
    def encode(texts: list[str]) -> list[np.ndarray]:
        return [np.array([tokenizer.bos_token_id, *tokenizer(s, add_special_tokens=False)["input_ids"],
                          tokenizer.eos_token_id]) for s in texts]

    ids = {f"{k.replace('_token', '')}_token_id": tokenizer.convert_tokens_to_ids(v)
           for k, v in TEXT_SPECIALS.items() if k != "unk_token"}
    record = train_causal_lm(encode(sentences), len(vocab), ids, out_dir, steps, seed=seed,
                             desc="demo: training text LM", held_out=encode(held_out) if held_out else None)
    tokenizer.save_pretrained(out_dir)
    return record


def _words(sentence: str) -> list[str]:
    from tokenizers import pre_tokenizers

    return [w for w, _ in pre_tokenizers.Whitespace().pre_tokenize_str(sentence.lower())]
