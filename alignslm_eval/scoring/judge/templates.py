"""Judge prompt templates: the built-in ones in `alignslm_eval/scoring/prompts/`, a plain-text file or slamkit's
`llm_as_judge.yaml` config (its `instruction` field) read and checked, and a template filled with two transcripts."""

from __future__ import annotations

import re
from pathlib import Path

from alignslm_eval.io.errors import UserError

#: the built-in templates, beside this package rather than in it (package data of alignslm_eval.scoring)
PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
#: each template slot and the placeholder spellings that fill it: ours, then slamkit's llm_as_judge config's
PLACEHOLDERS = {"prompt": ("{prompt}", "[prompt_audio_transcription]"),
                "continuation": ("{continuation}", "[generated_audio_transcription]")}
_PLACEHOLDER = re.compile("|".join(re.escape(p) for spellings in PLACEHOLDERS.values() for p in spellings))
_SLOT = {p: slot for slot, spellings in PLACEHOLDERS.items() for p in spellings}


def load_template(path: Path, flag: str = "--judge-prompt") -> str:
    """Read a prompt template (plain text, or a slamkit judge config's `instruction`) and check both slots are in it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{flag} {path}: cannot read the prompt template ({getattr(e, 'strerror', None) or e})")
    if path.suffix.lower() in (".yaml", ".yml"):
        text = _slamkit_instruction(text, path, flag)
    missing = [spellings for spellings in PLACEHOLDERS.values() if not any(p in text for p in spellings)]
    if missing:
        wanted = " and ".join(" or ".join(spellings) for spellings in missing)
        raise UserError(f"{flag} {path}: the template must contain {wanted}; add the placeholder(s)")
    return text


def _slamkit_instruction(text: str, path: Path, flag: str) -> str:
    import yaml

    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{flag} {path}: not valid YAML ({' '.join(str(e).split())}); fix the file")
    instruction = config.get("instruction") if isinstance(config, dict) else None
    if not isinstance(instruction, str) or not instruction.strip():
        raise UserError(f"{flag} {path}: a YAML template needs a text field 'instruction' (slamkit's llm_as_judge "
                        "config shape); add it, or pass the template as a .txt file")
    return instruction


def render_prompt(template: str, prompt: str, continuation: str) -> str:
    """Fill the prompt and continuation slots in one pass (a transcript containing "{continuation}" stays literal,
    and the template may hold other braces such as \\boxed{N})."""
    values = {"prompt": prompt, "continuation": continuation}
    return _PLACEHOLDER.sub(lambda m: values[_SLOT[m.group(0)]], template)
