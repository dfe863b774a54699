"""Tasks: declarative YAML specs under tasks/ bound to small Python task kinds that load data and aggregate.

A likelihood task is: a dataset of audio items grouped into choices (which candidate is the positive one), a
solver (speech tokenizer + unit LM log-likelihood, run by the evaluator), and a scorer that turns the candidates'
likelihoods into a per-choice score. The task kind supplies `load` (dataset) and `aggregate` (metrics).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from alignslm_eval.api.model import LikelihoodProtocol
from alignslm_eval.io.errors import UserError


@dataclass(frozen=True)
class AudioItem:
    """One audio file to score. `key` is unique within the task (the path relative to the task's data dir)."""

    key: str
    path: Path


@dataclass
class Choice:
    """One comparison between candidates (item keys); `positive` indexes the candidate that should score highest."""

    id: str
    candidates: tuple[str, ...]
    positive: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskData:
    items: dict[str, AudioItem]
    choices: list[Choice]
    #: files whose bytes define the benchmark besides the audio (gold.csv, manifests): hashed into the dataset hash
    metadata_files: list[Path] = field(default_factory=list)

    def limited(self, limit: Optional[int]) -> "TaskData":
        """The first `limit` choices (in id order) and only the items they use."""
        if limit is None:
            return self
        choices = sorted(self.choices, key=lambda c: c.id)[:limit]
        keys = {k for c in choices for k in c.candidates}
        return TaskData({k: v for k, v in self.items.items() if k in keys}, choices, self.metadata_files)


@dataclass(frozen=True)
class Metric:
    value: float
    stderr: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "stderr": self.stderr, "n": self.n}


@dataclass
class TaskResult:
    """Headline metric name, all top-level metrics, and named breakdowns (e.g. by_type -> {type: Metric})."""

    headline: str
    metrics: dict[str, Metric]
    breakdowns: dict[str, dict[str, Metric]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "metrics": {k: m.to_json() for k, m in self.metrics.items()},
            "breakdowns": {b: {k: m.to_json() for k, m in d.items()} for b, d in self.breakdowns.items()},
        }


@dataclass(frozen=True)
class TaskSpec:
    """A task definition as read from its YAML file, with any `--set task.key=value` overrides applied."""

    name: str
    kind: str
    description: str
    citation: str
    data_dir: str
    reduction: str
    protocol: LikelihoodProtocol
    dedup: bool
    scorer: str
    settings: dict[str, Any]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "data_dir": self.data_dir,
            "reduction": self.reduction,
            "add_bos": self.protocol.add_bos,
            "add_eos": self.protocol.add_eos,
            "dedup": self.dedup,
            "scorer": self.scorer,
            "settings": self.settings,
            "source": self.source,
            "citation": self.citation,
        }


_REQUIRED = ("task", "kind", "data_dir")
_LIKELIHOOD_OVERRIDES = ("reduction", "add_bos", "add_eos")
#: `--set TASK.KEY` keys that every task takes besides its kind's own settings
SPEC_OVERRIDES = (*_LIKELIHOOD_OVERRIDES, "data_dir", "dedup", "scorer")
_KNOWN = set(_REQUIRED) | {"description", "citation", "likelihood", "dedup", "scorer", "settings"}


def parse_spec(path: Path, overrides: Optional[dict[str, Any]] = None) -> TaskSpec:
    """Read and validate one task YAML; `overrides` (key -> value) replace top-level, likelihood or settings keys."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"{path}: cannot read task definition ({e})")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a task definition must be a YAML mapping")
    for key in _REQUIRED:
        if key not in raw:
            raise UserError(f"{path}: missing required field {key!r}")
    unknown = set(raw) - _KNOWN
    if unknown:
        raise UserError(f"{path}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_KNOWN)}")
    # An overridden value is blamed on the flag that set it, not on the shipped file.
    where = f"{path} with --set " + ", ".join(f"{raw['task']}.{k}" for k in overrides) if overrides else str(path)
    likelihood = dict(raw.get("likelihood") or {})
    settings = dict(raw.get("settings") or {})
    top = {"data_dir": raw["data_dir"], "dedup": raw.get("dedup", True), "scorer": raw.get("scorer", "likelihood_choice")}
    for key, value in (overrides or {}).items():
        if key in _LIKELIHOOD_OVERRIDES:
            likelihood[key] = value
        elif key in top:
            top[key] = value
        else:
            settings[key] = value
    reduction = likelihood.get("reduction", "sum")
    if reduction not in ("sum", "mean"):
        raise UserError(f"{where}: likelihood.reduction must be 'sum' or 'mean', not {reduction!r}")
    protocol = LikelihoodProtocol(
        add_bos=_as_bool(likelihood.get("add_bos", True), where, "likelihood.add_bos"),
        add_eos=_as_bool(likelihood.get("add_eos", False), where, "likelihood.add_eos"),
    )
    return TaskSpec(
        name=str(raw["task"]),
        kind=str(raw["kind"]),
        description=str(raw.get("description", "")).strip(),
        citation=str(raw.get("citation", "")).strip(),
        data_dir=str(top["data_dir"]),
        reduction=reduction,
        protocol=protocol,
        dedup=_as_bool(top["dedup"], where, "dedup"),
        scorer=str(top["scorer"]),
        settings=settings,
        source=str(path),
    )


def _as_bool(value: Any, path: Path | str, field_name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise UserError(f"{path}: {field_name} must be true or false, not {value!r}")


class Task(ABC):
    """A task kind: loads a benchmark from disk and aggregates per-choice scores into metrics."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    @abstractmethod
    def load(self, data_dir: Path) -> TaskData:
        """Read the benchmark under `data_dir`; validate it fully (missing columns, missing files) with UserError."""

    @abstractmethod
    def aggregate(self, data: TaskData, choice_scores: dict[str, float]) -> TaskResult:
        """Metrics from per-choice scores (choice id -> 1 / 0.5 / 0 style score from the task's scorer)."""

    def write_outputs(self, data: TaskData, item_scores: dict[str, float], out_dir: Path) -> list[Path]:
        """Extra files some benchmarks define (e.g. ZeroSpeech submission files). Returns what was written."""
        return []


def task_files(include_paths: tuple[Path, ...] = ()) -> dict[str, Path]:
    """Task name -> YAML file: the built-in definitions, then any `--include-path` folders (which may override).

    Names are file stems, so listing tasks reads no file."""
    import alignslm_tasks

    found: dict[str, Path] = {}
    for folder in (Path(alignslm_tasks.__file__).parent, *include_paths):
        if not Path(folder).is_dir():
            raise UserError(f"--include-path {folder}: not a directory")
        for path in sorted(Path(folder).glob("*.yaml")):
            found[path.stem] = path
    return found


def load_specs(
    names: list[str], include_paths: tuple[Path, ...] = (), overrides: Optional[dict[str, dict[str, Any]]] = None
) -> list[TaskSpec]:
    """Specs for the named tasks (`all` = every task), with per-task `--set` overrides applied."""
    files = task_files(include_paths)
    if names == ["all"]:
        names = sorted(files)
    overrides = overrides or {}
    unknown = [n for n in list(names) + list(overrides) if n not in files]
    if unknown:
        raise UserError(f"unknown task(s) {', '.join(unknown)}; available: {', '.join(sorted(files))}")
    specs = []
    for name in names:
        spec = parse_spec(files[name], overrides.get(name))
        if spec.name != name:
            raise UserError(f"{files[name]}: field task is {spec.name!r} but the file is named {name}.yaml")
        specs.append(spec)
    return specs


class GenerationTask(ABC):
    """A task kind that samples continuations of spoken prompts and scores them with continuation scorers.

    Its spec's settings name the scorers (`scorers: [genppl, auto_bleu]`) and the prompt set options; the
    evaluator runs the shared pipeline (alignslm_eval.evaluate.continuation_store) and hands back each scorer's scores."""

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    @property
    @abstractmethod
    def scorers(self) -> list[str]:
        """Registered scorer names, the first one giving the headline metric."""

    @property
    def scorer_settings(self) -> dict[str, Any]:
        """Scorer options the task's settings fix (keys the scorers declare in `task_settings`)."""
        return {}

    @abstractmethod
    def load_prompts(self, data_dir: Path) -> list[Any]:
        """The prompts (alignslm_eval.evaluate.continuation_store.Prompt) under `data_dir`, validated."""

    @abstractmethod
    def aggregate(self, scores: dict[str, list[Any]]) -> TaskResult:
        """Metrics from each scorer's scores (metric name -> list of alignslm_eval.api.scorer.Score)."""
