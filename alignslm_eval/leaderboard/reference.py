"""Load the published reference results (`leaderboards/reference.yaml`) into leaderboard rows.

The file lists sources (citation, where in it, the scoring protocol it states) and one row per (model, source).
Accuracies there are percentages as published; they are divided by 100 here so they compare with results files,
which store fractions, and the published digits are kept for display. See the file's header for its rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

import alignslm_eval
from alignslm_eval.api.protocol import ProtocolPreset, load_preset, preset_files
from alignslm_eval.io.errors import UserError
from alignslm_eval.leaderboard.collect import (
    GENERATION_FIELD,
    NOT_STATED,
    PROTOCOL_FIELDS,
    Column,
    Measurement,
    Protocol,
    ProtocolField,
    Row,
    likelihood_fields,
    registered_column,
    value_problem,
)

REFERENCE_VERSION = 1
# The checkout's copy; an installed wheel does not ship leaderboards/, so pass --reference-file PATH there.
DEFAULT_REFERENCE = Path(alignslm_eval.__file__).resolve().parent.parent / "leaderboards" / "reference.yaml"


@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    where: str
    protocol: dict[str, str]


def load_reference(path: Optional[Path] = None) -> tuple[list[Row], dict[str, Source]]:
    """Rows in file order and the sources they cite; UserError naming the file and field on any mistake."""
    path = Path(path or DEFAULT_REFERENCE)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; pass --reference-file the YAML file itself, e.g. "
                        f"{path / 'reference.yaml'}")
    if not path.is_file():
        raise UserError(f"{path}: reference file not found; pass --reference-file PATH (leaderboards/reference.yaml "
                        "of an alignslm checkout)")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"{path}: not readable YAML ({e})")
    if not isinstance(doc, dict) or doc.get("version") != REFERENCE_VERSION:
        raise UserError(f"{path}: expected `version: {REFERENCE_VERSION}` at the top; this alignslm reads reference "
                        f"files of version {REFERENCE_VERSION}")
    if doc.get("unit") != "percent":
        raise UserError(f"{path}: expected `unit: percent` (accuracies as published, in percent)")
    sources = {key: _source(path, key, value) for key, value in _mapping(path, doc, "sources").items()}
    models = doc.get("models")
    if not isinstance(models, list) or not models:
        raise UserError(f"{path}: `models` must be a non-empty list of rows")
    return [_row(path, f"models[{i}]", entry, sources) for i, entry in enumerate(models)], sources


def _mapping(path: Path, obj: Any, key: str, where: str = "") -> dict[str, Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, dict) or not value:
        raise UserError(f"{path}: {where + '.' if where else ''}{key} must be a non-empty mapping")
    return value


def _source(path: Path, key: str, value: Any) -> Source:
    where = f"sources.{key}"
    if not isinstance(value, dict) or not value.get("citation") or not value.get("where"):
        raise UserError(f"{path}: {where} needs `citation` and `where` (paper, arXiv id, table)")
    protocol = _protocol_fields(path, f"{where}.protocol", value.get("protocol") or {})
    missing = [f for f in PROTOCOL_FIELDS if f not in protocol]
    if missing:
        raise UserError(f"{path}: {where}.protocol lacks {', '.join(missing)}; write '{NOT_STATED}' where the "
                        "source does not say")
    return Source(key, " ".join(str(value["citation"]).split()), " ".join(str(value["where"]).split()), protocol)


def _protocol_fields(path: Path, where: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UserError(f"{path}: {where} must be a mapping of {', '.join(PROTOCOL_FIELDS)}")
    allowed = (*PROTOCOL_FIELDS, GENERATION_FIELD)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise UserError(f"{path}: {where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return {k: str(v) for k, v in value.items()}


def _row(path: Path, where: str, entry: Any, sources: dict[str, Source]) -> Row:
    if not isinstance(entry, dict) or not entry.get("name"):
        raise UserError(f"{path}: {where} needs a `name`")
    source = sources.get(entry.get("source"))
    if source is None:
        raise UserError(f"{path}: {where}.source {entry.get('source')!r} is not one of sources: {', '.join(sources)}")
    name = str(entry["name"]) + (f" ({entry['variant']})" if entry.get("variant") else "")
    stated = {**source.protocol, **_protocol_fields(path, f"{where}.protocol", entry.get("protocol") or {})}
    row = Row(name=name, size=str(entry.get("size") or ""), adapter=str(entry.get("adapter") or ""),
              source=source.key, kind="topline" if entry.get("topline") else "reference")
    preset = _preset(path, where, entry)
    if preset is not None:
        row.notes.append(f"Scored with {preset.name}'s protocol: {' '.join(str(entry['preset_basis']).split())}")
    for task, metrics in _mapping(path, entry, "results", where).items():
        if not isinstance(metrics, dict) or not metrics:
            raise UserError(f"{path}: {where}.results.{task} must map metric names to published values")
        row.protocols[str(task)] = _protocol(stated, source.key)
        if preset is not None and preset.task_values(str(task)):
            # the preset's values, spelled as a run records them, so a run scored with it compares equal
            row.protocols[str(task)].update(likelihood_fields(preset.task_values(str(task))))
            row.presets[str(task)] = preset.name
        for metric, published in metrics.items():
            column = registered_column(str(task), str(metric))
            row.values[column] = _measurement(path, f"{where}.results.{task}.{metric}", column, published)
    return row


def _preset(path: Path, where: str, entry: dict[str, Any]) -> Optional[ProtocolPreset]:
    """The named protocol a row's numbers were scored with (`preset`), with why that is known (`preset_basis`,
    shown as the row's note); None when the row names none."""
    if "preset" not in entry:
        return None
    basis = " ".join(str(entry.get("preset_basis") or "").split())
    if not basis:
        raise UserError(f"{path}: {where}.preset needs preset_basis: where the source states the protocol (or why "
                        "it is known)")
    if str(entry["preset"]) not in preset_files():
        raise UserError(f"{path}: {where}.preset {entry['preset']!r} is not a protocol; choose one of "
                        f"{', '.join(preset_files())} (tasks/protocols/)")
    return load_preset(str(entry["preset"]))


def _protocol(stated: dict[str, str], source: str) -> Protocol:
    # Two unstated fields are taken as equal only within one source's table; an absent `generation` is unstated.
    return {f: ProtocolField(f"{NOT_STATED}:{source}", f"{NOT_STATED} by {source}") if stated[f] == NOT_STATED
            else ProtocolField(stated[f], stated[f]) for f in (*PROTOCOL_FIELDS, GENERATION_FIELD) if f in stated}


def _measurement(path: Path, where: str, column: Column, published: Any) -> Measurement:
    try:
        value = float(published)
    except (TypeError, ValueError):
        value = None
    if value is None or isinstance(published, bool):
        raise UserError(f"{path}: {where}: expected a number as published (quoted, e.g. \"57.0\"), got {published!r}")
    text = published.strip() if isinstance(published, str) else repr(published)
    if column.percent:
        if not 0 <= value <= 100:  # false for NaN too
            raise UserError(f"{path}: {where}: {published!r} is not a percentage in [0, 100]")
        return Measurement(value / 100, text=text)
    problem = value_problem(column, value)
    if problem:
        raise UserError(f"{path}: {where}: {published!r} {problem}; copy the number as its source publishes it")
    return Measurement(value, text=text)
