"""Tasks: declarative YAML specs under tasks/ bound to small Python task kinds that load data and aggregate.

A likelihood task is: a dataset of audio items grouped into choices (which candidate is the positive one), a
solver (speech tokenizer + unit LM log-likelihood, run by the evaluator), and a scorer that turns the candidates'
likelihoods into a per-choice score. The task kind supplies `load` (dataset) and `aggregate` (metrics).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from alignslm_eval.api.model import LikelihoodProtocol
from alignslm_eval.api.protocol import ProtocolPreset, resolve_overrides
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.yaml_file import read_yaml_fields


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
    #: the task file's own `version`, raised when an edit changes what the task measures. It is a label for
    #: readers of results only and stays out of run and item-log keys: those hash what the version stands for
    #: (protocol, dataset, sampling) themselves, so relabelling a task keeps its resumable logs.
    version: int
    #: the template files `source` includes, nearest first; `source` alone does not state their fields
    includes: tuple[str, ...]
    #: the named protocol the values came from (alignslm_eval.api.protocol.ProtocolPreset.record), when one did
    preset: Optional[dict[str, Any]] = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "data_dir": self.data_dir,
            "reduction": self.reduction,
            "add_bos": self.protocol.add_bos,
            "add_eos": self.protocol.add_eos,
            "dedup": self.dedup,
            "scorer": self.scorer,
            "settings": self.settings,
            "source": self.source,
            "includes": list(self.includes),
            "citation": self.citation,
            **({"preset": self.preset} if self.preset is not None else {}),
        }


_REQUIRED = ("task", "kind", "data_dir")
_LIKELIHOOD_OVERRIDES = ("reduction", "add_bos", "add_eos")
#: `--set TASK.KEY` keys that every task takes besides its kind's own settings
SPEC_OVERRIDES = (*_LIKELIHOOD_OVERRIDES, "data_dir", "dedup", "scorer")
_KNOWN = set(_REQUIRED) | {"description", "citation", "likelihood", "dedup", "scorer", "settings", "include", "version"}
#: fields that merge key by key with an included file's, rather than replacing it whole
_MERGED_MAPPINGS = ("likelihood", "settings")
#: a file stem starting with this is a template for `include:`, not a task
TEMPLATE_PREFIX = "_"


def parse_spec(path: Path, overrides: Optional[dict[str, Any]] = None) -> TaskSpec:
    """Read and validate one task YAML, with the files it includes merged in; `overrides` (key -> value) replace
    top-level, likelihood or settings keys."""
    path = Path(path)
    own = _read_mapping(path)
    raw, includes = _with_includes(path, own, ())
    for key in _REQUIRED:
        if key not in raw:
            raise UserError(f"{path}: missing required field {key!r}")
    version = _own_version(path, own)
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
        version=version,
        includes=tuple(str(p) for p in includes),
    )


def _read_mapping(path: Path, included_by: Optional[Path] = None) -> dict[str, Any]:
    """One YAML file's fields, checked against the known ones (each file is blamed for its own keys)."""
    what = f"{path} (included by {included_by})" if included_by else str(path)
    return read_yaml_fields(path, what, "task definition", "task:, kind:, ...", _KNOWN)


def _with_includes(path: Path, own: dict[str, Any], chain: tuple[Path, ...]) -> tuple[dict[str, Any], list[Path]]:
    """`own` (the fields of `path`) merged over the file its `include:` names, recursively; and the included
    files, nearest first. `chain` holds the files that led here, to refuse a cycle."""
    if "include" not in own:
        return own, []
    name = own["include"]
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{path}: include must name one YAML file relative to {path.parent}, not {name!r}")
    target = path.parent / name
    seen = [*chain, path]
    if target.resolve() in [p.resolve() for p in seen]:
        cycle = " -> ".join(str(p) for p in (*seen, target))
        raise UserError(f"{path}: include cycle {cycle}; remove the include that leads back")
    if not target.is_file():
        raise UserError(f"{path}: included file {target} not found; fix include: {name} (it is relative to "
                        f"{path.parent})")
    base, further = _with_includes(target, _read_mapping(target, included_by=path), tuple(seen))
    return _merged(own, base), [target, *further]


def _merged(own: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """`own` over `base`: own keys first in their order, then base's others (results record settings in this
    order). Likelihood and settings merge key by key the same way; `include` and `version` are not inherited,
    since each file names its own."""
    out = {k: v for k, v in own.items() if k != "include"}
    for key, value in base.items():
        if key in ("include", "version"):
            continue
        if key not in out:
            out[key] = value
        elif key in _MERGED_MAPPINGS:
            mine = out[key] or {}  # `settings:` left empty reads as None
            if isinstance(mine, dict) and isinstance(value, dict):
                out[key] = {**mine, **{k: v for k, v in value.items() if k not in mine}}
    return out


def _own_version(path: Path, own: dict[str, Any]) -> int:
    if "version" not in own:
        raise UserError(f"{path}: missing required field 'version'; add `version: 1` (raise it when an edit "
                        "changes what the task measures)")
    version = own["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"{path}: version must be a whole number from 1 up, not {version!r}; write e.g. `version: 1`")
    return version


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
    def load(self, data_dir: Path, check_audio: bool = True) -> TaskData:
        """Read the benchmark under `data_dir`; validate it fully (missing columns, missing files) with UserError.
        `check_audio=False` (units supplied in a units file): a kind whose list names its items (a gold.csv) does
        not require their audio files; a kind whose items are the audio files it finds needs them either way."""

    @abstractmethod
    def aggregate(self, data: TaskData, choice_scores: dict[str, float]) -> TaskResult:
        """Metrics from per-choice scores (choice id -> 1 / 0.5 / 0 style score from the task's scorer)."""

    def write_outputs(self, data: TaskData, item_scores: dict[str, float], out_dir: Path) -> list[Path]:
        """Extra files some benchmarks define (e.g. ZeroSpeech submission files). Returns what was written."""
        return []


def task_files(include_paths: tuple[Path, ...] = ()) -> dict[str, Path]:
    """Task name -> YAML file: the built-in definitions, then any `--include-path` folders (which may override).

    Names are file stems, so listing tasks reads no file; a stem starting with `_` is a template that task files
    include, not a task."""
    import alignslm_tasks

    found: dict[str, Path] = {}
    for folder in (Path(alignslm_tasks.__file__).parent, *include_paths):
        if not Path(folder).is_dir():
            raise UserError(f"--include-path {folder}: not a directory")
        for path in sorted(Path(folder).glob("*.yaml")):
            if not path.stem.startswith(TEMPLATE_PREFIX):
                found[path.stem] = path
    return found


def load_specs(
    names: list[str], include_paths: tuple[Path, ...] = (), overrides: Optional[dict[str, dict[str, Any]]] = None,
    preset: Optional[ProtocolPreset] = None,
) -> list[TaskSpec]:
    """Specs for the named tasks (`all` = every task), with a named protocol's values (`preset`) and then the per-task
    `--set` overrides applied."""
    files = task_files(include_paths)
    if names == ["all"]:
        names = sorted(files)
    overrides = overrides or {}
    unknown = [n for n in list(names) + list(overrides) if n not in files]
    if unknown:
        raise UserError(f"unknown task(s) {', '.join(unknown)}; available: {', '.join(sorted(files))}")
    merged, replaced = resolve_overrides(preset, names, overrides) if preset else (overrides, {})
    specs = []
    for name in names:
        spec = parse_spec(files[name], merged.get(name))
        if spec.name != name:
            raise UserError(f"{files[name]}: field task is {spec.name!r} but the file is named {name}.yaml")
        if preset is not None:
            spec = replace(spec, preset=preset.record(name, replaced.get(name, {})))
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
