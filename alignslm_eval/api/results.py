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
from typing import Any, Optional

import alignslm_eval
from alignslm_eval.io.atomic import write_new, write_text
from alignslm_eval.io.paths import check_output_file

SCHEMA_VERSION = 1
RECORDED_PACKAGES = ("torch", "torchaudio", "transformers", "numpy", "scikit-learn", "safetensors", "soundfile")


@dataclass
class TaskEntry:
    """One task's part of a results file. Likelihood tasks have a protocol, dataset, result and files; generation
    tasks add the pipeline that made and scored their samples and the reasons samples went unscored; a re-scoring
    has the scorer settings, pipeline, result, unscored and files."""

    result: dict[str, Any]
    settings: Optional[dict[str, Any]] = None
    protocol: Optional[dict[str, Any]] = None
    pipeline: Optional[dict[str, Any]] = None
    dataset: Optional[dict[str, Any]] = None
    unscored: Optional[dict[str, Any]] = None
    files: dict[str, Any] = field(default_factory=dict)
    wall_time_s: Optional[float] = None

    _ORDER = ("settings", "protocol", "pipeline", "dataset", "result", "unscored", "files", "wall_time_s")

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
    return "\n".join(lines) + "\n"
