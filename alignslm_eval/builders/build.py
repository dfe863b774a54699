"""The skeleton every text-to-speech benchmark build shares, so a builder states only what is its own.

A `Build` checks the output folder, options and voices before any input is read. The builder then reads its
input and queues what it makes: wav files (`speak`, or `speak_pair` for a minimal pair under opaque names) and
tables. `finish` prepares the folders, synthesises the queue in order, writes the tables and the dataset card entry,
and reports. Nothing is written before `finish`, so bad input leaves the output untouched.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from alignslm_eval.builders.card import CARD_JSON, CARD_MD, card_entry, update_card
from alignslm_eval.builders.tts import EspeakTTS, Voice, default_tts
from alignslm_eval.builders.wav import SAMPLE_RATE, to_16k, write_wav
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.paths import check_directory

# files a build writes into its folders; only these (and .wav files) are removed when overwriting
_BUILT_FILES = {"gold.csv", "manifest.csv", "transcripts.csv"}

PathLike = Union[str, Path]
VoiceList = Union[str, Voice, Iterable[Union[str, Voice]]]


@dataclass
class BuildReport:
    """What one build wrote: the benchmark folders, item and file counts, total audio and the card path."""

    benchmark: str
    folders: list[Path]
    n_items: int
    n_files: int
    audio_seconds: float
    card: Path


def check_out_root(out_root: Path) -> None:
    """--out must be a folder or creatable as one; checked before any synthesis."""
    check_directory(out_root, "--out")
    for card in (out_root / CARD_JSON, out_root / CARD_MD):
        if card.is_dir():
            raise UserError(f"--out {out_root}: {card} is a folder, but the dataset card is written there; remove it")


def _check_limit(value: Optional[int], name: str) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise UserError(f"{name} must be a positive integer, not {value!r}")


def _check_split(split: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", str(split)):
        raise UserError(f"split {split!r}: use a plain folder name such as dev or test")


def _voices(tts: EspeakTTS, voices: VoiceList) -> list[Voice]:
    if isinstance(voices, (str, Voice)):
        voices = [voices]
    out: list[Voice] = []
    for item in voices:
        parts = [item] if isinstance(item, Voice) else [p for p in str(item).split(",") if p.strip()]
        for part in parts:
            voice = part if isinstance(part, Voice) else Voice.parse(part)
            tts.check_voice(voice.name)
            if voice.spec in {v.spec for v in out}:
                raise UserError(f"voice {voice.spec!r} given twice; list each voice once")
            out.append(voice)
    if not out:
        raise UserError("no voices given; pass at least one espeak-ng voice, e.g. en-us")
    return out


def _prepare(folder: Path, overwrite: bool) -> None:
    check_directory(folder, "output folder")
    if folder.is_dir():
        existing = sorted(folder.iterdir())
        if existing and not overwrite:
            raise UserError(
                f"{folder}: already holds {len(existing)} file(s); pass --overwrite to replace a previous build, or "
                "choose another output folder"
            )
        for path in existing:
            if path.is_file() and (path.suffix.lower() == ".wav" or path.name in _BUILT_FILES):
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _opaque_name(benchmark: str, seed: int, item: str, voice: str, polarity: str) -> str:
    key = "\x1f".join(("alignslm", benchmark, str(seed), item, voice, polarity))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


@dataclass(frozen=True)
class _Recording:
    """One queued wav file: what is said (text, or IPA with `phonemes`), by whom, where, and the input it is from."""

    text: str
    voice: Voice
    path: Path
    where: str
    phonemes: bool = False


class _Renderer:
    """Synthesises, resamples and writes wav files, with a progress bar; identical requests are copied."""

    def __init__(self, tts: EspeakTTS, total: int, desc: str, progress: bool):
        from tqdm import tqdm

        self.tts = tts
        self.bar = tqdm(total=total, desc=desc, unit="file", disable=not progress, file=sys.stderr, leave=False)
        self.files = 0
        self.samples = 0
        self._done: dict[tuple, Path] = {}
        self._frames: dict[tuple, int] = {}

    def render(self, recording: _Recording) -> None:
        text, voice = recording.text, recording.voice
        key = (text, voice.spec, recording.phonemes)
        if key in self._done:
            shutil.copyfile(self._done[key], recording.path)
            frames = self._frames[key]
        else:
            try:
                wav, rate = self.tts.synthesize(text, voice.name, voice.rate, voice.pitch, phonemes=recording.phonemes)
            except UserError as e:
                raise UserError(f"{recording.where}: {e}")
            if wav.size == 0:
                raise UserError(
                    f"{recording.where}: {text!r} produced no audio with voice {voice.spec!r}; reword the text"
                )
            audio = to_16k(wav, rate)
            write_wav(recording.path, audio)
            self._done[key] = recording.path
            self._frames[key] = frames = int(audio.shape[0])
        self.files += 1
        self.samples += frames
        self.bar.update(1)

    def __enter__(self) -> "_Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    @property
    def seconds(self) -> float:
        return round(self.samples / SAMPLE_RATE, 2)


class Build:
    """One build into `out_root`: the checked voices and options, and the files and tables queued so far."""

    def __init__(
        self,
        out_root: PathLike,
        voices: VoiceList,
        tts: Optional[EspeakTTS],
        seed: int,
        *,
        overwrite: bool,
        progress: bool,
        split: Optional[str] = None,
        limits: Optional[dict[str, Optional[int]]] = None,
    ):
        """Checks `out_root`, `split` (when the layout has one), each of `limits` (name -> value) and the voices."""
        self.out_root = Path(out_root)
        check_out_root(self.out_root)
        if split is not None:
            _check_split(split)
        for name, value in (limits or {}).items():
            _check_limit(value, name)
        self.tts = tts or default_tts()
        self.voices = _voices(self.tts, voices)
        self.seed = seed
        self.overwrite = overwrite
        self.progress = progress
        self._recordings: list[_Recording] = []
        self._tables: list[tuple[Path, Sequence[str], list[dict[str, Any]]]] = []

    def speak(self, text: str, voice: Voice, path: Path, where: str, phonemes: bool = False) -> None:
        """Queue `text` spoken by `voice` into `path`; `where` names its input (file and line) in errors."""
        self._recordings.append(_Recording(text, voice, path, where, phonemes))

    def speak_pair(
        self, folder: Path, namespace: str, item: str, candidates: Sequence[tuple[str, str, str]], where: str,
        phonemes: bool = False,
    ) -> list[tuple[Voice, list[str]]]:
        """Queue each (polarity, column, text) candidate of `item` in every voice, under an opaque name (a hash of
        namespace, seed, item, voice and polarity, so a name never tells which candidate is correct).

        Returns each voice with the file stems of its candidates, in order.
        """
        out = []
        for voice in self.voices:
            stems = []
            for polarity, column, text in candidates:
                stem = _opaque_name(namespace, self.seed, item, voice.spec, polarity)
                self.speak(text, voice, folder / f"{stem}.wav", f"{where}: {column}", phonemes)
                stems.append(stem)
            out.append((voice, stems))
        return out

    def table(self, path: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        """Queue a CSV table, written after the audio."""
        self._tables.append((path, columns, rows))

    def finish(
        self,
        benchmark: str,
        folders: Sequence[Path],
        *,
        desc: str,
        card_key: str,
        sources: Sequence[Path],
        layout: str,
        options: dict[str, Any],
        item_noun: str,
        n_items: int,
        counts: Optional[dict[str, Any]] = None,
    ) -> BuildReport:
        """Prepare `folders`, write the queued files and tables, and record the build as `card_key` in the card.

        The card's counts are `item_noun`: `n_items`, files and audio seconds, then `counts`; `desc` labels the
        progress bar.
        """
        for folder in folders:
            _prepare(folder, self.overwrite)
        with _Renderer(self.tts, len(self._recordings), desc, self.progress) as renderer:
            for recording in self._recordings:
                renderer.render(recording)
        for path, columns, rows in self._tables:
            _write_csv(path, columns, rows)
        entry = card_entry(
            benchmark, self.tts, sources, self.voices, self.seed, layout=layout, options=options,
            counts={item_noun: n_items, "files": renderer.files, "audio_seconds": renderer.seconds, **(counts or {})},
        )
        card = update_card(self.out_root, card_key, entry)
        return BuildReport(benchmark, list(folders), n_items, renderer.files, renderer.seconds, card)
