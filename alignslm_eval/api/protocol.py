"""Named scoring protocols: a preset (`--protocol NAME`) is one YAML file under tasks/protocols/ that sets how the
likelihood tasks score (BOS, EOS, sum or mean, unit deduplication) and the unit LM's dtype, as a published toolkit
scores, so that numbers compare with that toolkit's tables.

Every value a preset sets carries where it comes from (`source`: repository, commit, file and what there says it) or
says that it could not be checked offline (`unverified`: why). A preset only sets values; `--set TASK.KEY=VALUE` still
overrides one of them, and results record the preset's name, what `--set` changed, and every resolved value.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.yaml_file import read_yaml_fields

#: the preset of the task files' own values (tasks/*.yaml): what a run without --protocol scores with
DEFAULT_PROTOCOL = "alignslm"
#: task keys a preset may set; they are `--set` keys too (alignslm_eval.api.task.SPEC_OVERRIDES)
TASK_KEYS = ("add_bos", "add_eos", "reduction", "dedup")
#: unit LM settings a preset may set (the model is loaded once for all tasks)
MODEL_KEYS = ("dtype",)
_FIELDS = {"protocol", "version", "description", "repository", "commit", "tasks", "model"}


@dataclass(frozen=True)
class PresetValue:
    value: Any
    #: where the value comes from (file, line, what it says); empty when `unverified`
    source: str = ""
    #: why the value could not be checked against its source offline; empty when `source` is given
    unverified: str = ""


@dataclass(frozen=True)
class ProtocolPreset:
    name: str
    version: int
    description: str
    repository: str
    commit: str
    #: task name -> key -> value
    tasks: dict[str, dict[str, PresetValue]]
    model: dict[str, PresetValue]
    path: Path

    def task_values(self, task: str) -> dict[str, Any]:
        """The values this preset sets for `task` (none for a task it does not name)."""
        return {k: v.value for k, v in self.tasks.get(task, {}).items()}

    def record(self, task: str, overridden: dict[str, Any]) -> dict[str, Any]:
        """What a results file records of the preset for one task: its name, file version and hash, and the keys
        `--set` changed on top of it (`overridden`: key -> value)."""
        return {"name": self.name, "version": self.version, "sha256": file_sha256(self.path),
                "set_by_preset": sorted(self.tasks.get(task, {})), "overridden_by_set": dict(overridden)}

    def matches(self, task: str, protocol: dict[str, Any]) -> bool:
        """Whether a task's recorded protocol (add_bos, add_eos, reduction, dedup) has every value this preset sets
        for that task; False for a task the preset does not set (nothing to match)."""
        values = self.task_values(task)
        return bool(values) and all(protocol.get(k) == v for k, v in values.items())


def presets_dir() -> Path:
    import alignslm_tasks

    return Path(alignslm_tasks.__file__).parent / "protocols"


def preset_files() -> dict[str, Path]:
    """Preset name -> file, by file stem (listing reads no file)."""
    return {p.stem: p for p in sorted(presets_dir().glob("*.yaml"))}


def load_preset(name: str) -> ProtocolPreset:
    """The preset named `name`; UserError listing the presets when there is none, or naming the field at fault."""
    files = preset_files()
    if name not in files:
        raise UserError(f"--protocol {name}: no such protocol; choose one of {', '.join(files)} (see "
                        "`alignslm-eval ls` and docs/scoring-protocol.md)")
    return _shipped(files[name])


def all_presets() -> list[ProtocolPreset]:
    return [_shipped(p) for p in preset_files().values()]


@functools.cache
def _shipped(path: Path) -> ProtocolPreset:
    # the package's own files do not change while it runs; the leaderboard asks for them once per table cell
    return parse_preset(path)


def parse_preset(path: Path) -> ProtocolPreset:
    path = Path(path)
    raw = read_yaml_fields(path, str(path), "protocol preset", "protocol:, description:, tasks:, ...", _FIELDS)
    if raw.get("protocol") != path.stem:
        raise UserError(f"{path}: field protocol is {raw.get('protocol')!r} but the file is named {path.stem}.yaml")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"{path}: version must be a whole number from 1 up, not {version!r}")
    for key in ("description", "repository", "commit"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise UserError(f"{path}: {key} must be a non-empty text (say where the preset's rules come from)")
    tasks_raw = raw.get("tasks") or {}
    if not isinstance(tasks_raw, dict):
        raise UserError(f"{path}: tasks must map task names to the values the preset sets")
    tasks = {str(t): _values(path, f"tasks.{t}", v, TASK_KEYS) for t, v in tasks_raw.items()}
    model = _values(path, "model", raw.get("model") or {}, MODEL_KEYS)
    return ProtocolPreset(path.stem, version, " ".join(raw["description"].split()), raw["repository"].strip(),
                          raw["commit"].strip(), tasks, model, path)


def _values(path: Path, where: str, raw: Any, allowed: tuple[str, ...]) -> dict[str, PresetValue]:
    if not isinstance(raw, dict):
        raise UserError(f"{path}: {where} must map setting names ({', '.join(allowed)}) to {{value, source}}")
    out = {}
    for key, entry in raw.items():
        at = f"{path}: {where}.{key}"
        if key not in allowed:
            raise UserError(f"{at}: not a setting a preset sets; allowed: {', '.join(allowed)}")
        if not isinstance(entry, dict) or "value" not in entry or set(entry) - {"value", "source", "unverified"}:
            raise UserError(f"{at}: expected {{value: ..., source: ...}} or {{value: ..., unverified: ...}}")
        source, unverified = str(entry.get("source") or "").strip(), str(entry.get("unverified") or "").strip()
        if bool(source) == bool(unverified):
            raise UserError(f"{at}: give exactly one of source (where the value comes from) or unverified (why it "
                            "could not be checked)")
        out[key] = PresetValue(entry["value"], " ".join(source.split()), " ".join(unverified.split()))
    return out


def resolve_overrides(preset: ProtocolPreset, task_names: list[str],
                      user: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Per-task overrides for `load_specs`: the preset's values with the user's `--set` values on top; and, per task,
    the preset values `--set` replaced (key -> the value given)."""
    merged: dict[str, dict[str, Any]] = {}
    replaced: dict[str, dict[str, Any]] = {}
    for name in task_names:
        values = preset.task_values(name)
        own = user.get(name, {})
        if values or own:
            merged[name] = {**values, **own}
        replaced[name] = {k: v for k, v in own.items() if k in values and v != values[k]}
    return merged, replaced


def matching_preset(task: str, protocol: dict[str, Any]) -> Optional[str]:
    """The name of the first preset (by name) whose values for `task` all equal the recorded protocol's, or None;
    the default preset (which sets nothing) never matches."""
    for preset in all_presets():
        if preset.matches(task, protocol):
            return preset.name
    return None
