"""Batched continuation sampling over any transformers causal LM, with one random stream per sampled row.

Many prompts x n samples go through each forward pass: prompts are left-padded (attention mask and explicit
position ids, so rotary and learned positions both start at 0 on each prompt's first real token), prefilled once
each, and their KV cache is repeated for the n samples. Every row has its own CPU `torch.Generator`, seeded from its
prompt's seed and its sample index, gives one uniform per step, and inverts its CDF in float64; so a prompt's samples
are the same whether it is sampled alone or among other prompts, in any order, and the global torch RNG is never
touched. Rows that reach EOS leave the batch (their cache rows are dropped); the loop ends when no row is left or
after `max_new_tokens`."""

from __future__ import annotations

import hashlib
import inspect
from typing import Optional, Sequence

import numpy as np
import torch

from alignslm_eval.api.model import SamplingConfig

# Recorded in each continuation run's identity: change it whenever this module would draw other samples.
SAMPLER = "alignslm per-row v1"


def row_seed(prompt_seed: int, sample: int) -> int:
    """The seed of one row's stream: a hash, so neighbouring prompt seeds and sample indices never share a stream."""
    return int.from_bytes(hashlib.sha256(f"{prompt_seed}/{sample}".encode()).digest()[:8], "little") >> 1


@torch.inference_mode()
def sample_tokens(
    model: torch.nn.Module,
    prompts: Sequence[np.ndarray],
    seeds: Sequence[int],
    config: SamplingConfig,
    allowed_ids: Sequence[int],
    eos_id: Optional[int],
    pad_id: int,
) -> list[list[np.ndarray]]:
    """`config.n` continuations (token ids, without the prompt, cut before EOS) of each prompt (token ids, BOS
    included if the model wants one), sampled from `model` with only `allowed_ids` (units, and EOS) ever drawn.
    `seeds[i]` fixes prompt i's streams."""
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    if config.temperature <= 0:
        raise ValueError(f"temperature {config.temperature}: must be greater than 0")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    n, n_prompts = config.n, len(prompts)
    outputs: list[list[list[int]]] = [[[] for _ in range(n)] for _ in range(n_prompts)]
    if n_prompts == 0 or n == 0 or config.max_new_tokens <= 0:
        return [[np.zeros(0, dtype=np.int64) for _ in range(n)] for _ in range(n_prompts)]
    device = next(model.parameters()).device
    allowed = torch.tensor(sorted(set(int(t) for t in allowed_ids)), dtype=torch.long, device=device)
    forward = _Forward(model)

    # Prefill: one row per prompt, left-padded so every prompt's next token is the last column.
    lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    width = int(lengths.max())
    ids = torch.full((n_prompts, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n_prompts, width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.as_tensor(np.asarray(p, dtype=np.int64))
        mask[row, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    logits = forward(ids, mask, positions)
    seen = _seen_tokens(ids, mask, allowed).repeat_interleave(n, dim=0) if config.repetition_penalty != 1.0 else None

    # The n samples of a prompt share its prefill: rows are prompt-major, row = prompt * n + sample.
    forward.cache.batch_repeat_interleave(n)
    logits = logits.repeat_interleave(n, dim=0)
    mask = mask.repeat_interleave(n, dim=0)
    next_position = lengths.to(device).repeat_interleave(n)
    # Row r's uniform at step t is entry t of its own stream, drawn up front: one call per row, not per step.
    uniforms = torch.stack([
        torch.rand(config.max_new_tokens, generator=torch.Generator().manual_seed(row_seed(int(seeds[r // n]), r % n)),
                   dtype=torch.float64)
        for r in range(n_prompts * n)]).to(device)
    active = torch.arange(n_prompts * n, device=device)  # the original row of each row still in the batch

    for step in range(config.max_new_tokens):
        choice = _draw(_processed(logits, allowed, config, seen), uniforms[active, step])
        tokens = allowed[choice]
        ended = (tokens == eos_id) if eos_id is not None else torch.zeros_like(tokens, dtype=torch.bool)
        for r, token, stop in zip(active.tolist(), tokens.tolist(), ended.tolist()):
            if not stop:
                outputs[r // n][r % n].append(token)
        if step == config.max_new_tokens - 1:
            break
        keep = (~ended).nonzero().squeeze(1)
        if len(keep) == 0:
            break
        if len(keep) < len(active):  # ended rows leave the batch and the cache
            forward.cache.batch_select_indices(keep)
            active, tokens, choice = active[keep], tokens[keep], choice[keep]
            mask, next_position = mask[keep], next_position[keep]
            seen = seen[keep] if seen is not None else None
        if seen is not None:
            seen[torch.arange(len(choice), device=device), choice] = True
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        logits = forward(tokens[:, None], mask, next_position[:, None])
        next_position = next_position + 1
    return [[np.asarray(row, dtype=np.int64) for row in rows] for rows in outputs]


class _Forward:
    """The model's forward with a KV cache, under whichever keyword this transformers version names the cache."""

    def __init__(self, model: torch.nn.Module):
        from transformers import DynamicCache

        self.model = model
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.keep_last = "logits_to_keep" in params
        self.cache = DynamicCache(config=model.config)

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Logits of the next token after each row's last column, the cache extended by `ids`."""
        extra = {"logits_to_keep": 1} if self.keep_last else {}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         **{self.cache_arg: self.cache}, **extra)
        return out.logits[:, -1]


def _seen_tokens(ids: torch.Tensor, mask: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """[rows, allowed] True where the row's prompt holds that token: the repetition penalty's memory (as in
    transformers, the whole prompt counts, BOS included; pads do not)."""
    column = torch.full((int(max(ids.max(), allowed.max())) + 1,), -1, dtype=torch.long, device=ids.device)
    column[allowed] = torch.arange(len(allowed), device=ids.device)
    seen = torch.zeros((ids.shape[0], len(allowed) + 1), dtype=torch.bool, device=ids.device)
    cols = torch.where(mask.bool(), column[ids], -1)
    seen.scatter_(1, torch.where(cols < 0, len(allowed), cols), True)  # last column collects the tokens to forget
    return seen[:, :-1]


def _processed(logits: torch.Tensor, allowed: torch.Tensor, config: SamplingConfig,
               seen: Optional[torch.Tensor]) -> torch.Tensor:
    """float64 logits over the allowed tokens only, after repetition penalty, temperature, top-k and top-p (in
    transformers' order and semantics); removed tokens are -inf."""
    x = logits[:, allowed].double()
    if seen is not None:
        penalised = torch.where(x > 0, x / config.repetition_penalty, x * config.repetition_penalty)
        x = torch.where(seen, penalised, x)
    x = x / config.temperature
    if config.top_k and config.top_k < x.shape[1]:
        kth = torch.topk(x, config.top_k, dim=1).values[:, -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if config.top_p is not None and config.top_p < 1.0:
        ordered, order = torch.sort(x, dim=1, descending=True)
        probs = torch.softmax(ordered, dim=1)
        mass_before = probs.cumsum(dim=1) - probs
        drop = mass_before >= config.top_p
        drop[:, 0] = False  # the most likely token always stays
        x = x.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), float("-inf"))
    return x


def _draw(x: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the column whose CDF interval holds that row's uniform (inverse-CDF sampling in float64)."""
    probs = torch.softmax(x, dim=1)
    cdf = probs.cumsum(dim=1)
    target = uniforms[:, None] * cdf[:, -1:]
    # First column whose CDF exceeds the target: a column of probability 0 never does first. Rounding can put the
    # target at the CDF's very top; then the last column of nonzero probability is the one.
    chosen = torch.searchsorted(cdf, target, right=True).squeeze(1)
    last_possible = x.shape[1] - 1 - (probs > 0).flip(1).int().argmax(dim=1)
    return torch.minimum(chosen, last_possible)
