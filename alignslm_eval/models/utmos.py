"""UTMOS, the strong learner without phoneme encoder (Saeki et al. 2022, "UTMOS: UTokyo-SaruLab System for VoiceMOS
Challenge 2022", Interspeech 2022, arXiv:2204.02152), loaded from either of its published checkpoints.

The network: wav2vec 2.0 base frames, each concatenated with a data-domain embedding and a listener ("judge")
embedding, a one-layer BLSTM, then Linear-ReLU-Linear to one value per frame. The utterance score is the frame mean
mapped from the training scale back to 1-5 (x 2 + 3). Inference fixes the domain to 0 (the VoiceMOS main track) and
the listener to id 288, the values the authors' demo scores with; no range clipping is applied, as in that demo.

Checkpoint formats (told apart by their keys; all the sizes are read from the weights):

* The authors' PyTorch Lightning checkpoint (`epoch=3-step=7459.ckpt` of the UTMOS demo): `state_dict` holds
  `feature_extractors.<i>.ssl_model.*` (fairseq wav2vec 2.0 names), `feature_extractors.<j>.embedding.weight` (the
  domain table), `output_layers.0.judge_embedding.weight` (the listener table), `output_layers.0.decoder_rnn.*`
  (the BLSTM) and `output_layers.1.net.{0,3}.*` (the projection). Its hyper-parameters are OmegaConf objects; they
  are not needed and are never unpickled into live objects (see `torch_checkpoint`).
* SpeechMOS's repackaging (`utmos22_strong_step7459_v1.pt`): a state dict with `wav2vec2.*` (fairseq names),
  `domain_emb` and `judge_emb` (the single rows above), `blstm.*` and `projection.{0,2}.*`.

wav2vec 2.0 runs as torchaudio's implementation; torchaudio's own fairseq key converter maps the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from alignslm_eval.io.errors import UserError, first_line
from alignslm_eval.models.torch_checkpoint import load_checkpoint

DOMAIN_ID = 0
JUDGE_ID = 288
SAMPLE_RATE = 16000
# wav2vec 2.0's feature encoder: kernel sizes are in the weights, strides are not; every released model uses these.
CONV_KERNELS = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)
HEAD_DIM = 64  # every wav2vec 2.0 release: 768 / 12 heads, 1024 / 16 heads
MIN_SAMPLES = 400  # the feature encoder's receptive field: shorter input gives no frame


class UTMOS(nn.Module):
    def __init__(self, ssl: nn.Module, domain: torch.Tensor, judge: torch.Tensor, blstm: nn.LSTM,
                 projection: nn.Sequential):
        super().__init__()
        self.ssl = ssl
        self.register_buffer("domain", domain.reshape(1, -1))
        self.register_buffer("judge", judge.reshape(1, -1))
        self.blstm = blstm
        self.projection = projection

    @torch.inference_mode()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """MOS on the 1-5 scale for each waveform of `wave` [B, T] (16 kHz, float in [-1, 1], no padding)."""
        frames, _ = self.ssl(wave)
        b, t, _ = frames.shape
        conditioned = torch.cat([frames, self.domain.expand(b, t, -1), self.judge.expand(b, t, -1)], dim=2)
        per_frame = self.projection(self.blstm(conditioned)[0])
        return per_frame.mean(dim=(1, 2)) * 2 + 3


@dataclass
class _Parts:
    """A checkpoint's tensors sorted by role, in fairseq / our own names."""

    ssl: dict[str, torch.Tensor]
    domain: torch.Tensor
    judge: torch.Tensor
    blstm: dict[str, torch.Tensor]
    projection: dict[str, torch.Tensor]
    format: str


def _strip(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _lightning_parts(state: Mapping[str, torch.Tensor], where: str) -> _Parts:
    extractors = sorted({int(m.group(1)) for k in state if (m := re.match(r"feature_extractors\.(\d+)\.", k))})
    ssl_index = next((i for i in extractors if f"feature_extractors.{i}.ssl_model.post_extract_proj.weight" in state),
                     None)
    domain_key = next((f"feature_extractors.{i}.embedding.weight" for i in extractors
                       if f"feature_extractors.{i}.embedding.weight" in state), None)
    if ssl_index is None:
        raise UserError(f"{where}: no fairseq wav2vec 2.0 weights (feature_extractors.*.ssl_model.*); only the "
                        "wav2vec 2.0 UTMOS strong learner is supported")
    others = [i for i in extractors if i != ssl_index and f"feature_extractors.{i}.embedding.weight" != domain_key]
    if others:
        raise UserError(f"{where}: has feature extractor(s) {others} besides wav2vec 2.0 and the domain embedding "
                        "(a phoneme encoder?); only UTMOS without phoneme encoder, as published, is supported")
    judge = state.get("output_layers.0.judge_embedding.weight")
    if domain_key is None or judge is None:
        raise UserError(f"{where}: no domain or judge embedding table; is this a UTMOS strong-learner checkpoint?")
    if state[domain_key].shape[0] <= DOMAIN_ID or judge.shape[0] <= JUDGE_ID:
        raise UserError(f"{where}: domain table has {state[domain_key].shape[0]} rows and judge table "
                        f"{judge.shape[0]}; UTMOS inference needs domain {DOMAIN_ID} and judge {JUDGE_ID}")
    projection = _strip(state, "output_layers.1.net.")
    return _Parts(
        ssl=_strip(state, f"feature_extractors.{ssl_index}.ssl_model."),
        domain=state[domain_key][DOMAIN_ID],
        judge=judge[JUDGE_ID],
        blstm=_strip(state, "output_layers.0.decoder_rnn."),
        # Linear, ReLU, Dropout, Linear there; Linear, ReLU, Linear here (dropout is a no-op at inference)
        projection={("2" + k[1:] if k.startswith("3.") else k): v for k, v in projection.items()},
        format="lightning",
    )


def _speechmos_parts(state: Mapping[str, torch.Tensor]) -> _Parts:
    return _Parts(ssl=_strip(state, "wav2vec2."), domain=state["domain_emb"], judge=state["judge_emb"],
                  blstm=_strip(state, "blstm."), projection=_strip(state, "projection."), format="speechmos")


def _named_tensors(state: Mapping, where: str) -> Mapping[str, torch.Tensor]:
    bad = next((k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise UserError(f"{where}: weight entry {str(bad)[:80]!r} is not a named tensor; give the published UTMOS file")
    return state


def _wav2vec2(fairseq_state: Mapping[str, torch.Tensor], where: str) -> nn.Module:
    """torchaudio's wav2vec 2.0 sized from the weights, loaded from fairseq-named tensors."""
    from torchaudio.models import wav2vec2_model
    from torchaudio.models.wav2vec2.utils.import_fairseq import _convert_state_dict

    try:
        state = _convert_state_dict(fairseq_state)
    except ValueError as e:
        raise UserError(f"{where}: wav2vec 2.0 weights with names fairseq does not use ({e})")
    if "feature_extractor.conv_layers.1.layer_norm.weight" in state or "feature_extractor.conv_layers.0.conv.bias" in state:
        # Large / XLSR encoders also normalise before each block, which the weights cannot show; scoring them with
        # the base forward would be silently wrong.
        raise UserError(f"{where}: a wav2vec 2.0 large/XLSR-style encoder; only UTMOS on wav2vec 2.0 base, the "
                        "published strong learner, is supported")
    convs = [state.get(f"feature_extractor.conv_layers.{i}.conv.weight") for i in range(len(CONV_KERNELS))]
    if any(c is None or c.dim() != 3 for c in convs) or tuple(c.shape[2] for c in convs) != CONV_KERNELS \
            or f"feature_extractor.conv_layers.{len(CONV_KERNELS)}.conv.weight" in state:
        raise UserError(f"{where}: the wav2vec 2.0 feature encoder is not the standard 7 convolutions with kernels "
                        f"{CONV_KERNELS}")
    try:
        embed = state["encoder.feature_projection.projection.weight"].shape[0]
        pos = state["encoder.transformer.pos_conv_embed.conv.weight_v"]
        model = wav2vec2_model(
            extractor_mode="group_norm",
            extractor_conv_layer_config=[(c.shape[0], k, s) for c, k, s in zip(convs, CONV_KERNELS, CONV_STRIDES)],
            extractor_conv_bias=False, encoder_embed_dim=embed, encoder_projection_dropout=0.0,
            encoder_pos_conv_kernel=pos.shape[2], encoder_pos_conv_groups=embed // pos.shape[1],
            encoder_num_layers=len({k.split(".")[3] for k in state if k.startswith("encoder.transformer.layers.")}),
            encoder_num_heads=max(1, embed // HEAD_DIM), encoder_attention_dropout=0.0,
            encoder_ff_interm_features=state["encoder.transformer.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
            encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
            # wav2vec 2.0 base (UTMOS's `wav2vec_small.pt`) normalises after each block
            encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None,
        )
        model.load_state_dict(state, strict=True)
    except KeyError as e:
        raise UserError(f"{where}: wav2vec 2.0 weights incomplete (no {e.args[0]}); give the published UTMOS file")
    except (IndexError, ValueError, ZeroDivisionError, RuntimeError) as e:
        raise UserError(f"{where}: wav2vec 2.0 weights do not fit ({first_line(e, 160)})")
    return model


def load_utmos(path: Path, option: str = "--mos-checkpoint") -> tuple[UTMOS, str]:
    """The UTMOS model in `path` (either published format) in eval mode, and the format's name."""
    checkpoint = load_checkpoint(path, option)
    where = f"{option} {path}"
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        parts = _lightning_parts(_named_tensors(checkpoint["state_dict"], where), where)
    elif isinstance(checkpoint, Mapping) and "judge_emb" in checkpoint and "domain_emb" in checkpoint:
        parts = _speechmos_parts(_named_tensors(checkpoint, where))
    elif isinstance(checkpoint, Mapping) and any(str(k).startswith("ssl_model.") for k in checkpoint):
        raise UserError(f"{where}: this is a TorchAudio-SQUIM state dict, not UTMOS; score it with the squim_mos "
                        "scorer (e.g. --set audio_quality.scorers=[squim_mos,silence_ratio])")
    else:
        raise UserError(f"{where}: neither UTMOS checkpoint format (the authors' Lightning .ckpt with a state_dict, "
                        "or SpeechMOS's .pt with judge_emb); give the published UTMOS strong-learner file")
    ssl = _wav2vec2(parts.ssl, where)
    try:
        blstm = nn.LSTM(parts.blstm["weight_ih_l0"].shape[1], parts.blstm["weight_hh_l0"].shape[1], batch_first=True,
                        bidirectional=True)
        blstm.load_state_dict(parts.blstm, strict=True)
        first, last = parts.projection["0.weight"], parts.projection["2.weight"]
        projection = nn.Sequential(nn.Linear(first.shape[1], first.shape[0]), nn.ReLU(),
                                   nn.Linear(last.shape[1], last.shape[0]))
        projection.load_state_dict(parts.projection, strict=True)
        if last.shape[0] != 1:
            raise ValueError(f"the projection ends in {last.shape[0]} outputs, not one score")
        model = UTMOS(ssl, parts.domain.float(), parts.judge.float(), blstm, projection).eval()
        model(torch.zeros(1, MIN_SAMPLES))  # shapes that load but do not chain fail here, not mid-run
    except KeyError as e:
        raise UserError(f"{where}: BLSTM or projection weights incomplete (no {e.args[0]}); give the published file")
    except (IndexError, ValueError, RuntimeError) as e:
        raise UserError(f"{where}: BLSTM or projection weights do not fit ({first_line(e, 160)})")
    return model, parts.format
