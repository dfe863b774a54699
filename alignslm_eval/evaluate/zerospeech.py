"""Score a ZeroSpeech 2021 lexical or syntactic submission file against its gold.csv.

The submission is the official format (`<filename> <score>` per line, one line per gold file); it may come from
`alignslm-eval` (the zerospeech task kinds' `write_outputs`) or from any other system, and no audio is needed.
Pairing and aggregation are the task kinds' own code, so the result equals a live evaluation's.

    python -m alignslm_eval.evaluate.zerospeech SUBMISSION GOLD_DIR --kind lexical
"""

from __future__ import annotations

import math
from pathlib import Path

from alignslm_eval.api.task import TaskResult
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.choice import likelihood_choice
from alignslm_tasks.zerospeech import FORMATS, load_split


def read_submission(submission_file: Path) -> dict[str, float]:
    """Parse `<filename> <score>` lines (blank lines ignored); a `.wav` suffix on the filename is dropped."""
    submission_file = Path(submission_file)
    try:
        text = submission_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{submission_file}: cannot read submission file ({e})")
    scores: dict[str, float] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise UserError(f"{submission_file}: line {number}: expected '<filename> <score>', got {line.strip()!r}")
        name, value = fields
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if math.isnan(score):
            raise UserError(f"{submission_file}: line {number}: score must be a number, not {value!r}")
        name = name[: -len(".wav")] if name.endswith(".wav") else name
        if name in scores:
            raise UserError(f"{submission_file}: line {number}: {name!r} already scored on line {first_line[name]}")
        scores[name] = score
        first_line[name] = number
    return scores


def score_submission(submission_file: Path, gold_dir: Path, kind: str) -> TaskResult:
    """Metrics of a submission file; `gold_dir` is the split folder holding gold.csv, `kind` lexical or syntactic.

    Every filename in gold.csv must be scored, and the submission may not name files gold.csv does not list.
    """
    if kind not in FORMATS:
        raise UserError(f"kind must be one of {sorted(FORMATS)}, not {kind!r}")
    fmt = FORMATS[kind]
    gold_dir = Path(gold_dir)
    if gold_dir.name == "gold.csv" and gold_dir.is_file():
        raise UserError(f"--gold {gold_dir}: give the folder holding gold.csv, i.e. --gold {gold_dir.parent}")
    if not gold_dir.is_dir():
        raise UserError(f"--gold {gold_dir}: folder not found; give the ZeroSpeech 2021 {fmt.name} split folder that "
                        "holds gold.csv (e.g. DATA/lexical/dev)")
    data = load_split(gold_dir, fmt, check_audio=False)
    scores = read_submission(submission_file)
    gold_csv = data.metadata_files[0]
    missing = sorted(k for k in data.items if k not in scores)
    if missing:
        raise UserError(
            f"{submission_file}: no score for {missing[0]!r} (listed in {gold_csv}; {len(missing)} missing in total); "
            "a submission must score every gold file"
        )
    extra = sorted(k for k in scores if k not in data.items)
    if extra:
        raise UserError(
            f"{submission_file}: {len(extra)} filename(s) not in {gold_csv}, e.g. {extra[0]!r}; check that the "
            "submission and gold.csv are the same split and kind"
        )
    choice_scores = {
        c.id: likelihood_choice([scores[k] for k in c.candidates], c.positive) for c in data.choices
    }
    return fmt.aggregate(data, choice_scores)
