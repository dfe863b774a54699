"""A self-contained baseline tokenizer: log-mel frames + k-means fitted on local audio, no pretrained weights.

It exists so the whole pipeline can run offline (tests, smoke runs, machines without HuBERT weights). Its units are
far weaker than HuBERT's, so scores made with it are not comparable to published numbers.

Features: an 80-band mel power spectrogram of 16 kHz audio with a 1024-sample window and a 640-sample hop, i.e. 25 Hz
frames like mHuBERT-25Hz. The waveform is zero-padded by (1024 - 640) / 2 samples on each side, so N samples give
N // 640 frames. Values are in dB, floored at 80 dB below the utterance's loudest bin, and each band's mean over the
utterance is subtracted, so a change of gain does not change the units.

Units: scikit-learn `KMeans` (k-means++, fixed n_init, single-threaded so the result is the same on any machine)
fitted with `OfflineTokenizer.fit(paths, n_units, seed)`. `save` writes one `.npz` holding the centroids and a JSON
config; `--tokenizer offline --tokenizer-args path=FILE.npz` loads it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from alignslm_eval.api.registry import register_tokenizer
from alignslm_eval.api.tokenizer import SpeechTokenizer
from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError
from alignslm_eval.tokenizers.kmeans import KMeansQuantizer

_FORMAT = "alignslm-offline-tokenizer"
_VERSION = 1
_N_INIT = 4
_MAX_ITER = 300
_FEATURES: dict[str, Any] = {
    "sample_rate": 16000,
    "n_fft": 1024,
    "hop_length": 640,
    "n_mels": 80,
    "f_min": 0.0,
    "f_max": 8000.0,
    "top_db": 80.0,
}
_AMIN = 1e-10


class _LogMel:
    """Per-utterance normalised log-mel frames, [frames, n_mels] float32."""

    def __init__(self, params: dict[str, Any]):
        import torchaudio

        self.params = params
        self.hop = int(params["hop_length"])
        self.n_fft = int(params["n_fft"])
        self.pad = (self.n_fft - self.hop) // 2
        self.top_db = float(params["top_db"])
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=int(params["sample_rate"]),
            n_fft=self.n_fft,
            win_length=self.n_fft,
            hop_length=self.hop,
            f_min=float(params["f_min"]),
            f_max=float(params["f_max"]),
            n_mels=int(params["n_mels"]),
            power=2.0,
            center=False,
        )

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim != 1:
            raise ValueError(f"expected a mono waveform of shape [samples], got {wav.shape}")
        if wav.size + 2 * self.pad < self.n_fft:
            return np.zeros((0, int(self.params["n_mels"])), dtype=np.float32)
        x = F.pad(torch.from_numpy(np.ascontiguousarray(wav)), (self.pad, self.pad))
        with torch.no_grad():
            db = 10.0 * torch.log10(self.mel(x).clamp(min=_AMIN))  # [n_mels, frames]
            db = torch.maximum(db, db.max() - self.top_db)
            db = db - db.mean(dim=1, keepdim=True)
        return np.ascontiguousarray(db.T.numpy(), dtype=np.float32)


@register_tokenizer("offline")
class OfflineTokenizer(SpeechTokenizer):
    """Log-mel + k-means units at 25 Hz, fitted on local audio (see the module docstring)."""

    sample_rate = 16000

    def __init__(self, centroids: np.ndarray, config: dict[str, Any]):
        self.config = dict(config)
        self.quantizer = KMeansQuantizer(centroids)
        self.features = _LogMel({k: self.config[k] for k in _FEATURES})
        if self.quantizer.dim != int(self.config["n_mels"]):
            raise ValueError(f"centroids have dimension {self.quantizer.dim}, expected n_mels={self.config['n_mels']}")

    @classmethod
    def fit(cls, paths: list[Path], n_units: int = 100, seed: int = 0) -> "OfflineTokenizer":
        """Fit k-means with `n_units` clusters on the log-mel frames of the given audio files (any rate, wav/flac)."""
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        if not paths:
            raise UserError("offline tokenizer: no audio files to fit on; give at least one wav or flac file")
        if n_units < 1:
            raise UserError(f"offline tokenizer: n_units={n_units} must be at least 1")
        features = _LogMel(_FEATURES)
        frames = np.concatenate([features(load_audio(Path(p), _FEATURES["sample_rate"])) for p in paths])
        if frames.shape[0] < n_units:
            raise UserError(
                f"offline tokenizer: {len(paths)} file(s) give only {frames.shape[0]} frames, fewer than "
                f"n_units={n_units}; fit on more audio or ask for fewer units"
            )
        # One thread: OpenMP reductions in different thread counts could round differently and move centroids.
        with threadpool_limits(limits=1):
            km = KMeans(n_clusters=n_units, n_init=_N_INIT, max_iter=_MAX_ITER, random_state=seed).fit(
                frames.astype(np.float64)
            )
        config = {
            "format": _FORMAT,
            "version": _VERSION,
            **_FEATURES,
            "n_units": n_units,
            "seed": seed,
            "n_init": _N_INIT,
            "fit_frames": int(frames.shape[0]),
            "fit_files": [Path(p).name for p in paths],
        }
        return cls(km.cluster_centers_.astype(np.float32), config)

    def save(self, path: Path) -> None:
        """Write centroids and config to one `.npz` file (written to a temporary file, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                config = np.array(json.dumps(self.config, sort_keys=True))
                np.savez(f, centroids=self.quantizer.centroids, config=config)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> "OfflineTokenizer":
        """Read a file written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise UserError(
                f"{path}: offline tokenizer file not found; create one with OfflineTokenizer.fit(...).save()"
            )
        try:
            with np.load(path, allow_pickle=False) as npz:
                centroids = npz["centroids"]
                config = json.loads(str(npz["config"]))
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            reason = " ".join(f"{type(e).__name__}: {e}".split())
            raise UserError(
                f"{path}: not an offline tokenizer .npz ({reason}); re-create it with OfflineTokenizer.save"
            )
        if not isinstance(config, dict) or config.get("format") != _FORMAT:
            raise UserError(f"{path}: not an offline tokenizer file (no format={_FORMAT!r}); re-create it")
        if config.get("version") != _VERSION:
            raise UserError(f"{path}: offline tokenizer format version {config.get('version')!r} is not {_VERSION}")
        missing = [k for k in _FEATURES if k not in config]
        if missing:
            raise UserError(f"{path}: config lacks {', '.join(missing)}; re-create the file with OfflineTokenizer.save")
        if centroids.ndim != 2 or centroids.shape[1] != config["n_mels"] or centroids.shape[0] < 1:
            raise UserError(f"{path}: centroids have shape {centroids.shape}, expected [K, {config['n_mels']}]")
        if config["sample_rate"] != cls.sample_rate:
            raise UserError(f"{path}: sample_rate {config['sample_rate']} is not {cls.sample_rate}; re-create it")
        return cls(centroids, config)

    @classmethod
    def from_args(cls, **kwargs: str) -> "OfflineTokenizer":
        """Build from `path=FILE.npz`."""
        unknown = sorted(set(kwargs) - {"path"})
        if unknown:
            raise UserError(f"offline tokenizer: unknown argument(s) {', '.join(unknown)}; accepted: path")
        if not kwargs.get("path"):
            raise UserError("offline tokenizer: missing path=; pass --tokenizer-args path=FILE.npz")
        return cls.load(Path(kwargs["path"]))

    @property
    def n_units(self) -> int:
        return self.quantizer.n_units

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / int(self.config["hop_length"])

    def encode(self, wav: np.ndarray) -> np.ndarray:
        """Frame units (int64, len(wav) // 640 frames) of one float32 mono 16 kHz waveform."""
        return self.quantizer.quantize(self.features(wav))

    def describe(self) -> dict[str, Any]:
        """Feature parameters, centroid hash and unit count."""
        return {
            "kind": "offline",
            **{k: self.config[k] for k in _FEATURES},
            "mel_scale": "htk",
            "n_units": self.n_units,
            "centroids_sha256": self.quantizer.sha256,
        }
