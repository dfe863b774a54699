"""Multiple-choice likelihood task kinds: `storycloze` (spoken and topic StoryCloze) and `salmon` (SALMon).

Both find their candidates from the released file naming (StoryCloze may use a manifest CSV instead). Item keys
are paths relative to the task's data dir, in posix form and without the extension. The helpers every task kind
shares (`scored_choices`, `read_csv_rows`, `check_settings`, `compare_candidate_files`, `ACCURACY`) live here too.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Sequence

from alignslm_eval.api.registry import register_task_kind
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.task import SPEC_OVERRIDES, AudioItem, Choice, Metric, Task, TaskData, TaskResult, TaskSpec
from alignslm_eval.io.audio import file_sha256
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.choice import mean_metric

log = logging.getLogger(__name__)

#: what every metric and breakdown of a likelihood task kind is: a share of choices won by the positive candidate.
#: A kind's `metric_info` maps the names it reports to it; results files record that and the leaderboard reads it.
ACCURACY = MetricInfo.fraction("higher", percent=True)


def scored_choices(data: TaskData, choice_scores: Mapping[str, float]) -> list[tuple[Choice, float]]:
    """Each choice of `data` with its score, in choice id order (a fixed order keeps float sums reproducible)."""
    missing = [c.id for c in data.choices if c.id not in choice_scores]
    if missing:
        raise ValueError(f"no score for {len(missing)} choice(s), e.g. {missing[0]!r}")
    return [(c, float(choice_scores[c.id])) for c in sorted(data.choices, key=lambda c: c.id)]


def aggregate_accuracy(data: TaskData, choice_scores: Mapping[str, float]) -> TaskResult:
    """Headline "accuracy": the mean per-choice score with its standard error over choices."""
    return TaskResult("accuracy", {"accuracy": mean_metric(s for _, s in scored_choices(data, choice_scores))})


def read_csv_rows(path: Path, required: Sequence[str], what: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV with a header; values stripped, absent ones empty.

    UserError if the file cannot be read or lacks a `required` column (`what` names the file's role).
    """
    path = Path(path)
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark that would corrupt the first column name
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise UserError(
                    f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'}); "
                    f"{what} needs {','.join(required)}"
                )
            return [
                (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}) for row in reader
            ]
    except OSError as e:
        raise UserError(f"{path}: cannot read {what} ({e})")
    except (UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path}: not a readable CSV file ({e}); {what} must be UTF-8 CSV with a header row")


def compare_candidate_files(paths: Sequence[Path]) -> tuple[Optional[tuple[int, int]], Optional[tuple[int, int]]]:
    """(same_file, same_bytes) for the existing candidate files of one choice: each the indices (i, j) of the first
    two candidates that are one file on disk (a repeated path under any spelling, a symlink or a hard link), or that
    are two files with identical bytes; None when there are none.

    A choice between a file and itself scores 0.5 whatever the model. Only candidates of equal size are hashed, so
    this costs one stat per file on real data.
    """
    stats = []
    for path in paths:
        try:
            stats.append(os.stat(path))
        except OSError as e:  # e.g. a symlink whose target is gone
            raise UserError(f"{path}: cannot read file ({e.strerror or e}); restore it or remove it from the benchmark")
    by_size: dict[int, list[int]] = defaultdict(list)
    for j, st in enumerate(stats):
        by_size[st.st_size].append(j)
    groups = [indices for indices in by_size.values() if len(indices) > 1]
    for indices in groups:
        for n, i in enumerate(indices):
            for j in indices[n + 1:]:
                if os.path.samestat(stats[i], stats[j]):
                    return (i, j), None
    for indices in groups:
        first_with: dict[str, int] = {}
        for j in indices:
            digest = file_sha256(paths[j])
            if digest in first_with:
                return None, (first_with[digest], j)
            first_with[digest] = j
    return None, None


def warn_identical_audio(where: str, examples: Sequence[str]) -> None:
    """One logged warning for the choices (`examples`: "<choice id>: <file> and <file>") whose candidates are
    different files with the same bytes: not wrong data as such, but each scores 0.5 whatever the model."""
    if examples:
        log.warning(
            "%s: %d choice(s) compare two files with identical audio, e.g. %s; each scores 0.5 whatever the model, "
            "so check how those files were made", where, len(examples), examples[0],
        )


def _within(path: Path, folder: Path) -> bool:
    def inside(p: str, f: str) -> bool:
        return os.path.commonpath([p, f]) == f

    # Lexically, so a symlink placed inside the folder counts as inside; or once resolved, so an absolute path
    # spelled through another name of the folder counts too.
    return inside(os.path.abspath(path), os.path.abspath(folder)) or inside(
        os.path.realpath(path), os.path.realpath(folder)
    )


def audio_path_in(folder: Path, value: str) -> Optional[Path]:
    """The file a benchmark list (manifest, gold.csv) names by `value`: relative to `folder` or absolute, with `.`
    and `..` folded away (`sub/../a.wav` is `a.wav`); None if it lies outside `folder`.

    A list must not read files outside its benchmark's folder: `../` in a downloaded manifest could reach anything.
    """
    folded = os.path.normpath(value)
    if os.path.isabs(folded):
        path = Path(folded)
    elif folded == os.pardir or folded.startswith(os.pardir + os.sep):
        return None
    else:
        path = Path(folder) / folded
    return path if _within(path, Path(folder)) else None


def _item_key(path: Path, data_dir: Path) -> str:
    try:
        rel = path.relative_to(data_dir)
    except ValueError:
        rel = path
    return rel.with_suffix("").as_posix()


def _add_item(items: dict[str, AudioItem], path: Path, data_dir: Path, where: str) -> str:
    key = _item_key(path, data_dir)
    known = items.get(key)
    if known is not None and known.path != path:
        raise UserError(f"{where}: {path} and {known.path} differ only by extension; rename one of them")
    items[key] = AudioItem(key=key, path=path)
    return key


def _require_dir(data_dir: Path, spec: TaskSpec, what: str) -> Path:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(
            f"{data_dir}: {spec.name} data folder not found; download {what} and pass the folder holding "
            f"{spec.data_dir}/ as --data-root"
        )
    return data_dir


def check_settings(spec: TaskSpec, allowed: Sequence[str]) -> None:
    """UserError naming the task file if `spec.settings` has a key the kind does not know (e.g. a --set typo)."""
    unknown = sorted(set(spec.settings) - set(allowed))
    if unknown:
        raise UserError(f"{spec.source}: unknown setting(s) {unknown} for kind {spec.kind!r}; allowed: "
                        f"{[*allowed, *SPEC_OVERRIDES]}")


# ---------------------------------------------------------------------------------------------------- StoryCloze

_STORY_FILE = re.compile(r"^(?P<stem>.+)_(?P<label>correct|incorrect)\.wav$")


def storycloze_from_names(data_dir: Path) -> TaskData:
    """Pairs `<n>_<storyid>_correct.wav` with `<n>_<storyid>_incorrect.wav`, searched recursively.

    The choice id is the pair's path relative to `data_dir` without the suffix (`<n>_<storyid>` at top level).
    """
    data_dir = Path(data_dir)
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in sorted(data_dir.rglob("*.wav")):
        match = _STORY_FILE.match(path.name)
        if match:
            pair_id = (path.parent.relative_to(data_dir) / match["stem"]).as_posix()
            found[pair_id][match["label"]] = path
    if not found:
        raise UserError(
            f"{data_dir}: no <n>_<storyid>_correct.wav / _incorrect.wav files found (searched recursively); "
            "extract the StoryCloze audio here, or add a manifest.csv with columns id,positive,negative"
        )
    items: dict[str, AudioItem] = {}
    choices = []
    identical: list[str] = []
    for pair_id in sorted(found):
        files = found[pair_id]
        for label, twin in (("correct", "incorrect"), ("incorrect", "correct")):
            if twin not in files:
                raise UserError(
                    f"{files[label]}: no matching {Path(pair_id).name}_{twin}.wav next to it; every story needs "
                    "both endings, so restore the missing file or remove this one"
                )
        paths = (files["correct"], files["incorrect"])
        same_file, same_bytes = compare_candidate_files(paths)
        if same_file:
            raise UserError(
                f"{paths[1]}: the same file on disk as {paths[0]} (a link); the story would be scored against itself, "
                "so replace it with the recording of the incorrect ending"
            )
        if same_bytes:
            identical.append(f"{pair_id}: {paths[0].name} and {paths[1].name}")
        keys = tuple(_add_item(items, path, data_dir, str(data_dir)) for path in paths)
        choices.append(Choice(id=pair_id, candidates=keys, positive=0))
    warn_identical_audio(str(data_dir), identical)
    return TaskData(items=items, choices=choices)


def storycloze_from_manifest(data_dir: Path, manifest: Path) -> TaskData:
    """Pairs from a CSV with columns `id,positive,negative`: audio paths relative to `data_dir`, or absolute, and
    either way inside `data_dir`. The two files of a row must be different files."""
    data_dir, manifest = Path(data_dir), Path(manifest)
    rows = read_csv_rows(manifest, ("id", "positive", "negative"), "a StoryCloze manifest")
    items: dict[str, AudioItem] = {}
    choices = []
    identical: list[str] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        if not row["id"]:
            raise UserError(f"{manifest}: line {line}: empty id; give every pair a unique id")
        if row["id"] in seen:
            raise UserError(f"{manifest}: line {line}: id {row['id']!r} already used on line {seen[row['id']]}")
        seen[row["id"]] = line
        paths = []
        for column in ("positive", "negative"):
            if not row[column]:
                raise UserError(f"{manifest}: line {line}: empty {column!r}; give the audio file's path")
            path = audio_path_in(data_dir, row[column])
            if path is None:
                raise UserError(
                    f"{manifest}: line {line}: {column} path {row[column]!r} is outside the data folder {data_dir}; "
                    "move the audio under it and give the path relative to it"
                )
            if not path.is_file():
                raise UserError(f"{manifest}: line {line}: {column} file {path} not found; fix the path")
            paths.append(path)
        same_file, same_bytes = compare_candidate_files(paths)
        if same_file:
            raise UserError(
                f"{manifest}: line {line}: positive {row['positive']!r} and negative {row['negative']!r} are the same "
                "file on disk, so the pair would always score 0.5; give the row two different recordings"
            )
        if same_bytes:
            identical.append(f"line {line} ({row['id']}): {row['positive']} and {row['negative']}")
        keys = tuple(_add_item(items, path, data_dir, f"{manifest}: line {line}") for path in paths)
        choices.append(Choice(id=row["id"], candidates=keys, positive=0))
    if not choices:
        raise UserError(f"{manifest}: no rows; list one pair per line as id,positive,negative")
    warn_identical_audio(str(manifest), identical)
    return TaskData(items=items, choices=choices, metadata_files=[manifest])


@register_task_kind("storycloze")
class StoryCloze(Task):
    """Spoken / topic StoryCloze: which of two spoken endings continues the spoken story?

    Setting `manifest` (a CSV path, relative to the data dir or absolute) selects the pairs explicitly; otherwise a
    `manifest.csv` in the data dir is used if present, else the released `_correct` / `_incorrect` file naming.
    """

    metric_info: ClassVar[dict[str, MetricInfo]] = {"accuracy": ACCURACY}

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        check_settings(spec, ["manifest"])

    def load(self, data_dir: Path, check_audio: bool = True) -> TaskData:
        data_dir = _require_dir(data_dir, self.spec, "the spoken StoryCloze benchmark")
        setting: Optional[Any] = self.spec.settings.get("manifest")
        if setting:
            manifest = data_dir / str(setting)
            if not manifest.is_file():
                raise UserError(f"{self.spec.source}: settings.manifest: {manifest} not found; fix the path")
            return storycloze_from_manifest(data_dir, manifest)
        if (data_dir / "manifest.csv").is_file():
            return storycloze_from_manifest(data_dir, data_dir / "manifest.csv")
        return storycloze_from_names(data_dir)

    def aggregate(self, data: TaskData, choice_scores: dict[str, float]) -> TaskResult:
        return aggregate_accuracy(data, choice_scores)


# -------------------------------------------------------------------------------------------------------- SALMon

SALMON_PARTS: tuple[str, ...] = (
    "bg_alignment",
    "bg_all_consistency",
    "bg_domain_consistency",
    "gender_consistency",
    "rir_consistency",
    "sentiment_alignment",
    "sentiment_consistency",
    "speaker_consistency",
)

_SALMON_FILE = re.compile(r"^sample_(?P<idx>\d+)_(?P<k>\d+)\.wav$")


def load_salmon(data_dir: Path, parts: Sequence[str] = SALMON_PARTS) -> TaskData:
    """Read `<data_dir>/<part>/sample_<idx>_<k>.wav`; k = 0 is the positive, k >= 1 the negatives (sorted by k).

    Choice ids are `<part>/sample_<idx>`, meta holds the part and sample index.
    """
    data_dir = Path(data_dir)
    absent = [p for p in parts if not (data_dir / p).is_dir()]
    if absent:
        present = sorted(d.name for d in data_dir.iterdir() if d.is_dir() and d.name in SALMON_PARTS)
        hint = f"--set salmon.parts={','.join(present)}" if present else "the full benchmark"
        raise UserError(
            f"{data_dir}: SALMon part folder(s) {', '.join(absent)} not found "
            f"(present: {', '.join(present) or 'none'}); download the missing parts or evaluate only those present "
            f"({hint})"
        )
    items: dict[str, AudioItem] = {}
    choices = []
    identical: list[str] = []
    for part in parts:
        part_dir = data_dir / part
        samples: dict[int, dict[int, Path]] = defaultdict(dict)
        for path in sorted(part_dir.glob("*.wav")):
            match = _SALMON_FILE.match(path.name)
            if not match:
                raise UserError(f"{path}: not a SALMon sample name (sample_<idx>_<k>.wav); move it out of {part_dir}")
            idx, k = int(match["idx"]), int(match["k"])
            if k in samples[idx]:
                raise UserError(f"{path}: same sample and candidate numbers as {samples[idx][k]}; remove one")
            samples[idx][k] = path
        if not samples:
            raise UserError(f"{part_dir}: no sample_<idx>_<k>.wav files; re-extract this SALMon part")
        for idx in sorted(samples):
            files = samples[idx]
            if 0 not in files or len(files) < 2:
                raise UserError(
                    f"{part_dir}: sample {idx} needs sample_{idx}_0.wav (the positive) and at least one negative "
                    f"sample_{idx}_<k>.wav, found k = {sorted(files)}; re-extract this SALMon part"
                )
            paths = [files[k] for k in sorted(files)]
            same_file, same_bytes = compare_candidate_files(paths)
            if same_file:
                i, j = same_file
                raise UserError(
                    f"{paths[j]}: the same file on disk as {paths[i]} (a link); sample {idx} would compare a "
                    "recording with itself, so re-extract this SALMon part"
                )
            if same_bytes:
                i, j = same_bytes
                identical.append(f"{part}/sample_{idx}: {paths[i].name} and {paths[j].name}")
            keys = tuple(_add_item(items, path, data_dir, str(part_dir)) for path in paths)
            meta = {"part": part, "sample": idx}
            choices.append(Choice(id=f"{part}/sample_{idx}", candidates=keys, positive=0, meta=meta))
    warn_identical_audio(str(data_dir), identical)
    return TaskData(items=items, choices=choices)


def aggregate_salmon(data: TaskData, choice_scores: Mapping[str, float]) -> TaskResult:
    """Per-part accuracy ("by_part"); headline "accuracy" is their unweighted mean over the parts present.

    The macro stderr treats parts as independent: sqrt(sum of squared part stderrs) / number of parts.
    "accuracy_micro" is the mean over all samples.
    """
    scored = scored_choices(data, choice_scores)
    by_part: dict[str, list[float]] = defaultdict(list)
    for choice, score in scored:
        by_part[choice.meta["part"]].append(score)
    order = {p: i for i, p in enumerate(SALMON_PARTS)}
    parts = sorted(by_part, key=lambda p: (order.get(p, len(order)), p))
    part_metrics = {p: mean_metric(by_part[p]) for p in parts}
    if part_metrics:
        macro = Metric(
            value=sum(m.value for m in part_metrics.values()) / len(part_metrics),
            stderr=math.sqrt(sum(m.stderr**2 for m in part_metrics.values())) / len(part_metrics),
            n=len(scored),
        )
    else:
        macro = Metric(math.nan, math.nan, 0)
    return TaskResult(
        headline="accuracy",
        metrics={"accuracy": macro, "accuracy_micro": mean_metric(s for _, s in scored)},
        breakdowns={"by_part": part_metrics},
    )


def _parts_setting(spec: TaskSpec) -> tuple[str, ...]:
    raw = spec.settings.get("parts", "all")
    if isinstance(raw, str):
        names = [p.strip() for p in raw.split(",") if p.strip()]
    elif isinstance(raw, (list, tuple)) and all(isinstance(p, str) for p in raw):
        names = [p.strip() for p in raw]
    else:
        raise UserError(f"{spec.source}: settings.parts must be a list of part names or 'all', not {raw!r}")
    if names == ["all"]:
        return SALMON_PARTS
    unknown = [p for p in names if p not in SALMON_PARTS]
    if unknown or not names:
        what = f"unknown part(s) {', '.join(unknown)}" if unknown else "no parts given"
        raise UserError(f"{spec.source}: settings.parts: {what}; choose 'all' or from {', '.join(SALMON_PARTS)}")
    return tuple(dict.fromkeys(names))


@register_task_kind("salmon")
class Salmon(Task):
    """SALMon: does the model prefer the acoustically consistent / aligned recording over its altered versions?

    Setting `parts`: a list (or comma-separated string) of part folders to evaluate, default 'all' eight.
    """

    metric_info: ClassVar[dict[str, MetricInfo]] = dict.fromkeys(("accuracy", "accuracy_micro", "by_part"), ACCURACY)

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        check_settings(spec, ["parts"])
        self.parts = _parts_setting(spec)

    def load(self, data_dir: Path, check_audio: bool = True) -> TaskData:
        return load_salmon(_require_dir(data_dir, self.spec, "the SALMon benchmark"), self.parts)

    def aggregate(self, data: TaskData, choice_scores: dict[str, float]) -> TaskResult:
        return aggregate_salmon(data, choice_scores)
