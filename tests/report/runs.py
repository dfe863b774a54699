"""Run folders for the report tests, written by the project's own writers: a synthetic continuation run
(`write_samples_log`, `ResultsDocument.write`), the real demo evaluation, and a tiny real training run."""

from __future__ import annotations

import math
from pathlib import Path


import numpy as np
import soundfile as sf

from alignslm_eval.api.results import MetricInfo, ResultsDocument, TaskEntry
from alignslm_eval.api.scorer import Continuation, Score
from alignslm_eval.evaluate.generation import unscored_reasons, write_samples_log

#: what a hostile run could hold in its names and texts: markup, quotes, non-ASCII
HOSTILE = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> ' \" é 日本 </td>"


def _mean_stderr(values: list[float]) -> tuple[float, float]:
    mean = float(np.mean(values)) if values else math.nan
    stderr = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return mean, stderr


def synthetic_run(folder: Path, n_samples: int, model_name: str = "tiny-lm", text: str = "a continuation",
                  answer: str = "Rating: \\boxed{3}", seconds: float = 0.05) -> Path:
    """A continuation task of `n_samples` samples (prompts of 2 samples each) in `folder`: tiny wavs, transcripts,
    a judge-style rating (every 7th answer unparsable, every 11th scoring failed) and a duration score; its
    samples log and results file. Returns the results file."""
    folder.mkdir(parents=True, exist_ok=True)
    wav_dir = folder / "continuations" / "run0" / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    prompt = folder / "prompt.wav"
    rng = np.random.default_rng(0)
    sf.write(prompt, (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)
    tone = (0.2 * np.sin(np.arange(int(16000 * seconds)) / 8)).astype(np.float32)
    items, ratings, durations = [], [], []
    for i in range(n_samples):
        wav = wav_dir / f"p{i // 2:05d}__{i % 2}.wav"
        sf.write(wav, tone, 16000, subtype="PCM_16")
        items.append(Continuation(f"p{i // 2:05d}", i % 2, [1, 2, 3][: 1 + i % 3], prompt_text=f"prompt {i // 2}",
                                  text=f"{text} {i}", wav=str(wav), prompt_audio=str(prompt), prompt_cut_s=seconds))
        if i % 11 == 10:
            ratings.append(Score(None, "error: judge timed out", {"attempts": 3}))
        elif i % 7 == 6:
            ratings.append(Score(None, "unparsable", {"answer": f"{answer} (no score)"}))
        else:
            ratings.append(Score(float(1 + (i * 37) % 5), "ok", {"answer": answer}))
        durations.append(Score(round(seconds + 0.01 * (i % 13), 4), "ok"))
    scores = {"semantic_rating": ratings, "duration_s": durations}
    samples = write_samples_log(folder / "samples_continuation.jsonl", items, scores)
    metrics = {}
    for metric, values in scores.items():
        got = [s.value for s in values if s.value is not None]
        mean, stderr = _mean_stderr(got)
        metrics[metric] = {"value": mean, "stderr": stderr, "n": len(got)}
    fractions = {m: {"value": metrics[m]["n"] / n_samples, "stderr": math.nan, "n": n_samples} for m in scores}
    entry = TaskEntry(
        protocol={"name": "continuation", "kind": "continuation"},
        pipeline={"run_dir": str(folder / "continuations" / "run0"),
                  "scorers": {"semantic_rating": {"direction": "higher", "scorer": "judge_rating"},
                              "duration_s": {"direction": "neutral", "scorer": "duration_s"}}},
        dataset={"sha256": "0" * 64, "n_prompts": (n_samples + 1) // 2, "n_samples": n_samples},
        result={"headline": "semantic_rating", "metrics": metrics, "breakdowns": {"scored_fraction": fractions}},
        unscored=unscored_reasons(scores), files={"samples": str(samples)},
        metric_info={"semantic_rating": MetricInfo("a 1-5 rating", "higher", False, 1, 5).to_json(),
                     "duration_s": MetricInfo("seconds", "neutral", False, 0).to_json(),
                     "scored_fraction": MetricInfo.fraction("higher", True).to_json()})
    doc = ResultsDocument(tasks={"continuation": entry}, command=["alignslm-eval", "--model", model_name],
                          model={"name": model_name, "path": f"/ckpt/{model_name}"}, seed=0)
    return doc.write(folder)


def demo_eval_run(demo, out: Path) -> Path:
    """The demo's `--tasks all` evaluation with --log-samples (its likelihood tasks' choice tables need it)."""
    from alignslm_eval.cli.eval import main

    code = main(["--model", "demo", "--cache-dir", str(demo.root.parent.parent), "--tasks", "all", "--log-samples",
                 "--output-path", str(out)])
    assert code == 0
    return next(out.glob("*/results_*.json"))


def tiny_training_run(demo, prompts: Path, out: Path, rounds: int = 2) -> Path:
    """A real alignslm-train run, as small as still makes pairs in both rounds: 8 prompts x 3 samples, the
    loopback judge, with a mid-training evaluation every step."""
    from alignslm_train.cli import main
    from tests.judge_server import JudgeServer, hashed_score

    with JudgeServer(default=hashed_score()) as server:
        code = main(["--model", str(demo.model_dir), "--prompts", str(prompts), "--output-dir", str(out),
                     "--rounds", str(rounds), "--samples-per-prompt", "3", "--max-new-tokens", "60",
                     "--schedule", "3:2,3:2", "--judge-model", "loopback", "--judge-base-url", server.base_url,
                     "--judge-api-key-env", "NO_KEY_HERE", "--lora-rank", "8", "--lora-alpha", "16",
                     "--learning-rate", "5e-3", "--batch-size", "2", "--epochs", "2", "--cache-dir",
                     str(demo.root.parent.parent), "--eval-tasks", "sstorycloze", "--eval-every", "1",
                     "--eval-limit", "4", "--eval-data-root", str(demo.data_root)])
    assert code == 0
    return out


