"""Reading a JSON object file (a config, a record, a card) with one-line errors that name the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from alignslm_eval.io.errors import UserError, first_line


def read_json_object(path: Path, fix: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON object in `path`, holding at least the keys `required`; anything else is a UserError naming
    `path` and what went wrong, ending with `fix` (what the user should do, e.g. "re-save the model")."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or first_line(e)}); {fix}")
    except ValueError as e:  # UnicodeDecodeError included
        raise UserError(f"{path}: not valid JSON ({first_line(e)}); {fix}")
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a JSON object; {fix}")
    missing = [key for key in required if key not in data]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)}; {fix}")
    return data
