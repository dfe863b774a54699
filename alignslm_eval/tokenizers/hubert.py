"""HuBERT hidden states of one layer, quantized with k-means: the standard unit tokenizer of textless speech LMs.

Arguments (`--tokenizer hubert --tokenizer-args path=...,kmeans=...,layer=...`):

* `path`: a directory saved with `HubertModel.save_pretrained` (config.json + model.safetensors or
  pytorch_model.bin), or a Hugging Face hub id already in the local cache (set `HF_HUB_OFFLINE=1` to never touch
  the network).
* `kmeans`: centroids, as a `.npy` [K, D] array or a joblib scikit-learn k-means dump (textlesslib/fairseq `.bin`),
  see `alignslm_eval.tokenizers.kmeans`.
* `layer`: which `hidden_states` entry to quantize (default 11). 0 is the input of the first transformer layer (CNN
  features after the feature projection and positional convolution, plus layer norm for post-LN models such as
  HuBERT-base); L >= 1 is the output of transformer layer L, the same numbering as fairseq's `output_layer=L`.
* `device` (default cpu) and `revision` (hub ids only).

Frames: the hop (samples per frame) is the product of `config.conv_stride`, 320 (50 Hz) for HuBERT-base and 640
(25 Hz) for mHuBERT-25Hz, which has an extra stride-2 convolution. Like slamkit, the waveform is zero-padded by
(receptive field - hop) / 2 = 40 samples on each side, so an utterance of N samples gives N // hop frames. Each
utterance is encoded in its own forward pass in fp32, so its units never depend on batching.

* `normalize` (true or false; default false): scale the waveform to zero mean and unit variance before HuBERT.
  The default is what the published units were made with: slamkit feeds HubertModel the raw (padded) waveform
  (slamkit/feature_extractor/hubert_feature_extractor.py, extract, slp-rl/slamkit @ 388b402), and textlesslib
  normalises only when the fairseq checkpoint's task config says `normalize`
  (textless/data/hubert_feature_reader.py, facebookresearch/textlesslib @ ba33d66). The setting is part of the
  tokenizer fingerprint. A model directory whose preprocessor_config.json says `do_normalize: true` is refused
  unless `normalize` is given (its units would differ from the published ones); given, and disagreeing with the
  file, it is followed with a warning.

Presets:

* TWIST / slamkit (`unit_hubert_25`): mHuBERT-25Hz (`slprl/mhubert-base-25hz`), layer 11, 500 units from
  textlesslib's `mhubert_base_25hz_cp_mls_cv_sp_fisher_L11_km500.bin` (sha256
  03cc04a9c24fec4285e73e709c485756d8f116aa8e724eac555de6a7cf8d28ad).
* GSLM-style units: HuBERT-base (`facebook/hubert-base-ls960`), layer 6 (GSLM's km50/100/200 files) or layer 9
  (e.g. fairseq's `hubert_base_ls960_L9_km500.bin`), 50 Hz.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from alignslm_eval.api.registry import register_tokenizer
from alignslm_eval.api.tokenizer import SpeechTokenizer
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.errors import UserError
from alignslm_eval.models.loading import hub_offline, looks_like_local_path, read_model_config
from alignslm_eval.tokenizers.kmeans import KMeansQuantizer

log = logging.getLogger(__name__)

_ARGS = ("path", "kmeans", "layer", "device", "revision", "normalize")
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_WEIGHT_PATTERNS = ("model*.safetensors", "pytorch_model*.bin")
# Wav2Vec2FeatureExtractor's normalisation epsilon.
_NORM_EPS = 1e-7


def receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Samples seen by one output frame of a stack of 1-D convolutions."""
    field, jump = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * jump
        jump *= s
    return field


def _weights_sha256(model_dir: Path) -> str:
    for pattern in _WEIGHT_PATTERNS:
        files = sorted(model_dir.glob(pattern))
        if len(files) == 1:
            return file_sha256(files[0])
        if files:  # sharded checkpoint: hash of the per-shard hashes
            lines = "".join(f"{f.name} {file_sha256(f)}\n" for f in files)
            return "sharded:" + hashlib.sha256(lines.encode()).hexdigest()
    raise UserError(f"{model_dir}: no model.safetensors or pytorch_model.bin; save the model with save_pretrained")


@register_tokenizer("hubert")
class HubertTokenizer(SpeechTokenizer):
    """HuBERT (transformers `HubertModel`) layer-L features + nearest-centroid k-means units."""

    sample_rate = 16000

    def __init__(
        self,
        path: str | Path,
        kmeans: str | Path,
        layer: int = 11,
        device: str = "cpu",
        revision: str | None = None,
        normalize: bool | None = None,
    ):
        import torch

        self.path = str(path)
        self.kmeans_path = str(kmeans)
        self.revision = revision
        local = Path(self.path).expanduser()
        self._local_dir: Path | None = local if local.exists() else None
        self.quantizer = KMeansQuantizer.load(Path(kmeans))
        self.model = self._load_model()
        config = self.model.config

        n_layers = int(config.num_hidden_layers)
        if not 0 <= layer <= n_layers:
            raise UserError(f"hubert tokenizer: layer={layer} is out of range; this model has layers 0..{n_layers}")
        self.layer = layer
        if self.quantizer.dim != config.hidden_size:
            raise UserError(
                f"{self.kmeans_path}: centroids have dimension {self.quantizer.dim} but the model's hidden size is "
                f"{config.hidden_size}; use the k-means file made for this model"
            )
        self.hop_length = int(math.prod(config.conv_stride))
        self.receptive_field = receptive_field(tuple(config.conv_kernel), tuple(config.conv_stride))
        self.pad = (self.receptive_field - self.hop_length) // 2
        self.normalize = self._choose_normalize(normalize, self._do_normalize())

        # Layers above L cannot affect hidden_states[L]; dropping them saves their compute. One layer must stay for
        # L = 0: hidden_states are recorded at the layers, so with none the tuple is empty.
        self.model.encoder.layers = self.model.encoder.layers[: max(layer, 1)]
        try:
            self.device = torch.device(device)
            self.model.to(device=self.device, dtype=torch.float32).eval()
        except (RuntimeError, AssertionError, ValueError) as e:
            raise UserError(f"hubert tokenizer: cannot use device={device!r} ({e}); use cpu or an available cuda:N")
        self._weights_hash: str | None = None

    @classmethod
    def from_args(cls, **kwargs: str) -> "HubertTokenizer":
        """Build from `path=DIR_OR_HUB_ID, kmeans=FILE[, layer=11][, device=cpu][, revision=REV]`."""
        unknown = sorted(set(kwargs) - set(_ARGS))
        if unknown:
            raise UserError(f"hubert tokenizer: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(_ARGS)}")
        for required in ("path", "kmeans"):
            if not kwargs.get(required):
                raise UserError(
                    f"hubert tokenizer: missing {required}=; pass --tokenizer-args path=MODEL_DIR,kmeans=KMEANS_FILE"
                )
        layer_text = kwargs.get("layer", "11")
        try:
            layer = int(layer_text)
        except ValueError:
            raise UserError(f"hubert tokenizer: layer={layer_text!r} is not an integer; pass e.g. layer=11")
        normalize_text = kwargs.get("normalize")
        if normalize_text is not None and normalize_text.lower() not in _BOOLS:
            raise UserError(f"hubert tokenizer: normalize={normalize_text!r} is not true or false")
        return cls(
            path=kwargs["path"],
            kmeans=kwargs["kmeans"],
            layer=layer,
            device=kwargs.get("device") or "cpu",
            revision=kwargs.get("revision") or None,
            normalize=None if normalize_text is None else _BOOLS[normalize_text.lower()],
        )

    def _load_model(self) -> Any:
        from transformers import HubertModel

        if self._local_dir is not None:
            read_model_config(
                self._local_dir,
                (None, "hubert"),
                "HuBERT",
                "give a HuBERT directory saved with HubertModel.save_pretrained or a hub id",
            )
            source = str(self._local_dir)
        elif looks_like_local_path(self.path):
            raise UserError(f"{self.path}: no such model directory; check the path or give a hub id like org/name")
        else:
            source = self.path

        kwargs: dict[str, Any] = {"output_loading_info": True}
        if hub_offline():
            kwargs["local_files_only"] = True
        if self.revision:
            kwargs["revision"] = self.revision
        try:
            model, info = HubertModel.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as e:
            reason = " ".join(str(e).split())[:300]
            raise UserError(
                f"{self.path}: cannot load a HuBERT model ({reason}); give a directory with config.json and "
                "model.safetensors/pytorch_model.bin, or a hub id that is already cached when offline"
            )
        # Missing weights would be silently random-initialised; masked_spec_embed is only used in training.
        missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith("masked_spec_embed"))
        if missing:
            raise UserError(
                f"{self.path}: checkpoint lacks {len(missing)} HuBERT weight(s), e.g. {missing[0]}; "
                "give a complete HubertModel checkpoint"
            )
        return model

    def _choose_normalize(self, chosen: bool | None, preprocessor: bool | None) -> bool:
        """The normalisation setting: the one given, else none (as slamkit and textlesslib feed mHuBERT); a
        preprocessor config asking for it must be answered explicitly, since following either silently could give
        units other than the user expects."""
        if chosen is None:
            if preprocessor:
                raise UserError(
                    f"{self.path}: preprocessor_config.json says do_normalize: true, but the published units (slamkit, "
                    "textlesslib) come from the raw waveform; pass --tokenizer-args ...,normalize=false to match them "
                    "or normalize=true to follow the file")
            return False
        if preprocessor is not None and preprocessor != chosen:
            log.warning("%s: normalize=%s given, but its preprocessor_config.json says do_normalize: %s; following "
                        "normalize=%s", self.path, str(chosen).lower(), str(preprocessor).lower(), str(chosen).lower())
        return chosen

    def _do_normalize(self) -> bool | None:
        """preprocessor_config.json's do_normalize, or None when there is no such file or field."""
        if self._local_dir is not None:
            prep = self._local_dir / "preprocessor_config.json"
        else:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import EntryNotFoundError

            try:
                prep = Path(
                    hf_hub_download(
                        self.path,
                        "preprocessor_config.json",
                        revision=self.revision,
                        local_files_only=hub_offline(),
                    )
                )
            except (EntryNotFoundError, OSError, ValueError):
                return None
        if not prep.is_file():
            return None
        try:
            value = json.loads(prep.read_text(encoding="utf-8")).get("do_normalize")
            return None if value is None else bool(value)
        except (ValueError, AttributeError) as e:
            raise UserError(f"{prep}: not a JSON feature-extractor config ({e}); fix or delete it")

    @property
    def n_units(self) -> int:
        return self.quantizer.n_units

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def encode(self, wav: np.ndarray) -> np.ndarray:
        """Frame units (int64, len(wav) // hop frames) of one float32 mono 16 kHz waveform."""
        import torch
        import torch.nn.functional as F

        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"expected a mono waveform of shape [samples], got {wav.shape}")
        if self.normalize and wav.size:
            wav = (wav - wav.mean()) / np.sqrt(wav.var() + _NORM_EPS)
        if wav.size + 2 * self.pad < self.receptive_field:
            return np.zeros(0, dtype=np.int64)
        x = F.pad(torch.from_numpy(np.ascontiguousarray(wav)).to(self.device)[None], (self.pad, self.pad))
        with torch.inference_mode():
            hidden = self.model(x, output_hidden_states=True).hidden_states[self.layer][0]
            return self.quantizer.quantize(hidden)

    def describe(self) -> dict[str, Any]:
        """Model source and weights hash, layer, framing, normalisation and centroid hash."""
        config = self.model.config
        out: dict[str, Any] = {
            "kind": "hubert",
            "path": self.path,
            "layer": self.layer,
            "hop_length": self.hop_length,
            "pad": self.pad,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "normalize": self.normalize,
            "hidden_size": int(config.hidden_size),
            "kmeans": self.kmeans_path,
            "kmeans_sha256": self.quantizer.sha256,
            "n_units": self.n_units,
        }
        if self._local_dir is not None:
            if self._weights_hash is None:
                self._weights_hash = _weights_sha256(self._local_dir)
            out["weights_sha256"] = self._weights_hash
        else:
            out["hub_id"] = self.path
            out["revision"] = getattr(config, "_commit_hash", None) or self.revision or "unknown"
        return out
