"""Reading a YAML mapping of known fields (a task definition, a protocol preset) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection

import yaml

from alignslm_eval.io.errors import UserError


def read_yaml_fields(path: Path, what: str, role: str, example: str, known: Collection[str]) -> dict[str, Any]:
    """The mapping in the YAML file `path`, whose keys must be among `known`; a UserError starting with `what` (the
    file as messages name it) otherwise. `role` says what the file is ("task definition"), `example` its first
    fields ("task:, kind:, ...")."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        # YAML's own message spans lines (a caret under the bad spot); one line reads better beside the file name
        raise UserError(f"{what}: cannot read {role} ({' '.join(str(e).split())}); fix the YAML")
    if not isinstance(raw, dict):
        raise UserError(f"{what}: a {role} must be a YAML mapping of its fields ({example})")
    unknown = set(raw) - set(known)
    if unknown:
        raise UserError(f"{what}: unknown field(s) {sorted(unknown)}; allowed: {sorted(known)}")
    return raw
