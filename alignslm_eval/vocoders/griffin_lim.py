"""Griffin-Lim vocoder for the offline log-mel tokenizer: each unit's centroid is turned back into a spectrum.

It needs no trained weights, so the whole encode -> LM -> vocode -> ASR pipeline can run offline. It is a
diagnostic, not a speech synthesiser of published quality.

Per frame, the unit's centroid (an 80-band mel power spectrum in dB with the utterance's per-band mean removed, see
`alignslm_eval.tokenizers.offline`) gets a fixed level offset of `LEVEL_OFFSET_DB` and is converted to mel power.
The offset only sets an overall gain: mel inversion, Griffin-Lim and the final peak normalisation are all
scale-equivariant, so its one job is to keep powers near 1 in float32 (fitted centroids span about -48..+51 dB).
The per-band means removed by the tokenizer are not recoverable, so the spectral tilt of the output is flat; that
does not change the units, because re-tokenizing removes the band means again.

Mel power goes back to a 513-bin linear power spectrum through the filterbank's pseudo-inverse (computed once,
negative values clipped to zero), and Griffin-Lim (torchaudio's, fast variant with momentum 0.99) recovers a phase
with the tokenizer's 1024-sample Hann window. Each 640-sample unit frame is laid out as `SUBFRAMES` = 4 identical
160-sample synthesis frames rather than one: with a 640 hop Griffin-Lim only constrains the spectrum at the
tokenizer's own analysis positions. Measured on slamkit_audio2 (100 units, 32 iterations), the log-mel error
against the intended piecewise-constant spectra, taken every 160 samples, is 3.0 dB RMS with 4 sub-frames and
4.6 dB with 1 (1.9 vs 1.7 dB at the tokenizer's own positions), for 3x the time (1.0 vs 0.34 s for its 16 s on a
busy 2-core machine).
Synthesis frames are placed so the tokenizer's analysis window of frame t (samples 640 t - 192 .. 640 t + 832,
centred on 640 t + 320) sits over unit frame t. The initial phase is torchaudio's random one (`rand_init`), drawn
with the RNG seeded to `SEED` inside `torch.random.fork_rng`, so output is byte-identical between calls and the
caller's RNG state is untouched. Torch runs on one thread meanwhile: Griffin-Lim is hundreds of small FFTs, so a
second thread gains little, while on a busy 2-core machine spin-waiting threads made one call take 6.6 s instead
of 0.1 s (measured); and one thread keeps the output bytes the same on any machine. Output: float32 at
16 kHz, exactly sum(durations) x 640 samples, peak-normalised to `PEAK`.

Durations: without them every unit lasts `default_duration` frames. Measured frames per deduplicated unit: 1.22
for the real mHuBERT-25Hz km500 units in slamkit's example features (616 units over 750 frames), and on the ten
shared speech files (2222 frames) with the offline tokenizer 1.63 (16 units), 1.41 (50), 1.33 (100, the default
inventory), 1.22 (500). The default is therefore 1.3, not 2, which would play speech about 1.5x too slowly. A
fractional value is spread over the units: n units last round(n x default_duration) frames in all, each 1 or 2
frames here.

Arguments (`--vocoder griffin_lim --vocoder-args tokenizer=FILE.npz,n_iter=32,default_duration=1.3`; `path=` or
`--vocoder griffin_lim:FILE.npz` may stand for `tokenizer=`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from alignslm_eval.api.registry import register_vocoder
from alignslm_eval.api.vocoder import Vocoder
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.threads import torch_threads
from alignslm_eval.tokenizers.offline import OfflineTokenizer
from alignslm_eval.vocoders import check_units

LEVEL_OFFSET_DB = -30.0
SUBFRAMES = 4
MOMENTUM = 0.99
SEED = 0
PEAK = 0.9
DEFAULT_N_ITER = 32
DEFAULT_DURATION = 1.3
_ARGS = ("tokenizer", "path", "n_iter", "default_duration")


def spread_durations(n_units: int, frames_per_unit: float) -> np.ndarray:
    """Integer durations for `n_units` units averaging `frames_per_unit`, n units lasting round(n x d) frames."""
    ends = np.floor(np.arange(n_units + 1) * frames_per_unit + 0.5).astype(np.int64)
    return np.diff(ends)


@register_vocoder("griffin_lim")
class GriffinLimVocoder(Vocoder):
    """Offline-tokenizer centroids -> mel power -> linear power -> Griffin-Lim (see the module docstring)."""

    def __init__(
        self,
        centroids: np.ndarray,
        config: dict[str, Any],
        n_iter: int = DEFAULT_N_ITER,
        default_duration: float = DEFAULT_DURATION,
        source: Optional[Path] = None,
        centroids_sha256: Optional[str] = None,
    ):
        import torch
        import torchaudio

        if n_iter < 1:
            raise UserError(f"griffin_lim vocoder: n_iter={n_iter} must be at least 1")
        if not (math.isfinite(default_duration) and default_duration >= 1.0):
            raise UserError(
                f"griffin_lim vocoder: default_duration={default_duration} must be at least 1 frame per unit"
            )
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.config = dict(config)
        self.n_iter = int(n_iter)
        self.default_duration = float(default_duration)
        self.source = source
        self.centroids_sha256 = centroids_sha256
        self.sample_rate = int(config["sample_rate"])
        self.n_fft = int(config["n_fft"])
        self.hop = int(config["hop_length"])
        if self.hop % (2 * SUBFRAMES):
            raise UserError(f"griffin_lim vocoder: hop_length {self.hop} is not a multiple of {2 * SUBFRAMES}")
        self.synthesis_hop = self.hop // SUBFRAMES
        # The tokenizer pads (n_fft - hop) / 2 samples and does not centre, so frame t's window is centred here:
        self.analysis_centre = self.n_fft // 2 - (self.n_fft - self.hop) // 2
        # Enough replicated edge frames that the first and last real frames see full windows, and that even a
        # one-frame input is longer than the reflect padding torch.stft needs.
        self.edge_frames = math.ceil(self.n_fft / self.synthesis_hop)
        fbanks = torchaudio.functional.melscale_fbanks(
            self.n_fft // 2 + 1,
            float(config["f_min"]),
            float(config["f_max"]),
            int(config["n_mels"]),
            self.sample_rate,
            norm=None,
            mel_scale="htk",
        )  # [freqs, mels], the tokenizer's MelSpectrogram filterbank
        with torch_threads(1):
            self._mel_to_linear = torch.linalg.pinv(fbanks.T.double()).float()  # [freqs, mels]
        self._window = torch.hann_window(self.n_fft)

    @classmethod
    def from_tokenizer(
        cls, tokenizer: OfflineTokenizer, source: Optional[Path] = None, **kwargs: Any
    ) -> "GriffinLimVocoder":
        """The vocoder for a fitted or loaded offline tokenizer."""
        return cls(
            tokenizer.quantizer.centroids,
            tokenizer.config,
            source=source,
            centroids_sha256=tokenizer.quantizer.sha256,
            **kwargs,
        )

    @classmethod
    def from_args(cls, **kwargs: str) -> "GriffinLimVocoder":
        """Build from `tokenizer=FILE.npz` (an offline tokenizer file; `path=` is the same, as
        `--vocoder griffin_lim:FILE.npz` gives), optional `n_iter`, `default_duration`."""
        unknown = sorted(set(kwargs) - set(_ARGS))
        if unknown:
            raise UserError(
                f"griffin_lim vocoder: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(_ARGS)}"
            )
        path = kwargs.get("path")
        if path and kwargs.get("tokenizer") and str(path) != str(kwargs["tokenizer"]):
            raise UserError(f"griffin_lim vocoder: path={path} and tokenizer={kwargs['tokenizer']} disagree; give one")
        kwargs = {**kwargs, "tokenizer": kwargs.get("tokenizer") or path}
        if not kwargs.get("tokenizer"):
            raise UserError(
                "griffin_lim vocoder: missing tokenizer=; pass --vocoder-args tokenizer=FILE.npz (the offline "
                "tokenizer whose units are vocoded)"
            )
        try:
            n_iter = int(kwargs.get("n_iter", DEFAULT_N_ITER))
        except ValueError:
            raise UserError(f"griffin_lim vocoder: n_iter={kwargs['n_iter']!r} is not an integer")
        try:
            default_duration = float(kwargs.get("default_duration", DEFAULT_DURATION))
        except ValueError:
            raise UserError(f"griffin_lim vocoder: default_duration={kwargs['default_duration']!r} is not a number")
        path = Path(kwargs["tokenizer"])
        tokenizer = OfflineTokenizer.load(path)
        return cls.from_tokenizer(tokenizer, source=path, n_iter=n_iter, default_duration=default_duration)

    @property
    def n_units(self) -> int:
        return int(self.centroids.shape[0])

    def durations(self, units: np.ndarray) -> np.ndarray:
        """The default frames per unit (see the module docstring), spread so n units last round(n x d) frames."""
        return spread_durations(len(units), self.default_duration)

    def synthesize(self, units: np.ndarray, durations: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 waveform of exactly sum(durations) x hop samples (see the module docstring for the defaults)."""
        import torch

        units, durations = check_units(units, durations, self.n_units)
        if durations is None:
            durations = self.durations(units)
        frames = np.repeat(units, durations)
        n_samples = len(frames) * self.hop
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        edge = self.edge_frames
        with torch.no_grad(), torch.random.fork_rng(devices=[]), torch_threads(1):
            db = torch.from_numpy(self.centroids[frames].T.copy()) + LEVEL_OFFSET_DB  # [mels, frames]
            mel_power = torch.pow(10.0, db / 10.0).repeat_interleave(SUBFRAMES, dim=1)
            power = (self._mel_to_linear @ mel_power).clamp(min=0.0)
            power = torch.cat([power[:, :1].expand(-1, edge), power, power[:, -1:].expand(-1, edge)], dim=1)
            torch.manual_seed(SEED)
            wav = _griffinlim(power, self._window, self.n_fft, self.synthesis_hop, self.n_iter)
        # Synthesis frame i is centred on sample i x synthesis_hop; real sub-frame j (frame i = j + edge) must be
        # centred at j x synthesis_hop + synthesis_hop / 2 so that sub-frames average onto the analysis centres.
        start = edge * self.synthesis_hop - self.synthesis_hop // 2 - (self.analysis_centre - self.hop // 2)
        out = wav[start : start + n_samples].numpy().astype(np.float32)
        if out.shape[0] < n_samples:
            out = np.pad(out, (0, n_samples - out.shape[0]))
        peak = float(np.max(np.abs(out)))
        if peak > 0.0:
            out = out * np.float32(PEAK / peak)
        return np.ascontiguousarray(out, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Tokenizer file and centroid hash, STFT and Griffin-Lim settings, duration default."""
        return {
            "kind": "griffin_lim",
            "tokenizer": str(self.source) if self.source is not None else None,
            "centroids_sha256": self.centroids_sha256,
            "sample_rate": self.sample_rate,
            "hop": self.hop,
            "n_fft": self.n_fft,
            "n_mels": int(self.config["n_mels"]),
            "synthesis_hop": self.synthesis_hop,
            "n_iter": self.n_iter,
            "momentum": MOMENTUM,
            "seed": SEED,
            "level_offset_db": LEVEL_OFFSET_DB,
            "default_duration": self.default_duration,
            "n_units": self.n_units,
        }


def _griffinlim(power: Any, window: Any, n_fft: int, hop: int, n_iter: int) -> Any:
    import torchaudio

    return torchaudio.functional.griffinlim(
        power, window, n_fft, hop, n_fft, power=2.0, n_iter=n_iter, momentum=MOMENTUM, length=None, rand_init=True
    )
