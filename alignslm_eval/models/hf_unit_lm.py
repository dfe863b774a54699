"""Any transformers causal LM over speech units: TWIST (plain HF checkpoints with a unit offset) and Slam
(slamkit's `speech_language_model` wrapper around a base LM)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from alignslm_eval.api.model import LikelihoodProtocol, LogLikelihood, SamplingConfig, UnitLM
from alignslm_eval.api.registry import register_model
from alignslm_eval.io.errors import UserError, first_line
from alignslm_eval.models.adapters import BaseModel, apply_adapter_chain
from alignslm_eval.models.loading import read_config, resolve_checkpoint, weights_fingerprint
from alignslm_eval.models.sampling import SAMPLER, sample_tokens
from alignslm_eval.models.torch_checkpoint import failure_reason, load_tensors, refuse_pickled_code
from alignslm_eval.models.vocab import VOCAB_FILE, UnitVocabulary


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
SLAM_MODEL_TYPE = "speech_language_model"


@register_model("hf")
class HFUnitLM(UnitLM):
    sampler = SAMPLER  # generate's sampler (models/sampling.py)

    def __init__(self, model: torch.nn.Module, vocab: UnitVocabulary, provenance: dict[str, Any]):
        self.model = model.eval()
        self.vocab = vocab
        self.provenance = provenance
        self.device = next(model.parameters()).device
        self.max_length = getattr(model.config, "max_position_embeddings", None)

    @classmethod
    def from_args(
        cls,
        model: str,
        device: str = "cpu",
        dtype: str = "float32",
        revision: Optional[str] = None,
        unit_convention: Optional[str] = None,
        unit_offset: Optional[int] = None,
        n_units: Optional[int] = None,
        adapter: Optional[str] = None,
        **_: Any,
    ) -> "HFUnitLM":
        if dtype not in DTYPES:
            raise UserError(f"--dtype {dtype}: choose one of {sorted(DTYPES)}")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress bars are enough; keep stderr for errors
        checkpoint, provenance = resolve_checkpoint(model, revision)
        config = read_config(checkpoint)
        torch_dtype = DTYPES[dtype]
        if config.get("model_type") == SLAM_MODEL_TYPE:
            lm = _load_slam(checkpoint, config, torch_dtype)
        else:
            lm = _load_causal_lm(checkpoint, torch_dtype)
        vocab_size = lm.get_input_embeddings().weight.shape[0]
        vocab = unit_vocabulary(checkpoint, config, vocab_size, lm.config, unit_convention, unit_offset, n_units)
        adapters = []
        if adapter:
            base = BaseModel(model, checkpoint, provenance.get("hub_id"), provenance.get("resolved_commit"))
            lm, adapters = apply_adapter_chain(lm, Path(adapter), base, vocab)
        try:
            lm = lm.to(device)
        except (RuntimeError, AssertionError) as e:
            raise UserError(f"--device {device}: {first_line(e)}")
        provenance.update(
            backend="hf",
            architecture=(config.get("architectures") or [config.get("model_type")])[0],
            weights_fingerprint=weights_fingerprint(checkpoint),
            n_parameters=sum(p.numel() for p in lm.parameters()),
            dtype=str(torch_dtype).replace("torch.", ""),
            device=device,
        )
        if adapters:
            provenance["adapter"] = adapters
        return cls(lm, vocab, provenance)

    def describe(self) -> dict[str, Any]:
        return {**self.provenance, "vocab": self.vocab.__dict__}

    @torch.inference_mode()
    def loglikelihood(
        self,
        sequences: Sequence[np.ndarray],
        protocol: LikelihoodProtocol,
        batch_size: int = 8,
        on_batch: Optional[Callable[[list[int], list[LogLikelihood]], None]] = None,
        names: Optional[Sequence[str]] = None,
    ) -> list[LogLikelihood]:
        names = names or [f"sequence {i}" for i in range(len(sequences))]
        tokens = [self.vocab.encode(s, protocol.add_bos, protocol.add_eos, source=n) for s, n in zip(sequences, names)]
        if self.max_length:
            for name, t in zip(names, tokens):
                if len(t) > self.max_length:
                    raise UserError(
                        f"{name}: {len(t)} tokens, more than the model's {self.max_length} positions; "
                        "use shorter audio"
                    )
        # Length bucketing: longest first so similar lengths share a batch and padding stays small.
        order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i]))
        results: list[Optional[LogLikelihood]] = [None] * len(tokens)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = self._score_batch([tokens[i] for i in idx])
            for i, r in zip(idx, batch):
                results[i] = r
            if on_batch is not None:
                on_batch(idx, batch)
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def generate(self, prompts: Sequence[np.ndarray], config: SamplingConfig,
                 seeds: Sequence[int]) -> list[list[np.ndarray]]:
        tokens = [self.vocab.encode(p, add_bos=self.vocab.bos_id is not None, add_eos=False, source=f"prompt {i}")
                  for i, p in enumerate(prompts)]
        if self.max_length:
            for i, t in enumerate(tokens):
                if len(t) + config.max_new_tokens > self.max_length:
                    raise UserError(
                        f"prompt {i}: {len(t)} tokens + {config.max_new_tokens} new tokens exceeds the model's "
                        f"{self.max_length} positions; use a shorter prompt or fewer new tokens"
                    )
        # Only units (and EOS) may be sampled: special and unused text tokens are not speech.
        allowed = list(range(self.vocab.offset, self.vocab.offset + self.vocab.n_units))
        if self.vocab.eos_id is not None:
            allowed.append(self.vocab.eos_id)
        pad = self.vocab.pad_id if self.vocab.pad_id is not None else 0  # any token: padding is masked out
        sampled = sample_tokens(self.model, tokens, seeds, config, allowed, self.vocab.eos_id, pad)
        return [[self.vocab.decode(row) for row in rows] for rows in sampled]

    def _score_batch(self, seqs: list[np.ndarray]) -> list[LogLikelihood]:
        longest = max(len(s) for s in seqs)
        pad = self.vocab.pad_id if self.vocab.pad_id is not None else 0
        ids = torch.full((len(seqs), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), longest), dtype=torch.long)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.from_numpy(s)
            mask[row, : len(s)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        # Right padding: with a causal mask, real positions never attend to the pads after them.
        logits = self.model(input_ids=ids, attention_mask=mask).logits
        # Token t is predicted from positions < t; the first token is context only.
        # log p = logit[target] - logsumexp(logits): avoids materialising a second [batch, length, vocab] tensor.
        logits = logits[:, :-1].float()
        target = ids[:, 1:]
        token_lp = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        scored = mask[:, 1:].to(token_lp.dtype)
        # float64 accumulation: long utterances sum hundreds of terms
        sums = (token_lp.double() * scored.double()).sum(dim=1).cpu().tolist()
        counts = scored.sum(dim=1).long().cpu().tolist()
        return [LogLikelihood(float(s), int(n)) for s, n in zip(sums, counts)]


def unit_vocabulary(
    checkpoint: Path,
    config: dict[str, Any],
    vocab_size: int,
    lm_config: Any,
    convention: Optional[str],
    offset: Optional[int],
    n_units: Optional[int],
) -> UnitVocabulary:
    """The unit convention, from (in order) explicit flags, the stored vocabulary file, or the checkpoint format,
    checked against the model: every unit needs a token embedding of its own (`vocab_size` of them), apart from
    BOS/EOS/PAD. `lm_config` is the transformers config of the LM (for a Slam checkpoint, of its base LM): its
    special token ids. No weights are needed, so an engine serving the checkpoint elsewhere can use it too."""
    vocab, source = _chosen_vocabulary(checkpoint, config, lm_config, convention, offset, n_units, vocab_size)
    # The config's special ids bind a mapping read off the config or given by flags, not a stored vocabulary: that
    # states its own specials (a merged Slam model keeps its text LM's ids in a config the Slam mapping replaces).
    reserved = _config_special_ids(config, lm_config) if source != str(checkpoint / VOCAB_FILE) else {}
    problem = vocab.misfit(vocab_size, reserved)
    if problem is None:
        return vocab
    if source.startswith("--"):  # the flags chose it: say what would fit instead
        hint = _what_fits(checkpoint, config, lm_config, vocab, n_units, vocab_size, reserved)
        raise UserError(f"{source}: {problem}; {hint}")
    raise UserError(f"{source}: {problem}; fix it, or pass --unit-convention (with --unit-offset/--n-units) to say how "
                    "units map to tokens")


def _chosen_vocabulary(
    checkpoint: Path,
    config: dict[str, Any],
    lm_config: Any,
    convention: Optional[str],
    offset: Optional[int],
    n_units: Optional[int],
    vocab_size: int,
) -> tuple[UnitVocabulary, str]:
    """The vocabulary the flags and checkpoint ask for, unchecked, and what chose it (the flags, or a file)."""
    flags = " ".join(f"{flag} {value}" for flag, value in (
        ("--unit-convention", convention), ("--unit-offset", offset), ("--n-units", n_units)) if value is not None)
    if convention is None and (checkpoint / VOCAB_FILE).is_file():
        vocab = UnitVocabulary.load(checkpoint / VOCAB_FILE)
        for flag, given, stored in (("--unit-offset", offset, vocab.offset), ("--n-units", n_units, vocab.n_units)):
            if given is not None and given != stored:
                raise UserError(f"{flag} {given}: {checkpoint / VOCAB_FILE} says {stored}; drop the flag, or pass "
                                "--unit-convention too to override the stored vocabulary")
        return vocab, str(checkpoint / VOCAB_FILE)
    if convention not in (None, "twist", "slam"):
        raise UserError(f"--unit-convention {convention}: choose 'twist' or 'slam'")
    if convention == "slam" or (convention is None and config.get("model_type") == SLAM_MODEL_TYPE):
        slam = UnitVocabulary.slam(n_units if n_units is not None else vocab_size - 2)
        if offset is not None and offset != slam.offset:
            raise UserError(f"--unit-offset {offset}: the slam convention puts unit 0 at token {slam.offset} (pad 0, "
                            "<S> 1); drop --unit-offset, or pass --unit-convention twist")
        return slam, flags or f"{checkpoint / 'config.json'} (a Slam checkpoint)"
    if convention == "twist" or (convention is None and "offset" in config):
        off = offset if offset is not None else config.get("offset")
        if off is None:
            raise UserError(f"{checkpoint}: TWIST convention needs the unit offset; pass --unit-offset N")
        if not isinstance(off, int) or isinstance(off, bool):
            raise UserError(f"{checkpoint / 'config.json'}: offset is {off!r}, not an integer; pass --unit-offset N")
        specials = [_config_token_id(checkpoint, lm_config, name)
                    for name in ("bos_token_id", "eos_token_id", "pad_token_id")]
        vocab = UnitVocabulary.twist(n_units if n_units is not None else vocab_size - off, off, *specials)
        return vocab, flags or f"{checkpoint / 'config.json'} offset {off}"
    raise UserError(
        f"{checkpoint}: cannot tell how units map to tokens (no {VOCAB_FILE}, no 'offset' in config.json, "
        "not a Slam checkpoint); pass --unit-convention twist --unit-offset N, or --unit-convention slam"
    )


def _config_special_ids(config: dict[str, Any], lm_config: Any) -> dict[str, int]:
    """The special token ids a plain checkpoint's config names, which no unit may take. A Slam checkpoint's
    base_config keeps its text LM's ids, which the Slam convention replaces, so it reserves none."""
    if config.get("model_type") == SLAM_MODEL_TYPE:
        return {}
    reserved = {}
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(lm_config, name, None)
        for token_id in value if isinstance(value, list) else [value]:
            if isinstance(token_id, int) and not isinstance(token_id, bool) and token_id >= 0:
                reserved.setdefault(f"config.json {name}", token_id)
    return reserved


def _what_fits(checkpoint: Path, config: dict[str, Any], lm_config: Any, vocab: UnitVocabulary,
               n_units: Optional[int], vocab_size: int, reserved: dict[str, int]) -> str:
    """What the user could pass instead of flags that do not fit: the model's own vocabulary, and for TWIST the
    first offset after the special tokens."""
    hints = []
    try:
        own, source = _chosen_vocabulary(checkpoint, config, lm_config, None, None, None, vocab_size)
    except UserError:
        own = None
    if own is not None and own != vocab and own.misfit(vocab_size, reserved) is None:
        hints.append(f"without the flags the model's own vocabulary fits ({own.summary()}, from {source})")
    if vocab.convention == "twist":
        taken = [*vocab.specials().values(), *reserved.values()]
        first = max((i for i in taken if 0 <= i < vocab_size), default=-1) + 1
        count = n_units if n_units is not None else vocab_size - first
        after = UnitVocabulary.twist(count, first, vocab.bos_id, vocab.eos_id, vocab.pad_id)
        if after.misfit(vocab_size, reserved) is None:
            hints.append(f"--unit-offset {first} fits {count} units after the special tokens")
    return "; ".join(hints) or f"the model has {vocab_size} token ids"


def _config_token_id(checkpoint: Path, lm_config: Any, name: str) -> Optional[int]:
    """The config's `name` id; a negative one is none (LLaMA conversions of 2023 write `pad_token_id: -1` for "no
    pad token"): padding then uses any token, masked out."""
    value = getattr(lm_config, name, None)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if value is None:
        return None
    raise UserError(f"{checkpoint / 'config.json'}: {name} is {value!r}, not one token id; write the unit vocabulary "
                    f"to {VOCAB_FILE} (fields {list(UnitVocabulary.__dataclass_fields__)}) to say which token it is")


def _load_causal_lm(checkpoint: Path, dtype: torch.dtype) -> torch.nn.Module:
    """A transformers checkpoint dir. Pickled weights (no safetensors) are scanned first: one that pickles code is
    refused before transformers reads it (weights-only) at all."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    for weights in _pickled_weight_files(checkpoint):
        refuse_pickled_code(weights, str(weights))
    try:
        return AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError, SafetensorError) as e:
        # also what torch and safetensors raise for damaged weight files
        reason = failure_reason(e) if isinstance(e, pickle.UnpicklingError) else first_line(e)
        raise UserError(f"{checkpoint}: not a loadable causal LM checkpoint ({reason})")


def _pickled_weight_files(checkpoint: Path) -> list[Path]:
    """The torch pickles transformers loads from `checkpoint`: only where it has no safetensors weights."""
    if (checkpoint / "model.safetensors").is_file() or (checkpoint / "model.safetensors.index.json").is_file():
        return []
    index = checkpoint / "pytorch_model.bin.index.json"
    if not index.is_file():
        return [checkpoint / "pytorch_model.bin"] if (checkpoint / "pytorch_model.bin").is_file() else []
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{index}: not a weights index ({first_line(e)}); re-save the model with save_pretrained")
    return [checkpoint / shard for shard in shards if (checkpoint / shard).is_file()]


def _load_slam(checkpoint: Path, config: dict[str, Any], dtype: torch.dtype) -> torch.nn.Module:
    """Load slamkit's UnitLM format: config.json wraps the base LM's config under `base_config`; weights carry an
    `lm.` prefix. Rebuilt here with transformers alone, so slamkit need not be installed."""
    from transformers import AutoConfig, AutoModelForCausalLM

    base = dict(config.get("base_config") or {})
    if "model_type" not in base:
        raise UserError(f"{checkpoint}/config.json: Slam checkpoint without base_config.model_type")
    base_type = base.pop("model_type")
    for key in ("torch_dtype", "dtype", "architectures", "transformers_version", "_name_or_path"):
        base.pop(key, None)
    base_config = AutoConfig.for_model(base_type, **base)
    lm = AutoModelForCausalLM.from_config(base_config, dtype=dtype)
    vocab_size = int(config.get("vocab_size", base_config.vocab_size))
    if lm.get_input_embeddings().weight.shape[0] != vocab_size:
        lm.resize_token_embeddings(vocab_size)
    state = {k[len("lm.") :]: v for k, v in _read_state_dict(checkpoint).items() if k.startswith("lm.")}
    if not state:
        raise UserError(f"{checkpoint}: Slam checkpoint weights have no 'lm.' parameters")
    missing, unexpected = lm.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(base_config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise UserError(
            f"{checkpoint}: weights do not match the config (missing {sorted(set(missing) - tied)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]})"
        )
    if tied:
        lm.tie_weights()
    # peft records this as an adapter's base model, so an adapter trained here can be checked against --model later.
    lm.name_or_path = lm.config.name_or_path = str(checkpoint)
    return lm.to(dtype)


def _read_state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    index = checkpoint / "model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{index}: not a weights index ({first_line(e)}); re-save the model")
    elif (checkpoint / "model.safetensors").is_file():
        files = ["model.safetensors"]
    elif (checkpoint / "pytorch_model.bin").is_file():
        return load_tensors(checkpoint / "pytorch_model.bin", str(checkpoint / "pytorch_model.bin"))
    else:
        raise UserError(f"{checkpoint}: no model.safetensors or pytorch_model.bin next to config.json")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        try:
            state.update(load_file(str(checkpoint / name)))
        except (SafetensorError, OSError) as e:  # a damaged or missing file
            raise UserError(f"{checkpoint / name}: not a readable safetensors file ({first_line(e)}); re-save the model")
    return state
