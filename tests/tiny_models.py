"""Tiny random-weight unit LMs in the published checkpoint formats, saved to disk for loading through the user path.

Shapes follow the real configs' architectures (TWIST-350M/1.3B: OPT; TWIST-7B: LLaMA; Slam: Qwen2 inside slamkit's
`speech_language_model` wrapper) at toy sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM, Qwen2Config, Qwen2ForCausalLM

N_UNITS = 500
TWIST_OFFSET = 4  # special tokens first, then units, as in a resized text LM vocabulary


def save_twist_llama(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=N_UNITS + TWIST_OFFSET, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512, bos_token_id=0,
        eos_token_id=2, pad_token_id=1,
    )
    cfg.offset = TWIST_OFFSET
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def save_twist_opt(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = OPTConfig(
        vocab_size=N_UNITS + TWIST_OFFSET, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
        word_embed_proj_dim=32, max_position_embeddings=512, bos_token_id=2, eos_token_id=2, pad_token_id=1,
    )
    cfg.offset = TWIST_OFFSET
    OPTForCausalLM(cfg).save_pretrained(path)
    return path


def save_slam_qwen2(path: Path, seed: int = 0) -> Path:
    """slamkit's format: a wrapper config with the base LM config inside, and `lm.`-prefixed weights."""
    torch.manual_seed(seed)
    base = Qwen2Config(
        vocab_size=N_UNITS + 2, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=0,
        bos_token_id=1, eos_token_id=1,
    )
    lm = Qwen2ForCausalLM(base)
    path.mkdir(parents=True, exist_ok=True)
    state = {f"lm.{k}": v.detach().clone().contiguous() for k, v in lm.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "model_type": "speech_language_model",
        "architectures": ["UnitLM"],
        "base_model_name": "Qwen/Qwen2.5-0.5B",
        "base_config": base.to_dict(),
        "vocab_size": N_UNITS + 2,
        "twist_init": True,
        "tie_word_embeddings": True,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path


def reference_loglikelihood(model: torch.nn.Module, token_ids: list[int]) -> float:
    """Sum of log p(token_t | tokens_<t) for t >= 1 from one unpadded forward pass."""
    ids = torch.tensor([token_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return float(logp[torch.arange(len(token_ids) - 1), ids[0, 1:]].sum())
