"""Small benchmarks in the released layouts, cut from the real speech in shared/data/audio, plus a tiny model
directory (TWIST-style Llama + offline tokenizer) that the CLI loads like a user's checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from alignslm_eval.io.audio import load_audio
from alignslm_eval.tokenizers.offline import OfflineTokenizer
from alignslm_eval.models.vocab import UnitVocabulary
from tests.tiny_models import TWIST_OFFSET, save_twist_llama

SPEECH = "librispeech_dev-clean_2412-153948-0000.flac"


def _segments(shared_data: Path, seconds: float, count: int) -> list[np.ndarray]:
    wav = load_audio(shared_data / "audio" / SPEECH, 16000)
    step = int(seconds * 16000)
    hop = max(1, (len(wav) - step) // max(1, count - 1))
    return [wav[i * hop : i * hop + step] for i in range(count)]


def _write_gold(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def make_benchmark(shared_data: Path, root: Path) -> Path:
    """lexical/dev (3 ids x 2 voices), syntactic/dev (2 ids x 1 voice), sSC (2 stories), under `root`."""
    segs = iter(_segments(shared_data, 0.6, 12) + _segments(shared_data, 1.5, 4) + _segments(shared_data, 3.0, 4))
    lex = root / "lexical" / "dev"
    lex.mkdir(parents=True)
    rows = []
    n = 0
    for wid, freq in (("w1", 0), ("w2", 3), ("w3", 150)):
        for voice in ("v1", "v2"):
            for correct in (1, 0):
                name = f"f{n:03d}"
                n += 1
                sf.write(lex / f"{name}.wav", next(segs), 16000)
                rows.append([name, wid, voice, freq, "word", "w er d", 3, correct])
    _write_gold(lex / "gold.csv", ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"], rows)
    syn = root / "syntactic" / "dev"
    syn.mkdir(parents=True)
    rows = []
    for sid, typ in (("s1", "agreement"), ("s2", "island")):
        for correct in (1, 0):
            name = f"g{n:03d}"
            n += 1
            sf.write(syn / f"{name}.wav", next(segs), 16000)
            rows.append([name, sid, "v1", typ, f"{typ}_a", "some words", correct])
    _write_gold(syn / "gold.csv", ["filename", "id", "voice", "type", "subtype", "transcription", "correct"], rows)
    ssc = root / "sSC"
    ssc.mkdir()
    for i, story in enumerate(("st1", "st2")):
        sf.write(ssc / f"{i}_{story}_correct.wav", next(segs), 16000)
        sf.write(ssc / f"{i}_{story}_incorrect.wav", next(segs), 16000)
    return root


def make_model_dir(shared_data: Path, path: Path, n_units: int = 16) -> Path:
    """A tiny TWIST-style checkpoint with an offline tokenizer saved beside it and named in alignslm_tokenizer.json,
    and the Griffin-Lim vocoder of that tokenizer named in alignslm_vocoder.json."""
    save_twist_llama(path)
    # The model's unit inventory is the tokenizer's, so what it generates can be vocoded.
    UnitVocabulary.twist(n_units, TWIST_OFFSET, bos_id=0, eos_id=2, pad_id=1).save(path)
    tokenizer = OfflineTokenizer.fit([shared_data / "audio" / SPEECH], n_units=n_units, seed=0)
    tokenizer.save(path / "tokenizer.npz")
    (path / "alignslm_tokenizer.json").write_text(json.dumps({"name": "offline", "args": {"path": "tokenizer.npz"}}))
    (path / "alignslm_vocoder.json").write_text(
        json.dumps({"name": "griffin_lim", "args": {"tokenizer": "tokenizer.npz", "n_iter": "8"}}))
    return path


def make_prompts(shared_data: Path, folder: Path, count: int = 3) -> Path:
    """Continuation prompts: 4 s cuts of real speech (the pipeline keeps the first 3 s)."""
    folder.mkdir(parents=True)
    for i, seg in enumerate(_segments(shared_data, 4.0, count)):
        sf.write(folder / f"p{i}.wav", seg, 16000)
    return folder
