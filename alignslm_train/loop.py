"""The Align-SLM loop (Lin et al. 2025, Figure 1): per round, sample -> score -> pairs -> DPO.

Round k samples from round k-1's policy (the base model for k = 1) and its pair thresholds come from the curriculum
schedule. Every stage writes its artefacts under `<output>/round-<k>/` and skips work already on disk:

    continuations/<key>/   samples, vocoded wavs, transcripts, per-scorer scores (alignslm_eval.evaluate.continuation_store)
    scores.jsonl           every sample's score per scorer (input of the score-distribution plots)
    pairs.jsonl            the preference pairs; pairs_report.json: counts, and why prompts gave no pair
    score_hist.png/.svg    score distributions of the round (the paper's Figures 3-5 kind of plot)
    checkpoints/           DPO trainer checkpoints (a killed DPO stage resumes from the last one)
    adapter/               the round's LoRA adapter; alignslm_adapter_chain.json lists the rounds merged under it
    eval_log.jsonl         mid-training evaluations; eval/ their results files
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Optional

from alignslm_eval.api.scorer import Continuation, ContinuationScorer, Score
from alignslm_eval.components import ModelOptions, build_unit_lm
from alignslm_eval.io.atomic import replacing, write_text
from alignslm_eval.evaluate.continuation_store import ContinuationRun, find_prompts, key_of
from alignslm_eval.io.jsonl import read_jsonl
from alignslm_eval.io.errors import UserError
from alignslm_eval.api.model import UnitLM
from alignslm_eval.models.adapters import ADAPTER_CHAIN_FILE, MERGED_FROM_FILE, write_base_record
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.evaluate.generation import PipelineComponents, prepare_scorers, score_continuations
from alignslm_eval.evaluate.world import World
from alignslm_train.config import RULE_SCORERS, AlignConfig
from alignslm_train.pairs import Candidate, Pair, Sample, select_pairs

COMPLETE = "COMPLETE.json"


def previous_adapter(config: AlignConfig, k: int) -> Optional[Path]:
    if k == 1:
        return None
    adapter = config.round_dir(k - 1) / "adapter"
    if not (config.round_dir(k - 1) / COMPLETE).is_file():
        raise UserError(f"round {k} samples from round {k - 1}'s policy, but {config.round_dir(k - 1)} is not "
                        f"finished; run round {k - 1} first (alignslm-train resumes it)")
    return adapter


def policy(config: AlignConfig, k: int, model: Optional[ModelOptions] = None, world: World = World()) -> UnitLM:
    """The model that samples round k: the base with rounds 1..k-1 applied. `model` gives the loading options (device,
    unit mapping); the checkpoint is always `config.model`. With `model.engine_url` the policy samples through that
    vLLM server, which must serve the base model (round 1) or round k-1's policy merged into one checkpoint,
    `round-<k-1>/merged/` (written here on first use: vLLM applies no adapter chain)."""
    adapter = previous_adapter(config, k)
    options = replace(model or ModelOptions(model=config.model), model=config.model, model_backend="hf",
                      adapter=str(adapter) if adapter else None)
    if not options.engine_url:
        return build_unit_lm(options)
    checkpoint = config.model
    if adapter is not None:
        merged = config.round_dir(k - 1) / "merged"
        if world.rank == 0 and not (merged / MERGED_FROM_FILE).is_file():
            merge_adapter(config.model, adapter, merged)
        world.barrier()  # the other ranks connect once the merged checkpoint is complete
        checkpoint = str(merged)
    return build_unit_lm(replace(options, model=checkpoint, model_backend="vllm", adapter=None))


def merge_adapter(model: str, adapter: Path, out: Path, shown_model: Optional[str] = None) -> None:
    """Write `model` with `adapter` (and the chain of rounds under it) merged in to `out`, beside the unit
    vocabulary, the speech tokenizer and vocoder specs, and a record of what was merged (`MERGED_FROM_FILE`)."""
    lm = HFUnitLM.from_args(model, adapter=str(adapter))
    out.mkdir(parents=True, exist_ok=True)
    lm.model.save_pretrained(out)
    lm.vocab.save(out)
    source = Path(lm.describe()["local_dir"])
    # The speech tokenizer and vocoder the base model names travel with the merged checkpoint.
    for spec_name in ("alignslm_tokenizer.json", "alignslm_vocoder.json"):
        spec = source / spec_name
        if spec.is_file():
            shutil.copy(spec, out / spec_name)
            for value in json.loads(spec.read_text()).get("args", {}).values():
                if isinstance(value, str) and (source / value).is_file():
                    shutil.copy(source / value, out / value)
    # Written last: a merged dir with this record is complete.
    write_text(out / MERGED_FROM_FILE, json.dumps(
        {"model": shown_model or model, "local_dir": lm.describe().get("local_dir"),
         "adapter": lm.describe().get("adapter")}, indent=2) + "\n")


def sampling_run(config: AlignConfig, k: int, lm: UnitLM, tokenizer, world: World = World()) -> ContinuationRun:
    """Round k's continuation run under this configuration (made on first use, then reopened)."""
    return ContinuationRun.create(config.round_dir(k) / "continuations", lm, tokenizer, config.sampling(),
                                  config.prompt_seconds, world=world)


def stage_sample(config: AlignConfig, k: int, lm: UnitLM, tokenizer, world: World = World()) -> ContinuationRun:
    """Sample the round's prompts; under several ranks each samples its share, and all wait for the last."""
    prompts = find_prompts(config.prompts, config.prompt_seconds)
    run = sampling_run(config, k, lm, tokenizer, world)
    run.sample(world.mine(prompts, key=lambda p: p.id), lm, tokenizer)
    world.barrier()
    return run


def rule_scorers(config: AlignConfig, components: PipelineComponents, world: World = World()
                 ) -> list[ContinuationScorer]:
    """The pair rule's scorers and auto-BLEU (the same scorers the eval tasks use), ready before sampling."""
    return prepare_scorers(RULE_SCORERS[config.pair_rule], components, world=world)


def stage_score(config: AlignConfig, k: int, run: ContinuationRun, components: PipelineComponents,
                scorers: list[ContinuationScorer], world: World = World()) -> Path:
    """Score every sample of the round with `scorers` (from rule_scorers): each rank vocodes, transcribes and
    scores its share of the prompts; then rank 0 writes scores.jsonl from every rank's logs, and all wait for it."""
    prompts = run.prompts()
    mine = {p.id for p in world.mine(prompts, key=lambda p: p.id)}
    items = [i for i in run.items() if i.prompt_id in mine]
    scores, _ = score_continuations(run, items, [p for p in prompts if p.id in mine], scorers, components)
    world.barrier()
    path = config.round_dir(k) / "scores.jsonl"
    if world.writes_final_files:
        if world.size > 1:
            # Every rank's scores, read from their logs: nothing is scored or retried again here.
            items = run.items()
            scores, _ = score_continuations(run, items, prompts, scorers, components, retry=False)
        _write_scores(path, run, items, scores)
    world.barrier()
    return path


def _write_scores(path: Path, run: ContinuationRun, items: list[Continuation],
                  scores: dict[str, list[Score]]) -> None:
    """scores.jsonl: every sample of `run` with each scorer's value and status."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, item in enumerate(items):
            f.write(json.dumps({"run": run.root.name, "prompt_id": item.prompt_id, "sample": item.sample,
                                "text": item.text,
                                "prompt_text": item.prompt_text, "units": item.units,
                                "scores": {m: v[i].value for m, v in scores.items()},
                                "status": {m: v[i].status for m, v in scores.items()}}) + "\n")


def unscored_counts(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """metric -> status -> how many samples of `rows` (scores.jsonl lines) have no value, and why: "unparsable" (the
    judge answered, with no readable score), "error: ..." (scoring failed: no answer), "no transcript", ..."""
    counts: dict[str, Counter[str]] = {}
    for r in rows:
        for metric, value in r["scores"].items():
            if value is None:
                counts.setdefault(metric, Counter())[str(r["status"].get(metric))] += 1
    return {metric: dict(c.most_common()) for metric, c in sorted(counts.items())}


def failed_count(unscored: dict[str, dict[str, int]]) -> int:
    """Samples whose score is missing because scoring failed (and a rerun would try again), over all metrics."""
    return sum(n for statuses in unscored.values() for status, n in statuses.items() if status.startswith("error"))


def stage_pairs(config: AlignConfig, k: int, run: ContinuationRun, write: bool = True) -> list[Pair]:
    """Pairs from the round's scores. Refused while scoring failed for some sample (a judge error), unless
    `config.allow_unscored`: pairs from partial scores would silently differ from a healthy judge's. `write`:
    whether this process writes pairs.jsonl, its report and plot (one rank does; the others only need the pairs)."""
    scores_file = config.round_dir(k) / "scores.jsonl"
    if not scores_file.is_file():
        raise UserError(f"round {k} has no scores yet; run --stage score --round {k}")
    rows = list(read_jsonl(scores_file))
    if any(r.get("run") != run.root.name for r in rows):
        raise UserError(f"{scores_file} scores another sampling run than {run.root}; run --stage score --round {k}")
    unscored = unscored_counts(rows)
    failed = failed_count(unscored)
    if failed and not config.allow_unscored:
        reasons = "; ".join(f"{metric}: {n} x {status}" for metric, statuses in unscored.items()
                            for status, n in statuses.items() if status.startswith("error"))
        # A refusal the judge will repeat (a rejected key or request) needs a fix before a rerun can help.
        refused = ("; answers marked 'not retried' were refused by the judge and need the key or request fixed "
                   "first" if "not retried" in reasons else "")
        raise UserError(f"round {k}: scoring failed for {failed} of {len(rows)} samples ({reasons}), so no pairs are "
                        "made from partial scores; rerun the same command to retry only those, or pass "
                        f"--allow-unscored to train on the scored samples{refused}")
    prompt_units = {prompt_id: r["prompt_units"] for prompt_id, r in run.sampled().items()}
    candidates: dict[str, Candidate] = {}
    for r in rows:
        c = candidates.setdefault(r["prompt_id"], Candidate(r["prompt_id"], prompt_units[r["prompt_id"]],
                                                            r["prompt_text"], []))
        c.samples.append(Sample(r["sample"], r["units"], r["text"], r["scores"]))
    rule_args = config.rule_args(k)
    pairs, reasons = select_pairs(list(candidates.values()), config.pair_rule, rule_args, config.max_auto_bleu)
    if not write:
        return pairs
    out = config.round_dir(k)
    with replacing(out / "pairs.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p.to_json()) + "\n")
    report = {"round": k, "rule": config.pair_rule, "rule_args": rule_args, "max_auto_bleu": config.max_auto_bleu,
              "prompts": len(candidates), "samples": len(rows), "pairs": len(pairs), "no_pair": dict(reasons),
              "unscored": unscored, "failed": failed, "allow_unscored": config.allow_unscored}
    write_text(out / "pairs_report.json", json.dumps(report, indent=2) + "\n")
    if rows:
        from alignslm_eval.leaderboard.plots import read_scores, save_figure, scores_figure

        save_figure(scores_figure(read_scores(scores_file)), out / "score_hist")
    return pairs


def stage_dpo(config: AlignConfig, k: int, pairs: list[Pair], dpo_settings, callbacks=None,
              world: World = World()) -> Path:
    """Train the round's adapter; under torchrun every rank trains its share of each batch (TRL on accelerate) and
    rank 0 alone writes the adapter and the round's records."""
    from alignslm_train.dpo import PreferencePair, full_batches, train_dpo

    out = config.round_dir(k)
    if not pairs:
        raise UserError(f"round {k}: no preference pairs (see {out / 'pairs_report.json'}); use more prompts, more "
                        "samples per prompt, or looser thresholds")
    base = policy(config, k)  # rounds < k merged in: their policy is this round's DPO reference
    preference = [PreferencePair(p.pair_id, p.prompt_units, p.chosen.units, p.rejected.units,
                                 {"prompt_id": p.prompt_id}) for p in pairs]
    # Checkpoints of a DPO run on other pairs or settings must not be resumed.
    identity = key_of({"pairs": [p.to_json() for p in pairs], "settings": asdict(dpo_settings)})
    checkpoints, marker = out / "checkpoints", out / "checkpoints" / "alignslm_dpo_key.json"
    if world.rank == 0:
        if checkpoints.is_dir() and (not marker.is_file() or json.loads(marker.read_text()) != identity):
            shutil.rmtree(checkpoints)
        checkpoints.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(identity) + "\n")
    world.barrier()  # no rank looks for a checkpoint to resume while rank 0 may still remove stale ones
    result = train_dpo(base.model, base.vocab, preference, out, dpo_settings, callbacks=callbacks)
    if not world.writes_final_files:
        return Path(result.adapter_dir)
    write_base_record(result.adapter_dir, Path(base.describe()["local_dir"]))
    earlier = [str(Path("..") / ".." / f"round-{j}" / "adapter") for j in range(1, k)]
    (Path(result.adapter_dir) / ADAPTER_CHAIN_FILE).write_text(json.dumps(earlier) + "\n")
    report = json.loads((out / "pairs_report.json").read_text())
    record = {"round": k, "pairs": len(pairs), "adapter": str(result.adapter_dir),
              # pairs trained twice per epoch, so that every batch is full (dpo.full_batches)
              "repeated_pairs": len(full_batches(preference, dpo_settings.batch_size)) - len(pairs),
              # what the pairs were made from: samples left unscored, and whether failed ones were let through
              **{key: report.get(key) for key in ("samples", "unscored", "failed", "allow_unscored")},
              "dpo": {key: getattr(result, key) for key in ("train_loss_first", "train_loss_last",
                                                            "reward_accuracy_first", "reward_accuracy_last",
                                                            "steps", "seconds")},
              "settings": asdict(dpo_settings), "config": json.loads(json.dumps(asdict(config), default=str))}
    write_text(out / COMPLETE, json.dumps(record, indent=2) + "\n")
    return Path(result.adapter_dir)
