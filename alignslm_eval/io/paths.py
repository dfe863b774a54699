"""Checks that an output or input path is usable, made before any work so a mistake costs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from alignslm_eval.io.errors import UserError


def _blocking_file(folder: Path) -> Optional[Path]:
    """The file standing where `folder` or one of its parents would be, if any."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def check_directory(path: Optional[Path], flag: str, must_exist: bool = False) -> None:
    """UserError unless `path` is a directory, or can be created as one: a file at it or at one of its parents
    blocks it. With `must_exist`, it must already be there."""
    if path is None:
        return
    path = Path(path)
    blocker = _blocking_file(path)
    if blocker is not None:
        where = "it" if blocker == path else str(blocker)
        created = "" if must_exist else " (created if missing)"
        raise UserError(f"{flag} {path}: {where} is a file, not a directory; choose a directory{created}")
    if must_exist and not path.is_dir():
        raise UserError(f"{flag} {path}: directory does not exist")


def check_output_file(path: Path, flag: str, example: str) -> None:
    """UserError if `path` is a directory (naming `example` as a file to give instead) or a file blocks its folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give a file name inside it, e.g. {path / example}")
    blocker = _blocking_file(path.parent)
    if blocker is not None:
        raise UserError(f"{flag} {path}: {blocker} is a file, not a directory; choose another path")


def directory_rule(flag: str, must_exist: bool = False) -> tuple:
    """An `option(must=...)` rule: `check_directory`'s error, naming `flag`, for a path that cannot be a directory."""
    def rule(path: Path) -> bool:
        check_directory(path, flag, must_exist=must_exist)
        return True

    return rule, "a directory"
