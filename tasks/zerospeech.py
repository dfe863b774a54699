"""ZeroSpeech 2021 sWUGGY (`zerospeech_lexical`) and sBLIMP (`zerospeech_syntactic`) task kinds.

Layout under the task's data dir: ``<split>/gold.csv`` and ``<split>/<filename>.wav`` (split is dev or test). Each
gold row is one audio file; a correct (``correct == 1``) and an incorrect row with the same pair key form one
Choice. The item key is the gold ``filename`` (no extension), which is also the name the official ZeroSpeech
submission file uses, so `write_outputs` can emit a submission the official evaluation accepts.

Gold parsing and aggregation are module-level functions so that `alignslm_eval.evaluate.zerospeech` can score a
submission made elsewhere (no wav files needed) with exactly the same code as a live evaluation.
"""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Mapping

from alignslm_eval.api.registry import register_task_kind
from alignslm_eval.api.results import MetricInfo
from alignslm_eval.api.task import AudioItem, Choice, Task, TaskData, TaskResult, TaskSpec
from alignslm_eval.io.errors import UserError
from alignslm_eval.scoring.choice import mean_metric
from alignslm_tasks.choice import (
    ACCURACY,
    audio_path_in,
    check_settings,
    compare_candidate_files,
    read_csv_rows,
    scored_choices,
    warn_identical_audio,
)

log = logging.getLogger(__name__)

SPLITS = ("dev", "test")
#: Choice.meta["pairing"] of a choice the official sBLIMP rule forms where the pair keys form another
POSITIONAL = "official-positional"
POSITIONAL_METRIC = "accuracy_official_positional"

#: (label, lowest count, highest count) of the sWUGGY word-frequency bands; the count is the gold `frequency` column
#: (occurrences in the LibriSpeech training text), 0 meaning out of vocabulary. The boundaries follow the official
#: ZeroSpeech 2021 evaluation, which cuts half-open intervals [0, 1), [1, 5), [5, 20), [20, 100), [100, inf) under
#: these labels: a count of 5 is in "6-20" there, and so here, so per-band numbers compare with published ones.
FREQUENCY_BANDS: tuple[tuple[str, int, float], ...] = (
    ("oov", 0, 0),
    ("1-5", 1, 4),
    ("6-20", 5, 19),
    ("21-100", 20, 99),
    (">100", 100, math.inf),
)


def frequency_band(frequency: int) -> str:
    """The sWUGGY band label of a raw word count."""
    for label, low, high in FREQUENCY_BANDS:
        if low <= frequency <= high:
            return label
    raise ValueError(f"word frequency must be a non-negative count, not {frequency}")


@dataclass(frozen=True)
class GoldFormat:
    """How one ZeroSpeech gold.csv is read, paired and aggregated."""

    name: str
    columns: tuple[str, ...]
    #: gold columns that identify one (correct, incorrect) pair
    pair_fields: tuple[str, ...]
    #: columns copied from the correct row into Choice.meta
    meta_fields: tuple[str, ...]
    #: meta columns that must hold integers
    int_fields: tuple[str, ...]
    aggregate: Callable[[TaskData, Mapping[str, float]], TaskResult]
    #: whether the official scorer pairs the k-th correct row with the k-th incorrect row of gold.csv (sBLIMP)
    #: rather than by pair key (sWUGGY merges on id and voice)
    pairs_by_position: bool = False


def _mean_over_voices(
    data: TaskData, choice_scores: Mapping[str, float], group_fields: tuple[str, ...]
) -> list[tuple[dict, float]]:
    """Average the per-voice choice scores of each group; returns (meta of the group's first choice, mean)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    metas: dict[tuple, dict] = {}
    for choice, score in scored_choices(data, choice_scores):
        key = tuple(choice.meta[f] for f in group_fields)
        groups[key].append(score)
        metas.setdefault(key, choice.meta)
    return [(metas[k], sum(v) / len(v)) for k, v in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0])))]


def aggregate_lexical(data: TaskData, choice_scores: Mapping[str, float]) -> TaskResult:
    """sWUGGY metrics: voices are averaged per word id, then everything is a mean (and stderr) over word ids.

    "accuracy" covers all ids, "in_vocab" leaves out the oov band; breakdowns "by_frequency" (every band of
    FREQUENCY_BANDS in band order, one without ids as n = 0) and "by_length" (phone length, ascending).
    """
    per_id = _mean_over_voices(data, choice_scores, ("id",))
    by_band: dict[str, list[float]] = defaultdict(list)
    by_length: dict[int, list[float]] = defaultdict(list)
    for meta, score in per_id:
        by_band[frequency_band(meta["frequency"])].append(score)
        by_length[meta["length"]].append(score)
    in_vocab = [s for meta, s in per_id if meta["frequency"] > 0]
    return TaskResult(
        headline="accuracy",
        metrics={"accuracy": mean_metric(s for _, s in per_id), "in_vocab": mean_metric(in_vocab)},
        breakdowns={
            # every band, an empty one with n = 0, as the official scorer lists them
            "by_frequency": {label: mean_metric(by_band[label]) for label, _, _ in FREQUENCY_BANDS},
            "by_length": {str(n): mean_metric(by_length[n]) for n in sorted(by_length)},
        },
    )


def aggregate_syntactic(data: TaskData, choice_scores: Mapping[str, float]) -> TaskResult:
    """sBLIMP metrics: voices are averaged per (type, subtype, id), then means (and stderr) over those pairs.

    Breakdowns "by_type" and "by_subtype" (keyed "type/subtype"), both sorted by name. Where gold.csv's row order
    pairs rows otherwise than their keys (see `positional_choices`), "accuracy_official_positional" is the official
    scorer's figure beside the key-paired "accuracy".
    """
    keyed = [c for c in data.choices if c.meta.get("pairing") != POSITIONAL]
    positional = [c for c in data.choices if c.meta.get("pairing") == POSITIONAL]
    data = TaskData(data.items, keyed, data.metadata_files)
    per_pair = _mean_over_voices(data, choice_scores, ("type", "subtype", "id"))
    by_type: dict[str, list[float]] = defaultdict(list)
    by_subtype: dict[str, list[float]] = defaultdict(list)
    for meta, score in per_pair:
        by_type[meta["type"]].append(score)
        by_subtype[f"{meta['type']}/{meta['subtype']}"].append(score)
    metrics = {"accuracy": mean_metric(s for _, s in per_pair)}
    if positional:
        official = _mean_over_voices(TaskData(data.items, positional, data.metadata_files), choice_scores,
                                     ("type", "subtype", "id"))
        metrics[POSITIONAL_METRIC] = mean_metric(s for _, s in official)
    return TaskResult(
        headline="accuracy",
        metrics=metrics,
        breakdowns={
            "by_type": {k: mean_metric(by_type[k]) for k in sorted(by_type)},
            "by_subtype": {k: mean_metric(by_subtype[k]) for k in sorted(by_subtype)},
        },
    )


LEXICAL = GoldFormat(
    name="lexical",
    columns=("filename", "id", "voice", "frequency", "word", "phones", "length", "correct"),
    pair_fields=("id", "voice"),
    meta_fields=("id", "voice", "frequency", "length", "word"),
    int_fields=("frequency", "length"),
    aggregate=aggregate_lexical,
)

# The pair key includes type and subtype because the official sBLIMP evaluation treats an id as scoped by
# (type, subtype); with globally unique ids this pairs exactly as (id, voice) would.
SYNTACTIC = GoldFormat(
    name="syntactic",
    columns=("filename", "id", "voice", "type", "subtype", "transcription", "correct"),
    pair_fields=("type", "subtype", "id", "voice"),
    meta_fields=("id", "voice", "type", "subtype"),
    int_fields=(),
    aggregate=aggregate_syntactic,
    pairs_by_position=True,
)

FORMATS: dict[str, GoldFormat] = {"lexical": LEXICAL, "syntactic": SYNTACTIC}


def _parse_int(value: str, gold_csv: Path, line: int, column: str) -> int:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not number.is_integer() or number < 0:
        raise UserError(
            f"{gold_csv}: line {line}: column {column!r} must be a non-negative integer, not {value!r}; "
            "fix the row or re-download the benchmark"
        )
    return int(number)


def _check_filename(filename: str, gold_csv: Path, line: int) -> None:
    """UserError unless `filename` is a plain relative name the audio lookup and the submission format both keep."""
    where = f"{gold_csv}: line {line}: filename {filename!r}"
    if not filename:
        raise UserError(f"{gold_csv}: line {line}: empty filename; fix or remove the row")
    if any(ch.isspace() for ch in filename):
        # The submission file is `<filename> <score>` per line and every reader (the official one, read_submission)
        # splits on whitespace, so such a file could be evaluated but its submission never scored.
        raise UserError(f"{where} contains whitespace, which a ZeroSpeech submission line ('<filename> <score>') "
                        "cannot hold; rename the file and its gold row without spaces")
    if os.path.isabs(filename) or audio_path_in(gold_csv.parent, filename) is None:
        raise UserError(f"{where} is not a name inside {gold_csv.parent}: gold filenames are relative to the gold.csv "
                        "folder (no leading '/' or '..'), so fix the row")
    if os.path.normpath(filename) != filename:
        # One spelling per file: the name is also the submission key, and two spellings could pair a file with itself.
        raise UserError(f"{where} is not in plain form; write it as {os.path.normpath(filename)!r}")
    if filename.endswith(".wav"):
        raise UserError(f"{where} ends in .wav: gold filenames carry no extension (the audio is <filename>.wav) and "
                        f"submission readers drop a .wav suffix; write {filename[: -len('.wav')]!r}")


def read_gold(gold_csv: Path, fmt: GoldFormat) -> tuple[list[Choice], dict[str, int]]:
    """Pair the correct and incorrect rows of a ZeroSpeech gold.csv into Choices (sorted by id).

    Rows are matched on `fmt.pair_fields`, never by their order in the file; for a format whose official scorer
    pairs by position, its pairs follow where they differ (`positional_choices`). Each Choice has candidates
    (correct filename, incorrect filename), positive 0, and the correct row's `fmt.meta_fields` as meta. Also
    returns each filename's line number. Filenames must be plain relative names inside the gold.csv folder,
    without whitespace (see `_check_filename`).
    """
    gold_csv = Path(gold_csv)
    rows = read_csv_rows(gold_csv, fmt.columns, f"a ZeroSpeech {fmt.name} gold.csv")

    groups: dict[tuple[str, ...], dict[int, list[tuple[int, dict[str, str]]]]] = defaultdict(lambda: {0: [], 1: []})
    seen_files: dict[str, int] = {}
    for line, row in rows:
        filename = row["filename"]
        _check_filename(filename, gold_csv, line)
        if filename in seen_files:
            raise UserError(
                f"{gold_csv}: line {line}: filename {filename!r} already listed on line {seen_files[filename]}; "
                "each file must appear once"
            )
        seen_files[filename] = line
        if row["correct"] not in ("0", "1"):
            raise UserError(f"{gold_csv}: line {line}: column 'correct' must be 0 or 1, not {row['correct']!r}")
        groups[tuple(row[f] for f in fmt.pair_fields)][int(row["correct"])].append((line, row))

    choices = []
    for key, by_label in groups.items():
        if len(by_label[1]) != 1 or len(by_label[0]) != 1:
            what = " ".join(f"{f} {v!r}" for f, v in zip(fmt.pair_fields, key))
            lines = sorted(line for rows_ in by_label.values() for line, _ in rows_)
            raise UserError(
                f"{gold_csv}: {what} has {len(by_label[1])} correct and {len(by_label[0])} incorrect row(s) "
                f"(line(s) {', '.join(map(str, lines))}); each pair needs exactly one of each"
            )
        (pos_line, pos), (_, neg) = by_label[1][0], by_label[0][0]
        meta = {
            f: _parse_int(pos[f], gold_csv, pos_line, f) if f in fmt.int_fields else pos[f] for f in fmt.meta_fields
        }
        choices.append(Choice(id="/".join(key), candidates=(pos["filename"], neg["filename"]), positive=0, meta=meta))
    if not choices:
        raise UserError(f"{gold_csv}: no rows; re-download the benchmark")
    choices.sort(key=lambda c: c.id)
    if fmt.pairs_by_position:
        choices += positional_choices(gold_csv, fmt, [row for _, row in rows], choices)
    return choices, seen_files


def positional_choices(gold_csv: Path, fmt: GoldFormat, rows: list[dict[str, str]],
                       keyed: list[Choice]) -> list[Choice]:
    """The pairs the official ZeroSpeech 2021 sBLIMP scorer forms where they differ from the key pairs: it pairs the
    k-th correct row with the k-th incorrect row in gold.csv's order (zerospeech2021/syntactic.py, load_data,
    zerospeech/zerospeech2021 @ 199624a) and takes type, subtype, id and voice from the correct row. An ordered
    gold.csv pairs the same rows either way, and none are returned; otherwise every positional pair is returned
    (meta "pairing": POSITIONAL), so the official figure can be reported beside the key-paired one, with a warning.
    `rows`: gold.csv's rows in file order; `keyed`: the key pairs (`read_gold`)."""
    correct = [row for row in rows if row["correct"] == "1"]
    incorrect = [row for row in rows if row["correct"] == "0"]
    pairs = [(c["filename"], i["filename"]) for c, i in zip(correct, incorrect)]
    keyed_pairs = {tuple(c.candidates) for c in keyed}
    differ = sum(1 for pair in pairs if pair not in keyed_pairs)
    if not differ:
        return []
    log.warning("%s: the official sBLIMP scorer pairs rows by position (k-th correct with k-th incorrect row), and in "
                "this file's order %d of %d positional pairs are not the key-paired ones; both figures are reported: "
                "accuracy (pairs by type, subtype, id and voice) and %s (the official rule)", gold_csv, differ,
                len(pairs), POSITIONAL_METRIC)
    return [Choice(id=f"{POSITIONAL}/{k:07d}", candidates=pair, positive=0,
                   meta={**{f: c[f] for f in fmt.meta_fields}, "pairing": POSITIONAL})
            for k, (pair, c) in enumerate(zip(pairs, correct))]


def load_split(split_dir: Path, fmt: GoldFormat, check_audio: bool = True) -> TaskData:
    """Read `<split_dir>/gold.csv`; with `check_audio`, every listed `<split_dir>/<filename>.wav` must exist and
    the two files of a pair must be different files (not one linked to the other).

    `check_audio=False` is for scoring a submission file made elsewhere, where only gold.csv is needed.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise UserError(
            f"{split_dir}: ZeroSpeech {fmt.name} split folder not found; download the ZeroSpeech 2021 dataset "
            f"and check --data-root and the task's split setting"
        )
    gold_csv = split_dir / "gold.csv"
    if not gold_csv.is_file():
        raise UserError(
            f"{gold_csv}: gold file not found; put the ZeroSpeech 2021 {fmt.name} gold.csv of this split there "
            "(it pairs each wav with its id, voice and correct label)"
        )
    choices, line_of = read_gold(gold_csv, fmt)
    items = {
        name: AudioItem(key=name, path=split_dir / f"{name}.wav") for choice in choices for name in choice.candidates
    }
    if check_audio:
        absent = sorted(k for k, item in items.items() if not item.path.is_file())
        if absent:
            raise UserError(
                f"{items[absent[0]].path}: audio file listed in {gold_csv} not found ({len(absent)} missing in "
                "total); re-extract the benchmark so every gold filename has its .wav"
            )
        identical = []
        for choice in choices:
            if choice.meta.get("pairing") == POSITIONAL:
                continue  # the official rule's other pairing of the same files
            pos, neg = choice.candidates
            same_file, same_bytes = compare_candidate_files([items[pos].path, items[neg].path])
            if same_file:
                raise UserError(
                    f"{gold_csv}: lines {line_of[pos]} and {line_of[neg]}: {pos}.wav and {neg}.wav are the same file "
                    "on disk (a link), so the pair would always score 0.5; re-extract the benchmark"
                )
            if same_bytes:
                identical.append(f"{choice.id}: {pos}.wav and {neg}.wav")
        warn_identical_audio(str(gold_csv), identical)
    return TaskData(items=items, choices=choices, metadata_files=[gold_csv])


#: how slamkit's sWUGGY / sBLIMP folders name their wavs: an integer pair index, then this separator
#: (slamkit/metric/modelling_metric.py: swuggy sep "_", sblimp sep "+", slp-rl/slamkit @ 388b402)
SLAMKIT_SEPARATORS = {"lexical": "_", "syntactic": "+"}


def refuse_slamkit_layout(data_dir: Path, fmt: GoldFormat) -> None:
    """A UserError when `data_dir` (with no gold.csv) holds slamkit's layout for this task: wavs named
    `<n><sep>...`, in the folder or one level down. slamkit sorts them by n and pairs them two by two, taking the
    first of each pair, in the order the directory lists them, as the positive; nothing in the names says which is
    the word, so such a folder is refused rather than paired by a guess."""
    sep = SLAMKIT_SEPARATORS[fmt.name]
    wavs = [*data_dir.glob("*.wav"), *data_dir.glob("*/*.wav")]
    numbered = [w for w in wavs if w.name.split(sep)[0].isdigit() and sep in w.name]
    if numbered and len(numbered) == len(wavs):
        raise UserError(
            f"{data_dir}: slamkit's {fmt.name} folder layout ({numbered[0].name}, ...): slamkit pairs these files two "
            "by two by their leading number and takes the first one the directory lists as the positive, which the "
            "file names do not state; alignslm does not guess a pairing: give the ZeroSpeech 2021 layout "
            f"(<split>/gold.csv and its wavs) instead (docs/tasks.md, slamkit's folders)")


def write_submission(data: TaskData, item_scores: Mapping[str, float], path: Path) -> Path:
    """Write the ZeroSpeech `<filename> <score>` file: one line per item, sorted by filename."""
    missing = [k for k in data.items if k not in item_scores]
    if missing:
        raise ValueError(f"no score for {len(missing)} item(s), e.g. {missing[0]!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # repr() of a Python float round-trips exactly, so re-scoring the file reproduces ties and orderings.
    lines = [f"{key} {float(item_scores[key])!r}\n" for key in sorted(data.items)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


class ZeroSpeechTask(Task):
    """Shared behaviour of the two ZeroSpeech 2021 likelihood kinds; `fmt` selects lexical or syntactic."""

    fmt: GoldFormat

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        check_settings(spec, ["split"])
        split = str(spec.settings.get("split", "dev"))
        if split not in SPLITS:
            raise UserError(f"{spec.source}: settings.split must be one of {list(SPLITS)}, not {split!r}")
        self.split = split

    def load(self, data_dir: Path, check_audio: bool = True) -> TaskData:
        """Read `<data_dir>/<split>/` (gold.csv and, with `check_audio`, the wav files it lists)."""
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise UserError(
                f"{data_dir}: {self.spec.name} data folder not found; download ZeroSpeech 2021 and pass the folder "
                f"holding {self.spec.data_dir}/ as --data-root"
            )
        if not (data_dir / self.split / "gold.csv").is_file():
            refuse_slamkit_layout(data_dir, self.fmt)
        return load_split(data_dir / self.split, self.fmt, check_audio)

    def aggregate(self, data: TaskData, choice_scores: dict[str, float]) -> TaskResult:
        return self.fmt.aggregate(data, choice_scores)

    def submission_path(self, out_dir: Path) -> Path:
        """Where the official ZeroSpeech layout puts this task's scores: `<out_dir>/<lexical|syntactic>/<split>.txt`."""
        return Path(out_dir) / self.fmt.name / f"{self.split}.txt"

    def write_outputs(self, data: TaskData, item_scores: dict[str, float], out_dir: Path) -> list[Path]:
        """The ZeroSpeech submission file of the items' log-likelihoods, for the official evaluation."""
        return [write_submission(data, item_scores, self.submission_path(out_dir))]


@register_task_kind("zerospeech_lexical")
class ZeroSpeechLexical(ZeroSpeechTask):
    """sWUGGY: does the model prefer the spoken word to its matched non-word?"""

    fmt = LEXICAL
    metric_info: ClassVar[dict[str, MetricInfo]] = dict.fromkeys(
        ("accuracy", "in_vocab", "by_frequency", "by_length"), ACCURACY)


@register_task_kind("zerospeech_syntactic")
class ZeroSpeechSyntactic(ZeroSpeechTask):
    """sBLIMP: does the model prefer the grammatical sentence to its minimally different ungrammatical twin?"""

    fmt = SYNTACTIC
    metric_info: ClassVar[dict[str, MetricInfo]] = dict.fromkeys(
        ("accuracy", POSITIONAL_METRIC, "by_type", "by_subtype"), ACCURACY)
