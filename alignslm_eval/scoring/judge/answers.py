"""From a judge's answer to a score: the answer pattern (by default the text inside `\\boxed{...}`), checked when
given, and the number its last match captures if that is in [1, 5]."""

from __future__ import annotations

import re
from typing import Optional

from alignslm_eval.io.errors import UserError

#: the default answer pattern: the text inside \\boxed{...}
BOXED_PATTERN = r"\\boxed\s*\{([^{}]*)\}"
_BOXED = re.compile(BOXED_PATTERN)
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*")


def compile_answer_pattern(pattern: str, flag: str = "--judge-answer-pattern") -> re.Pattern[str]:
    """Compile a judge answer pattern; it must capture the score in its first group."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise UserError(f"{flag} '{pattern}': not a valid regular expression ({e}); fix it")
    if compiled.groups < 1:
        raise UserError(f"{flag} '{pattern}': has no group; capture the score in parentheses, e.g. 'score:\\s*(\\d)'")
    return compiled


def parse_score(answer: Optional[str], pattern: re.Pattern[str] = _BOXED) -> Optional[float]:
    """The score in the last match of `pattern` in `answer` (its first group) if that is a number in [1, 5], else
    None: the last match decides, even when it is unreadable, so a draft score is never taken for the final one."""
    if not answer:
        return None
    matches = list(pattern.finditer(answer))
    if not matches:
        return None
    m = _NUMBER.fullmatch(matches[-1].group(1) or "")
    if m is None:
        return None
    value = float(m.group(1))
    return value if 1.0 <= value <= 5.0 else None


def parse_rule(pattern: str) -> str:
    """How an answer becomes a score, in words, for results files."""
    return (f"last match of the regular expression {pattern} in the answer; its first group must be an integer or "
            "decimal in [1, 5]; anything else is unparsable")
