"""Train the demo's tiny unit LM: a small Llama over Slam-convention unit tokens, next-token loss, seeded."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from alignslm_eval.vocab import UnitVocabulary

#: Small enough to train on two CPU cores in about a minute; big enough to learn unit bigram-level statistics.
DEMO_LM_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 1024,
}


def train_unit_lm(
    sequences: list[np.ndarray],
    n_units: int,
    out_dir: Path,
    steps: int = 600,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> dict[str, Any]:
    """Train from scratch on unit sequences (each wrapped in `<S>` ... `<S>`), save with save_pretrained plus the
    unit vocabulary file, and return the training record (also written to `training.json`)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = UnitVocabulary.slam(n_units)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = LlamaConfig(
        vocab_size=n_units + vocab.offset, pad_token_id=vocab.pad_id, bos_token_id=vocab.bos_id,
        eos_token_id=vocab.eos_id, tie_word_embeddings=True, **DEMO_LM_SHAPE,
    )
    model = LlamaForCausalLM(config)
    encoded = [torch.from_numpy(vocab.encode(s, add_bos=True, add_eos=True)) for s in sequences]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="demo: training unit LM", unit="step"):
        batch = [encoded[i] for i in rng.choice(len(encoded), size=min(batch_size, len(encoded)), replace=False)]
        longest = max(len(b) for b in batch)
        ids = torch.full((len(batch), longest), vocab.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), longest), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, b in enumerate(batch):
            ids[row, : len(b)] = b
            labels[row, : len(b)] = b
            mask[row, : len(b)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    vocab.save(out_dir)
    record = {
        "steps": steps, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
        "n_sequences": len(sequences), "n_units": n_units, "shape": DEMO_LM_SHAPE,
        "loss_first_50_steps": float(np.mean(losses[:50])), "loss_last_50_steps": float(np.mean(losses[-50:])),
        "loss_curve_every_10_steps": [round(float(x), 4) for x in losses[::10]],
    }
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
