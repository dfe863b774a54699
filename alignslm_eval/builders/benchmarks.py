"""Turn text benchmarks into spoken ones with espeak-ng, in the exact layouts the evaluation tasks read.

* `build_sblimp`: BLiMP JSONL -> `<out>/syntactic/<split>/<name>.wav` + `gold.csv` (ZeroSpeech 2021 sBLIMP)
* `build_swuggy`: word,nonword[,frequency] CSV/TSV, or BabySLM's lexical CSV -> `<out>/lexical/<split>/` (sWUGGY)
* `build_storycloze`: StoryCloze CSV -> `<out>/sSC/` and `<out>/tSC/` with `<n>_<storyid>_(in)correct.wav`
* `build_pairs`: any CSV/TSV/JSONL of (positive, negative) texts -> `<out>/<name>/` + `manifest.csv`

Every voice in `voices` (a spec such as `en-us`, `en-us+f3`, `en+m3:r150`; see `alignslm_eval.builders.tts.Voice`) speaks
every item and is the `voice` column, except for StoryCloze, where each story gets one voice. Audio is 16 kHz mono
16-bit WAV (espeak-ng's 22050 Hz resampled with `scipy.signal.resample_poly`). ZeroSpeech-style file names are
opaque (a hash of seed, item, voice and polarity), so a name never tells which candidate is correct; StoryCloze
keeps its released naming, which does. A build is deterministic: the same inputs, voices and seed give
byte-identical files. `DATASET_CARD.md` and `dataset_card.json` in `<out>` record sources (with sha256), TTS
engine and version, voices, counts, seed and builder version; several builds into one `<out>` share the card.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import re
import shutil
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from alignslm_eval import __version__
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.paths import check_directory
from alignslm_eval.builders.tts import EspeakTTS, Voice, default_tts

BUILDER_VERSION = "1.0"
SAMPLE_RATE = 16000
CARD_JSON = "dataset_card.json"
CARD_MD = "DATASET_CARD.md"

SYNTACTIC_COLUMNS = ("filename", "id", "voice", "type", "subtype", "transcription", "correct")
LEXICAL_COLUMNS = ("filename", "id", "voice", "frequency", "word", "phones", "length", "correct")
MANIFEST_COLUMNS = ("id", "positive", "negative")
STORY_TRANSCRIPT_COLUMNS = ("filename", "storyid", "voice", "ending_from", "text")
STORYCLOZE_COLUMNS = (
    "InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
    "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding",
)
BLIMP_FIELDS = ("sentence_good", "sentence_bad", "linguistics_term", "UID", "pairID")
# files a build writes into its folders; only these (and .wav files) are removed when overwriting
_BUILT_FILES = {"gold.csv", "manifest.csv", "transcripts.csv"}

PathLike = Union[str, Path]


@dataclass
class BuildReport:
    """What one build wrote: the benchmark folders, item and file counts, total audio and the card path."""

    benchmark: str
    folders: list[Path]
    n_items: int
    n_files: int
    audio_seconds: float
    card: Path


# ------------------------------------------------------------------------------------------------------ input


@dataclass
class _Row:
    line: int
    values: dict[str, str]


def _delimiter(path: Path, header_line: str) -> str:
    if path.suffix.lower() == ".tsv" or ("\t" in header_line and "," not in header_line):
        return "\t"
    return ","


def _header(path: Path) -> list[str]:
    """Column names of a CSV/TSV file (empty if unreadable; `_read_rows` then reports the problem)."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return []
    return [c.strip() for c in next(csv.reader([first], delimiter=_delimiter(Path(path), first)), [])]


def _read_rows(path: Path, required: Sequence[str], what: str) -> list[_Row]:
    """Rows of a CSV/TSV (by suffix or header) or JSONL file, values stripped strings; checks required columns.

    `what` describes the expected file for error messages, e.g. "a BLiMP .jsonl file".
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--input {path}: is a directory, not {what}; give the path of the file(s) inside it")
    if not path.is_file():
        raise UserError(f"--input {path}: input file not found; check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read input file ({e}); it must be UTF-8 text ({what})")
    rows: list[_Row] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        # split on newlines only: JSON strings may hold other line separators such as U+2028
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: line {number}: not valid JSON ({e.msg}); {what} has one object per line")
            if not isinstance(obj, dict):
                raise UserError(f"{path}: line {number}: expected a JSON object; {what} has one object per line")
            missing = [c for c in required if c not in obj]
            if missing:
                raise UserError(
                    f"{path}: line {number}: missing field(s) {', '.join(missing)}; {what} needs "
                    f"{', '.join(required)} on every line"
                )
            rows.append(_Row(number, {k: "" if v is None else str(v).strip() for k, v in obj.items()}))
    else:
        if not text.strip():
            raise UserError(f"{path}: empty file; {what} needs a header line with {', '.join(required)}")
        try:
            # StringIO with newline="" keeps quoted multi-line fields intact and line_num physical
            reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(path, text.split("\n", 1)[0]))
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in required if c not in header]
            if missing:
                raise UserError(
                    f"{path}: line 1: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'}); "
                    f"{what} needs {', '.join(required)}"
                )
            for row in reader:
                values = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if not any(values.values()):
                    continue
                rows.append(_Row(reader.line_num, values))
        except csv.Error as e:
            raise UserError(f"{path}: not a readable CSV file ({e}); {what} is expected")
    if not rows:
        raise UserError(f"{path}: no rows; {what} needs at least one")
    return rows


def _require_text(path: Path, row: _Row, column: str) -> str:
    value = row.values.get(column, "")
    if not value:
        raise UserError(f"{path}: line {row.line}: empty {column!r}; fill it in or remove the row")
    return value


def _sample(items: list, n: Optional[int], key: str) -> list:
    """A seeded random subset of `n` items, kept in input order (all items when n is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    # a str seed hashes the same way in every run (unlike hash(), which PYTHONHASHSEED salts)
    chosen = sorted(random.Random(key).sample(range(len(items)), n))
    return [items[i] for i in chosen]


def _check_limit(value: Optional[int], name: str) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise UserError(f"{name} must be a positive integer, not {value!r}")


def _check_split(split: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", str(split)):
        raise UserError(f"split {split!r}: use a plain folder name such as dev or test")


def _as_list(value: Union[PathLike, Sequence[PathLike]]) -> list[Path]:
    if isinstance(value, (str, Path)):
        return [Path(value)]
    return [Path(v) for v in value]


def _voices(tts: EspeakTTS, voices: Union[str, Voice, Iterable[Union[str, Voice]]]) -> list[Voice]:
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


# ----------------------------------------------------------------------------------------------------- output


def check_out_root(out_root: Path) -> None:
    """--out must be a folder or creatable as one; checked before any synthesis."""
    check_directory(out_root, "--out")
    for card in (out_root / CARD_JSON, out_root / CARD_MD):
        if card.is_dir():
            raise UserError(f"--out {out_root}: {card} is a folder, but the dataset card is written there; remove it")


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


def to_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """int16 samples at `sample_rate` -> int16 at 16 kHz (polyphase resampling, Kaiser-windowed FIR)."""
    if sample_rate == SAMPLE_RATE:
        return np.asarray(wav, dtype=np.int16)
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, int(sample_rate))
    y = resample_poly(np.asarray(wav, dtype=np.float64), SAMPLE_RATE // g, int(sample_rate) // g)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


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

    def render(self, text: str, voice: Voice, path: Path, where: str, phonemes: bool = False) -> None:
        key = (text, voice.spec, phonemes)
        if key in self._done:
            shutil.copyfile(self._done[key], path)
            frames = self._frames[key]
        else:
            try:
                wav, rate = self.tts.synthesize(text, voice.name, voice.rate, voice.pitch, phonemes=phonemes)
            except UserError as e:
                raise UserError(f"{where}: {e}")
            if wav.size == 0:
                raise UserError(f"{where}: {text!r} produced no audio with voice {voice.spec!r}; reword the text")
            audio = to_16k(wav, rate)
            import soundfile as sf

            sf.write(str(path), audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            self._done[key] = path
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


# ------------------------------------------------------------------------------------------------ dataset card


_CARD_NOTES = {
    "sblimp": "BLiMP (Warstadt et al. 2020, TACL) is CC BY 4.0; the audio is a derivative work under the same terms.",
    "swuggy": "The word list's own terms apply to the audio built from it (BabySLM's lexical list states no licence).",
    "storycloze": (
        "The Story Cloze Test (Mostafazadeh et al. 2016) is distributed by the University of Rochester on request; "
        "check its terms before sharing audio built from it."
    ),
    "pairs": "The source file's own terms apply to the audio built from it.",
}


def _tts_info(tts: EspeakTTS) -> dict[str, Any]:
    try:
        from importlib.metadata import version

        package = f"espeakng-loader {version('espeakng-loader')}"
    except Exception:
        package = "espeakng-loader (version unknown)"
    return {
        "engine": "espeak-ng",
        "version": tts.version,
        "package": package,
        "native_sample_rate": tts.sample_rate,
    }


def _entry(
    builder: str, tts: EspeakTTS, sources: Sequence[Path], voices: Sequence[Voice], seed: int, layout: str,
    options: dict[str, Any], counts: dict[str, Any],
) -> dict[str, Any]:
    return {
        "builder": builder,
        "builder_version": BUILDER_VERSION,
        "alignslm_version": __version__,
        "layout": layout,
        # the file name, not the path, so builds from different checkouts have identical cards
        "sources": [{"file": p.name, "sha256": file_sha256(p), "bytes": p.stat().st_size} for p in sources],
        "tts": _tts_info(tts),
        "audio": {
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "format": "WAV PCM_16",
            "resampler": "scipy.signal.resample_poly (Kaiser-windowed polyphase FIR)",
        },
        "voices": [v.spec for v in voices],
        "seed": seed,
        "options": options,
        "counts": counts,
        "notes": _CARD_NOTES[builder],
    }


def _render_card(card: dict[str, Any]) -> str:
    lines = [
        "# Synthetic spoken benchmarks",
        "",
        "Built from text with `alignslm-data synth` (`alignslm_eval.builders.benchmarks`) using the espeak-ng "
        "formant synthesiser. The speech is synthetic and robotic: scores on it measure a speech language model's "
        "preferences on this material, and are not comparable with scores on the released (neural-TTS) "
        "benchmarks. Rebuilding with the same sources, voices, seed and software versions gives byte-identical "
        "files. Machine-readable details: `dataset_card.json`.",
        "",
    ]
    for key, entry in card["benchmarks"].items():
        tts, audio = entry["tts"], entry["audio"]
        lines += [f"## {key} ({entry['builder']})", ""]
        lines.append(f"- Layout: {entry['layout']}")
        for source in entry["sources"]:
            lines.append(f"- Source: `{source['file']}` ({source['bytes']} bytes, sha256 `{source['sha256']}`)")
        lines.append(
            f"- TTS: {tts['engine']} {tts['version']} ({tts['package']}), {tts['native_sample_rate']} Hz resampled "
            f"to {audio['sample_rate']} Hz mono {audio['format']} by {audio['resampler']}"
        )
        lines.append(f"- Voices: {', '.join(f'`{v}`' for v in entry['voices'])}")
        options = ", ".join(f"{k}={v}" for k, v in entry["options"].items())
        lines.append(f"- Seed: {entry['seed']}" + (f"; options: {options}" if options else ""))
        counts = entry["counts"]
        simple = ", ".join(f"{k}: {v}" for k, v in counts.items() if not isinstance(v, dict))
        lines.append(f"- Counts: {simple}")
        for name, breakdown in counts.items():
            if isinstance(breakdown, dict):
                lines.append(f"  - {name}: " + ", ".join(f"{k} {v}" for k, v in breakdown.items()))
        lines.append(f"- Builder: alignslm_eval.builders.benchmarks {entry['builder_version']} "
                     f"(alignslm {entry['alignslm_version']})")
        lines.append(f"- Terms: {entry['notes']}")
        lines.append("")
    return "\n".join(lines)


def _update_card(out_root: Path, key: str, entry: dict[str, Any]) -> Path:
    path = out_root / CARD_JSON
    card: dict[str, Any] = {"card_format": 1, "benchmarks": {}}
    if path.is_file():
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"{path}: unreadable dataset card ({e}); delete it, or build into another folder")
        if not isinstance(card, dict) or not isinstance(card.get("benchmarks"), dict):
            raise UserError(f"{path}: not an alignslm dataset card; delete it, or build into another folder")
    card["benchmarks"][key] = entry
    card["benchmarks"] = dict(sorted(card["benchmarks"].items()))
    path.write_text(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_root / CARD_MD).write_text(_render_card(card), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------ sBLIMP


def build_sblimp(
    jsonl_files: Union[PathLike, Sequence[PathLike]],
    out_root: PathLike,
    voices: Union[str, Sequence[str]],
    split: str = "dev",
    n_per_phenomenon: Optional[int] = None,
    seed: int = 0,
    *,
    overwrite: bool = False,
    tts: Optional[EspeakTTS] = None,
    progress: bool = True,
) -> BuildReport:
    """sBLIMP from BLiMP JSONL files: `<out_root>/syntactic/<split>/<name>.wav` and `gold.csv`.

    One row per (sentence, voice); `id` is a running integer per pair (shared by its voices), type is the
    linguistics_term, subtype the UID, correct 1 for sentence_good and 0 for sentence_bad. `n_per_phenomenon`
    keeps a seeded random sample of pairs per UID (in file order).
    """
    files = _as_list(jsonl_files)
    if not files:
        raise UserError("no BLiMP files given; pass one or more .jsonl files")
    check_out_root(Path(out_root))
    _check_split(split)
    _check_limit(n_per_phenomenon, "n_per_phenomenon")
    tts = tts or default_tts()
    voice_list = _voices(tts, voices)
    by_uid: "OrderedDict[str, list[tuple[Path, _Row]]]" = OrderedDict()
    seen: dict[tuple[str, str], str] = {}
    for path in files:
        for row in _read_rows(path, BLIMP_FIELDS, "a BLiMP .jsonl file"):
            for column in BLIMP_FIELDS:
                _require_text(path, row, column)
            key = (row.values["UID"], row.values["pairID"])
            where = f"{path.name} line {row.line}"
            if key in seen:
                raise UserError(
                    f"{path}: line {row.line}: pair {key[0]}/{key[1]} already read from {seen[key]}; "
                    "give each BLiMP file once"
                )
            seen[key] = where
            by_uid.setdefault(row.values["UID"], []).append((path, row))
    pairs = [p for uid, rows in by_uid.items() for p in _sample(rows, n_per_phenomenon, f"{seed}|sblimp|{uid}")]

    out_root = Path(out_root)
    folder = out_root / "syntactic" / split
    _prepare(folder, overwrite)
    gold = []
    with _Renderer(tts, len(pairs) * len(voice_list) * 2, f"sBLIMP {split}", progress) as renderer:
        for pair_id, (path, row) in enumerate(pairs):
            item = f"{row.values['UID']}/{row.values['pairID']}"
            for voice in voice_list:
                for polarity, column, correct in (("good", "sentence_good", 1), ("bad", "sentence_bad", 0)):
                    text = row.values[column]
                    name = _opaque_name("sblimp", seed, item, voice.spec, polarity)
                    renderer.render(text, voice, folder / f"{name}.wav", f"{path}: line {row.line}: {column}")
                    gold.append({
                        "filename": name, "id": pair_id, "voice": voice.spec, "type": row.values["linguistics_term"],
                        "subtype": row.values["UID"], "transcription": text, "correct": correct,
                    })
    _write_csv(folder / "gold.csv", SYNTACTIC_COLUMNS, gold)
    by_subtype: dict[str, int] = {}
    for _, row in pairs:
        by_subtype[row.values["UID"]] = by_subtype.get(row.values["UID"], 0) + 1
    entry = _entry(
        "sblimp", tts, files, voice_list, seed,
        layout=f"syntactic/{split}/<filename>.wav + gold.csv ({', '.join(SYNTACTIC_COLUMNS)}); ZeroSpeech 2021 sBLIMP",
        options={"split": split, "n_per_phenomenon": n_per_phenomenon},
        counts={"pairs": len(pairs), "files": renderer.files, "audio_seconds": renderer.seconds,
                "pairs_by_subtype": by_subtype},
    )
    card = _update_card(out_root, f"syntactic/{split}", entry)
    return BuildReport("sblimp", [folder], len(pairs), renderer.files, renderer.seconds, card)


# ------------------------------------------------------------------------------------------------------ sWUGGY


def _read_words(path: Path, ipa: bool) -> tuple[list[tuple[_Row, str, str, int]], bool, str]:
    """(row, word, nonword, frequency) per row, whether the entries are IPA, and the input format name."""
    header = _header(path)
    rows_out = []
    if "non words" in header and "nonword" not in header:
        # BabySLM lexical: IPA words, several "/"-separated nonwords per word; the first is the matched one
        for row in _read_rows(path, ("word", "non words"), "a BabySLM lexical CSV"):
            word = _require_text(path, row, "word")
            nonwords = [w.strip() for w in _require_text(path, row, "non words").split("/") if w.strip()]
            if not nonwords:
                raise UserError(f"{path}: line {row.line}: 'non words' lists no nonword; fill it in or remove the row")
            rows_out.append((row, word, nonwords[0], 0))
        return rows_out, True, "babyslm"
    rows = _read_rows(path, ("word", "nonword"), "a word list (columns word,nonword[,frequency])")
    for row in rows:
        word = _require_text(path, row, "word")
        nonword = _require_text(path, row, "nonword")
        frequency = 0
        raw = row.values.get("frequency", "")
        if raw:
            try:
                number = float(raw)
            except ValueError:
                number = math.nan
            if not (number >= 0 and float(number).is_integer()):
                raise UserError(
                    f"{path}: line {row.line}: frequency must be a non-negative whole count (0 = out of vocabulary), "
                    f"not {raw!r}"
                )
            frequency = int(number)
        rows_out.append((row, word, nonword, frequency))
    return rows_out, ipa, "word,nonword"


def build_swuggy(
    word_file: PathLike,
    out_root: PathLike,
    voices: Union[str, Sequence[str]],
    split: str = "dev",
    ipa: bool = False,
    seed: int = 0,
    *,
    limit: Optional[int] = None,
    overwrite: bool = False,
    tts: Optional[EspeakTTS] = None,
    progress: bool = True,
) -> BuildReport:
    """sWUGGY from a word,nonword[,frequency] CSV/TSV (text, or IPA with `ipa=True`) or BabySLM's lexical CSV.

    Writes `<out_root>/lexical/<split>/<name>.wav` and `gold.csv`: one row per (word or nonword, voice), `id` a
    running integer per pair, frequency 0 (out of vocabulary) when the file has none, phones the space-separated
    IPA phones (espeak-ng's for text, the input's own for IPA) and length their number. The BabySLM format
    (columns word, "non words", ...) is IPA; its first nonword is used. `limit` keeps a seeded random sample of
    pairs.
    """
    path = Path(word_file)
    check_out_root(Path(out_root))
    _check_split(split)
    _check_limit(limit, "limit")
    tts = tts or default_tts()
    voice_list = _voices(tts, voices)
    entries, ipa, fmt = _read_words(path, ipa)
    entries = _sample(entries, limit, f"{seed}|swuggy|{path.name}")

    # phones (and, for IPA, the conversion) are checked before anything is written
    phones: dict[tuple[str, str], list[str]] = {}
    for row, word, nonword, _ in entries:
        for column, text in (("word", word), ("nonword", nonword)):
            for voice in voice_list:
                key = (text, voice.name.partition("+")[0])
                if key in phones:
                    continue
                try:
                    if ipa:
                        phones[key] = tts.ipa_to_espeak(text, voice.name)[1]
                    else:
                        phones[key] = [p for w in tts.phonemize(text, voice.name) for p in w]
                except UserError as e:
                    raise UserError(f"{path}: line {row.line}: {column}: {e}")
                if not phones[key]:
                    raise UserError(f"{path}: line {row.line}: {column} {text!r} has no phonemes; reword it")

    out_root = Path(out_root)
    folder = out_root / "lexical" / split
    _prepare(folder, overwrite)
    gold = []
    with _Renderer(tts, len(entries) * len(voice_list) * 2, f"sWUGGY {split}", progress) as renderer:
        for pair_id, (row, word, nonword, frequency) in enumerate(entries):
            item = f"{pair_id}\x1f{word}\x1f{nonword}"
            for voice in voice_list:
                for polarity, column, text, correct in (("word", "word", word, 1), ("nonword", "nonword", nonword, 0)):
                    name = _opaque_name("swuggy", seed, item, voice.spec, polarity)
                    renderer.render(text, voice, folder / f"{name}.wav", f"{path}: line {row.line}: {column}",
                                    phonemes=ipa)
                    ph = phones[(text, voice.name.partition("+")[0])]
                    gold.append({
                        "filename": name, "id": pair_id, "voice": voice.spec, "frequency": frequency, "word": text,
                        "phones": " ".join(ph), "length": len(ph), "correct": correct,
                    })
    _write_csv(folder / "gold.csv", LEXICAL_COLUMNS, gold)
    entry = _entry(
        "swuggy", tts, [path], voice_list, seed,
        layout=f"lexical/{split}/<filename>.wav + gold.csv ({', '.join(LEXICAL_COLUMNS)}); ZeroSpeech 2021 sWUGGY",
        options={"split": split, "input_format": fmt, "ipa": ipa, "limit": limit},
        counts={"pairs": len(entries), "files": renderer.files, "audio_seconds": renderer.seconds,
                "oov_pairs": sum(1 for e in entries if e[3] == 0)},
    )
    card = _update_card(out_root, f"lexical/{split}", entry)
    return BuildReport("swuggy", [folder], len(entries), renderer.files, renderer.seconds, card)


# -------------------------------------------------------------------------------------------------- StoryCloze


def _pick_voice(voices: Sequence[Voice], seed: int, key: str) -> Voice:
    digest = hashlib.sha256(f"{seed}\x1fvoice\x1f{key}".encode("utf-8")).hexdigest()
    return voices[int(digest[:12], 16) % len(voices)]


def build_storycloze(
    csv_file: PathLike,
    out_root: PathLike,
    voices: Union[str, Sequence[str]],
    n_stories: Optional[int] = None,
    seed: int = 0,
    *,
    overwrite: bool = False,
    tts: Optional[EspeakTTS] = None,
    progress: bool = True,
) -> BuildReport:
    """Spoken (sSC) and topic (tSC) StoryCloze from the StoryCloze CSV, in `<out_root>/sSC/` and `<out_root>/tSC/`.

    Each story is read whole (four sentences and an ending) by one voice (a seeded choice per story) into
    `<n>_<storyid>_correct.wav` (the right ending) and `<n>_<storyid>_incorrect.wav`: sSC's wrong ending is the
    dataset's own, tSC's is the right ending of another story of the file (a seeded choice). n counts the built
    stories from 0; `n_stories` keeps a seeded random sample (in file order). `transcripts.csv` in each folder
    lists what every file says and which story its ending came from.
    """
    path = Path(csv_file)
    check_out_root(Path(out_root))
    _check_limit(n_stories, "n_stories")
    tts = tts or default_tts()
    voice_list = _voices(tts, voices)
    rows = _read_rows(path, STORYCLOZE_COLUMNS, "a StoryCloze CSV")
    stories = []
    seen: dict[str, int] = {}
    for row in rows:
        for column in STORYCLOZE_COLUMNS:
            _require_text(path, row, column)
        story_id = row.values["InputStoryid"]
        if not re.fullmatch(r"[A-Za-z0-9\-]+", story_id):
            raise UserError(
                f"{path}: line {row.line}: InputStoryid {story_id!r} must hold only letters, digits and '-' "
                "(it becomes part of the file names)"
            )
        if story_id in seen:
            raise UserError(f"{path}: line {row.line}: story {story_id} already on line {seen[story_id]}; remove one")
        seen[story_id] = row.line
        answer = row.values["AnswerRightEnding"]
        if answer not in ("1", "2"):
            raise UserError(f"{path}: line {row.line}: AnswerRightEnding must be 1 or 2, not {answer!r}")
        right = row.values[f"RandomFifthSentenceQuiz{answer}"]
        wrong = row.values[f"RandomFifthSentenceQuiz{3 - int(answer)}"]
        context = " ".join(row.values[f"InputSentence{i}"] for i in range(1, 5))
        stories.append({"row": row, "id": story_id, "context": context, "right": right, "wrong": wrong})
    if len(stories) < 2:
        raise UserError(f"{path}: only {len(stories)} story; tSC takes wrong endings from other stories, so give 2+")
    position = {s["id"]: i for i, s in enumerate(stories)}
    chosen = _sample(stories, n_stories, f"{seed}|storycloze|{path.name}")

    out_root = Path(out_root)
    folders = {"sSC": out_root / "sSC", "tSC": out_root / "tSC"}
    for folder in folders.values():
        _prepare(folder, overwrite)
    transcripts: dict[str, list[dict[str, Any]]] = {"sSC": [], "tSC": []}
    with _Renderer(tts, len(chosen) * 4, "StoryCloze", progress) as renderer:
        for n, story in enumerate(chosen):
            voice = _pick_voice(voice_list, seed, story["id"])
            # tSC's distractor: the right ending of another story, drawn from the whole file
            rng = random.Random(f"{seed}|tsc|{story['id']}")
            other = rng.randrange(len(stories) - 1)
            if other >= position[story["id"]]:
                other += 1
            endings = {
                "sSC": (story["wrong"], story["id"]),
                "tSC": (stories[other]["right"], stories[other]["id"]),
            }
            where = f"{path}: line {story['row'].line}"
            for subset, folder in folders.items():
                for label, (ending, source) in (("correct", (story["right"], story["id"])),
                                                ("incorrect", endings[subset])):
                    name = f"{n}_{story['id']}_{label}.wav"
                    text = f"{story['context']} {ending}"
                    renderer.render(text, voice, folder / name, where)
                    transcripts[subset].append({
                        "filename": name, "storyid": story["id"], "voice": voice.spec, "ending_from": source,
                        "text": text,
                    })
    for subset, folder in folders.items():
        _write_csv(folder / "transcripts.csv", STORY_TRANSCRIPT_COLUMNS, transcripts[subset])
    used = {}
    for story in chosen:
        spec = _pick_voice(voice_list, seed, story["id"]).spec
        used[spec] = used.get(spec, 0) + 1
    entry = _entry(
        "storycloze", tts, [path], voice_list, seed,
        layout="sSC/ and tSC/: <n>_<storyid>_correct.wav / <n>_<storyid>_incorrect.wav (+ transcripts.csv); "
               "spoken and topic StoryCloze (TWIST)",
        options={"n_stories": n_stories},
        counts={"stories": len(chosen), "files": renderer.files, "audio_seconds": renderer.seconds,
                "stories_by_voice": dict(sorted(used.items()))},
    )
    card = _update_card(out_root, "sSC+tSC", entry)
    return BuildReport("storycloze", list(folders.values()), len(chosen), renderer.files, renderer.seconds, card)


# ------------------------------------------------------------------------------------------------------- pairs


def build_pairs(
    file: PathLike,
    out_root: PathLike,
    voices: Union[str, Sequence[str]],
    positive_col: str = "positive",
    negative_col: str = "negative",
    id_col: Optional[str] = None,
    seed: int = 0,
    *,
    name: Optional[str] = None,
    limit: Optional[int] = None,
    overwrite: bool = False,
    tts: Optional[EspeakTTS] = None,
    progress: bool = True,
) -> BuildReport:
    """Any CSV/TSV/JSONL of (positive, negative) texts -> `<out_root>/<name>/` wavs + `manifest.csv`.

    `name` defaults to the file's stem. The manifest has columns id,positive,negative (wav paths relative to the
    folder), which the `storycloze` task kind reads. ids come from `id_col` or count rows from 0; with several
    voices each pair appears once per voice as `<id>@<voice>`. `limit` keeps a seeded random sample of rows.
    """
    path = Path(file)
    check_out_root(Path(out_root))
    _check_limit(limit, "limit")
    tts = tts or default_tts()
    voice_list = _voices(tts, voices)
    required = [positive_col, negative_col] + ([id_col] if id_col else [])
    rows = _read_rows(path, required, f"a pairs file (columns {', '.join(required)})")
    pairs = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        positive = _require_text(path, row, positive_col)
        negative = _require_text(path, row, negative_col)
        pair_id = _require_text(path, row, id_col) if id_col else str(index)
        if pair_id in seen:
            raise UserError(f"{path}: line {row.line}: id {pair_id!r} already used on line {seen[pair_id]}")
        seen[pair_id] = row.line
        pairs.append((row, pair_id, positive, negative))
    pairs = _sample(pairs, limit, f"{seed}|pairs|{path.name}")
    folder_name = name or re.sub(r"[^A-Za-z0-9_.\-]+", "_", path.stem).strip("._") or "pairs"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", folder_name) or folder_name in (".", ".."):
        raise UserError(f"name {folder_name!r}: use a plain folder name (letters, digits, . _ -)")

    out_root = Path(out_root)
    folder = out_root / folder_name
    _prepare(folder, overwrite)
    manifest = []
    with _Renderer(tts, len(pairs) * len(voice_list) * 2, folder_name, progress) as renderer:
        for row, pair_id, positive, negative in pairs:
            for voice in voice_list:
                files = {}
                for polarity, column, text in (("positive", positive_col, positive),
                                               ("negative", negative_col, negative)):
                    stem = _opaque_name(f"pairs/{folder_name}", seed, pair_id, voice.spec, polarity)
                    renderer.render(text, voice, folder / f"{stem}.wav", f"{path}: line {row.line}: {column}")
                    files[polarity] = f"{stem}.wav"
                manifest.append({
                    "id": pair_id if len(voice_list) == 1 else f"{pair_id}@{voice.spec}",
                    "positive": files["positive"], "negative": files["negative"],
                })
    _write_csv(folder / "manifest.csv", MANIFEST_COLUMNS, manifest)
    entry = _entry(
        "pairs", tts, [path], voice_list, seed,
        layout=f"{folder_name}/<filename>.wav + manifest.csv (id,positive,negative); storycloze task kind",
        options={"positive_col": positive_col, "negative_col": negative_col, "id_col": id_col, "limit": limit},
        counts={"pairs": len(pairs), "files": renderer.files, "audio_seconds": renderer.seconds},
    )
    card = _update_card(out_root, folder_name, entry)
    return BuildReport("pairs", [folder], len(pairs), renderer.files, renderer.seconds, card)
