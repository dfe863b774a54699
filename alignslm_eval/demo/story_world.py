"""The story world: a demo in which a continuation can be coherent or not, and ASR can tell which, built offline.

It is what `alignslm-train demo-experiment` aligns. From the grammar in `stories.yaml` (two-sentence stories: who
went where, then what they did there), it builds under `<cache>/demo/stories-v<version>-<scale>/`:

    speech/             every story spoken whole by one espeak-ng voice (a seeded choice per opening)
    second/             every story's second sentence spoken alone by the same voice
    train_prompts/      each training story's opening ("one morning the little dog went to the river"), spoken alone
    model/              the offline tokenizer (64 log-mel k-means units), fitted on training speech; a small Llama unit
                        LM trained on the training stories' units, its loss on the held-out stories' units recorded
                        in training.json; the Griffin-Lim vocoder spec
    vocoded/            every second sentence's units spoken back by that vocoder (what continuations sound like)
    asr/                a `word_ctc` recogniser fitted on the training stories' openings, and their second
                        sentences as spoken and as vocoded; measured.json: its WERs on the held-out ones
    text_lm/            a word-level text LM for GenPPL, trained on the training stories' text
    benchmark/          the evaluation data root, all of it held-out stories (`held_out` in the grammar: never trained
                        on, never paired): prompts/ their openings for the continuation task, and sSC and tSC (the
                        right second sentence against one with another place's action, or another story's) for the
                        likelihood tasks
    judge_prompt.txt    the template the rule judge (`alignslm_eval.demo.story_judge`) reads
    world.json          what was built and measured: counts, held-out losses, the recogniser's WERs, seconds

Each step writes into the cache and is skipped when already done, so an interrupted build resumes. `scale="small"`
builds the same world from two of the grammar's times, with short training, for tests of the mechanics.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml
from tqdm.auto import tqdm

from alignslm_eval.io.atomic import replacing, write_text
from alignslm_eval.io.errors import UserError

STORY_WORLD_VERSION = 3  # 2: no tSC choice offers the right ending twice (builder 1.1); 3: vocoder n_iter 4
GRAMMAR = Path(__file__).with_name("stories.yaml")
N_UNITS = 64
SEED = 0
#: Griffin-Lim iterations of the world's vocoder: 4 instead of the default 32 (60 units took 31 ms with 4 and 53 ms
#: with 8, on one thread), since vocoding ruled the experiment's time. The recogniser is fitted on this vocoder's
#: output, so it reads it: its held-out WERs were the same with 4 as with 8.
VOCODER_N_ITER = 4
#: The unit LM's shape. Sized to generalise by its training length (Scale.unit_lm_steps): on the full world its
#: held-out loss was lowest near 240-320 steps (1.53 nats, from 4.24 at the start) and rose to 1.90 by 800 steps
#: while the training loss fell to 0.08, i.e. it memorised; training.json holds the curve of every build.
UNIT_LM_SHAPE: dict[str, Any] = {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 3,
                                 "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 512}


@dataclass(frozen=True)
class Scale:
    times: Optional[int]  # how many of the grammar's times (None: all)
    unit_lm_steps: int
    text_lm_steps: int
    asr_epochs: int


SCALES = {"full": Scale(None, 280, 150, 16), "small": Scale(2, 60, 60, 2)}


@dataclass(frozen=True)
class Story:
    id: str
    time: str
    agent: str
    pronoun: str
    place: str
    action: str
    ending: str
    voice: str
    held_out: bool

    @property
    def opening(self) -> str:
        return f"{self.time} {self.agent} went to the {self.place}"

    @property
    def continuation(self) -> str:
        return f"{self.pronoun} {self.action} and {self.ending}"

    @property
    def text(self) -> str:
        return f"{self.opening}. {self.continuation}."

    @property
    def prompt_id(self) -> str:
        """The opening's file name: two stories (two actions) share one opening."""
        return "-".join(part.replace(" ", "_") for part in (self.time, self.agent, self.place))


def read_grammar(path: Path = GRAMMAR) -> dict[str, Any]:
    from alignslm_eval.io.yaml_file import read_yaml_fields

    keys = ("times", "agents", "places", "endings", "held_out", "voices")
    grammar = read_yaml_fields(path, str(path), "story grammar", "times:, agents:, places:, ...", keys)
    for key in keys:
        if not grammar.get(key):
            raise UserError(f"{path}: field {key!r} is missing or empty; see the comments at the top of the file")
    for pair in grammar["held_out"]:
        if len(pair) != 2 or pair[0] not in grammar["agents"] or pair[1] not in grammar["places"]:
            raise UserError(f"{path}: held_out entry {pair!r} is not [agent, place] of the grammar")
    return grammar


def make_stories(grammar: dict[str, Any], times: Optional[int] = None) -> list[Story]:
    """Every time x agent x place x action, in grammar order; the ending and the voice are seeded choices (the
    voice per opening, so a story and its prompt share it, and no part of the grammar predicts the voice)."""
    held = {tuple(pair) for pair in grammar["held_out"]}
    stories = []
    for t in grammar["times"][:times]:
        for agent, pronoun in grammar["agents"].items():
            for place, actions in grammar["places"].items():
                voice = random.Random(f"{SEED}|voice|{t}|{agent}|{place}").choice(grammar["voices"])
                for action in actions:
                    ending = random.Random(f"{SEED}|ending|{t}|{agent}|{place}|{action}").choice(grammar["endings"])
                    stories.append(Story(f"s{len(stories):03d}", t, agent, pronoun, place, action, ending, voice,
                                         (agent, place) in held))
    return stories


@dataclass(frozen=True)
class StoryWorld:
    root: Path
    scale: str
    grammar: dict[str, Any] = field(repr=False)
    stories: tuple[Story, ...] = field(repr=False)

    model_dir = property(lambda self: self.root / "model")
    text_lm_dir = property(lambda self: self.root / "text_lm")
    asr_dir = property(lambda self: self.root / "asr")
    data_root = property(lambda self: self.root / "benchmark")
    train_prompts = property(lambda self: self.root / "train_prompts")
    held_out_prompts = property(lambda self: self.root / "benchmark" / "prompts")
    judge_prompt = property(lambda self: self.root / "judge_prompt.txt")

    def record(self) -> dict[str, Any]:
        return json.loads((self.root / "world.json").read_text())

    def split(self, held_out: bool) -> list[Story]:
        return [s for s in self.stories if s.held_out == held_out]


#: The rule judge's template: the markers let it find the two transcripts (alignslm_eval.demo.story_judge).
JUDGE_TEMPLATE = """You rate a continuation of a story opening from the alignslm story world.
Opening: <<{prompt}>>
Continuation: <<{continuation}>>
Rate 1-5 how well the continuation follows the opening: the right pronoun for who went, something one does at that
place, and an ending. End with the rating as \\boxed{N}.
"""


def ensure_story_world(cache_dir: Path, scale: str = "full") -> StoryWorld:
    """Build the story world under `cache_dir/demo/stories-v<version>-<scale>/` unless it is already there."""
    if scale not in SCALES:
        raise UserError(f"story world scale {scale!r}: choose one of {', '.join(SCALES)}")
    sizes = SCALES[scale]
    grammar = read_grammar()
    world = StoryWorld(Path(cache_dir) / "demo" / f"stories-v{STORY_WORLD_VERSION}-{scale}", scale, grammar,
                       tuple(make_stories(grammar, sizes.times)))
    if (world.root / "world.json").is_file():
        return world
    started = time.time()
    world.root.mkdir(parents=True, exist_ok=True)
    train, held = world.split(False), world.split(True)
    _speak(world)
    record: dict[str, Any] = {"version": STORY_WORLD_VERSION, "scale": scale, "seed": SEED, "n_units": N_UNITS,
                              "stories": {"train": len(train), "held_out": len(held)},
                              "prompts": {"train": len({s.prompt_id for s in train}),
                                          "held_out": len({s.prompt_id for s in held})},
                              "held_out_pairs": grammar["held_out"]}
    units = _units(world, train)
    record["unit_lm"] = _train_unit_lm(world, units, sizes.unit_lm_steps)
    _vocode(world, units)
    if not world.data_root.is_dir():
        _build_benchmark(world)
    record["asr"] = _fit_asr(world, sizes.asr_epochs)
    record["text_lm"] = _train_text_lm(world, sizes.text_lm_steps)
    write_text(world.judge_prompt, JUDGE_TEMPLATE)
    record["build_seconds"] = round(time.time() - started, 1)
    write_text(world.root / "world.json", json.dumps(record, indent=2) + "\n")  # last: the world is complete
    return world


def _write_wav(path: Path, wav: np.ndarray) -> None:
    import soundfile as sf

    from alignslm_eval.builders.wav import SAMPLE_RATE

    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:  # a file that exists is complete
        sf.write(str(tmp), wav, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _speak(world: StoryWorld) -> None:
    from alignslm_eval.builders.tts import Voice, default_tts
    from alignslm_eval.builders.wav import to_16k

    tts = default_tts()
    jobs = [(world.root / "speech" / f"{s.id}.wav", s.text, s.voice) for s in world.stories]
    jobs += [(world.root / "second" / f"{s.id}.wav", f"{s.continuation}.", s.voice) for s in world.stories]
    jobs += [(world.train_prompts / f"{s.prompt_id}.wav", f"{s.opening}.", s.voice)
             for s in {s.prompt_id: s for s in world.split(False)}.values()]
    for path, text, spec in tqdm(jobs, desc="story world: speaking", unit="file"):
        if not path.is_file():
            voice = Voice.parse(spec)
            wav, rate = tts.synthesize(text, voice.name, voice.rate, voice.pitch)
            _write_wav(path, to_16k(wav, rate))


def _units(world: StoryWorld, train: list[Story]) -> dict[str, dict[str, list[int]]]:
    """Deduplicated units of every story ("story": spoken whole) and of its second sentence spoken alone
    ("second"), under the tokenizer fitted on the training stories' speech (fitted once)."""
    from alignslm_eval.io.audio import load_audio
    from alignslm_eval.io.units import from_frames
    from alignslm_eval.tokenizers.offline import OfflineTokenizer

    path = world.root / "units.json"
    if path.is_file():
        return json.loads(path.read_text())
    world.model_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_file = world.model_dir / "tokenizer.npz"
    if tokenizer_file.is_file():
        tokenizer = OfflineTokenizer.from_args(path=str(tokenizer_file))
    else:
        # every other training story: enough frames for 64 centroids, half the fitting time
        tokenizer = OfflineTokenizer.fit([world.root / "speech" / f"{s.id}.wav" for s in train[::2]],
                                         n_units=N_UNITS, seed=SEED)
        tokenizer.save(tokenizer_file)
    def encode(path: Path) -> list[int]:
        return from_frames(tokenizer.encode(load_audio(path, tokenizer.sample_rate))).units.tolist()

    units: dict[str, dict[str, list[int]]] = {"story": {}, "second": {}}
    for s in tqdm(world.stories, desc="story world: tokenizing", unit="story"):
        units["story"][s.id] = encode(world.root / "speech" / f"{s.id}.wav")
        units["second"][s.id] = encode(world.root / "second" / f"{s.id}.wav")
    write_text(path, json.dumps(units) + "\n")
    return units


def _train_unit_lm(world: StoryWorld, units: dict[str, dict[str, list[int]]], steps: int) -> dict[str, Any]:
    from alignslm_eval.demo.train_lm import train_unit_lm

    model_dir = world.model_dir
    if (model_dir / "config.json").is_file():
        return _summary(json.loads((model_dir / "training.json").read_text()))
    train = [np.array(units["story"][s.id]) for s in world.split(False)]
    held = [np.array(units["story"][s.id]) for s in world.split(True)]
    partial = model_dir.with_name("model.partial")
    shutil.rmtree(partial, ignore_errors=True)
    record = train_unit_lm(train, N_UNITS, partial, steps=steps, seed=SEED, held_out=held, shape=UNIT_LM_SHAPE)
    shutil.copy(model_dir / "tokenizer.npz", partial / "tokenizer.npz")
    write_text(partial / "alignslm_tokenizer.json",
               json.dumps({"name": "offline", "args": {"path": "tokenizer.npz"}}, indent=2) + "\n")
    write_text(partial / "alignslm_vocoder.json", json.dumps(
        {"name": "griffin_lim", "args": {"tokenizer": "tokenizer.npz", "n_iter": str(VOCODER_N_ITER)}}, indent=2)
        + "\n")
    shutil.rmtree(model_dir)  # it held only the tokenizer, copied above
    partial.replace(model_dir)
    return _summary(record)


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("steps", "n_sequences", "n_held_out", "train_loss", "held_out_loss", "held_out_curve")
    return {k: record[k] for k in keys if k in record}


def _vocoder(world: StoryWorld):
    from alignslm_eval.tokenizers.offline import OfflineTokenizer
    from alignslm_eval.vocoders.griffin_lim import GriffinLimVocoder

    tokenizer = OfflineTokenizer.from_args(path=str(world.model_dir / "tokenizer.npz"))
    return GriffinLimVocoder.from_tokenizer(tokenizer, n_iter=VOCODER_N_ITER)


def _vocode(world: StoryWorld, units: dict[str, dict[str, list[int]]]) -> None:
    """Every second sentence's units spoken back: what a continuation sounds like."""
    vocoder = _vocoder(world)
    for s in tqdm(world.stories, desc="story world: vocoding units", unit="file"):
        path = world.root / "vocoded" / f"{s.id}.wav"
        if not path.is_file():
            _write_wav(path, vocoder.synthesize(np.array(units["second"][s.id])))


def _fit_asr(world: StoryWorld, epochs: int) -> dict[str, Any]:
    """Fit the recogniser on what the pipeline transcribes, from the training stories: openings as spoken (the
    prompts), and second sentences as spoken and vocoded from their units (continuations); measure its WER on the
    held-out stories' openings and vocoded second sentences."""
    from alignslm_eval.asr import word_error_rate
    from alignslm_eval.asr.word_ctc import WordCTC
    from alignslm_eval.io.audio import load_audio

    if (world.asr_dir / "measured.json").is_file():
        return json.loads((world.asr_dir / "measured.json").read_text())

    def openings(folder: Path, stories: list[Story]) -> list[tuple[np.ndarray, str]]:
        texts = {s.prompt_id: s.opening for s in stories}
        return [(load_audio(folder / f"{pid}.wav", 16000), text) for pid, text in sorted(texts.items())]

    def seconds(folder: str, stories: list[Story]) -> list[tuple[np.ndarray, str]]:
        return [(load_audio(world.root / folder / f"{s.id}.wav", 16000), s.continuation) for s in stories]

    train, held = world.split(False), world.split(True)
    asr = WordCTC.fit(openings(world.train_prompts, train) + seconds("second", train) + seconds("vocoded", train),
                      epochs, seed=SEED)
    partial = world.asr_dir.with_name("asr.partial")
    shutil.rmtree(partial, ignore_errors=True)
    asr.save(partial)
    measured: dict[str, Any] = {"training": asr.record}
    for name, utterances in (("held_out_openings", openings(world.held_out_prompts, held)),
                             ("held_out_vocoded_second_sentences", seconds("vocoded", held))):
        rates = word_error_rate([text for _, text in utterances], asr.transcribe([wav for wav, _ in utterances]))
        measured[name] = {"wer": round(rates["wer"], 4), "n_utterances": rates["n_utterances"],
                          "reference_words": rates["reference_words"]}
    write_text(partial / "measured.json", json.dumps(measured, indent=2) + "\n")
    partial.replace(world.asr_dir)
    return measured


def _plain(text: str) -> str:
    from alignslm_eval.asr.word_ctc import words_of

    return " ".join(words_of(text))  # as a transcript reads: no punctuation


def _train_text_lm(world: StoryWorld, steps: int) -> dict[str, Any]:
    from alignslm_eval.demo.train_lm import train_text_lm

    if (world.text_lm_dir / "config.json").is_file():
        return _summary(json.loads((world.text_lm_dir / "training.json").read_text()))
    partial = world.text_lm_dir.with_name("text_lm.partial")
    shutil.rmtree(partial, ignore_errors=True)
    record = train_text_lm([_plain(s.text) for s in world.split(False)], partial, steps=steps, seed=SEED,
                           held_out=[_plain(s.text) for s in world.split(True)])
    partial.replace(world.text_lm_dir)
    return _summary(record)


def _build_benchmark(world: StoryWorld) -> None:
    """The held-out stories' openings (prompts/), and their sSC / tSC: the right continuation against the same one with an action of another
    place (sSC), or against another story's (tSC, the builder's choice)."""
    import csv

    from alignslm_eval.builders.benchmarks import build_storycloze

    grammar = world.grammar
    partial = world.data_root.with_name("benchmark.partial")
    shutil.rmtree(partial, ignore_errors=True)
    sources = partial / "_sources"
    sources.mkdir(parents=True)
    table = sources / "story_world_cloze.csv"
    rng = random.Random(f"{SEED}|cloze")
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
                    "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"])
        for s in world.split(True):
            other = rng.choice([a for p, acts in grammar["places"].items() if p != s.place for a in acts])
            wrong = f"{s.pronoun} {other} and {s.ending}."
            right_first = rng.random() < 0.5
            endings = [f"{s.continuation}.", wrong] if right_first else [wrong, f"{s.continuation}."]
            # The builder joins four context sentences with spaces: the opening, given in four parts, reads whole.
            w.writerow([s.id, s.time, s.agent, "went to", f"the {s.place}.", *endings, 1 if right_first else 2])
    build_storycloze(table, partial, list(grammar["voices"]), seed=SEED)
    from alignslm_eval.builders.tts import Voice, default_tts
    from alignslm_eval.builders.wav import to_16k

    for s in {s.prompt_id: s for s in world.split(True)}.values():
        voice = Voice.parse(s.voice)
        wav, rate = default_tts().synthesize(f"{s.opening}.", voice.name, voice.rate, voice.pitch)
        _write_wav(partial / "prompts" / f"{s.prompt_id}.wav", to_16k(wav, rate))
    partial.replace(world.data_root)
