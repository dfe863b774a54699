"""The spoken continuation pipeline: prompt audio -> units -> sampled continuations -> wav -> transcript -> scores.

Each stage writes its output under a run directory keyed by everything that determines it, appending as items
finish, and skips what is already there: a rerun (or the trainer's next stage) never re-samples, re-vocodes,
re-transcribes or re-asks the judge for a finished item.

    <run>/prompts.jsonl              prompt id, audio, cut point, prompt units
    <run>/samples.jsonl              one line per prompt: its N continuations (units), seed
    <run>/wav/<vocoder key>/<prompt>__<k>.wav   (+ vocoder.json: the vocoder's description; durations.jsonl)
    <run>/transcripts/<asr key>.jsonl          continuations keyed by their wav, so by vocoder too (+ <asr key>.json)
    <run>/scores/<scorer key>.jsonl

Re-scoring reads the recorded descriptions, so it can reuse a run's wavs and transcripts without loading the vocoder
or the ASR that made them (`recorded`; `vocode` and `transcribe` without the component).

Under several processes (`World`) each appends to logs of its own (`samples.rank<R>.jsonl`, ...: `io.rank_files`)
and every reader reads all of them, so the stages shard by prompt and a run resumes at any world size. Only one
process writes a run's records (run.json, the components' descriptions): rank 0 of a process group, or each
`--shard` job for itself (the same content, replaced atomically).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from alignslm_eval.api.asr import ASR
from alignslm_eval.api.model import SamplingConfig, UnitLM
from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.api.tokenizer import SpeechTokenizer
from alignslm_eval.api.vocoder import Vocoder
from alignslm_eval.io.atomic import replacing, write_text
from alignslm_eval.io.audio import file_sha256, load_audio
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.jsonl import open_append, read_every_rank
from alignslm_eval.api.results import write_json
from alignslm_eval.io.units import from_frames
from alignslm_eval.evaluate.world import World

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")
#: what a samples.jsonl row must hold to be read (rows of every earlier version do)
SAMPLE_FIELDS = ("prompt_id", "audio", "audio_sha256", "cut_s", "reference", "prompt_units", "continuations")
SCORE_CHUNK = 64
#: CTM entries that mark silence or noise rather than a word (Kaldi, MFA, HTK conventions): never a cut point or text
NON_WORDS = frozenset({"", "sil", "sp", "spn", "<eps>", "<sil>", "!sil", "<silence>", "[sil]", "<noise>", "[noise]"})


@dataclass(frozen=True)
class Prompt:
    id: str
    path: Path
    #: words of the prompt from a forced alignment, when one was given: the reference the ASR is checked against
    reference: Optional[str] = None
    #: where the prompt audio is cut, in seconds (None: the first `prompt_seconds`)
    cut_s: Optional[float] = None


def key_of(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_ctm(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    """Word alignments in CTM format (`utterance channel start duration word`), keyed by utterance id."""
    words: dict[str, list[tuple[str, float, float]]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts or line.startswith(";;"):
                continue
            try:
                utt, _, start, dur, word = parts[:5]
                entry = (word, float(start), float(start) + float(dur))
            except ValueError:
                raise UserError(f"{path}:{lineno}: expected 'utterance channel start duration word'")
            if word.lower() not in NON_WORDS:
                words.setdefault(utt, []).append(entry)
    return words


def find_prompts(data_dir: Path, prompt_seconds: float, alignment: Optional[Path] = None) -> list[Prompt]:
    """Every wav/flac below `data_dir` is one prompt (id = relative path without suffix). With a CTM alignment, the
    cut moves to the word end nearest `prompt_seconds` and the words before it become the reference text. A CTM
    utterance id names a prompt by its id or, where that is unique among the prompts, by its file stem (LibriSpeech
    style); prompts the CTM does not cover are cut at `prompt_seconds`, with a warning saying how many."""
    files = sorted(p for p in Path(data_dir).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise UserError(f"{data_dir}: no .wav or .flac prompt files")
    words = read_ctm(alignment) if alignment else {}
    stems = Counter(path.stem for path in files)
    prompts = []
    seen: dict[str, Path] = {}
    unaligned: list[str] = []
    for path in files:
        pid = path.relative_to(data_dir).with_suffix("").as_posix()
        if pid in seen:
            raise UserError(f"{path}: same prompt id {pid!r} as {seen[pid]}; keep one of the two files")
        seen[pid] = path
        aligned = words.get(pid) or (words.get(path.stem) if stems[path.stem] == 1 else None)
        if alignment and not aligned:
            unaligned.append(pid)
        if aligned:
            end = min((w[2] for w in aligned), key=lambda e: abs(e - prompt_seconds))
            text = " ".join(w[0] for w in aligned if w[2] <= end + 1e-6)
            prompts.append(Prompt(pid, path, text, end))
        else:
            prompts.append(Prompt(pid, path))
    if unaligned:
        log.warning("%s covers %d of %d prompts; the other %d (e.g. %s) are cut at %g s instead of a word end",
                    alignment, len(files) - len(unaligned), len(files), len(unaligned), unaligned[0], prompt_seconds)
    return prompts


class ContinuationRun:
    """One model's continuations of one prompt set under one sampling configuration, kept in one directory.

    `create` makes (or reopens) the directory keyed by model, tokenizer, sampling and prompt settings; the
    constructor reopens an existing one (re-scoring needs no model). `world`: this process's share and own logs."""

    def __init__(self, root: Path, world: World = World()):
        self.root = Path(root)
        self.world = world
        if not (self.root / "run.json").is_file():
            raise UserError(f"{self.root}: not a continuation run directory (no run.json); pass the run_dir "
                            "recorded in a results file")
        self.identity = json.loads((self.root / "run.json").read_text())

    @classmethod
    def create(cls, parent: Path, lm: UnitLM, tokenizer: SpeechTokenizer, sampling: SamplingConfig,
               prompt_seconds: float = 3.0, dedup: bool = True, world: World = World()) -> "ContinuationRun":
        # The sampler is named: another sampler draws other samples from the same model, seed and settings.
        model = lm.describe()
        # The device kind, not its index: ranks on cuda:0 and cuda:1 sample into the same run.
        model = {**model, "device": str(model["device"]).split(":")[0]} if "device" in model else model
        identity = {"model": model, "tokenizer": tokenizer.fingerprint(), "sampling": asdict(sampling),
                    "sampler": lm.sampler, "prompt_seconds": prompt_seconds, "dedup": dedup}
        root = Path(parent) / key_of(identity)
        if _records(world):
            root.mkdir(parents=True, exist_ok=True)
            write_text(root / "run.json", json.dumps(identity, indent=2, default=str) + "\n")
        world.barrier()  # the other ranks open the run once it is recorded
        return cls(root, world)

    def recorded(self, kind: str) -> Optional[dict[str, Any]]:
        """The description of the one vocoder (`kind="vocoder"`) or ASR (`"asr"`) whose output this run holds, or
        None when it holds none recorded; several are a UserError, since which to reuse is the user's choice."""
        pattern = {"vocoder": "wav/*/vocoder.json", "asr": "transcripts/*.json"}[kind]
        found = {}
        for path in sorted(self.root.glob(pattern)):
            try:
                found[path.relative_to(self.root).as_posix()] = json.loads(path.read_text())
            except ValueError as e:
                raise UserError(f"{path}: not valid JSON ({e}); delete it and pass --{kind} to record it again")
        if len(found) > 1:
            raise UserError(f"{self.root}: holds the output of {len(found)} {kind}s ({', '.join(found)}); pass "
                            f"--{kind} to say which one to use")
        return next(iter(found.values()), None)

    def dataset_sha256(self, prompts: Sequence[Prompt]) -> str:
        """sha256 over each sampled prompt's id, audio hash and cut point (a CTM's effect included), in id order."""
        rows = self.sampled()
        h = hashlib.sha256()
        for pid in sorted(p.id for p in prompts):
            h.update(f"{pid}\t{rows[pid]['audio_sha256']}\t{rows[pid]['requested_cut_s']}\n".encode())
        return h.hexdigest()

    def sampled(self) -> dict[str, dict[str, Any]]:
        """Prompt id -> its samples.jsonl row, from every process's log, in prompt id order (whichever rank
        sampled a prompt, and in whatever order)."""
        rows = {r["prompt_id"]: r for r in read_every_rank(self.root / "samples.jsonl", SAMPLE_FIELDS)}
        return dict(sorted(rows.items()))

    def prompts(self) -> list[Prompt]:
        """The sampled prompts, as recorded, in id order."""
        return [Prompt(r["prompt_id"], Path(r["audio"]), r["reference"], r["cut_s"]) for r in self.sampled().values()]

    def items(self) -> list[Continuation]:
        """Every recorded continuation, in prompt id then sample order."""
        return [_continuation(r, k, units)
                for r in self.sampled().values() for k, units in enumerate(r["continuations"])]

    # -- stage 1: prompts and sampling ---------------------------------------------------------------------------

    def sample(self, prompts: Sequence[Prompt], lm: Optional[UnitLM], tokenizer: Optional[SpeechTokenizer],
               prompts_per_batch: int = 8) -> list[Continuation]:
        """Sample the prompts not sampled yet, `prompts_per_batch` prompts per `lm.generate` call; each batch's
        rows are on disk before the next starts, so a killed run resumes with its finished prompts kept. Without
        `lm` (reading what other ranks sampled) a prompt not sampled yet is a UserError."""
        if prompts_per_batch < 1:
            raise ValueError(f"prompts_per_batch {prompts_per_batch}: must be at least 1")
        sampling = SamplingConfig(**self.identity["sampling"])
        prompt_seconds, dedup = self.identity["prompt_seconds"], self.identity["dedup"]
        done = self.sampled()
        for p in prompts:
            row = done.get(p.id)
            # A prompt id already sampled must still be the same audio cut at the same place.
            if row is not None and (row["audio_sha256"] != file_sha256(p.path)
                                    or row.get("requested_cut_s") != (p.cut_s if p.cut_s is not None
                                                                      else prompt_seconds)):
                raise UserError(f"{p.path}: prompt {p.id} changed (audio or cut point) since it was sampled into "
                                f"{self.root}; write to a new output dir or delete that run")
        todo = [p for p in prompts if p.id not in done]
        if todo and lm is None:
            raise UserError(f"{self.root}: holds no samples of {len(todo)} prompt(s) (e.g. {todo[0].id}); a rank "
                            "stopped before sampling them: rerun the same command to sample what is missing")
        with open_append(self.world.own_file(self.root / "samples.jsonl")) as log, \
                tqdm(total=len(todo), desc="sampling continuations", unit="prompt", disable=not todo) as progress:
            for start in range(0, len(todo), prompts_per_batch):
                batch = todo[start : start + prompts_per_batch]
                rows = [self._prompt_row(prompt, tokenizer, prompt_seconds, dedup, sampling.seed) for prompt in batch]
                sampled = lm.generate([np.asarray(r["prompt_units"], dtype=np.int64) for r in rows], sampling,
                                      [r["seed"] for r in rows])
                for row, continuations in zip(rows, sampled):
                    row["continuations"] = [c.tolist() for c in continuations]
                    log.write(json.dumps(row) + "\n")
                    done[row["prompt_id"]] = row
                log.flush()
                progress.update(len(batch))
        return [_continuation(done[p.id], k, units) for p in prompts for k, units in enumerate(done[p.id]["continuations"])]

    @staticmethod
    def _prompt_row(prompt: Prompt, tokenizer: SpeechTokenizer, prompt_seconds: float, dedup: bool,
                    seed: int) -> dict[str, Any]:
        """A prompt's samples.jsonl row before sampling: its audio, cut, units and seed."""
        cut = prompt.cut_s if prompt.cut_s is not None else prompt_seconds
        wav = load_audio(prompt.path, tokenizer.sample_rate)
        wav = wav[: int(round(cut * tokenizer.sample_rate))]
        units = from_frames(tokenizer.encode(wav), dedup=dedup)
        seq = units.units if dedup else units.frames()
        if len(seq) == 0:
            raise UserError(f"{prompt.path}: prompt is shorter than one tokenizer frame; remove it")
        return {"prompt_id": prompt.id, "audio": str(prompt.path.resolve()), "audio_sha256": file_sha256(prompt.path),
                "cut_s": round(len(wav) / tokenizer.sample_rate, 4), "requested_cut_s": cut,
                "reference": prompt.reference, "prompt_units": seq.tolist(), "seed": _prompt_seed(seed, prompt.id)}

    # -- stage 2: vocoding ----------------------------------------------------------------------------------------

    def wav_path(self, vocoder: dict[str, Any], prompt_id: str, sample: int) -> Path:
        """Where the vocoder `vocoder` (its description) puts a continuation's wav."""
        # The id's hash keeps names unique even when two ids flatten to the same text.
        name = f"{prompt_id.replace('/', '__')}__{key_of(prompt_id)[:8]}__{sample}.wav"
        return self.root / "wav" / key_of(vocoder) / name

    def vocode(self, items: list[Continuation], description: dict[str, Any], vocoder: Optional[Vocoder] = None) -> None:
        """Give every item the wav and durations of the vocoder `description` names, making the missing ones with
        `vocoder`; without it (re-scoring, see `recorded`) an item that vocoder did not vocode is a UserError."""
        import soundfile as sf

        folder = self.root / "wav" / key_of(description)
        folder.mkdir(parents=True, exist_ok=True)
        if vocoder is not None and _records(self.world):
            write_json(folder / "vocoder.json", description)
        # Frames per unit as the vocoder used them, next to the wavs they made.
        durations_log = folder / "durations.jsonl"
        durations = {row["key"]: row["durations"] for row in read_every_rank(durations_log, ("key", "durations"))}
        with open_append(self.world.own_file(durations_log)) as log:
            for item in tqdm(items, desc="vocoding", unit="file"):
                path = self.wav_path(description, item.prompt_id, item.sample)
                key = _item_key(item)
                units = np.asarray(item.units, dtype=np.int64)
                if vocoder is None and (key not in durations or not path.is_file()):
                    raise UserError(f"{folder}: holds no wav of {item.prompt_id} sample {item.sample} (its vocoder: "
                                    f"{_summary(description)}); pass --vocoder to vocode what is missing")
                if key not in durations:
                    durations[key] = [int(d) for d in vocoder.durations(units)] if len(units) else []
                    log.write(json.dumps({"key": key, "durations": durations[key]}) + "\n")
                if not path.is_file():
                    wav = (vocoder.synthesize(units, np.asarray(durations[key], dtype=np.int64)) if len(units)
                           else np.zeros(0, dtype=np.float32))
                    with replacing(path) as tmp:  # a wav that exists is complete
                        sf.write(str(tmp), wav, vocoder.sample_rate, subtype="PCM_16", format="WAV")
                item.wav = str(path)
                item.durations = durations[key]

    # -- stage 3: transcription -----------------------------------------------------------------------------------

    def transcribe(self, items: list[Continuation], prompts: Sequence[Prompt], description: dict[str, Any],
                   asr: Optional[ASR] = None, batch_size: int = 8) -> Optional[dict[str, Any]]:
        """Transcripts, by the ASR `description` names, of every (vocoded) continuation and of every prompt's audio,
        made with `asr` where missing; without it (re-scoring, see `recorded`) a missing one is a UserError. Prompt
        and continuation texts come from the same ASR, so scorers compare like with like. Where a prompt has a
        reference transcript (a CTM alignment), the ASR's WER/CER on those prompts is returned as a check of the ASR
        (None when no prompt has one)."""
        path = self.transcripts_log(description)
        path.parent.mkdir(parents=True, exist_ok=True)
        if asr is not None and _records(self.world):
            write_json(path.with_suffix(".json"), description)
        done = {row["key"]: row["text"] for row in read_every_rank(path, ("key", "text"))}
        cut = {prompt_id: row["cut_s"] for prompt_id, row in self.sampled().items()}
        jobs: list[tuple[str, Any]] = []
        for p in prompts:
            if f"prompt:{p.id}" not in done:
                jobs.append((f"prompt:{p.id}", (p.path, cut[p.id])))
        for item in items:
            if item.wav is None:
                raise ValueError("transcribe needs vocoded continuations")
            if self._text_key(item) not in done:
                jobs.append((self._text_key(item), (Path(item.wav), None)))
        if jobs and asr is None:
            raise UserError(f"{path}: has no transcript of {len(jobs)} prompt(s) or sample(s) (e.g. {jobs[0][0]}; its "
                            f"ASR: {_summary(description)}); pass --asr to transcribe what is missing")
        with open_append(self.world.own_file(path)) as log:
            for start in tqdm(range(0, len(jobs), batch_size), desc="transcribing", unit="batch",
                              disable=not jobs):
                batch = jobs[start : start + batch_size]
                wavs = []
                for _, (audio, cut_s) in batch:
                    if cut_s is None:  # a vocoded continuation
                        wavs.append(read_generated(audio, asr.sample_rate))
                    else:
                        wavs.append(load_audio(audio, asr.sample_rate)[: int(round(cut_s * asr.sample_rate))])
                for (key, _), text in zip(batch, asr.transcribe(wavs)):
                    done[key] = text
                    log.write(json.dumps({"key": key, "text": text}) + "\n")
                log.flush()
        for item in items:
            item.text = done[self._text_key(item)]
            item.prompt_text = done[f"prompt:{item.prompt_id}"]
        checked = [p for p in prompts if p.reference and p.reference.strip()]
        if not checked:
            return None
        from alignslm_eval.asr import word_error_rate

        rates = word_error_rate([p.reference for p in checked], [done[f"prompt:{p.id}"] for p in checked])
        return {"what": "ASR on the prompts against their alignment transcripts", **rates}

    def _text_key(self, item: Continuation) -> str:
        """A continuation's transcript is keyed by the wav it was made from: another vocoder, another transcript."""
        return Path(str(item.wav)).relative_to(self.root).as_posix()

    # -- stage 4: scoring -----------------------------------------------------------------------------------------

    def transcripts_log(self, asr: dict[str, Any]) -> Path:
        """The transcripts the ASR `asr` (its description) made of this run's prompts and continuations."""
        return self.root / "transcripts" / f"{key_of(asr)}.jsonl"

    def score_log(self, metric: str, scorer: dict[str, Any], upstream: Optional[dict[str, Any]] = None) -> Path:
        """The score log of a scorer (its description) over inputs from `upstream` (vocoder and ASR descriptions)."""
        return self.root / "scores" / f"{metric}-{key_of([scorer, upstream or {}])}.jsonl"

    def score(self, items: list[Continuation], scorer: ContinuationScorer,
              upstream: Optional[dict[str, Any]] = None, retry: bool = True) -> list[Score]:
        """`upstream`: what produced the inputs the scorer reads (the vocoder's and the ASR's descriptions), part of
        the score file's key so another ASR or vocoder never reuses these scores. `retry`: whether stored scores
        that are not final (errors, see ContinuationScorer.is_final) are tried again; rank 0 reading the others'
        scores keeps them as they are, as a run in one process would."""
        path = self.score_log(scorer.metric, scorer.describe(), upstream)
        path.parent.mkdir(parents=True, exist_ok=True)
        if _records(self.world):
            write_text(path.with_suffix(".json"), json.dumps(scorer.describe(), indent=2, default=str) + "\n")
        stored: dict[str, Score] = {}
        for row in read_every_rank(path, ("key", "value", "status")):
            s = Score(row["value"], row["status"], row.get("detail", {}))
            # A final score stands whichever rank's log holds it; otherwise the latest attempt does.
            if row["key"] not in stored or not scorer.is_final(stored[row["key"]]):
                stored[row["key"]] = s
        done = stored if not retry else {key: s for key, s in stored.items() if scorer.is_final(s)}
        todo = [i for i in items if _item_key(i) not in done]
        with open_append(self.world.own_file(path)) as log:
            # Chunks: the scorer may batch or run requests concurrently within one, and each finished chunk is on
            # disk before the next starts.
            for start in tqdm(range(0, len(todo), SCORE_CHUNK), desc=f"scoring {scorer.metric}", unit="chunk",
                              disable=not todo):
                chunk = todo[start : start + SCORE_CHUNK]
                scores = scorer.score(chunk)
                if len(scores) != len(chunk):
                    raise RuntimeError(f"scorer {scorer.metric} returned {len(scores)} scores for {len(chunk)} items")
                for item, s in zip(chunk, scores):
                    done[_item_key(item)] = s
                    log.write(json.dumps({"key": _item_key(item), **s.to_json()}) + "\n")
                log.flush()
        return [done[_item_key(i)] for i in items]


def _records(world: World) -> bool:
    """Whether this process writes the run's records: rank 0 of a process group, or any process without one."""
    return world.rank == 0 or not world.group


def read_generated(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """A vocoded continuation as float32 mono at `sample_rate`. Unlike user audio, an empty file is valid here: the
    model may end a continuation at once."""
    import soundfile as sf

    if sf.info(str(path)).frames == 0:
        return np.zeros(0, dtype=np.float32)
    return load_audio(Path(path), sample_rate)


def _summary(description: Optional[dict[str, Any]]) -> str:
    """A recorded component in a few words, for messages: its kind and the file or model it loaded."""
    d = description or {}
    what = d.get("checkpoint") or d.get("path") or d.get("tokenizer") or d.get("hmm")
    return f"{d.get('kind', '?')}" + (f" {what}" if what else "")


def _continuation(row: dict[str, Any], sample: int, units: list[int]) -> Continuation:
    return Continuation(row["prompt_id"], sample, units, prompt_audio=row["audio"], prompt_cut_s=row["cut_s"])


def _item_key(item: Continuation) -> str:
    return f"{item.prompt_id}#{item.sample}"


def _prompt_seed(seed: int, prompt_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{prompt_id}".encode()).digest()[:4], "little")
