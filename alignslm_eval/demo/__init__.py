"""The embedded demo (`--model demo`): a tiny unit LM and a small spoken benchmark, built offline on first use.

Everything comes from text written for the package (`corpus.yaml`), spoken with espeak-ng:
1. the training sentences are spoken by several voices;
2. an offline tokenizer (log-mel + k-means) is fitted on that speech;
3. a small Llama over Slam-convention unit tokens is trained briefly on the units, and a word-level text LM on the
   corpus text (for GenPPL); the Griffin-Lim vocoder inverts the tokenizer's units;
4. the benchmark builder turns the corpus's word pairs, grammar pairs and stories into sWUGGY, sBLIMP, sSC and
   tSC sets, the SALMon-style builder makes four acoustic-consistency parts, and the story openings become the
   continuation prompts.
Each step writes into the cache and is skipped when already done, so an interrupted build resumes. The scores are
real measurements of this tiny model: expect values near chance, not published numbers.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from alignslm_eval.io.atomic import replacing

DEMO_NAME = "demo"
DEMO_VERSION = 2
N_UNITS = 64
TRAIN_VOICES = ("en-us", "en-us+f3", "en-us+m3", "en-us+f1:r150")
BENCHMARK_VOICES = ("en-us", "en-us+f3")
SEED = 0
CORPUS = Path(__file__).with_name("corpus.yaml")


@dataclass(frozen=True)
class Demo:
    root: Path
    model_dir: Path
    data_root: Path
    text_lm_dir: Path
    salmon_parts: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {"name": DEMO_NAME, "version": DEMO_VERSION, "root": str(self.root)}


def _demo(root: Path) -> Demo:
    from alignslm_eval.builders.salmon import PARTS

    return Demo(root, root / "model", root / "benchmark", root / "text_lm", PARTS)


def ensure_demo(cache_dir: Path) -> Demo:
    """Build the demo model and benchmark under `cache_dir/demo/v<version>/` unless they are already there."""
    demo = _demo(Path(cache_dir) / "demo" / f"v{DEMO_VERSION}")
    complete = demo.root / "COMPLETE.json"
    if complete.is_file():
        return demo
    started = time.time()
    demo.root.mkdir(parents=True, exist_ok=True)
    corpus = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    speech = _speak_training_sentences(corpus["training_sentences"], demo.root / "train_speech")
    if not (demo.model_dir / "config.json").is_file():
        _train_model(speech, demo.model_dir)
    if not (demo.text_lm_dir / "config.json").is_file():
        _train_text_lm(corpus, demo.text_lm_dir)
    if not demo.data_root.is_dir():
        _build_benchmark(corpus, demo.data_root)
    record = {**demo.describe(), "seed": SEED, "n_units": N_UNITS, "train_voices": TRAIN_VOICES,
              "benchmark_voices": BENCHMARK_VOICES, "build_seconds": round(time.time() - started, 1)}
    complete.write_text(json.dumps(record, indent=2) + "\n")
    return demo


def _speak_training_sentences(sentences: list[str], folder: Path) -> list[Path]:
    import soundfile as sf

    from alignslm_eval.builders.wav import SAMPLE_RATE, to_16k
    from alignslm_eval.builders.tts import Voice, default_tts

    tts = default_tts()
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(i, v) for i in range(len(sentences)) for v in TRAIN_VOICES]
    paths = []
    for i, spec in tqdm(jobs, desc="demo: speaking training sentences", unit="file"):
        path = folder / f"s{i:03d}_{spec.replace('+', '_').replace(':', '_')}.wav"
        if not path.is_file():
            voice = Voice.parse(spec)
            wav, rate = tts.synthesize(sentences[i], voice.name, voice.rate, voice.pitch)
            with replacing(path) as tmp:  # a file that exists is complete
                sf.write(str(tmp), to_16k(wav, rate), SAMPLE_RATE, subtype="PCM_16", format="WAV")
        paths.append(path)
    return paths


def _train_model(speech: list[Path], model_dir: Path) -> None:
    from alignslm_eval.io.audio import load_audio
    from alignslm_eval.demo.train_lm import train_unit_lm
    from alignslm_eval.tokenizers.offline import OfflineTokenizer
    from alignslm_eval.io.units import from_frames

    partial = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    tokenizer = OfflineTokenizer.fit(speech, n_units=N_UNITS, seed=SEED)
    tokenizer.save(partial / "tokenizer.npz")
    sequences = [from_frames(tokenizer.encode(load_audio(p, tokenizer.sample_rate))).units
                 for p in tqdm(speech, desc="demo: tokenizing", unit="file")]
    train_unit_lm(sequences, N_UNITS, partial, seed=SEED)
    (partial / "alignslm_tokenizer.json").write_text(
        json.dumps({"name": "offline", "args": {"path": "tokenizer.npz"}}, indent=2) + "\n")
    (partial / "alignslm_vocoder.json").write_text(
        json.dumps({"name": "griffin_lim", "args": {"tokenizer": "tokenizer.npz"}}, indent=2) + "\n")
    partial.replace(model_dir)


def _train_text_lm(corpus: dict[str, Any], out_dir: Path) -> None:
    from alignslm_eval.demo.train_lm import train_text_lm

    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    sentences = corpus["training_sentences"] + [x for s in corpus["stories"] for x in [*s["context"], s["right"]]]
    train_text_lm(sentences, partial, seed=SEED)
    partial.replace(out_dir)


def _build_benchmark(corpus: dict[str, Any], data_root: Path) -> None:
    from alignslm_eval.builders.benchmarks import build_sblimp, build_storycloze, build_swuggy
    from alignslm_eval.builders.salmon import build_salmon

    partial = data_root.with_name(data_root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    sources = partial / "_sources"
    sources.mkdir(parents=True)
    # The corpus is turned into the builder's published input formats, so the demo exercises the same code paths
    # as a user's BLiMP, word-list and StoryCloze files.
    grammar = sources / "demo_grammar.jsonl"
    with open(grammar, "w", encoding="utf-8") as f:
        for i, g in enumerate(corpus["grammar"]):
            f.write(json.dumps({"sentence_good": g["good"], "sentence_bad": g["bad"], "field": g["type"],
                                "linguistics_term": g["type"], "UID": g["subtype"], "pairID": str(i)}) + "\n")
    words = sources / "demo_words.csv"
    with open(words, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["word", "nonword", "frequency"])
        w.writerows([x["word"], x["nonword"], x["frequency"]] for x in corpus["words"])
    stories = sources / "demo_stories.csv"
    rng = np.random.default_rng(SEED)
    with open(stories, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
                    "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"])
        for i, s in enumerate(corpus["stories"]):
            right_first = bool(rng.integers(2))
            endings = [s["right"], s["wrong"]] if right_first else [s["wrong"], s["right"]]
            w.writerow([f"demo{i:02d}", *s["context"], *endings, 1 if right_first else 2])
    build_sblimp(grammar, partial, list(BENCHMARK_VOICES), seed=SEED)
    build_swuggy(words, partial, list(BENCHMARK_VOICES), seed=SEED)
    build_storycloze(stories, partial, list(BENCHMARK_VOICES), seed=SEED)
    build_salmon([g["good"] for g in corpus["grammar"]], partial, seed=SEED)
    _speak_prompts(corpus["stories"], partial / "prompts")
    partial.replace(data_root)


def _speak_prompts(stories: list[dict[str, Any]], folder: Path) -> None:
    """Continuation prompts: each story's first two sentences, one benchmark voice each (cut at 3 s when used)."""
    import soundfile as sf

    from alignslm_eval.builders.wav import SAMPLE_RATE, to_16k
    from alignslm_eval.builders.tts import default_tts

    folder.mkdir(parents=True)
    tts = default_tts()
    for i, story in enumerate(stories):
        wav, rate = tts.synthesize(" ".join(story["context"][:2]), BENCHMARK_VOICES[i % len(BENCHMARK_VOICES)])
        sf.write(str(folder / f"story{i:02d}.wav"), to_16k(wav, rate), SAMPLE_RATE, subtype="PCM_16")
