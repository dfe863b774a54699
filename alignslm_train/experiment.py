"""`alignslm-train demo-experiment`: does the Align-SLM loop improve a model? One offline command on the story world.

It builds the story world (`alignslm_eval.demo.story_world`), starts the rule judge on 127.0.0.1
(`alignslm_eval.demo.story_judge`), and for each training seed:

1. trains `--rounds` curriculum rounds with `alignslm-train` itself (the same command and code users scale), on a
   seeded subset of the training stories' openings: sample, vocode, transcribe with the world's recogniser, score,
   pair (`--pair-rule`: GenPPL under the world's text LM, or the judge's ratings), DPO on a LoRA adapter;
2. evaluates the base model and every round's policy with `alignslm-eval` on the held-out stories' openings
   (disjoint by story: no held-out agent + place pair is ever trained on or paired) with the same sampling settings,
   the continuation task's scorers plus the judge, and the likelihood tasks (the held-out stories' sSC and tSC).

Then it writes the table (`--leaderboard`, Markdown), its numbers (`.json` beside it) and a plot of each metric
against the round (`.png`/`.svg`), with 95% confidence intervals over the seeds (Student's t). Everything lands under
`--output-dir` and is resumed from there: a rerun skips finished rounds and evaluations (`seed-N/eval/round-K.json`,
kept with the evaluation's arguments, so other evaluation settings score again). Each seed runs in its own process,
`--workers` at a time, its output in `seed-N/log.txt`; the parent shows one progress bar over all steps.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from alignslm_eval.api.options import Options, option
from alignslm_eval.io.atomic import write_text
from alignslm_eval.io.errors import UserError
from alignslm_eval.io.paths import directory_rule


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: give distinct integers separated by commas, e.g. 0,1,2")
    return seeds


POSITIVE_INT = (lambda v: v >= 1, "at least 1")


@dataclass
class ExperimentConfig(Options):
    """The experiment's settings; the DPO and sampling values are chosen for the story world's tiny model."""

    output_dir: Path = option(Path("runs/align-demo"), must=directory_rule("--output-dir"),
                              help="where every seed's rounds and evaluations go")
    leaderboard: Path = option(Path("leaderboards/align-demo.md"),
                               help="the table to write; its .json numbers and .png/.svg plot go beside it")
    seeds: list[int] = option(default_factory=lambda: [0, 1, 2, 3, 4, 5], parse=_seeds,
                              help="training seeds (sampling and DPO); confidence intervals are over these (with "
                                   "3, Student's t of 4.3 at 95% hid a 15% effect in the seed-to-seed spread; 6 "
                                   "keep both of 2 workers busy to the end)")
    rounds: int = option(3, must=POSITIVE_INT, help="curriculum rounds per seed")
    scale: str = option("full", choices=("full", "small"),
                        help="story world size: full, or small (fewer stories, short training: for tests)")
    train_prompts: int = option(96, must=POSITIVE_INT,
                                help="training openings sampled each round (a seeded subset of the world's)")
    held_out_prompts: Optional[int] = option(None, must=POSITIVE_INT,
                                             help="held-out openings evaluated (default: all of them)")
    samples_per_prompt: int = option(8, must=(lambda v: v >= 2, "at least 2"),
                                     help="continuations per training opening")
    eval_samples: int = option(16, must=POSITIVE_INT,
                               help="continuations per held-out opening (with 8, the base model alone scored "
                                    "GenPPL 143-181 across sampling seeds)")
    pair_rule: str = option("perplexity", choices=("perplexity", "judge_threshold"),
                            help="pairs by GenPPL under the world's text LM, or by the rule judge's ratings")
    temperature: float = option(1.0, must=(lambda v: v > 0, "greater than 0"),
                                help="sampling temperature (training and evaluation alike)")
    top_k: int = option(0, must=(lambda v: v >= 0, "0 or more"), help="top-k of sampling (0: none)")
    max_new_tokens: int = option(60, must=POSITIVE_INT,
                                 help="units of one continuation (the world's second sentences are about 50)")
    learning_rate: float = option(5e-4, must=(lambda v: v > 0, "greater than 0"),
                                  help="DPO learning rate (the tiny model needs far more than a real SLM's 5e-5)")
    beta: float = option(0.1, must=(lambda v: v > 0, "greater than 0"), help="DPO beta")
    epochs: float = option(2.0, must=(lambda v: v > 0, "greater than 0"), help="DPO epochs over a round's pairs")
    lora_rank: int = option(16, must=POSITIVE_INT, help="LoRA rank")
    lora_alpha: int = option(32, must=POSITIVE_INT, help="LoRA alpha")
    batch_size: int = option(8, must=POSITIVE_INT, help="pairs per DPO step")
    workers: int = option(2, must=POSITIVE_INT,
                          help="seeds run at once, each in its own process on one torch thread (the figures do not "
                               "depend on it)")


def _judge_key_env() -> str:
    name = "ALIGNSLM_STORY_JUDGE_KEY"
    os.environ.setdefault(name, "local-rule-judge")  # the local judge checks no key; the client wants one
    return name


def _prompt_subset(world, config: ExperimentConfig) -> Path:
    """A seeded subset of the training openings, copied into the output dir (the same for every seed)."""
    import random

    files = sorted(world.train_prompts.glob("*.wav"))
    chosen = sorted(random.Random("train-prompts").sample(files, min(config.train_prompts, len(files))))
    folder = config.output_dir / "train_prompts"
    if sorted(p.name for p in folder.glob("*.wav")) != [p.name for p in chosen]:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for p in chosen:
            shutil.copy(p, folder / p.name)
    return folder


def check_disjoint(world, train_folder: Path, held_out_folder: Path) -> dict[str, Any]:
    """Held-out openings share no story, and no agent + place pair, with the training ones; the record says so."""
    by_id = {s.prompt_id: s for s in world.stories}
    train = {p.stem for p in train_folder.glob("*.wav")}
    held = {p.stem for p in held_out_folder.glob("*.wav")}
    unknown = sorted((train | held) - set(by_id))
    if unknown:
        raise UserError(f"{train_folder} or {held_out_folder}: {unknown[0]} is no opening of the story world; "
                        f"delete {train_folder} and rerun")
    pairs = lambda ids: {(by_id[i].agent, by_id[i].place) for i in ids}  # noqa: E731
    shared = sorted(train & held) + sorted(f"{a} + {p}" for a, p in pairs(train) & pairs(held))
    if shared:
        raise UserError(f"training and held-out openings overlap ({shared[0]}); delete {train_folder} and rerun")
    return {"train_prompts": len(train), "held_out_prompts": len(held), "shared_prompts": 0,
            "shared_agent_place_pairs": 0, "held_out_agent_place_pairs": sorted(map(list, pairs(held)))}


def _pipeline_args(world, judge_url: str) -> list[str]:
    from alignslm_eval.demo.story_judge import MODEL_NAME

    return ["--asr", f"word_ctc:{world.asr_dir}", "--text-lm", str(world.text_lm_dir), "--judge-model", MODEL_NAME,
            "--judge-base-url", judge_url, "--judge-api-key-env", _judge_key_env(), "--judge-prompt",
            str(world.judge_prompt)]


def _train_round(world, config: ExperimentConfig, seed: int, k: int, prompts: Path, judge_url: str,
                 cache_dir: Path, log: Path) -> float:
    from alignslm_train.cli import main as train_main

    out = config.output_dir / f"seed-{seed}" / "train"
    if (out / f"round-{k}" / "COMPLETE.json").is_file():
        return json.loads((out / f"round-{k}" / "experiment_seconds.json").read_text())["seconds"]
    argv = ["--model", str(world.model_dir), "--prompts", str(prompts), "--output-dir", str(out), "--rounds", str(k),
            "--seed", str(seed), "--pair-rule", config.pair_rule, "--samples-per-prompt",
            str(config.samples_per_prompt), "--temperature", str(config.temperature), "--top-k", str(config.top_k),
            "--max-new-tokens", str(config.max_new_tokens), "--prompt-seconds", "10",
            "--learning-rate", str(config.learning_rate), "--beta", str(config.beta), "--epochs", str(config.epochs),
            "--lora-rank", str(config.lora_rank), "--lora-alpha", str(config.lora_alpha),
            "--batch-size", str(config.batch_size), "--cache-dir", str(cache_dir), *_pipeline_args(world, judge_url)]
    started = time.time()
    rc = train_main(argv)
    if rc != 0:
        raise UserError(f"seed {seed}, round {k}: {_failure('alignslm-train', rc, log)}")
    seconds = round(time.time() - started, 1)
    write_text(out / f"round-{k}" / "experiment_seconds.json", json.dumps({"seconds": seconds}) + "\n")
    return seconds


def _evaluate(world, config: ExperimentConfig, seed: int, k: int, judge_url: str, cache_dir: Path,
              log: Path) -> dict[str, Any]:
    """Score round k's policy (k = 0: the base model) on the held-out openings with `alignslm-eval`; its figures
    (`policy_metrics`) and seconds, kept in seed-N/eval/round-k.json so a rerun does not score it again."""
    import contextlib
    import io

    from alignslm_eval.cli.eval import main as eval_main

    done = config.output_dir / f"seed-{seed}" / "eval" / f"round-{k}.json"
    adapter = config.output_dir / f"seed-{seed}" / "train" / f"round-{k}" / "adapter" if k else None
    sampling = {"samples": config.eval_samples, "temperature": config.temperature, "top_k": config.top_k,
                "max_new_tokens": config.max_new_tokens, "prompt_seconds": 10}
    argv = ["--model", str(world.model_dir), "--tasks", "continuation,sstorycloze,tstorycloze",
            "--data-root", str(world.data_root), "--output-path", str(done.parent), "--seed", str(seed),
            "--log-samples", "--cache-dir", str(cache_dir), *_pipeline_args(world, judge_url),
            "--set", "continuation.scorers=[genppl,auto_bleu,judge_rating]",
            *[a for key, value in sampling.items() for a in ("--set", f"continuation.{key}={value}")]]
    if adapter:
        argv += ["--adapter", str(adapter)]
    if config.held_out_prompts:
        argv += ["--limit", str(config.held_out_prompts)]
    identity = [a for a in argv if a != judge_url]  # the judge's port changes with every invocation
    kept = json.loads(done.read_text()) if done.is_file() else {}
    if kept.get("argv") == identity:
        return kept
    started = time.time()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = eval_main(argv)
    sys.stdout.write(printed.getvalue())
    results = [line[len("results: "):] for line in printed.getvalue().splitlines() if line.startswith("results: ")]
    if rc != 0 or not results:
        raise UserError(f"seed {seed}, round {k}: {_failure('alignslm-eval', rc, log)}")
    entry = {"argv": identity, "results": results[-1], "seconds": round(time.time() - started, 1),
             "metrics": policy_metrics(Path(results[-1]))}
    write_text(done, json.dumps(entry, indent=2) + "\n")
    return entry


def _failure(command: str, rc: int, log: Path) -> str:
    """What a failed step says, for the parent's one-line error: the command's own error line from the log."""
    sys.stderr.flush()
    said = [line.strip() for line in log.read_text(errors="replace").splitlines()
            if line.startswith((f"{command}: error:", f"{command}: interrupted"))]
    return (said[-1] if said else f"{command} exited with {rc}") + f" (log: {log}); fix that and rerun the same " \
        "command to resume"


def run_seed(config: ExperimentConfig, seed: int, cache_dir: Path, prompts: Path, judge_url: str) -> dict[str, Any]:
    """One seed's curriculum rounds, then the base model's and every round's evaluation: a worker process's job.
    Everything it prints goes to seed-N/log.txt; torch runs on one thread, so figures do not depend on --workers."""
    import torch

    from alignslm_eval.demo.story_world import ensure_story_world

    log = config.output_dir / f"seed-{seed}" / "log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log, "a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    torch.set_num_threads(1)
    world = ensure_story_world(cache_dir, config.scale)
    rounds, policies = {}, {}
    for k in range(1, config.rounds + 1):
        seconds = _train_round(world, config, seed, k, prompts, judge_url, cache_dir, log)
        report = json.loads((config.output_dir / f"seed-{seed}" / "train" / f"round-{k}" /
                             "pairs_report.json").read_text())
        rounds[k] = {"pairs": report["pairs"], "no_pair": report["no_pair"], "seconds": seconds}
    for k in range(config.rounds + 1):
        print(f"demo-experiment: seed {seed}: evaluating {'the base model' if k == 0 else f'round {k}'} on the "
              "held-out openings", file=sys.stderr, flush=True)
        entry = _evaluate(world, config, seed, k, judge_url, cache_dir, log)
        policies[k] = entry["metrics"] | {"seconds": entry["seconds"]}
    return {"rounds": rounds, "policies": policies}


def _steps_done(config: ExperimentConfig) -> int:
    """Finished rounds and evaluations under --output-dir, for the progress bar."""
    out = config.output_dir
    return sum(len(list(out.glob(f"seed-{s}/train/round-*/COMPLETE.json"))) +
               len(list(out.glob(f"seed-{s}/eval/round-*.json"))) for s in config.seeds)


def policy_metrics(results_file: Path) -> dict[str, Optional[float]]:
    """One policy's held-out figures from an evaluation's results file and the samples log beside it:
    geometric-mean GenPPL over scored samples (the mean of a perplexity is ruled by its worst outlier), the share of
    samples with a transcript, mean judge rating, auto-BLEU, words and units per continuation, and the likelihood
    tasks' accuracies."""
    from alignslm_eval.io.jsonl import read_jsonl
    from alignslm_eval.leaderboard.collect import load_results

    samples = results_file.parent / "samples_continuation.jsonl"
    rows = read_jsonl(samples)
    if not rows:
        raise UserError(f"{samples}: no samples; delete {results_file.parent} and rerun")

    def values(metric: str) -> list[float]:
        return [r["scores"][metric]["value"] for r in rows if r["scores"].get(metric, {}).get("value") is not None]

    genppl = values("genppl")
    mean = lambda xs: statistics.fmean(xs) if xs else None  # noqa: E731
    tasks = load_results(results_file)["tasks"]
    accuracy = {name: tasks[name]["result"]["metrics"]["accuracy"]["value"] for name in ("sstorycloze", "tstorycloze")}
    return {
        "genppl_geomean": math.exp(statistics.fmean(math.log(x) for x in genppl)) if genppl else None,
        "scored_fraction": len(genppl) / len(rows),
        "judge_rating": mean(values("semantic_rating")),  # the judge_rating scorer's metric
        "auto_bleu": mean(values("auto_bleu")),
        "words": mean([len((r.get("text") or "").split()) for r in rows]),
        "units": mean([len(r.get("units") or []) for r in rows]),
        "sstorycloze": accuracy["sstorycloze"],
        "tstorycloze": accuracy["tstorycloze"],
        "samples": len(rows),
    }


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95% confidence half-width over seeds (Student's t with n - 1 degrees of freedom)."""
    from scipy import stats

    xs = [v for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return {"mean": None, "ci95": None, "n": 0}
    if len(xs) == 1:
        return {"mean": xs[0], "ci95": None, "n": 1}
    half = float(stats.t.ppf(0.975, len(xs) - 1)) * statistics.stdev(xs) / math.sqrt(len(xs))
    return {"mean": statistics.fmean(xs), "ci95": half, "n": len(xs)}


#: The table's rows: key in policy_metrics, label, how to print one value, whether higher is better.
METRICS = [
    ("genppl_geomean", "GenPPL (geometric mean, rewarded)", "{:.1f}", False),
    ("judge_rating", "rule-judge rating, 1-5", "{:.2f}", True),
    ("scored_fraction", "samples with a transcript", "{:.3f}", True),
    ("auto_bleu", "auto-BLEU (repetition)", "{:.3f}", False),
    ("words", "words per continuation", "{:.1f}", None),
    ("units", "units per continuation", "{:.1f}", None),
    ("sstorycloze", "sSC accuracy (held-out stories)", "{:.3f}", True),
    ("tstorycloze", "tSC accuracy (held-out stories)", "{:.3f}", True),
]


def summarise(per_seed: dict[int, dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Per round and metric: mean and 95% CI over seeds; and the change from the base (round 0) to each round,
    paired by seed, with its CI, which says whether the change is significant at 95%."""
    table: dict[str, Any] = {}
    for key, *_ in METRICS:
        rows = []
        for k in range(rounds + 1):
            values = [s["policies"][k][key] for s in per_seed.values()]
            change = [s["policies"][k][key] - s["policies"][0][key] for s in per_seed.values()
                      if s["policies"][k][key] is not None and s["policies"][0][key] is not None]
            entry = {"round": k, **mean_ci(values), "change_from_base": mean_ci(change) if k else None}
            if k and entry["change_from_base"]["ci95"] is not None:
                c = entry["change_from_base"]
                entry["significant"] = bool(abs(c["mean"]) > c["ci95"])
            rows.append(entry)
        table[key] = rows
    pairs = [[s["rounds"][k]["pairs"] for s in per_seed.values()] for k in range(1, rounds + 1)]
    seconds = [[s["rounds"][k]["seconds"] for s in per_seed.values()] for k in range(1, rounds + 1)]
    return {"metrics": table, "pairs": [mean_ci(p) | {"per_seed": p} for p in pairs],
            "train_seconds": [mean_ci(t) | {"per_seed": t} for t in seconds]}


def _cell(entry: dict[str, Any], fmt: str) -> str:
    if entry["mean"] is None:
        return "n/a"
    text = fmt.format(entry["mean"])
    return text + (f" ± {fmt.format(entry['ci95'])}" if entry["ci95"] is not None else "")


def _change(entry: dict[str, Any], fmt: str) -> str:
    c = entry["change_from_base"]
    half = "" if c["ci95"] is None else " ± " + fmt.replace("+", "").format(c["ci95"])
    return fmt.format(c["mean"]) + half


def _findings(record: dict[str, Any]) -> list[str]:
    """The table's verdicts, read off its numbers: the reward per round (with the seeds that moved each way), the
    reward-hacking checks and the likelihood tasks."""
    metrics = record["summary"]["metrics"]
    per_seed = list(record["per_seed"].values())
    lines = []
    base = metrics["genppl_geomean"][0]["mean"]
    for entry in metrics["genppl_geomean"][1:]:
        k, c = entry["round"], entry["change_from_base"]
        if c["mean"] is None or base is None:
            continue
        pairs = [(s["policies"][str(k)]["genppl_geomean"], s["policies"]["0"]["genppl_geomean"]) for s in per_seed]
        lower = sum(after < before for after, before in pairs if after is not None and before is not None)
        verdict = ("not a significant change" if not entry.get("significant") else
                   "a significant improvement" if c["mean"] < 0 else "a significant worsening")
        lines.append(f"- Round {k}: the rewarded metric, held-out GenPPL, changes by {_change(entry, '{:+.1f}')} "
                     f"({c['mean'] / base:+.0%}) from the base, lower in {lower} of {c['n']} seeds: {verdict} at 95%.")
    spans = {key: [e["mean"] for e in metrics[key] if e["mean"] is not None] for key in ("auto_bleu", "words")}
    if spans["auto_bleu"] and spans["words"]:
        lines.append(f"- Reward hacking: mean auto-BLEU (repeated word bigrams) stays within "
                     f"{min(spans['auto_bleu']):.3f}–{max(spans['auto_bleu']):.3f} and words per continuation within "
                     f"{min(spans['words']):.1f}–{max(spans['words']):.1f} over the rounds, so the reward did not come "
                     "from repeating or from saying less.")
    for key, name in (("sstorycloze", "sSC"), ("tstorycloze", "tSC")):
        moved = [f"round {e['round']} {_change(e, '{:+.3f}')}" for e in metrics[key][1:] if e.get("significant")]
        lines.append(f"- {name} (held-out stories): " + (f"significant changes from the base: {', '.join(moved)}."
                                                         if moved else "within the CIs of the base in every round."))
    return lines


def _packages_line(record: dict[str, Any]) -> list[str]:
    env = record.get("environment")
    if not env:  # a table made before the experiment recorded its packages
        return []
    versions = ", ".join(f"{name} {v}" for name, v in env["packages"].items() if v)
    constraints = Path(record["leaderboard"]).with_suffix(".constraints.txt")
    return [f"- Packages: Python {env['python']}, {versions}. `pip install -e . -c {constraints}` installs every "
            "version this run had; other versions build another story world (see docs/align-demo.md)."]


def render_markdown(record: dict[str, Any]) -> str:
    summary, config, world = record["summary"], record["config"], record["world"]
    rounds = config["rounds"]
    head = "| metric (held-out openings) | base | " + " | ".join(f"round {k}" for k in range(1, rounds + 1)) + " |"
    lines = [
        "# Align-SLM on the story world: does alignment improve held-out continuations?",
        "",
        f"Made by `{record['command']}` on {record['date']} in {record['wall_seconds'] / 60:.1f} min "
        f"({record['machine']}, {config['workers']} seeds at a time; building the story world, once per cache, took "
        f"{world['build_seconds'] / 60:.1f} min of that or before it). Each cell: mean ± 95% confidence half-width "
        f"over {len(config['seeds'])} training seeds ({', '.join(map(str, config['seeds']))}; Student's t). "
        "↓ lower is better, ↑ higher is better. A change marked * differs from the base at 95% (paired by seed); "
        "unmarked, it is not significant.",
        "",
        head,
        "|---|" + "---|" * (rounds + 1),
    ]
    for key, label, fmt, higher in METRICS:
        arrow = {True: " ↑", False: " ↓", None: ""}[higher]
        cells = []
        for entry in summary["metrics"][key]:
            cell = _cell(entry, fmt)
            if entry.get("significant"):
                cell += " *"
            cells.append(cell)
        lines.append(f"| {label}{arrow} | " + " | ".join(cells) + " |")
    lines.append("| preference pairs (of " + str(config["train_prompts_used"]) + " openings) | – | "
                 + " | ".join(_cell(p, "{:.1f}") for p in summary["pairs"]) + " |")
    lines.append("| training wall time per round, s | – | "
                 + " | ".join(_cell(t, "{:.0f}") for t in summary["train_seconds"]) + " |")
    lines += [
        "",
        "## What it shows",
        "",
        *_findings(record),
        "",
        "How the settings were chosen, and what else was tried: [docs/align-demo.md](../docs/align-demo.md).",
        "",
        "## Set-up",
        "",
        f"- Story world v{world['version']} ({world['scale']}): {world['stories']['train']} training and "
        f"{world['stories']['held_out']} held-out stories; held out by agent + place pair "
        f"({len(world['held_out_pairs'])} pairs), so no held-out story, opening or agent + place pair is trained on "
        f"or paired (checked: {record['disjoint']['shared_prompts']} shared openings, "
        f"{record['disjoint']['shared_agent_place_pairs']} shared pairs).",
        f"- Unit LM: {world['unit_lm'].get('steps')} steps; loss {world['unit_lm'].get('train_loss')} on training "
        f"units, {world['unit_lm'].get('held_out_loss')} on held-out units. Text LM (GenPPL): loss "
        f"{world['text_lm'].get('train_loss')} training, {world['text_lm'].get('held_out_loss')} held-out.",
        f"- Recogniser (`word_ctc`, fitted on the training stories' openings and second sentences, spoken and "
        f"vocoded from their units): WER {world['asr']['held_out_openings']['wer']:.3f} on the held-out openings "
        f"(the prompts), {world['asr']['held_out_vocoded_second_sentences']['wer']:.3f} on the held-out second "
        "sentences vocoded from their units (what a good continuation sounds like).",
        f"- Each round: {config['train_prompts_used']} training openings × {config['samples_per_prompt']} samples, "
        f"pair rule `{config['pair_rule']}`, DPO on LoRA (rank {config['lora_rank']}, alpha {config['lora_alpha']}, "
        f"lr {config['learning_rate']}, beta {config['beta']}, {config['epochs']} epochs, batch "
        f"{config['batch_size']}); the next round samples from this round's policy.",
        f"- Evaluation: {record['disjoint']['held_out_prompts']} held-out openings × {config['eval_samples']} samples"
        f" per policy, the base model included, sampled alike (temperature {config['temperature']}, top-k "
        f"{config['top_k'] or 'off'}, up to {config['max_new_tokens']} units, the training seed), scored by the "
        "continuation task's scorers plus `judge_rating` from the rule judge served on 127.0.0.1.",
        *_packages_line(record),
        "",
        f"Numbers: `{Path(record['leaderboard']).with_suffix('.json').name}`; plot: "
        f"`{Path(record['leaderboard']).with_suffix('.png').name}`. Reproduce: `{record['command']}`.",
        "",
    ]
    return "\n".join(lines)


def plot(record: dict[str, Any], stem: Path) -> None:
    from alignslm_eval.leaderboard.plots import save_figure
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    keys = ["genppl_geomean", "judge_rating", "auto_bleu", "sstorycloze"]
    labels = {key: label for key, label, *_ in METRICS}
    figure = Figure(figsize=(12, 3.2))
    per_seed = record["per_seed"]
    for i, key in enumerate(keys):
        ax = figure.add_subplot(1, len(keys), i + 1)
        rows = record["summary"]["metrics"][key]
        xs = [r["round"] for r in rows]
        for seed, data in per_seed.items():
            ax.plot(xs, [data["policies"][str(k)][key] if data["policies"][str(k)][key] is not None else float("nan")
                         for k in xs], color="0.75", linewidth=0.8, marker=".")
        shown = [r for r in rows if r["mean"] is not None]
        ax.errorbar([r["round"] for r in shown], [r["mean"] for r in shown], yerr=[r["ci95"] or 0 for r in shown],
                    color="C0", capsize=3, marker="o", label="mean ± 95% CI")
        ax.set_xticks(xs, ["base"] + [str(k) for k in xs[1:]])
        ax.set_xlabel("round")
        ax.set_title(labels[key], fontsize=9)
    figure.axes[0].legend(fontsize=7)
    figure.suptitle("Held-out openings of the story world; grey: each seed", fontsize=9)
    figure.tight_layout()
    save_figure(figure, stem)


def installed_constraints() -> str:
    """pip constraints pinning every installed distribution but alignslm itself: the world's trained parts differ
    in their last float digits under other versions, and training amplifies that into another world."""
    from importlib.metadata import distributions

    pins = {d.metadata["Name"].lower(): d.version for d in distributions() if d.metadata["Name"]}
    pins.pop("alignslm", None)
    return ("# The packages that made this table; reinstall with: pip install -e . -c <this file>\n"
            + "".join(f"{name}=={pins[name]}\n" for name in sorted(pins)))


def _spent_seconds(output_dir: Path, seconds: Optional[float] = None) -> float:
    """The seconds every invocation of the experiment on `output_dir` has taken, this one's `seconds` appended
    first: a resumed run's wall time is the sum of its parts, not its last part."""
    from alignslm_eval.io.jsonl import open_append, read_jsonl

    log = output_dir / "invocations.jsonl"
    if seconds is not None:
        with open_append(log) as f:
            f.write(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 1)}) + "\n")
    return round(sum(row["seconds"] for row in read_jsonl(log) if isinstance(row, dict) and "seconds" in row), 1)


def run_experiment(config: ExperimentConfig, cache_dir: Path, command: list[str]) -> Path:
    """Build the world, run every seed (`config.workers` at a time, each in its own process), write the table."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    from tqdm import tqdm

    from alignslm_eval.demo.story_judge import StoryJudgeServer
    from alignslm_eval.demo.story_world import ensure_story_world

    started = time.time()
    config.output_dir.mkdir(parents=True, exist_ok=True)
    try:
        world = ensure_story_world(cache_dir, config.scale)
        prompts = _prompt_subset(world, config)
        disjoint = check_disjoint(world, prompts, world.held_out_prompts)
        per_seed: dict[int, dict[str, Any]] = {}
        steps = len(config.seeds) * (2 * config.rounds + 1)
        print(f"demo-experiment: {len(config.seeds)} seeds x {config.rounds} rounds, {config.workers} at a time; "
              f"each seed's output: {config.output_dir}/seed-N/log.txt", file=sys.stderr)
        with StoryJudgeServer(world.grammar) as judge, \
                ProcessPoolExecutor(config.workers, mp_context=get_context("spawn")) as pool, \
                tqdm(total=steps, desc="demo-experiment", unit="step") as bar:
            # A seed is handed to the pool only when a worker is free: the pool would start a queued seed even
            # after Ctrl-C or a failure, while it shuts down; as it is, only the running seeds finish or stop.
            waiting, running = list(config.seeds), {}
            while waiting or running:
                while waiting and len(running) < config.workers:
                    seed = waiting.pop(0)
                    running[pool.submit(run_seed, config, seed, cache_dir, prompts, judge.base_url)] = seed
                finished, _ = wait(running, timeout=5, return_when=FIRST_COMPLETED)
                bar.update(_steps_done(config) - bar.n)
                for future in finished:
                    per_seed[running.pop(future)] = future.result()  # a worker's error is raised here
        per_seed = {seed: per_seed[seed] for seed in config.seeds}
    finally:
        wall_seconds = _spent_seconds(config.output_dir, time.time() - started)
    from importlib.metadata import version
    import platform

    from alignslm_eval.api.results import environment

    record = {
        "command": " ".join(command), "date": time.strftime("%Y-%m-%d"), "leaderboard": str(config.leaderboard),
        "wall_seconds": wall_seconds,
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, torch {version('torch')}",
        "environment": environment(),
        "config": {**json.loads(json.dumps(config.recorded(), default=str)),
                   "train_prompts_used": disjoint["train_prompts"]},
        "world": world.record(), "disjoint": disjoint,
        "per_seed": per_seed, "summary": summarise(per_seed, config.rounds),
    }
    record = json.loads(json.dumps(record))  # the table and plot read what the JSON file holds (string keys)
    out = config.leaderboard
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    write_text(out.with_suffix(".constraints.txt"), installed_constraints())
    write_text(out, render_markdown(record))
    plot(record, out.with_suffix(""))
    return out
