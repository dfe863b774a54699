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

import hashlib
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from alignslm_eval.builders.build import Build, BuildReport, PathLike
from alignslm_eval.builders.inputs import Row, header, read_rows, require_text, seeded_sample
from alignslm_eval.builders.tts import EspeakTTS, Voice
# the audio format, re-exported for callers that take it from here (alignslm_eval.demo)
from alignslm_eval.io.errors import UserError

SYNTACTIC_COLUMNS = ("filename", "id", "voice", "type", "subtype", "transcription", "correct")
LEXICAL_COLUMNS = ("filename", "id", "voice", "frequency", "word", "phones", "length", "correct")
MANIFEST_COLUMNS = ("id", "positive", "negative")
STORY_TRANSCRIPT_COLUMNS = ("filename", "storyid", "voice", "ending_from", "text")
STORYCLOZE_COLUMNS = (
    "InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
    "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding",
)
BLIMP_FIELDS = ("sentence_good", "sentence_bad", "linguistics_term", "UID", "pairID")


# ------------------------------------------------------------------------------------------------------ sBLIMP


def _read_blimp(files: Sequence[Path], n_per_phenomenon: Optional[int], seed: int) -> list[tuple[Path, Row]]:
    """The pairs of the BLiMP files, each pair read once, with a seeded sample per phenomenon (UID) in file order."""
    by_uid: dict[str, list[tuple[Path, Row]]] = {}
    seen: dict[tuple[str, str], str] = {}
    for path in files:
        for row in read_rows(path, BLIMP_FIELDS, "a BLiMP .jsonl file"):
            for column in BLIMP_FIELDS:
                require_text(path, row, column)
            key = (row.values["UID"], row.values["pairID"])
            if key in seen:
                raise UserError(
                    f"{path}: line {row.line}: pair {key[0]}/{key[1]} already read from {seen[key]}; "
                    "give each BLiMP file once"
                )
            seen[key] = f"{path.name} line {row.line}"
            by_uid.setdefault(row.values["UID"], []).append((path, row))
    return [p for uid, rows in by_uid.items() for p in seeded_sample(rows, n_per_phenomenon, f"{seed}|sblimp|{uid}")]


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
    files = [Path(jsonl_files)] if isinstance(jsonl_files, (str, Path)) else [Path(f) for f in jsonl_files]
    if not files:
        raise UserError("no BLiMP files given; pass one or more .jsonl files")
    build = Build(out_root, voices, tts, seed, overwrite=overwrite, progress=progress, split=split,
                  limits={"n_per_phenomenon": n_per_phenomenon})
    pairs = _read_blimp(files, n_per_phenomenon, seed)
    folder = build.out_root / "syntactic" / split
    gold = []
    for pair_id, (path, row) in enumerate(pairs):
        good, bad = row.values["sentence_good"], row.values["sentence_bad"]
        candidates = (("good", "sentence_good", good), ("bad", "sentence_bad", bad))
        item = f"{row.values['UID']}/{row.values['pairID']}"
        for voice, stems in build.speak_pair(folder, "sblimp", item, candidates, f"{path}: line {row.line}"):
            for stem, text, correct in zip(stems, (good, bad), (1, 0)):
                gold.append({
                    "filename": stem, "id": pair_id, "voice": voice.spec, "type": row.values["linguistics_term"],
                    "subtype": row.values["UID"], "transcription": text, "correct": correct,
                })
    build.table(folder / "gold.csv", SYNTACTIC_COLUMNS, gold)
    return build.finish(
        "sblimp", [folder], desc=f"sBLIMP {split}", card_key=f"syntactic/{split}", sources=files,
        layout=f"syntactic/{split}/<filename>.wav + gold.csv ({', '.join(SYNTACTIC_COLUMNS)}); ZeroSpeech 2021 sBLIMP",
        options={"split": split, "n_per_phenomenon": n_per_phenomenon},
        item_noun="pairs", n_items=len(pairs),
        counts={"pairs_by_subtype": dict(Counter(row.values["UID"] for _, row in pairs))},
    )


# ------------------------------------------------------------------------------------------------------ sWUGGY


def _read_words(path: Path, ipa: bool) -> tuple[list[tuple[Row, str, str, int]], bool, str]:
    """(row, word, nonword, frequency) per row, whether the entries are IPA, and the input format name."""
    rows_out = []
    columns = header(path)
    if "non words" in columns and "nonword" not in columns:
        # BabySLM lexical: IPA words, several "/"-separated nonwords per word; the first is the matched one
        for row in read_rows(path, ("word", "non words"), "a BabySLM lexical CSV"):
            word = require_text(path, row, "word")
            nonwords = [w.strip() for w in require_text(path, row, "non words").split("/") if w.strip()]
            if not nonwords:
                raise UserError(f"{path}: line {row.line}: 'non words' lists no nonword; fill it in or remove the row")
            rows_out.append((row, word, nonwords[0], 0))
        return rows_out, True, "babyslm"
    rows = read_rows(path, ("word", "nonword"), "a word list (columns word,nonword[,frequency])")
    for row in rows:
        word = require_text(path, row, "word")
        nonword = require_text(path, row, "nonword")
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


def _language(voice: Voice) -> str:
    return voice.name.partition("+")[0]


def _phones(
    tts: EspeakTTS, voices: Sequence[Voice], path: Path, entries: Sequence[tuple[Row, str, str, int]], ipa: bool,
) -> dict[tuple[str, str], list[str]]:
    """(text, language) -> IPA phones of every word and nonword: espeak-ng's for text, the input's own for IPA.

    Computed before anything is written, so an unknown IPA symbol or a word without phonemes stops the build.
    """
    phones: dict[tuple[str, str], list[str]] = {}
    for row, word, nonword, _ in entries:
        for column, text in (("word", word), ("nonword", nonword)):
            for voice in voices:
                key = (text, _language(voice))
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
    return phones


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
    build = Build(out_root, voices, tts, seed, overwrite=overwrite, progress=progress, split=split,
                  limits={"limit": limit})
    entries, ipa, fmt = _read_words(path, ipa)
    entries = seeded_sample(entries, limit, f"{seed}|swuggy|{path.name}")
    phones = _phones(build.tts, build.voices, path, entries, ipa)
    folder = build.out_root / "lexical" / split
    gold = []
    for pair_id, (row, word, nonword, frequency) in enumerate(entries):
        candidates = (("word", "word", word), ("nonword", "nonword", nonword))
        item = f"{pair_id}\x1f{word}\x1f{nonword}"
        for voice, stems in build.speak_pair(folder, "swuggy", item, candidates, f"{path}: line {row.line}", ipa):
            for stem, text, correct in zip(stems, (word, nonword), (1, 0)):
                ph = phones[(text, _language(voice))]
                gold.append({
                    "filename": stem, "id": pair_id, "voice": voice.spec, "frequency": frequency, "word": text,
                    "phones": " ".join(ph), "length": len(ph), "correct": correct,
                })
    build.table(folder / "gold.csv", LEXICAL_COLUMNS, gold)
    return build.finish(
        "swuggy", [folder], desc=f"sWUGGY {split}", card_key=f"lexical/{split}", sources=[path],
        layout=f"lexical/{split}/<filename>.wav + gold.csv ({', '.join(LEXICAL_COLUMNS)}); ZeroSpeech 2021 sWUGGY",
        options={"split": split, "input_format": fmt, "ipa": ipa, "limit": limit},
        item_noun="pairs", n_items=len(entries), counts={"oov_pairs": sum(1 for e in entries if e[3] == 0)},
    )


# -------------------------------------------------------------------------------------------------- StoryCloze


@dataclass
class _Story:
    row: Row
    id: str
    context: str  # the four sentences before the ending
    right: str
    wrong: str


def _read_stories(path: Path) -> list[_Story]:
    stories = []
    seen: dict[str, int] = {}
    for row in read_rows(path, STORYCLOZE_COLUMNS, "a StoryCloze CSV"):
        for column in STORYCLOZE_COLUMNS:
            require_text(path, row, column)
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
        stories.append(_Story(row, story_id, context, right, wrong))
    if len(stories) < 2:
        raise UserError(f"{path}: only {len(stories)} story; tSC takes wrong endings from other stories, so give 2+")
    return stories


def _pick_voice(voices: Sequence[Voice], seed: int, key: str) -> Voice:
    digest = hashlib.sha256(f"{seed}\x1fvoice\x1f{key}".encode("utf-8")).hexdigest()
    return voices[int(digest[:12], 16) % len(voices)]


def _tsc_distractor(stories: list[_Story], i: int, rng: random.Random, path: Path) -> int:
    """tSC's distractor for story i: the index of another story of the file, drawn until its right ending is worded
    otherwise (the same words would make the two files of a choice say the same thing)."""
    if all(s.right == stories[i].right for s in stories):
        raise UserError(f"{path}: every story has the same right ending, so tSC has no other ending to offer; give "
                        "stories with different endings")
    while True:
        other = rng.randrange(len(stories) - 1)
        if other >= i:
            other += 1
        if stories[other].right != stories[i].right:
            return other


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
    build = Build(out_root, voices, tts, seed, overwrite=overwrite, progress=progress, limits={"n_stories": n_stories})
    stories = _read_stories(path)
    position = {s.id: i for i, s in enumerate(stories)}
    chosen = seeded_sample(stories, n_stories, f"{seed}|storycloze|{path.name}")
    folders = {"sSC": build.out_root / "sSC", "tSC": build.out_root / "tSC"}
    transcripts: dict[str, list[dict[str, str]]] = {subset: [] for subset in folders}
    stories_by_voice: Counter[str] = Counter()
    for n, story in enumerate(chosen):
        voice = _pick_voice(build.voices, seed, story.id)
        stories_by_voice[voice.spec] += 1
        other = _tsc_distractor(stories, position[story.id], random.Random(f"{seed}|tsc|{story.id}"), path)
        endings = {"sSC": (story.wrong, story.id), "tSC": (stories[other].right, stories[other].id)}
        for subset, folder in folders.items():
            for label, (ending, source) in (("correct", (story.right, story.id)), ("incorrect", endings[subset])):
                name = f"{n}_{story.id}_{label}.wav"
                text = f"{story.context} {ending}"
                build.speak(text, voice, folder / name, f"{path}: line {story.row.line}")
                transcripts[subset].append({
                    "filename": name, "storyid": story.id, "voice": voice.spec, "ending_from": source, "text": text,
                })
    for subset, folder in folders.items():
        build.table(folder / "transcripts.csv", STORY_TRANSCRIPT_COLUMNS, transcripts[subset])
    return build.finish(
        "storycloze", list(folders.values()), desc="StoryCloze", card_key="sSC+tSC", sources=[path],
        layout="sSC/ and tSC/: <n>_<storyid>_correct.wav / <n>_<storyid>_incorrect.wav (+ transcripts.csv); "
               "spoken and topic StoryCloze (TWIST)",
        options={"n_stories": n_stories},
        item_noun="stories", n_items=len(chosen), counts={"stories_by_voice": dict(sorted(stories_by_voice.items()))},
    )


# ------------------------------------------------------------------------------------------------------- pairs


def _read_pairs(
    path: Path, positive_col: str, negative_col: str, id_col: Optional[str],
) -> list[tuple[Row, str, str, str]]:
    """(row, id, positive, negative) per row; ids from `id_col` (each used once) or the row's index."""
    required = [positive_col, negative_col] + ([id_col] if id_col else [])
    pairs = []
    seen: dict[str, int] = {}
    for index, row in enumerate(read_rows(path, required, f"a pairs file (columns {', '.join(required)})")):
        positive = require_text(path, row, positive_col)
        negative = require_text(path, row, negative_col)
        pair_id = require_text(path, row, id_col) if id_col else str(index)
        if pair_id in seen:
            raise UserError(f"{path}: line {row.line}: id {pair_id!r} already used on line {seen[pair_id]}")
        seen[pair_id] = row.line
        pairs.append((row, pair_id, positive, negative))
    return pairs


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
    build = Build(out_root, voices, tts, seed, overwrite=overwrite, progress=progress, limits={"limit": limit})
    pairs = seeded_sample(_read_pairs(path, positive_col, negative_col, id_col), limit, f"{seed}|pairs|{path.name}")
    folder_name = name or re.sub(r"[^A-Za-z0-9_.\-]+", "_", path.stem).strip("._") or "pairs"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", folder_name) or folder_name in (".", ".."):
        raise UserError(f"name {folder_name!r}: use a plain folder name (letters, digits, . _ -)")
    folder = build.out_root / folder_name
    manifest = []
    for row, pair_id, positive, negative in pairs:
        candidates = (("positive", positive_col, positive), ("negative", negative_col, negative))
        spoken = build.speak_pair(folder, f"pairs/{folder_name}", pair_id, candidates, f"{path}: line {row.line}")
        for voice, (positive_stem, negative_stem) in spoken:
            manifest.append({
                "id": pair_id if len(build.voices) == 1 else f"{pair_id}@{voice.spec}",
                "positive": f"{positive_stem}.wav", "negative": f"{negative_stem}.wav",
            })
    build.table(folder / "manifest.csv", MANIFEST_COLUMNS, manifest)
    return build.finish(
        "pairs", [folder], desc=folder_name, card_key=folder_name, sources=[path],
        layout=f"{folder_name}/<filename>.wav + manifest.csv (id,positive,negative); storycloze task kind",
        options={"positive_col": positive_col, "negative_col": negative_col, "id_col": id_col, "limit": limit},
        item_noun="pairs", n_items=len(pairs),
    )
