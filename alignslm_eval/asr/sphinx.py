"""Offline English recognition with PocketSphinx 5 (CMU Sphinx): no neural network, no download, runs anywhere.

Arguments (`--asr pocketsphinx [--asr-args hmm=DIR,lm=FILE,dict=FILE]`): without arguments, the US English model
shipped inside the pocketsphinx wheel is used (acoustic model `model/en-us/en-us`, trigram LM `en-us.lm.bin`,
CMUdict `cmudict-en-us.dict`). `hmm` (acoustic model directory), `lm` (ARPA or binary n-gram LM) and `dict`
(pronunciation dictionary) replace any of the three; the acoustic model must be a 16 kHz one.

Each waveform is one utterance, decoded with `full_utt=True` so cepstral mean normalisation uses the whole clip.
The feature front end is reset before every utterance: otherwise its noise and CMN estimates carry over from the
previous clip and a transcript would depend on what was decoded before it. The output is lower-case words (or ""
when nothing is recognised); it is much less accurate than Whisper, and useful as a fast, dependency-light check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alignslm_eval.api.asr import ASR
from alignslm_eval.api.registry import register_asr
from alignslm_eval.io.errors import UserError

_ARGS = ("hmm", "lm", "dict")


def _to_pcm16(wav: np.ndarray) -> bytes:
    """Float waveform in [-1, 1] as little-endian 16-bit PCM (values outside are clipped)."""
    scaled = np.rint(np.clip(wav, -1.0, 1.0) * 32767.0)
    return scaled.astype("<i2").tobytes()


@register_asr("pocketsphinx")
class PocketSphinxASR(ASR):
    """PocketSphinx n-gram decoding of one utterance per waveform."""

    def __init__(self, hmm: str | None = None, lm: str | None = None, dictionary: str | None = None):
        import pocketsphinx

        overrides: dict[str, str] = {}
        for name, value, want_dir in (("hmm", hmm, True), ("lm", lm, False), ("dict", dictionary, False)):
            if value is None:
                continue
            path = Path(value).expanduser()
            if not (path.is_dir() if want_dir else path.is_file()):
                what = "acoustic model directory" if want_dir else "file"
                raise UserError(f"pocketsphinx asr: {name}={value}: no such {what}; check the path")
            overrides[name] = str(path.resolve())
        try:
            # The C library logs an "ERROR" line for every clip it hears no word in; that outcome is the transcript
            # "" and is recorded per sample, so only fatal messages are left to reach the user's terminal.
            self.decoder = pocketsphinx.Decoder(loglevel="FATAL", **overrides)
        except (RuntimeError, ValueError) as e:
            given = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the default model"
            reason = " ".join(str(e).split())[:300]
            raise UserError(
                f"pocketsphinx asr: cannot load {given} ({reason}); give a PocketSphinx acoustic model directory, "
                "an n-gram LM and a pronunciation dictionary"
            )
        config = self.decoder.config
        self.hmm, self.lm, self.dictionary = config["hmm"], config["lm"], config["dict"]
        self.uses_default_model = not overrides

    @classmethod
    def from_args(cls, **kwargs: str) -> "PocketSphinxASR":
        """Build from `[hmm=DIR][, lm=FILE][, dict=FILE]`; the bundled US English model fills in the rest."""
        unknown = sorted(set(kwargs) - set(_ARGS))
        if unknown:
            raise UserError(
                f"pocketsphinx asr: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(_ARGS)}"
            )
        return cls(hmm=kwargs.get("hmm") or None, lm=kwargs.get("lm") or None, dictionary=kwargs.get("dict") or None)

    def transcribe(self, wavs: Sequence[np.ndarray]) -> list[str]:
        """One transcript per 16 kHz mono float32 waveform, in order; "" for silence or an empty waveform."""
        texts = []
        for i, wav in enumerate(wavs):
            arr = np.asarray(wav, dtype=np.float32)
            if arr.ndim != 1:
                raise ValueError(f"waveform {i}: expected a mono waveform of shape [samples], got {arr.shape}")
            texts.append(self._decode(arr) if arr.size else "")
        return texts

    def _decode(self, wav: np.ndarray) -> str:
        self.decoder.reinit_feat()
        self.decoder.start_utt()
        self.decoder.process_raw(_to_pcm16(wav), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""

    def describe(self) -> dict[str, Any]:
        """PocketSphinx version and the acoustic model, LM and dictionary paths actually loaded."""
        from importlib.metadata import version

        return {
            "kind": "pocketsphinx",
            "pocketsphinx_version": version("pocketsphinx"),
            "default_model": self.uses_default_model,
            "hmm": self.hmm,
            "lm": self.lm,
            "dict": self.dictionary,
            "sample_rate": self.sample_rate,
            "full_utt": True,
        }
