"""Unit HiFi-GAN with a duration predictor: the vocoder TWIST and slamkit use for mHuBERT-25Hz units.

Format (speech-resynthesis' CodeHiFiGAN "CodeGenerator", as shipped by textlesslib, e.g. TWIST's
`hifigan_lj_mhubert_base_25hz.pt` with `hifigan_lj_mhubert_base_25hz_config.json`): a `torch.save`d dict whose
`generator` entry is the generator's state dict, plus a JSON config. The config keys read here are
`upsample_rates`, `upsample_kernel_sizes`, `upsample_initial_channel`, `resblock_kernel_sizes`,
`resblock_dilation_sizes`, `num_embeddings`, `embedding_dim`, `model_in_dim`, optional `resblock` ("1", the
default, or "2"), `dur_predictor_params` {`encoder_embed_dim`, `var_pred_hidden_dim`, `var_pred_kernel_size`,
`var_pred_dropout`} and `sampling_rate` (default 16000). As in textlesslib, the generator has a duration predictor
exactly when `dur_predictor_params` is present. Speaker, style and F0 conditioning (`multispkr`, `multistyle`,
`embedder_params`, `f0`) need inputs this vocoder does not supply, so such configs are refused.

Architecture: `dict` embeds units ([num_embeddings, embedding_dim]); `conv_pre` (kernel 7) maps model_in_dim to
upsample_initial_channel; each `ups.i` is a transposed convolution with stride upsample_rates[i], kernel
upsample_kernel_sizes[i], padding (k - u) / 2, halving the channels, followed by len(resblock_kernel_sizes)
residual blocks (`resblocks.{i * n + j}`, each `convs1.m` dilated and `convs2.m` undilated, leaky ReLU 0.1) whose
outputs are averaged; then leaky ReLU with PyTorch's default slope 0.01 (not 0.1: the released generators were
trained so), `conv_post` (kernel 7) to one channel and tanh. The hop is the product of upsample_rates: one sample
block of that length per frame (320 for 50 Hz units at 16 kHz; 25 Hz units need a product of 640).

Duration predictor (`dur_predictor.conv1.0`, `.ln1`, `.conv2.0`, `.ln2`, `.proj`): two convolution + ReLU +
LayerNorm (+ dropout, off at inference) stages over the unit embeddings, then a linear layer giving log(1 + d) per
unit; the frame count is clamp(round(exp(x) - 1), min=1), torch.round halving to even.

Weight norm: all generator convolutions (not the duration predictor) were trained with the legacy
`torch.nn.utils.weight_norm`, so the state dict holds `<name>.weight_g` ([out, 1, 1]; [in, 1, 1] for transposed
convolutions, whose weight is [in, out, k]) and `<name>.weight_v` instead of `<name>.weight`. Inference never needs
the split, so the modules here are plain convolutions and each pair is fused on loading into
weight = v * g / ||v||, the norm taken over every dimension where g has size 1 (what `remove_weight_norm` does).
Checkpoints saved with weight norm already removed (`weight`) or with the newer parametrization
(`parametrizations.weight.original0/1`) load too. After fusing, the keys and shapes must match exactly, then
`load_state_dict(strict=True)`.

Loading runs no pickled code: `torch.load(weights_only=True)`; a checkpoint that needs full unpickling is refused.

Arguments (`--vocoder code_hifigan --vocoder-args checkpoint=G.pt,config=CONFIG.json,device=cpu`; `path=` or
`--vocoder code_hifigan:G.pt` may stand for `checkpoint=`); config defaults to `config.json` beside the checkpoint,
then to `<checkpoint stem>_config.json` (textlesslib's naming).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from alignslm_eval.api.registry import register_vocoder
from alignslm_eval.api.vocoder import Vocoder
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.errors import UserError, first_line
from alignslm_eval.io.json_file import read_json_object
from alignslm_eval.vocoders import check_units

LRELU_SLOPE = 0.1
_ARGS = ("checkpoint", "path", "config", "device")
_REQUIRED = (
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "num_embeddings",
    "embedding_dim",
    "model_in_dim",
)
_DUR_KEYS = ("encoder_embed_dim", "var_pred_hidden_dim", "var_pred_kernel_size", "var_pred_dropout")
_CONDITIONING = ("multispkr", "multistyle", "embedder_params", "f0", "lambda_commit", "lambda_commit_code")
_SHOWN = 4


def _padding(kernel: int, dilation: int = 1) -> int:
    return dilation * (kernel - 1) // 2


class _ResBlock1(nn.Module):
    """Pairs of (dilated, undilated) convolutions, each pair a residual step."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class _ResBlock2(nn.Module):
    """One dilated convolution per residual step (HiFi-GAN's lighter block)."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class _DurationPredictor(nn.Module):
    """log(1 + frames) per unit from the unit embeddings ([batch, units, dim] -> [batch, units])."""

    def __init__(self, in_dim: int, hidden: int, kernel: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv1d(in_dim, hidden, kernel, padding=(kernel - 1) // 2), nn.ReLU())
        self.ln1 = nn.LayerNorm(hidden)
        self.conv2 = nn.Sequential(nn.Conv1d(hidden, hidden, kernel, padding=(kernel - 1) // 2), nn.ReLU())
        self.ln2 = nn.LayerNorm(hidden)
        self.proj = nn.Linear(hidden, 1)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in ((self.conv1, self.ln1), (self.conv2, self.ln2)):
            x = conv(x.transpose(1, 2)).transpose(1, 2)
            x = F.dropout(norm(x), p=self.dropout, training=self.training)
        return self.proj(x).squeeze(2)


class CodeGenerator(nn.Module):
    """Unit embeddings repeated by duration -> waveform; parameter names match speech-resynthesis checkpoints."""

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        channels = int(cfg["upsample_initial_channel"])
        block = _ResBlock2 if str(cfg.get("resblock", "1")) == "2" else _ResBlock1
        self.dict = nn.Embedding(int(cfg["num_embeddings"]), int(cfg["embedding_dim"]))
        self.conv_pre = nn.Conv1d(int(cfg["model_in_dim"]), channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2))
            for size, dilations in zip(cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"]):
                self.resblocks.append(block(c_out, size, dilations))
        self.conv_post = nn.Conv1d(c_out, 1, 7, padding=3)
        self.n_kernels = len(cfg["resblock_kernel_sizes"])
        params = cfg.get("dur_predictor_params")
        self.dur_predictor = (
            _DurationPredictor(*(params[k] for k in _DUR_KEYS[:3]), float(params["var_pred_dropout"]))
            if params
            else None
        )

    def predict_durations(self, codes: torch.Tensor) -> torch.Tensor:
        """Frames per unit for one sequence of unit ids ([units] long -> [units] long, each >= 1)."""
        if self.dur_predictor is None:
            raise RuntimeError("this generator has no duration predictor")
        log_dur = self.dur_predictor(self.dict(codes).unsqueeze(0))[0]
        return torch.clamp(torch.round(torch.exp(log_dur) - 1).long(), min=1)

    def forward(self, codes: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
        """Waveform [samples] for one sequence of unit ids, each repeated `durations` frames."""
        x = self.dict(codes).T.repeat_interleave(durations, dim=1).unsqueeze(0)  # [1, dim, frames]
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.n_kernels : (i + 1) * self.n_kernels]
            x = sum(block(x) for block in blocks) / self.n_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))[0, 0]


def _fuse_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each weight-norm (g, v) pair, legacy or parametrized, by the weight it stands for."""
    pairs = {}
    for key in state:
        for g_suffix, v_suffix, w_suffix in (
            (".weight_g", ".weight_v", ".weight"),
            (".parametrizations.weight.original0", ".parametrizations.weight.original1", ".weight"),
        ):
            if key.endswith(g_suffix):
                base = key[: -len(g_suffix)]
                if base + v_suffix in state:
                    pairs[base + w_suffix] = (key, base + v_suffix)
    used = {k for pair in pairs.values() for k in pair}
    out = {k: v for k, v in state.items() if k not in used}
    for name, (g_key, v_key) in pairs.items():
        g, v = state[g_key].double(), state[v_key].double()
        if g.dim() != v.dim() and g.numel() != 1:
            raise ValueError(f"{g_key} has shape {list(g.shape)}, not a weight-norm gain for {v_key} {list(v.shape)}")
        dims = [d for d in range(v.dim()) if g.numel() == 1 or g.shape[d] == 1]
        norm = torch.linalg.vector_norm(v, dim=dims, keepdim=True) if dims else v.abs()
        out[name] = (v * (g / norm)).to(state[v_key].dtype)
    return out


def _alias(kwargs: dict[str, str], name: str, kind: str) -> dict[str, str]:
    """Fold the generic `path=` argument into `name=`."""
    kwargs = dict(kwargs)
    path = kwargs.pop("path", None)
    if path and kwargs.get(name) and str(path) != str(kwargs[name]):
        raise UserError(f"{kind} vocoder: path={path} and {name}={kwargs[name]} disagree; give one of them")
    if path and not kwargs.get(name):
        kwargs[name] = path
    return kwargs


def _listing(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _read_config(path: Path) -> dict[str, Any]:
    cfg = read_json_object(path, "use the CodeHiFiGAN config.json shipped with the checkpoint", _REQUIRED)

    def int_list(key: str) -> list[int]:
        value = cfg[key]
        if not (isinstance(value, list) and value and all(isinstance(x, int) and x > 0 for x in value)):
            raise UserError(f"{path}: {key} must be a non-empty list of positive integers, got {value!r}")
        return value

    rates, kernels = int_list("upsample_rates"), int_list("upsample_kernel_sizes")
    if len(rates) != len(kernels):
        raise UserError(
            f"{path}: upsample_rates and upsample_kernel_sizes differ in length ({len(rates)} vs {len(kernels)})"
        )
    sizes, dilations = int_list("resblock_kernel_sizes"), cfg["resblock_dilation_sizes"]
    if not (isinstance(dilations, list) and len(dilations) == len(sizes)):
        raise UserError(
            f"{path}: resblock_dilation_sizes must hold one list of dilations per resblock_kernel_sizes entry"
        )
    for key in ("upsample_initial_channel", "num_embeddings", "embedding_dim", "model_in_dim"):
        if not (isinstance(cfg[key], int) and cfg[key] > 0):
            raise UserError(f"{path}: {key} must be a positive integer, got {cfg[key]!r}")
    if str(cfg.get("resblock", "1")) not in ("1", "2"):
        raise UserError(f"{path}: resblock {cfg['resblock']!r} is not \"1\" or \"2\"")
    conditioned = [k for k in _CONDITIONING if cfg.get(k)]
    if conditioned:
        raise UserError(
            f"{path}: {', '.join(conditioned)} set: this generator is conditioned on speaker/style/F0 inputs, which "
            "the code_hifigan vocoder does not supply; use a unit-only checkpoint such as TWIST's"
        )
    if cfg["model_in_dim"] != cfg["embedding_dim"]:
        raise UserError(
            f"{path}: model_in_dim {cfg['model_in_dim']} != embedding_dim {cfg['embedding_dim']}; a unit-only "
            "generator takes the unit embeddings as its input"
        )
    params = cfg.get("dur_predictor_params")
    if params:
        lacking = [k for k in _DUR_KEYS if not isinstance(params, dict) or k not in params]
        if lacking:
            raise UserError(f"{path}: dur_predictor_params lacks {', '.join(lacking)}")
        if params["encoder_embed_dim"] != cfg["embedding_dim"]:
            raise UserError(
                f"{path}: dur_predictor_params.encoder_embed_dim {params['encoder_embed_dim']} != embedding_dim "
                f"{cfg['embedding_dim']}"
            )
        if not (isinstance(params["var_pred_kernel_size"], int) and params["var_pred_kernel_size"] % 2 == 1):
            raise UserError(f"{path}: dur_predictor_params.var_pred_kernel_size must be an odd integer")
    return cfg


def _read_generator_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" not in str(e).lower():
            raise UserError(f"{path}: not a readable torch checkpoint ({first_line(e)})")
        raise UserError(
            f"{path}: the checkpoint holds Python objects that need full unpickling, which can run arbitrary code, "
            f"so it is refused ({first_line(e, 160)}); re-save it as torch.save({{'generator': state_dict}}) "
            "with tensors only"
        )
    except Exception as e:  # the restricted unpickler fails on corrupt bytes with arbitrary exception types
        raise UserError(f"{path}: not a readable torch checkpoint ({first_line(e)})")
    if not isinstance(checkpoint, dict) or "generator" not in checkpoint:
        keys = _listing(sorted(map(str, checkpoint))) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise UserError(
            f"{path}: expected a dict with a 'generator' state dict (speech-resynthesis/textlesslib format), "
            f"found {keys or 'an empty dict'}"
        )
    state = checkpoint["generator"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: checkpoint['generator'] is not a state dict of tensors")
    return {str(k): v for k, v in state.items()}


def load_generator(checkpoint: Path, cfg: dict[str, Any]) -> CodeGenerator:
    """A CodeGenerator for `cfg` with the weights of `checkpoint` (weight norm fused), in eval mode."""
    try:
        state = _fuse_weight_norm(_read_generator_state(checkpoint))
    except ValueError as e:
        raise UserError(f"{checkpoint}: {e}")
    model = CodeGenerator(cfg)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listing(unexpected)}")
        raise UserError(
            f"{checkpoint}: generator state dict does not match its config ({'; '.join(parts)}; weight-normed "
            "layers count as <name>.weight); is the config the one shipped with this checkpoint?"
        )
    wrong = [f"{k} {list(state[k].shape)} vs {list(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise UserError(
            f"{checkpoint}: tensor shapes differ from the config's (checkpoint vs config): {_listing(wrong)}"
        )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def vocoder_in_dir(folder: Path) -> Path:
    """The CodeHiFiGAN `.pt` of a directory: its only one, else the one a `<stem>_config.json` beside it names
    (textlesslib's checkpoint folders keep the vocoder beside HuBERT and k-means checkpoints); otherwise a UserError
    listing them."""
    found = sorted(folder.glob("*.pt"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"{folder}: no CodeHiFiGAN .pt in this directory; pass --vocoder code_hifigan:PATH to the .pt")
    named = [p for p in found if p.with_name(p.stem + "_config.json").is_file()]
    if len(named) == 1:
        return named[0]
    listed = ", ".join(p.name for p in found[:6]) + (", ..." if len(found) > 6 else "")
    raise UserError(f"{folder}: {len(found)} .pt files ({listed}) and {'no' if not named else len(named)} with a "
                    "<name>_config.json naming it; pass --vocoder code_hifigan:FILE.pt for the vocoder")


@register_vocoder("code_hifigan")
class CodeHiFiGANVocoder(Vocoder):
    """Unit HiFi-GAN (speech-resynthesis CodeGenerator format), e.g. TWIST's 25 Hz mHuBERT vocoder."""

    def __init__(self, model: CodeGenerator, cfg: dict[str, Any], provenance: dict[str, Any], device: str = "cpu"):
        self.model = model.eval().to(device)
        self.cfg = cfg
        self.device = torch.device(device)
        self.provenance = dict(provenance)
        self.sample_rate = int(cfg.get("sampling_rate", 16000))
        self.hop = math.prod(int(r) for r in cfg["upsample_rates"])

    @classmethod
    def load(cls, checkpoint: Path, config: Optional[Path] = None, device: str = "cpu") -> "CodeHiFiGANVocoder":
        """Read a checkpoint and its config (default: config.json, then <stem>_config.json, beside it). A directory
        stands for the one `.pt` in it, as TWIST's hifigan_lj_mhubert_base_25hz is distributed."""
        checkpoint = Path(checkpoint)
        if checkpoint.is_dir():
            checkpoint = vocoder_in_dir(checkpoint)
        if not checkpoint.is_file():
            raise UserError(f"{checkpoint}: CodeHiFiGAN checkpoint not found; pass --vocoder code_hifigan:PATH to the .pt file")
        if config is None:
            tried = [checkpoint.parent / "config.json", checkpoint.with_name(checkpoint.stem + "_config.json")]
            config = next((p for p in tried if p.is_file()), None)
            if config is None:
                names = " or ".join(p.name for p in tried)
                raise UserError(f"{checkpoint}: no vocoder config beside it ({names}); pass --vocoder-args config=PATH")
        config = Path(config)
        if not config.is_file():
            raise UserError(f"{config}: CodeHiFiGAN config not found; pass --vocoder-args config=PATH to its JSON file")
        try:
            torch_device = torch.device(device)
            torch.empty(0, device=torch_device)
        except (RuntimeError, ValueError, AssertionError) as e:
            raise UserError(f"code_hifigan vocoder: device={device!r} is not usable here ({first_line(e, 120)})")
        cfg = _read_config(config)
        model = load_generator(checkpoint, cfg)
        provenance = {
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": file_sha256(checkpoint),
            "config": str(config),
            "config_sha256": file_sha256(config),
        }
        return cls(model, cfg, provenance, device=str(torch_device))

    @classmethod
    def from_args(cls, **kwargs: str) -> "CodeHiFiGANVocoder":
        """Build from `checkpoint=PATH` (or `path=`, as `--vocoder code_hifigan:PATH` gives), optional `config=PATH`
        and `device` (default cpu)."""
        unknown = sorted(set(kwargs) - set(_ARGS))
        if unknown:
            raise UserError(
                f"code_hifigan vocoder: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(_ARGS)}"
            )
        kwargs = _alias(kwargs, "checkpoint", "code_hifigan")
        if not kwargs.get("checkpoint"):
            raise UserError("code_hifigan vocoder: missing checkpoint=; pass --vocoder-args checkpoint=PATH.pt")
        config = Path(kwargs["config"]) if kwargs.get("config") else None
        return cls.load(Path(kwargs["checkpoint"]), config, kwargs.get("device") or "cpu")

    @property
    def n_units(self) -> int:
        return int(self.cfg["num_embeddings"])

    @property
    def has_duration_predictor(self) -> bool:
        return self.model.dur_predictor is not None

    @torch.inference_mode()
    def predict_durations(self, units: np.ndarray) -> np.ndarray:
        """Frames per unit from the duration predictor (int64, each >= 1)."""
        units, _ = check_units(units, None, self.n_units)
        if not self.has_duration_predictor:
            where = self.provenance.get("config", "code_hifigan vocoder")
            raise UserError(
                f"{where}: this vocoder has no duration predictor (no dur_predictor_params); give durations explicitly"
            )
        if not len(units):
            return np.zeros(0, dtype=np.int64)
        codes = torch.from_numpy(units).to(self.device)
        return self.model.predict_durations(codes).cpu().numpy().astype(np.int64)

    @torch.inference_mode()
    def durations(self, units: np.ndarray) -> np.ndarray:
        """The duration predictor's frames per unit, or 1 each for a generator without one."""
        units, _ = check_units(units, None, self.n_units)
        return self.predict_durations(units) if self.has_duration_predictor else np.ones_like(units)

    @torch.inference_mode()
    def synthesize(self, units: np.ndarray, durations: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 waveform of exactly sum(durations) x hop samples; durations default to `durations(units)`."""
        units, durations = check_units(units, durations, self.n_units)
        if durations is None:
            durations = self.durations(units)
        n_samples = int(durations.sum()) * self.hop
        if n_samples == 0:
            return np.zeros(0, dtype=np.float32)
        codes = torch.from_numpy(units).to(self.device)
        wav = self.model(codes, torch.from_numpy(durations).to(self.device)).float().cpu().numpy()
        # A transposed convolution whose kernel - stride is odd adds a sample, which later layers upsample too.
        wav = wav[:n_samples] if wav.shape[0] >= n_samples else np.pad(wav, (0, n_samples - wav.shape[0]))
        return np.ascontiguousarray(wav, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Checkpoint and config paths with full-file sha256s, hop, sample rate, unit count, duration prediction."""
        return {
            "kind": "code_hifigan",
            **self.provenance,
            "hop": self.hop,
            "sample_rate": self.sample_rate,
            "n_units": self.n_units,
            "duration_predictor": self.has_duration_predictor,
        }
