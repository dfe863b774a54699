"""Read and validate alignslm results files (schema version 1) into leaderboard rows.

A row is one model under one scoring protocol. Several results files of the same model (same weights and adapter)
merge into one row when their tasks' protocols agree; a task scored in several of them keeps the newest file's
numbers and the row says which files were superseded. The same model under another protocol (another tokenizer,
`--set sblimp.reduction=mean`, another dataset) becomes a separate row.

What each metric is (which way is better, whether it is a percentage, its range) is the file's `metric_info`, as the
scorer or task kind defining the metric declared it; files written before it was recorded ask the registered ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from alignslm_eval.api.registry import SCORERS, TASK_KINDS
from alignslm_eval.api.results import SCHEMA_VERSION, MetricInfo
from alignslm_eval.api.scorer import ContinuationScorer
from alignslm_eval.io.errors import UserError

# The order tasks appear in; other tasks follow alphabetically.
TASK_ORDER = ("swuggy", "sblimp", "sstorycloze", "tstorycloze", "salmon", "continuation")
METRIC_ORDER = ("accuracy", "in_vocab", "accuracy_micro", "genppl", "auto_bleu")

PROTOCOL_FIELDS = ("tokenizer", "reduction", "bos_eos", "dedup", "dataset")
# Only generation tasks (continuation scorers) have it: sampling, vocoder and ASR of the pipeline. They have no
# likelihood fields.
GENERATION_FIELD = "generation"
LIKELIHOOD_FIELDS = ("reduction", "bos_eos")
NOT_STATED = "not stated"
RESULTS_GLOB = "results_*.json"
REWRITE = "re-run alignslm-eval to rewrite this file"


@dataclass(frozen=True, order=True)
class Column:
    """A task's metric (`accuracy`) or breakdown group (`by_part/speaker_consistency`). `info` is what the metric is
    (direction, percent, range), from the results file or the registries; it is no part of the column's identity, so
    a column parsed from --columns is the one a row holds."""

    task: str
    metric: str
    info: Optional[MetricInfo] = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> "Column":
        task, sep, metric = text.strip().partition(".")
        if not sep or not task or not metric:
            raise UserError(f"--columns {text!r}: expected TASK.METRIC or TASK.BREAKDOWN/GROUP, e.g. sblimp.accuracy")
        return cls(task, metric)

    @property
    def key(self) -> str:
        return f"{self.task}.{self.metric}"

    @property
    def defined_as(self) -> str:
        """The name `metric_info` knows it by: the metric, or a breakdown group's breakdown."""
        breakdown, sep, _ = self.metric.partition("/")
        return breakdown if sep else self.metric

    @property
    def direction(self) -> Optional[str]:
        """"higher" or "lower" is better; None where that is unknown or neither is (no value is marked best)."""
        direction = self.info.direction if self.info is not None else None
        return direction if direction in ("higher", "lower") else None

    @property
    def percent(self) -> bool:
        return self.info is not None and self.info.percent


def registered_info(name: str, kind: Optional[str] = None) -> Optional[MetricInfo]:
    """What the registered definer of metric or breakdown `name` says it is, for numbers that come without it
    (results files written before `metric_info` was recorded, published numbers): the task kind `kind` where it
    declares the name, else the scorer class (registered, or a base of one, such as LLMJudge) whose metric it is
    (or was: `former_metrics`), else the task kinds that declare it, when they agree. None when nothing registered
    defines it."""
    # `metric_info` is optional on a task kind: one without it declares nothing.
    if kind is not None and kind in TASK_KINDS.names():
        own = getattr(TASK_KINDS.get(kind), "metric_info", {})
        if name in own:
            return own[name]
    for scorer in _scorer_classes():
        if name in (vars(scorer).get("metric"), *vars(scorer).get("former_metrics", ())):
            return scorer.metric_info
    declared = {getattr(TASK_KINDS.get(k), "metric_info", {}).get(name) for k in TASK_KINDS.names()} - {None}
    return declared.pop() if len(declared) == 1 else None


def _scorer_classes() -> list[type[ContinuationScorer]]:
    """Every registered continuation scorer and the scorer classes it derives from (the likelihood choice scorer, a
    function, is none)."""
    registered = [s for s in map(SCORERS.get, SCORERS.names())
                  if isinstance(s, type) and issubclass(s, ContinuationScorer)]
    return [cls for scorer in registered for cls in scorer.__mro__ if issubclass(cls, ContinuationScorer)]


def registered_column(task: str, metric: str) -> Column:
    """The column with what the registries say its metric is (`registered_info`)."""
    column = Column(task, metric)
    return replace(column, info=registered_info(column.defined_as))


def is_number(value: Any) -> bool:
    """An int or float (NaN and infinities included), not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_problem(column: Column, value: float) -> Optional[str]:
    """What is wrong with `value` as a value of `column` (not finite, or outside its metric's range), else None."""
    if not math.isfinite(value):
        return "is not a finite number"
    info = column.info
    if info is not None and not info.admits(value):
        return f"is outside {info.range_text}, the range of {info.what}"
    return None


@dataclass(frozen=True)
class Measurement:
    """A value in results-file units (fractions for accuracies); `text` keeps a published number's own digits."""

    value: float
    stderr: Optional[float] = None
    n: Optional[int] = None
    text: Optional[str] = None


@dataclass(frozen=True)
class ProtocolField:
    """`key` decides equality (full hashes, "not stated" tied to its source); `text` is what the footnote shows."""

    key: str
    text: str


Protocol = dict[str, ProtocolField]


@dataclass
class Row:
    name: str
    size: str = ""
    adapter: str = ""
    source: str = ""
    kind: str = "run"  # run | reference | topline (shown, never marked best)
    values: dict[Column, Measurement] = field(default_factory=dict)
    protocols: dict[str, Protocol] = field(default_factory=dict)
    task_files: dict[str, str] = field(default_factory=dict)
    missing: dict[Column, str] = field(default_factory=dict)
    headlines: list[Column] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: task -> the named protocol (preset) its scoring fields are, where one is (runs: recorded or matched; reference
    #: rows: as their source states)
    presets: dict[str, str] = field(default_factory=dict)


@dataclass
class _Run:
    path: Path
    shown: str
    doc: dict[str, Any]

    @property
    def created(self) -> str:
        return str(self.doc.get("created") or "")


def find_results(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """Every `results_*.json` under the given dirs and every file given directly, with the name to show for it.

    alignslm-eval names its results files so; its other JSON outputs (continuation run manifests, score caches)
    are not results and are left alone, while a `results_*.json` that is not a results file is an error.
    """
    found: list[tuple[Path, str]] = []
    for root in map(Path, paths):
        if root.is_dir():
            found += [(p, p.relative_to(root).as_posix()) for p in sorted(root.rglob(RESULTS_GLOB)) if p.is_file()]
        elif root.is_file():
            found.append((root, root.name))
        else:
            raise UserError(f"{root}: no such file or directory; pass runs dirs or results_*.json files")
    return found


def dirs_without_results(paths: Sequence[Path]) -> list[str]:
    """A message per dir in `paths` that holds no results_*.json, naming the other JSON files it holds, if any."""
    messages = []
    for root in map(Path, paths):
        if not root.is_dir() or any(p.is_file() for p in root.rglob(RESULTS_GLOB)):
            continue
        other = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.json") if p.is_file())
        if other:
            messages.append(f"{root}: holds {len(other)} JSON file(s) ({', '.join(other[:3])}"
                            f"{', ...' if len(other) > 3 else ''}) but none named {RESULTS_GLOB}, the only files read "
                            "from a dir; pass a results file by its path to read it")
        else:
            messages.append(f"{root}: no {RESULTS_GLOB} files under it; run alignslm-eval first, or give the "
                            "dir its --output-path names")
    return messages


def load_results(path: Path) -> dict[str, Any]:
    """Parse and validate one results file; UserError naming the file and what to do otherwise."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: not a JSON results file ({type(e).__name__}: {e}); remove it from the runs dir")
    if not isinstance(doc, dict) or "schema_version" not in doc or "tasks" not in doc:
        raise UserError(f"{path}: JSON but not an alignslm-eval results file (no schema_version/tasks); remove it "
                        "from the runs dir")
    version = doc["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"{path}: unknown results schema_version {version!r} (this alignslm reads {SCHEMA_VERSION}); "
                        "re-run alignslm-eval to get a current results file")
    if version < SCHEMA_VERSION:
        raise UserError(
            f"{path}: results schema_version {version!r} is older than the supported version {SCHEMA_VERSION}; "
            "re-run alignslm-eval on this checkpoint to get a current results file"
        )
    if version > SCHEMA_VERSION:
        raise UserError(
            f"{path}: results schema_version {version} is newer than this alignslm reads ({SCHEMA_VERSION}); "
            "upgrade alignslm"
        )
    _require(path, doc, "model", dict)
    _require(path, doc, "tasks", dict)
    size = doc["model"].get("n_parameters")
    if size is not None and not (is_number(size) and math.isfinite(size) and size >= 0):
        raise UserError(f"{path}: model.n_parameters is {size!r}, not a parameter count (a finite number >= 0); "
                        f"{REWRITE}")
    for task, entry in doc["tasks"].items():
        where = f"tasks.{task}"
        _require(path, entry, "result", dict, where)
        _require(path, entry["result"], "headline", str, f"{where}.result")
        _require(path, entry["result"], "metrics", dict, f"{where}.result")
        breakdowns = entry["result"].get("breakdowns")
        if breakdowns is not None and not isinstance(breakdowns, dict):
            raise UserError(f"{path}: {where}.result.breakdowns is not a dict of breakdowns; {REWRITE}")
        info = task_metric_info(path, task, entry)
        for name, metric in entry["result"]["metrics"].items():
            _check_metric(path, f"{where}.result.metrics.{name}", Column(task, name, info[name]), metric)
        for breakdown, groups in (breakdowns or {}).items():
            if not isinstance(groups, dict):
                raise UserError(f"{path}: {where}.result.breakdowns.{breakdown} is not a dict of groups; "
                                f"{REWRITE}")
            for group, metric in groups.items():
                _check_metric(path, f"{where}.result.breakdowns.{breakdown}.{group}",
                              Column(task, f"{breakdown}/{group}", info[breakdown]), metric)
    return doc


def task_metric_info(path: Path, task: str, entry: dict[str, Any]) -> dict[str, Optional[MetricInfo]]:
    """What each metric and breakdown of a task entry (its result checked already) is: as the file's `metric_info`
    records it, else (a name it lacks, a file written before it was recorded) as `registered_info` says, asking the
    entry's task kind (`protocol.kind`) first."""
    recorded = entry.get("metric_info")
    if recorded is not None and not isinstance(recorded, dict):
        raise UserError(f"{path}: tasks.{task}.metric_info is not a dict of metric infos; {REWRITE}")
    protocol = entry.get("protocol")
    kind = protocol.get("kind") if isinstance(protocol, dict) else None
    result = entry["result"]
    info: dict[str, Optional[MetricInfo]] = {}
    for name in (*result["metrics"], *(result.get("breakdowns") or {})):
        if recorded is None or name not in recorded:
            info[name] = registered_info(name, kind if isinstance(kind, str) else None)
            continue
        try:
            info[name] = MetricInfo.from_json(recorded[name])
        except ValueError as e:
            raise UserError(f"{path}: tasks.{task}.metric_info.{name}: {e}; {REWRITE}")
    return info


def _check_metric(path: Path, where: str, column: Column, metric: Any) -> None:
    """A metric is {value, stderr, n}: value a number in its kind's range, or null/NaN when nothing was scored;
    stderr a finite number >= 0, or null/NaN when it is unknown (fewer than two items)."""
    if not isinstance(metric, dict) or "value" not in metric:
        raise UserError(f"{path}: {where}: expected {{value, stderr, n}}; {REWRITE}")
    value, stderr = metric["value"], metric.get("stderr")
    for key, number in (("value", value), ("stderr", stderr)):
        if number is not None and not is_number(number):
            raise UserError(f"{path}: {where}.{key} is {number!r}, not a number; {REWRITE}")
    if value is not None and not math.isnan(value):
        problem = value_problem(column, value)
        if problem:
            raise UserError(f"{path}: {where}.value {value!r} {problem}; the file is damaged or was edited: "
                            f"{REWRITE}")
    if stderr is not None and not math.isnan(stderr) and not (math.isfinite(stderr) and stderr >= 0):
        raise UserError(f"{path}: {where}.stderr {stderr!r} is not a standard error (a finite number >= 0); the "
                        f"file is damaged or was edited: {REWRITE}")


def _require(path: Path, obj: Any, key: str, kind: type, where: str = "") -> None:
    name = f"{where}.{key}" if where else key
    if not isinstance(obj, dict) or not isinstance(obj.get(key), kind):
        raise UserError(f"{path}: field {name} missing or not a {kind.__name__}; {REWRITE}")


def collect(paths: Sequence[Path], skip_invalid: bool = False) -> tuple[list[Row], list[str]]:
    """Rows from every results file under `paths`, and (with skip_invalid) one message per skipped file."""
    runs, skipped = [], []
    for path, shown in find_results(paths):
        try:
            runs.append(_Run(path, shown, load_results(path)))
        except UserError as e:
            if not skip_invalid:
                raise UserError(f"{e}, or pass --skip-invalid to skip it") from e
            skipped.append(str(e))
    runs.sort(key=lambda r: (r.created, r.shown), reverse=True)
    groups: list[list[_Run]] = []
    for run in runs:
        for group in groups:
            if _identity(group[0].doc) == _identity(run.doc) and _compatible(group, run):
                group.append(run)
                break
        else:
            groups.append([run])
    rows = [_row(group) for group in groups]
    _disambiguate(rows, groups)
    return rows, skipped


def model_name(model: dict[str, Any], command: Sequence[str] = ()) -> str:
    """`model.name`, else the hub id, else the `--model` argument the run was started with, else the path's name."""
    if model.get("name"):
        return str(model["name"])
    if model.get("hub_id"):
        return str(model["hub_id"])
    args = list(command)
    if "--model" in args[:-1]:
        return Path(args[args.index("--model") + 1]).name or str(args[args.index("--model") + 1])
    return Path(str(model.get("path") or model.get("local_dir") or "model")).name


def format_size(n: Any) -> str:
    if not isinstance(n, (int, float)) or n <= 0:
        return ""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(int(n))


def adapter_name(adapter: Any) -> str:
    """A short label for `model.adapter`: a name, or for alignslm-eval's adapter chain (a list of {path, ...}) the
    last adapter's folder with its parent (trainer rounds are round-K/adapter) and the chain's length."""
    if isinstance(adapter, list):
        if not adapter:
            return ""
        last = adapter[-1].get("path", "") if isinstance(adapter[-1], dict) else str(adapter[-1])
        label = "/".join(Path(last).parts[-2:])
        return f"{label} (chain of {len(adapter)})" if len(adapter) > 1 else label
    if isinstance(adapter, dict):
        adapter = adapter.get("name") or adapter.get("type") or adapter.get("path") or ""
    text = str(adapter or "")
    return Path(text).name if "/" in text else text


def _identity(doc: dict[str, Any]) -> tuple[str, str, str]:
    model = doc["model"]
    weights = model.get("weights_fingerprint") or model.get("path") or model.get("hub_id") or ""
    return model_name(model, doc.get("command") or ()), str(weights), adapter_name(model.get("adapter"))


def task_protocol(doc: dict[str, Any], task: str, shown: str) -> Protocol:
    entry = doc["tasks"][task]
    spec, dataset, tok = entry.get("protocol") or {}, entry.get("dataset") or {}, doc.get("tokenizer") or {}

    def known(key: str, text: str, present: bool) -> ProtocolField:
        # An absent field cannot be shown equal to anything, not even to another file's absent field.
        return ProtocolField(key, text) if present else ProtocolField(f"not recorded:{shown}", "not recorded")

    fp = tok.get("fingerprint")
    tok_text = ", ".join(str(x) for x in (tok.get("kind"), f"layer {tok['layer']}" if "layer" in tok else None,
                                         f"{tok['n_units']} units" if "n_units" in tok else None) if x)
    sha, limit = dataset.get("sha256"), dataset.get("limit")
    # Task settings pick the data too (a split, a subset of SALMon parts), so they belong to the dataset version.
    settings = json.dumps(spec.get("settings") or {}, sort_keys=True)
    data_text = (f"sha256 {str(sha)[:12]}" + (f", first {limit} choices" if limit else "")
                 + (f", settings {settings}" if spec.get("settings") else ""))
    scoring = likelihood_fields(spec)
    units = spec.get("units") or {}
    tokenizer = (ProtocolField(f"units:{units.get('sha256')}", f"supplied units (sha256 {str(units.get('sha256'))[:12]})")
                 if units else known(f"fp:{fp}", f"{tok_text} (fingerprint {fp})", bool(fp)))
    protocol = {
        "tokenizer": tokenizer,
        **{name: scoring.get(name) or known("", "", False) for name in ("reduction", "bos_eos", "dedup")},
        "dataset": known(f"{sha}/{limit}/{settings}", data_text, bool(sha)),
    }
    if isinstance(entry.get("pipeline"), dict):
        # A generation task samples: no likelihood is reduced, no BOS/EOS choice is scored.
        for name in LIKELIHOOD_FIELDS:
            del protocol[name]
        protocol[GENERATION_FIELD] = _generation(entry["pipeline"])
    return protocol


def likelihood_fields(spec: dict[str, Any]) -> dict[str, ProtocolField]:
    """The reduction, BOS/EOS and dedup fields of a task's recorded protocol (or a preset's values), those it has:
    the one spelling that runs and reference rows naming a preset share, so that they compare equal."""
    yes = {True: "yes", False: "no"}
    out = {}
    if "reduction" in spec:
        out["reduction"] = ProtocolField(str(spec["reduction"]), str(spec["reduction"]))
    if "add_bos" in spec and "add_eos" in spec:
        out["bos_eos"] = ProtocolField(f"{spec['add_bos']}/{spec['add_eos']}",
                                       f"BOS {yes.get(spec['add_bos'], '?')}, EOS {yes.get(spec['add_eos'], '?')}")
    if "dedup" in spec:
        out["dedup"] = ProtocolField(str(spec["dedup"]), yes.get(spec["dedup"], str(spec["dedup"])))
    return out


def preset_covers(name: str, task: str) -> tuple[str, ...]:
    """The protocol fields (reduction, bos_eos, dedup) the preset `name` sets for `task`."""
    from alignslm_eval.api.protocol import load_preset

    return tuple(likelihood_fields(load_preset(name).task_values(task)))


def recorded_preset(task: str, spec: dict[str, Any]) -> Optional[str]:
    """The named protocol a task's recorded values are: the preset the run named, when --set changed none of its
    values, else any preset whose values they all equal (a run that spelled slamkit's rule out in --set flags)."""
    from alignslm_eval.api.protocol import matching_preset

    named = spec.get("preset") or {}
    if named.get("name") and not named.get("overridden_by_set") and named.get("set_by_preset"):
        return str(named["name"])
    return matching_preset(task, spec)


def _generation(pipeline: dict[str, Any]) -> ProtocolField:
    def name(part: Any) -> str:
        if isinstance(part, dict):
            return str(part.get("name") or part.get("kind") or part.get("model") or part.get("path") or "recorded")
        return str(part) if part else "none"

    key = json.dumps(_without_paths({k: v for k, v in pipeline.items() if k != "run_dir"}), sort_keys=True,
                     default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    sampling = json.dumps(pipeline.get("sampling"), sort_keys=True, default=str)
    text = f"sampling {sampling}, vocoder {name(pipeline.get('vocoder'))}, ASR {name(pipeline.get('asr'))} ({digest})"
    return ProtocolField(key, text)


def _without_paths(obj: Any) -> Any:
    # Where a file sits is no part of the protocol; the hashes and fingerprints recorded beside it are.
    if isinstance(obj, dict):
        return {k: _without_paths(v) for k, v in obj.items() if not (isinstance(v, str) and v.startswith("/"))}
    if isinstance(obj, list):
        return [_without_paths(v) for v in obj]
    return obj


def _keys(protocol: Protocol) -> tuple[str, ...]:
    return tuple(protocol[f].key if f in protocol else "" for f in (*PROTOCOL_FIELDS, GENERATION_FIELD))


def _compatible(group: list[_Run], run: _Run) -> bool:
    # One row is one tokenizer, even across tasks that no other file of the group scored.
    if (group[0].doc.get("tokenizer") or {}).get("fingerprint") != (run.doc.get("tokenizer") or {}).get("fingerprint"):
        return False
    for member in group:
        for task in set(member.doc["tasks"]) & set(run.doc["tasks"]):
            if _keys(task_protocol(member.doc, task, member.shown)) != _keys(task_protocol(run.doc, task, run.shown)):
                return False
    return True


def _row(group: list[_Run]) -> Row:
    newest = group[0]
    model = newest.doc["model"]
    row = Row(
        name=model_name(model, newest.doc.get("command") or ()),
        size=format_size(model.get("n_parameters")),
        adapter=adapter_name(model.get("adapter")),
    )
    superseded: dict[str, list[str]] = {}
    for run in group:  # newest first: the first file to bring a task wins
        for task, entry in run.doc["tasks"].items():
            if task in row.protocols:
                superseded.setdefault(run.shown, []).append(task)
                continue
            row.protocols[task] = task_protocol(run.doc, task, run.shown)
            row.task_files[task] = run.shown
            preset = None if "pipeline" in entry else recorded_preset(task, entry.get("protocol") or {})
            if preset:
                row.presets[task] = preset
            _add_task(row, task, entry["result"], task_metric_info(run.path, task, entry), run.shown)
    files = sorted(set(row.task_files.values()))
    row.source = files[0] if len(files) == 1 else f"{len(files)} results files"
    if len(files) > 1:
        by_file = {f: sorted(t for t, shown in row.task_files.items() if shown == f) for f in files}
        row.notes.append("Tasks come from several results files: "
                         + "; ".join(f"{', '.join(tasks)} from {f}" for f, tasks in by_file.items()) + ".")
    for shown, tasks in superseded.items():
        row.notes.append(f"{shown} also scored {', '.join(sorted(tasks))} under the same protocol; the newest "
                         "results file is shown for each task.")
    return row


def _add_task(row: Row, task: str, result: dict[str, Any], info: dict[str, Optional[MetricInfo]], shown: str) -> None:
    headline = Column(task, result["headline"], info.get(result["headline"]))
    row.headlines.append(headline)
    for name, metric in result["metrics"].items():
        _put(row, Column(task, name, info[name]), metric, shown)
    for breakdown, groups in (result.get("breakdowns") or {}).items():
        for group, metric in groups.items():
            _put(row, Column(task, f"{breakdown}/{group}", info[breakdown]), metric, shown)
    if headline not in row.values and headline not in row.missing:
        row.missing[headline] = f"{shown}: headline metric {headline.metric!r} of {task} is not in its metrics."


def _put(row: Row, column: Column, metric: dict[str, Any], shown: str) -> None:
    # load_results has checked the numbers: null and NaN are the only values left that are not shown.
    value, stderr = metric["value"], metric.get("stderr")
    if value is None or math.isnan(value):
        row.missing[column] = f"{shown}: {column.key} has no value ({value!r})."
        return
    known = stderr is not None and not math.isnan(stderr)
    row.values[column] = Measurement(float(value), float(stderr) if known else None, metric.get("n"))


def _disambiguate(rows: list[Row], groups: list[list[_Run]]) -> None:
    """Rows that share a name get the weights fingerprint and/or the newest run's time appended."""
    by_name: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_name.setdefault(row.name, []).append(i)
    for indices in by_name.values():
        if len(indices) < 2:
            continue
        weights = [_identity(groups[i][0].doc)[1] for i in indices]
        for i, w in zip(indices, weights):
            parts = []
            if len(set(weights)) > 1:
                parts.append(f"weights {w[:8]}")
            if weights.count(w) > 1:
                parts.append(groups[i][0].created)
            rows[i].name = f"{rows[i].name} ({', '.join(parts)})"
