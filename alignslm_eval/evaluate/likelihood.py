"""Runs likelihood tasks: audio -> units (cached) -> unit LM log-likelihood -> per-choice scores -> metrics.

Every scored item is appended to a per-run JSONL file as its batch finishes; rerunning the same command reads it
back and scores only what is missing, so an interrupted run loses at most one batch. Under several ranks
(alignslm_eval.evaluate.world) each rank tokenizes and scores its own share of the items into a log of its own, and
rank 0 reads every log to write the results; a rerun at any world size reads them all too.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from tqdm.auto import tqdm

from alignslm_eval.api.model import LogLikelihood, UnitLM
from alignslm_eval.api.registry import SCORERS, TASK_KINDS
from alignslm_eval.api.task import AudioItem, GenerationTask, TaskData, TaskSpec
from alignslm_eval.api.tokenizer import SpeechTokenizer
from alignslm_eval.io.atomic import replacing, write_text
from alignslm_eval.io.audio import file_sha256, load_audio
from alignslm_eval.io.cache import UnitCache, fold_rank_files
from alignslm_eval.io.jsonl import open_append
from alignslm_eval.io.rank_files import every_file
from alignslm_eval.io.errors import UserError
from alignslm_eval.evaluate.generation import PipelineComponents, evaluate_generation_task
from alignslm_eval.evaluate.world import World
from alignslm_eval.api.results import ResultsDocument, TaskEntry, markdown_summary, recorded_metric_info
from alignslm_eval.io.units import Units, from_frames, match_units, read_units_jsonl, units_digest

TOKENIZE_COMMIT_EVERY = 32


@dataclass
class EvalSettings:
    output_dir: Path
    data_root: Optional[Path] = None
    task_data: dict[str, Path] = field(default_factory=dict)
    #: task -> a units file (alignslm_eval.io.units.read_units_jsonl) scored instead of tokenizing the task's audio
    task_units: dict[str, Path] = field(default_factory=dict)
    cache_dir: Path = Path(".")
    batch_size: int = 8
    limit: Optional[int] = None
    seed: int = 0
    log_samples: bool = False
    command: list[str] = field(default_factory=list)
    #: every setting of the command that started the run (alignslm_eval.api.options), recorded in the results
    settings: dict[str, Any] = field(default_factory=dict)
    components: PipelineComponents = field(default_factory=PipelineComponents)
    #: tasks left out of `--tasks all`, with the reason (recorded in the results)
    skipped: dict[str, str] = field(default_factory=dict)
    #: this process's share of the work (one process by default)
    world: World = field(default_factory=World)


def task_data_dir(spec: TaskSpec, settings: EvalSettings) -> Path:
    if spec.name in settings.task_data:
        path = settings.task_data[spec.name]
    elif settings.data_root is not None:
        path = settings.data_root / spec.data_dir
    else:
        raise UserError(f"task {spec.name}: no data; pass --data-root DIR (containing {spec.data_dir}/) "
                        f"or --task-data {spec.name}=DIR")
    if not path.is_dir():
        raise UserError(f"task {spec.name}: data directory {path} does not exist; pass --data-root DIR containing "
                        f"{spec.data_dir}/, or --task-data {spec.name}=DIR")
    return path


def tokenize_items(
    items: list[AudioItem], hashes: dict[str, str], tokenizer: SpeechTokenizer, cache: UnitCache
) -> dict[str, Units]:
    """Units for every item: from the cache, else by running the tokenizer (stored in the cache as we go)."""
    by_hash = cache.get_many(hashes[i.key] for i in items)
    todo = [i for i in items if hashes[i.key] not in by_hash]
    pending: dict[str, Units] = {}
    try:
        for item in tqdm(todo, desc="tokenizing", unit="file", disable=not todo):
            frames = tokenizer.encode(load_audio(item.path, tokenizer.sample_rate))
            if len(frames) == 0:
                raise UserError(f"{item.path}: audio is shorter than one tokenizer frame; remove it or re-record it")
            units = from_frames(frames, dedup=True)
            by_hash[hashes[item.key]] = units
            pending[hashes[item.key]] = units
            if len(pending) >= TOKENIZE_COMMIT_EVERY:
                cache.put_many(pending)
                pending = {}
    finally:
        if pending:  # keep what was computed even when interrupted
            cache.put_many(pending)
    return {i.key: by_hash[hashes[i.key]] for i in items}


def supplied_units(path: Path, items: list[AudioItem], lm: UnitLM) -> dict[str, Units]:
    """The units a units file gives each item, checked against the model's unit inventory (one-line errors naming
    the file: an item without units, an id outside the vocabulary)."""
    if not Path(path).is_file():
        raise UserError(f"--units {path}: file not found; give a units JSONL ({{file_name, units, duration}} per line, "
                        "as slamkit's features or `alignslm-eval units export` write)")
    matched = match_units(read_units_jsonl(path), {i.key: i.path for i in items}, Path(path))
    for key, units in matched.items():
        lm.vocab.check_units(units.units, f"{path}: item {key}")  # before any scoring, naming the file
    return matched


def dataset_hash(data: TaskData, hashes: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(data.items):
        h.update(f"{key}\t{hashes[key]}\n".encode())
    for path in sorted(data.metadata_files):
        h.update(f"{path.name}\t{file_sha256(path)}\n".encode())
    return h.hexdigest()


def _read_item_logs(paths: list[Path]) -> dict[str, LogLikelihood]:
    """Scored items of every log of a task run: a rerun at any world size finds what each rank finished."""
    done: dict[str, LogLikelihood] = {}
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not a log of scored items (byte {e.start} is not UTF-8 text); delete it and "
                            "rerun, its items are then scored again")
        for line in lines:
            try:
                row = json.loads(line)
                done[row["key"]] = LogLikelihood(float(row["ll_sum"]), int(row["n_tokens"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: that item is simply scored again
    return done


@dataclass
class PreparedTask:
    spec: TaskSpec
    task: Any  # Task (likelihood) or GenerationTask
    data: Any  # TaskData, or the list of prompts of a generation task
    data_dir: Path


def prepare_tasks(specs: list[TaskSpec], settings: EvalSettings) -> list[PreparedTask]:
    """Load and validate every task's data before any model is loaded, so bad data fails in seconds."""
    prepared = []
    for spec in specs:
        task = TASK_KINDS.get(spec.kind)(spec)
        data_dir = task_data_dir(spec, settings)
        if isinstance(task, GenerationTask):
            if spec.name in settings.task_units:
                raise UserError(f"--units {spec.name}=...: {spec.name} samples continuations of spoken prompts; units "
                                "files serve likelihood tasks only")
            data = task.load_prompts(data_dir)[: settings.limit]
        else:
            data = task.load(data_dir, check_audio=spec.name not in settings.task_units).limited(settings.limit)
            if not data.choices:
                raise UserError(f"task {spec.name}: no items found under {data_dir}")
        prepared.append(PreparedTask(spec, task, data, data_dir))
    return prepared


def evaluate_task(
    prepared: PreparedTask, lm: UnitLM, tokenizer: SpeechTokenizer, cache: UnitCache, settings: EvalSettings
) -> Optional[TaskEntry]:
    """Score this process's share of the task's items; then, where this process writes the final files, the
    task's entry from every rank's scores (None elsewhere)."""
    started = time.time()
    spec, task, data, data_dir = prepared.spec, prepared.task, prepared.data, prepared.data_dir
    world = settings.world
    items = sorted(data.items.values(), key=lambda i: i.key)
    units_file = settings.task_units.get(spec.name)
    supplied = supplied_units(units_file, items, lm) if units_file else None
    if supplied is not None:
        # the units stand for the audio: their content hashes key the dataset and the resume log
        hashes = {k: units_digest(u) for k, u in supplied.items()}
        mine = world.mine(items, key=lambda i: i.key, cost=lambda i: len(supplied[i.key]))
        units = {i.key: supplied[i.key] for i in mine}
    else:
        hashes = {}
        with tqdm(items, desc=f"{spec.name}: hashing", unit="file") as bar:  # closed before an error is printed
            for item in bar:
                hashes[item.key] = file_sha256(item.path)
        # File size stands for the cost of tokenizing and of scoring an item: both grow with its length.
        mine = world.mine(items, key=lambda i: i.key, cost=lambda i: i.path.stat().st_size)
        units = tokenize_items(mine, hashes, tokenizer, cache)
    dhash = dataset_hash(data, hashes)
    units_record = {"path": str(units_file), "sha256": file_sha256(units_file)} if units_file else None

    model = lm.describe()
    run_key = hashlib.sha256(
        json.dumps(
            # The device kind, not its index: ranks on cuda:0 and cuda:1 score the same run.
            {"model": {**model, "device": str(model.get("device", "")).split(":")[0]},
             "tokenizer": {"units_file": units_record["sha256"]} if units_record else tokenizer.fingerprint(),
             # Only what changes an item's log-likelihood: the sum/mean choice is applied after, from the log.
             "protocol": {"add_bos": spec.protocol.add_bos, "add_eos": spec.protocol.add_eos, "dedup": spec.dedup},
             "dataset": dhash},
            sort_keys=True, default=str,
        ).encode()
    ).hexdigest()[:16]
    items_log = settings.output_dir / "items" / f"{spec.name}-{run_key}.jsonl"
    items_log.parent.mkdir(parents=True, exist_ok=True)
    scores = {k: v for k, v in _read_item_logs(every_file(items_log)).items() if k in data.items}
    todo = [i for i in mine if i.key not in scores]
    sequences = [units[i.key].units if spec.dedup else units[i.key].frames() for i in todo]

    with open_append(world.own_file(items_log)) as log, tqdm(
        total=len(mine), initial=len(mine) - len(todo), desc=f"{spec.name}: scoring", unit="file"
    ) as bar:

        def save(indices: list[int], batch: list[LogLikelihood]) -> None:
            for i, ll in zip(indices, batch):
                item = todo[i]
                scores[item.key] = ll
                log.write(json.dumps({"key": item.key, "ll_sum": ll.sum, "n_tokens": ll.n_tokens,
                                      "n_units": int(len(sequences[i]))}) + "\n")
            log.flush()
            bar.update(len(indices))

        lm.loglikelihood(sequences, spec.protocol, batch_size=settings.batch_size, on_batch=save,
                         names=[str(i.path) for i in todo])

    world.barrier()  # every rank's share is in its log
    if not world.writes_final_files:
        return None
    logs = every_file(items_log)
    if world.size > 1:
        scores = {k: v for k, v in _read_item_logs(logs).items() if k in data.items}
    missing = [i.key for i in items if i.key not in scores]
    if missing:
        raise UserError(f"task {spec.name}: {len(missing)} item(s) have no score in {items_log.parent} (e.g. {missing[0]}); "
                        "a rank stopped before finishing: rerun the same command to score them")
    scorer = SCORERS.get(spec.scorer)
    reduced = {k: ll.reduced(spec.reduction) for k, ll in scores.items()}
    choice_scores = {
        c.id: scorer([reduced[k] for k in c.candidates], c.positive) for c in data.choices
    }
    result = task.aggregate(data, choice_scores).to_json()
    files: dict[str, Any] = {"items": str(logs[0]) if len(logs) == 1 else [str(p) for p in logs]}
    extra = task.write_outputs(data, reduced, settings.output_dir / "submission")
    if extra:
        files["submission"] = [str(p) for p in extra]
    if settings.log_samples:
        samples = settings.output_dir / f"samples_{spec.name}.jsonl"
        with replacing(samples) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for c in data.choices:
                f.write(json.dumps({
                    "choice": c.id,
                    "positive": c.positive,
                    "score": choice_scores[c.id],
                    "candidates": [
                        {"key": k, "path": str(data.items[k].path), "ll_sum": scores[k].sum,
                         "ll_mean": scores[k].mean, "n_tokens": scores[k].n_tokens}
                        for k in c.candidates
                    ],
                    "meta": c.meta,
                }, default=str) + "\n")
        files["samples"] = str(samples)
    protocol = spec.to_json()
    if units_record:
        protocol["units"] = {**units_record, "n_items": len(items)}  # the tokenizer stage was skipped
    return TaskEntry(
        protocol=protocol,
        dataset={"path": str(data_dir), "sha256": dhash, "n_items": len(items), "n_choices": len(data.choices),
                 "limit": settings.limit},
        result=result,
        files=files,
        wall_time_s=round(time.time() - started, 3),
        # `metric_info` is optional on a kind: without it none is recorded, and readers look the names up by name.
        metric_info=recorded_metric_info(result, getattr(task, "metric_info", {})),
    )


def supplied_tokenizer(task_units: dict[str, Path]) -> dict[str, Any]:
    """What results record as the tokenizer of a run that tokenized nothing: the units files it scored, and a
    fingerprint of their contents (so runs on the same units share one leaderboard row)."""
    files = {task: {"path": str(p), "sha256": file_sha256(p)} for task, p in sorted(task_units.items())}
    digest = hashlib.sha256(json.dumps({t: f["sha256"] for t, f in files.items()}).encode()).hexdigest()
    return {"fingerprint": "units:" + digest[:16], "kind": "supplied units", "units_files": files}


def evaluate(
    tasks: list[PreparedTask], lm: UnitLM, tokenizer: Optional[SpeechTokenizer], settings: EvalSettings
) -> tuple[Optional[dict[str, Any]], Optional[Path]]:
    """Run every task and write `results_<timestamp>.json` (+ `.md`) under the output dir; (None, None) on a
    process that does not write the final files (a rank other than 0, a `--shard` job)."""
    started = time.time()
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    try:
        import torch

        torch.manual_seed(settings.seed)
    except ImportError:
        pass
    world = settings.world
    # without a tokenizer every task scores supplied units: there is nothing to cache
    cache = UnitCache(settings.cache_dir, tokenizer.fingerprint(), world) if tokenizer is not None else None
    try:
        task_results = {}
        for t in tasks:
            if isinstance(t.task, GenerationTask):
                task_results[t.spec.name] = evaluate_generation_task(
                    t.spec.name, t.task, t.data, t.data_dir, lm, tokenizer, settings.components,
                    settings.output_dir, settings.seed, settings.log_samples, settings.batch_size, world)
            else:
                task_results[t.spec.name] = evaluate_task(t, lm, tokenizer, cache, settings)
    finally:
        if cache is not None:
            cache.close()
    world.barrier()  # no rank writes its unit cache file any more
    if world.group and world.rank == 0 and cache is not None:
        fold_rank_files(cache.path)
    if not world.writes_final_files:
        return None, None
    document = ResultsDocument(
        tasks=task_results,
        command=settings.command,
        settings=settings.settings,
        seed=settings.seed,
        batch_size=settings.batch_size,
        wall_time_s=round(time.time() - started, 3),
        model=lm.describe(),
        tokenizer=({"fingerprint": tokenizer.fingerprint(), **tokenizer.describe()} if tokenizer is not None
                   else supplied_tokenizer(settings.task_units)),
        skipped_tasks=settings.skipped,
    )
    path = document.write(settings.output_dir)
    results = document.to_json()
    write_text(path.with_suffix(".md"), markdown_summary(results))
    return results, path
