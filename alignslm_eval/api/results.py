"""The results files: a versioned JSON document per run (`ResultsDocument`), and a Markdown summary.

`ResultsDocument` and `TaskEntry` are the schema (version 1; docs/results.md describes each field): the evaluator,
the generation runner and `alignslm-eval score` build them, `write` is the one writer, and `ResultsDocument.from_json`
reads a file back (files without the fields added since, such as `settings` and `metric_info`, still read).
Accuracy values are fractions in [0, 1]; tables show them as percentages.
"""

from __future__ import annotations

import itertools
import json
import math
import platform
import subprocess
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Mapping, Optional

import alignslm_eval
from alignslm_eval.io.atomic import write_new, write_text
from alignslm_eval.io.paths import check_output_file

SCHEMA_VERSION = 1
RECORDED_PACKAGES = ("torch", "torchaudio", "transformers", "numpy", "scikit-learn", "safetensors", "soundfile",
                     "peft", "trl", "accelerate")
#: which way a metric is better; "neutral": neither (a duration), so no value is marked best
METRIC_DIRECTIONS = ("higher", "lower", "neutral")


@dataclass(frozen=True)
class MetricInfo:
    """What one kind of metric is, declared by the scorer or task kind that defines it and recorded in results
    files: which way is better, whether tables show it as a percentage (of a fraction in [0, 1]), and the values it
    can take, [low, high] or (low, high] with `low_open`; a value outside means a damaged or hand-edited file.
    `what` names the kind in those error messages."""

    what: str
    direction: str = "neutral"
    percent: bool = False
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False

    def __post_init__(self) -> None:
        if self.direction not in METRIC_DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} is not one of {', '.join(METRIC_DIRECTIONS)}")
        if not self.low <= self.high:
            raise ValueError(f"range low {self.low!r} is above high {self.high!r}")

    @classmethod
    def fraction(cls, direction: str, percent: bool) -> "MetricInfo":
        """A share in [0, 1], as results files store accuracies and ratios."""
        return cls("a fraction (results files store accuracies and shares as fractions)", direction, percent, 0.0, 1.0)

    def admits(self, value: float) -> bool:
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    @property
    def range_text(self) -> str:
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if math.isinf(self.high) else ']'}"

    def to_json(self) -> dict[str, Any]:
        # JSON has no infinity: an open end is null.
        return {"direction": self.direction, "percent": self.percent,
                "low": None if math.isinf(self.low) else self.low, "high": None if math.isinf(self.high) else self.high,
                "low_open": self.low_open, "what": self.what}

    @classmethod
    def from_json(cls, data: Any) -> "MetricInfo":
        """`to_json`'s output read back; ValueError saying which field is wrong otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"expected {{direction, percent, low, high, low_open, what}}, not {data!r}")
        for key, kind in (("what", str), ("direction", str), ("percent", bool), ("low_open", bool)):
            if not isinstance(data.get(key), kind):
                raise ValueError(f"{key} is {data.get(key)!r}, not a {kind.__name__}")
        ends = {}
        for key, unbounded in (("low", -math.inf), ("high", math.inf)):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or math.isnan(value)):
                raise ValueError(f"{key} is {value!r}, not a number or null")
            ends[key] = unbounded if value is None else float(value)
        return cls(data["what"], data["direction"], data["percent"], ends["low"], ends["high"], data["low_open"])


@dataclass
class TaskEntry:
    """One task's part of a results file. Likelihood tasks have a protocol, dataset, result and files; generation
    tasks add the pipeline that made and scored their samples and the reasons samples went unscored; a re-scoring
    has the scorer settings, pipeline, result, unscored and files. `metric_info` maps each metric and breakdown
    name of the result to what it is (`MetricInfo.to_json`), as its scorer or task kind declares it."""

    result: dict[str, Any]
    settings: Optional[dict[str, Any]] = None
    protocol: Optional[dict[str, Any]] = None
    pipeline: Optional[dict[str, Any]] = None
    dataset: Optional[dict[str, Any]] = None
    unscored: Optional[dict[str, Any]] = None
    files: dict[str, Any] = field(default_factory=dict)
    wall_time_s: Optional[float] = None
    metric_info: Optional[dict[str, Any]] = None

    _ORDER = ("settings", "protocol", "pipeline", "dataset", "result", "unscored", "files", "wall_time_s",
              "metric_info")

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._ORDER if getattr(self, key) is not None}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> "TaskEntry":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in known})


@dataclass
class ResultsDocument:
    """A results file: what ran (command, settings, environment, model, tokenizer) and each task's entry."""

    tasks: dict[str, TaskEntry]
    created: str = field(default_factory=lambda: timestamp())
    command: list[str] = field(default_factory=list)
    #: every setting of the command (alignslm_eval.api.options), in force whether given or defaulted
    settings: Optional[dict[str, Any]] = None
    seed: Optional[int] = None
    batch_size: Optional[int] = None
    wall_time_s: Optional[float] = None
    environment: dict[str, Any] = field(default_factory=lambda: environment())
    model: dict[str, Any] = field(default_factory=dict)
    tokenizer: Optional[dict[str, Any]] = None
    skipped_tasks: Optional[dict[str, str]] = None
    schema_version: int = SCHEMA_VERSION

    _ORDER = ("schema_version", "created", "command", "settings", "seed", "batch_size", "wall_time_s", "environment",
              "model", "tokenizer", "tasks", "skipped_tasks")

    def to_json(self) -> dict[str, Any]:
        out = {key: getattr(self, key) for key in self._ORDER if getattr(self, key) is not None}
        out["tasks"] = {name: entry.to_json() for name, entry in self.tasks.items()}
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "ResultsDocument":
        known = {f.name for f in fields(cls)} - {"tasks"}
        return cls(tasks={name: TaskEntry.from_json(entry) for name, entry in doc.get("tasks", {}).items()},
                   **{k: v for k, v in doc.items() if k in known})

    def write(self, folder: Path, stem: Optional[str] = None) -> Path:
        """`folder/results_<created>.json` (or `stem`.json), never over an existing file, with its Markdown table
        beside it when it is a run's results."""
        return write_new_json(folder, stem or f"results_{self.created}", self.to_json())


def recorded_metric_info(result: Mapping[str, Any], known: Mapping[str, MetricInfo]) -> dict[str, Any]:
    """`TaskEntry.metric_info` of `result` (a TaskResult's JSON): `known`'s info of each metric and breakdown it
    reports, in the result's order; a name `known` lacks is left out (readers then look for its definer)."""
    names = [*result["metrics"], *(result.get("breakdowns") or {})]
    return {name: known[name].to_json() for name in names if name in known}


def environment() -> dict[str, Any]:
    packages = {}
    for name in RECORDED_PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "alignslm": alignslm_eval.__version__,
        "git": git_state(),
        "python": platform.python_version(),
        "packages": packages,
    }


def git_state() -> Optional[dict[str, Any]]:
    """Commit and dirtiness of the alignslm source tree, when it is a git checkout (e.g. an editable install)."""
    src = Path(alignslm_eval.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")


def write_json(path: Path, data: Any) -> None:
    """Write atomically, so an interrupted write never leaves half a results file."""
    path = Path(path)
    check_output_file(path, "results file", "results.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, _json_text(data))


def write_new_json(folder: Path, stem: str, data: Any) -> Path:
    """Write `data` to `folder/<stem>.json`, or `<stem>_2.json`, ... when taken: never over an existing file, even
    one another process writes at the same moment (two runs finishing in the same second keep both files)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = (folder / (f"{stem}.json" if n == 1 else f"{stem}_{n}.json") for n in itertools.count(1))
    return write_new(names, _json_text(data))


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _fmt(value: float, as_percent: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value * 100:.2f}%" if as_percent else f"{value:.4g}"


def markdown_summary(results: dict[str, Any]) -> str:
    """A table of each task's metrics and breakdowns, value ± stderr, headline first. Likelihood-task accuracies
    are shown in percent; continuation metrics (GenPPL, judge scores...) as they are."""
    lines = [
        "| task | metric | value | ± stderr | n |",
        "|---|---|---:|---:|---:|",
    ]
    for task, entry in results["tasks"].items():
        result = entry["result"]
        percent = "pipeline" not in entry  # continuation tasks record their pipeline; their metrics are not shares
        names = [result["headline"]] + [m for m in result["metrics"] if m != result["headline"]]
        for name in names:
            m = result["metrics"][name]
            label = f"**{name}**" if name == result["headline"] else name
            lines.append(
                f"| {task} | {label} | {_fmt(m['value'], percent)} | {_fmt(m['stderr'], percent)} | {m['n']} |"
            )
        for breakdown, groups in result.get("breakdowns", {}).items():
            share = percent or breakdown == "scored_fraction"
            for group, m in groups.items():
                lines.append(
                    f"| {task} | {breakdown}: {group} | {_fmt(m['value'], share)} | {_fmt(m['stderr'], share)} "
                    f"| {m['n']} |"
                )
    return "\n".join(lines + _protocol_lines(results)) + "\n"


def _protocol_lines(results: dict[str, Any]) -> list[str]:
    """How each likelihood task scored: the named protocol (and what --set changed on it) and its resolved values."""
    yes = {True: "yes", False: "no"}
    rows = []
    for task, entry in results["tasks"].items():
        spec = entry.get("protocol") or {}
        if "pipeline" in entry or "add_bos" not in spec:
            continue
        preset = spec.get("preset") or {}
        name = preset.get("name", "not recorded")
        changed = ", ".join(f"{k}={v}" for k, v in (preset.get("overridden_by_set") or {}).items())
        rows.append(f"| {task} | {name}{f' (--set {changed})' if changed else ''} | {yes.get(spec.get('add_bos'))} | "
                    f"{yes.get(spec.get('add_eos'))} | {spec.get('reduction')} | {yes.get(spec.get('dedup'))} |")
    if not rows:
        return []
    return ["", "| task | protocol | BOS | EOS | log-likelihood | dedup |", "|---|---|---|---|---|---|", *rows]
