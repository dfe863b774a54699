"""SALMon-style acoustic consistency sets from text, in the layout the `salmon` task reads.

SALMon (Maimon, Roth, Adi 2025, arXiv:2409.07437) asks whether a speech LM prefers a recording whose acoustics stay
consistent over one where they change half-way. The four parts built here change one acoustic property at a word
boundary, and only that property: both candidates are spliced at the same boundary from the same text, so a model
cannot tell them apart by the splice alone.

- `speaker_consistency`: the second half is spoken by another voice variant of the same gender.
- `gender_consistency`: the second half is spoken by a voice of the other gender.
- `rir_consistency`: the second half is convolved with a synthetic room impulse response (exponentially decaying
  noise); the positive stays dry throughout.
- `bg_all_consistency`: stationary background noise whose colour changes half-way (white to brown); the positive
  keeps white noise throughout, at the same signal-to-noise ratio.

SALMon's sentiment and alignment parts need expressive speech or recorded scenes that espeak-ng cannot produce, so
they are not built. Files: `<out_root>/salmon/<part>/sample_<idx>_<k>.wav`, k = 0 the consistent recording.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from alignslm_eval.builders.build import check_out_root
from alignslm_eval.builders.tts import EspeakTTS, default_tts
from alignslm_eval.builders.wav import SAMPLE_RATE, to_16k, write_wav
from alignslm_eval.io.errors import UserError

PARTS = ("speaker_consistency", "gender_consistency", "rir_consistency", "bg_all_consistency")
#: (male variants, female variants): espeak-ng's `voices/!v` files used for speaker and gender changes
MALE_VARIANTS = ("m1", "m2", "m3", "m4")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4")
SNR_DB = 20.0
RT60_S = 0.5


def _speak(tts: EspeakTTS, text: str, voice: str) -> np.ndarray:
    wav, rate = tts.synthesize(text, voice)
    return to_16k(wav, rate).astype(np.float32) / 32768.0


def _halves(sentence: str, where: str) -> tuple[str, str]:
    words = sentence.split()
    if len(words) < 4:
        raise UserError(f"{where}: {sentence!r} has fewer than 4 words; SALMon-style items need two halves")
    mid = len(words) // 2
    return " ".join(words[:mid]), " ".join(words[mid:])


def _noise(color: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if color == "white":
        return white
    brown = np.cumsum(white)
    brown -= np.linspace(brown[0], brown[-1], n)  # remove the random-walk drift
    return brown


def _at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    power = float(np.mean(speech**2)) or 1e-8
    return noise * np.sqrt(power / (float(np.mean(noise**2)) or 1e-8) / 10 ** (snr_db / 10))


def _room(rng: np.random.Generator) -> np.ndarray:
    n = int(RT60_S * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / RT60_S)  # 60 dB decay over RT60
    ir[0] = 1.0
    return ir / np.sqrt(np.sum(ir**2))


def _write(path: Path, wav: np.ndarray) -> None:
    peak = float(np.max(np.abs(wav)))
    if peak > 0.99:  # added noise or reverb can push past full scale
        wav = wav * (0.99 / peak)
    write_wav(path, np.rint(wav * 32767).astype(np.int16))


def build_salmon(
    sentences: Sequence[str],
    out_root: Path,
    parts: Sequence[str] = PARTS,
    language: str = "en-us",
    seed: int = 0,
    tts: EspeakTTS | None = None,
) -> dict:
    """Build the parts for each sentence; returns (and writes to `salmon/build.json`) a record of what was made."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise UserError(f"SALMon parts {unknown} cannot be built from TTS; choose from {list(PARTS)}")
    if not sentences:
        raise UserError("SALMon builder: no sentences given")
    check_out_root(Path(out_root))
    tts = tts or default_tts()
    record: dict = {"seed": seed, "language": language, "snr_db": SNR_DB, "rt60_s": RT60_S, "parts": {}}
    for part in parts:
        folder = Path(out_root) / "salmon" / part
        folder.mkdir(parents=True, exist_ok=True)
        for idx, sentence in enumerate(sentences):
            first, second = _halves(sentence, f"sentence {idx + 1}")
            # Per-item generator: the files of one item do not depend on which other items were built.
            item_rng = np.random.default_rng(
                int.from_bytes(hashlib.sha256(f"{seed}/{part}/{idx}".encode()).digest()[:8], "little")
            )
            male = MALE_VARIANTS[int(item_rng.integers(len(MALE_VARIANTS)))]
            voice_a = f"{language}+{male}"
            if part == "speaker_consistency":
                other = [v for v in MALE_VARIANTS if v != male][int(item_rng.integers(len(MALE_VARIANTS) - 1))]
                voice_b = f"{language}+{other}"
            elif part == "gender_consistency":
                voice_b = f"{language}+{FEMALE_VARIANTS[int(item_rng.integers(len(FEMALE_VARIANTS)))]}"
            else:
                voice_b = voice_a
            a1, a2 = _speak(tts, first, voice_a), _speak(tts, second, voice_a)
            positive = np.concatenate([a1, a2])
            if part in ("speaker_consistency", "gender_consistency"):
                negative = np.concatenate([a1, _speak(tts, second, voice_b)])
            elif part == "rir_consistency":
                wet = np.convolve(a2, _room(item_rng))[: len(a2)]
                negative = np.concatenate([a1, wet * np.sqrt(np.mean(a2**2) / (np.mean(wet**2) or 1e-8))])
            else:
                white = _at_snr(positive, _noise("white", len(positive), item_rng), SNR_DB)
                brown = _noise("brown", len(a2), item_rng)
                brown *= np.sqrt(np.mean(white[len(a1):] ** 2) / (np.mean(brown**2) or 1e-8))  # same noise power
                negative = positive + np.concatenate([white[: len(a1)], brown])
                positive = positive + white
            _write(folder / f"sample_{idx}_0.wav", positive)
            _write(folder / f"sample_{idx}_1.wav", negative)
        record["parts"][part] = len(sentences)
    (Path(out_root) / "salmon" / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
