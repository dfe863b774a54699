"""Tiny random-weight models in the published checkpoint formats, saved to disk for loading through the user path.

Shapes follow the real architectures at toy sizes: TWIST-350M/1.3B (OPT), TWIST-7B (LLaMA), Slam (Qwen2 inside
slamkit's `speech_language_model` wrapper), and UTMOS (wav2vec 2.0 + BLSTM) in both of its published formats.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

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


def save_slam_llama(path: Path, n_units: int = 64, seed: int = 0) -> Path:
    """The demo's format: a plain Llama over Slam-convention tokens (pad 0, `<S>` 1 as BOS and EOS, unit u = u + 2)
    with the convention stored in alignslm_units.json."""
    from alignslm_eval.models.vocab import UnitVocabulary

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=n_units + 2, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=512, bos_token_id=1, eos_token_id=1, pad_token_id=0,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    UnitVocabulary.slam(n_units).save(path)
    return path


def save_lora_adapter(model: torch.nn.Module, adapter_dir: Path, target_modules: Sequence[str] = ("q_proj", "v_proj"),
                      seed: int = 0) -> Path:
    """A random LoRA adapter on `model`, saved as peft saves it (base_model_name_or_path is the model's
    name_or_path). Its B matrices are random, not zero as before training, so merging it changes the model."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=list(target_modules), init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(adapter_dir)
    return adapter_dir


class CreatesFile:
    """Pickles as a shell call that creates `marker`: a file loaded unsafely anywhere leaves the marker behind."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def reference_loglikelihood(model: torch.nn.Module, token_ids: list[int]) -> float:
    """Sum of log p(token_t | tokens_<t) for t >= 1 from one unpadded forward pass."""
    ids = torch.tensor([token_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return float(logp[torch.arange(len(token_ids) - 1), ids[0, 1:]].sum())


# --- UTMOS (strong learner without phoneme encoder) in its two published checkpoint formats ---------------------

UTMOS_JUDGES = 300  # more than the judge id (288) inference uses


def _fairseq_name(torchaudio_key: str) -> str:
    """torchaudio's wav2vec 2.0 parameter name -> the fairseq name the published checkpoints store."""
    rules = [
        (r"feature_extractor\.conv_layers\.0\.layer_norm\.", "feature_extractor.conv_layers.0.2."),
        (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
        (r"encoder\.feature_projection\.projection\.", "post_extract_proj."),
        (r"encoder\.feature_projection\.layer_norm\.", "layer_norm."),
        (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.0.weight_g"),
        (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.0.weight_v"),
        (r"encoder\.transformer\.pos_conv_embed\.conv\.", "encoder.pos_conv.0."),
        (r"encoder\.transformer\.layer_norm\.", "encoder.layer_norm."),
        (r"encoder\.transformer\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
        (r"encoder\.transformer\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
        (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
        (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
        (r"encoder\.transformer\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
    ]
    for pattern, replacement in rules:
        renamed, n = re.subn("^" + pattern, replacement, torchaudio_key)
        if n:
            return renamed
    raise KeyError(torchaudio_key)


class Tripwire:
    """Stands for the OmegaConf hyper-parameters a Lightning checkpoint pickles; records it if it is ever rebuilt."""

    rebuilt = False

    def __init__(self, content: dict):
        self.content = content

    def __setstate__(self, state: dict) -> None:
        Tripwire.rebuilt = True
        self.__dict__.update(state)


def tiny_utmos_parts(seed: int = 0, full_size: bool = False) -> dict[str, torch.Tensor | dict]:
    """Random UTMOS weights. Toy size: wav2vec 2.0 with a 16-channel encoder, 64 dims and 2 layers, 3 domains x 8,
    300 judges x 8, BLSTM 16, projection 32. Full size is the published shape: wav2vec 2.0 base, 3 domains x 128,
    3000 judges x 128, BLSTM 512, projection 2048."""
    from torchaudio.models import wav2vec2_base, wav2vec2_model

    torch.manual_seed(seed)
    if full_size:
        ssl, width, emb, judges, hidden, proj = wav2vec2_base(), 768, 128, 3000, 512, 2048
    else:
        ssl = wav2vec2_model(
            extractor_mode="group_norm", extractor_conv_layer_config=[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2,
            extractor_conv_bias=False, encoder_embed_dim=64, encoder_projection_dropout=0.0,
            encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=1,
            encoder_attention_dropout=0.0, encoder_ff_interm_features=128, encoder_ff_interm_dropout=0.0,
            encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None,
        )
        width, emb, judges, hidden, proj = 64, 8, UTMOS_JUDGES, 16, 32
    fairseq = {_fairseq_name(k): v.detach().clone() for k, v in ssl.state_dict().items()}
    fairseq["mask_emb"] = torch.rand(width)  # a pre-training remnant both published files keep
    blstm = torch.nn.LSTM(width + 2 * emb, hidden, batch_first=True, bidirectional=True)
    return {
        "ssl": fairseq,
        "domains": torch.randn(3, emb),
        "judges": torch.randn(judges, emb),
        "blstm": {k: v.detach().clone() for k, v in blstm.state_dict().items()},
        "proj0": torch.nn.Linear(2 * hidden, proj).state_dict(),
        "proj_last": torch.nn.Linear(proj, 1).state_dict(),
        "torchaudio_ssl": {k: v.detach().clone() for k, v in ssl.state_dict().items()},
    }


def save_utmos(path: Path, fmt: str, seed: int = 0, judge_id: int = 288, full_size: bool = False) -> Path:
    """UTMOS random weights in the authors' Lightning format (`fmt="lightning"`) or SpeechMOS's (`"speechmos"`)."""
    parts = tiny_utmos_parts(seed, full_size)
    if fmt == "lightning":
        state = {f"feature_extractors.0.ssl_model.{k}": v for k, v in parts["ssl"].items()}
        state["feature_extractors.1.embedding.weight"] = parts["domains"]
        state["output_layers.0.judge_embedding.weight"] = parts["judges"]
        state.update({f"output_layers.0.decoder_rnn.{k}": v for k, v in parts["blstm"].items()})
        state.update({f"output_layers.1.net.0.{k}": v for k, v in parts["proj0"].items()})
        state.update({f"output_layers.1.net.3.{k}": v for k, v in parts["proj_last"].items()})
        checkpoint = {"epoch": 3, "global_step": 7459, "pytorch-lightning_version": "1.5.10", "state_dict": state,
                      "hyper_parameters": {"cfg": Tripwire({"model": {"feature_extractors": ["wav2vec_small.pt"]}})}}
    elif fmt == "speechmos":
        checkpoint = {f"wav2vec2.{k}": v for k, v in parts["ssl"].items()}
        checkpoint["domain_emb"] = parts["domains"][0:1].clone()
        checkpoint["judge_emb"] = parts["judges"][judge_id:judge_id + 1].clone()
        checkpoint.update({f"blstm.{k}": v for k, v in parts["blstm"].items()})
        checkpoint.update({f"projection.0.{k}": v for k, v in parts["proj0"].items()})
        checkpoint.update({f"projection.2.{k}": v for k, v in parts["proj_last"].items()})
    else:
        raise ValueError(fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path
