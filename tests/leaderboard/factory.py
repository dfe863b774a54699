"""Hand-made alignslm results documents (schema version 1) for the leaderboard tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional


def task_entry(
    value: Optional[float],
    stderr: Optional[float] = 0.01,
    n: int = 100,
    reduction: str = "sum",
    sha: str = "data-v1",
    headline: str = "accuracy",
    extra: Optional[dict[str, Any]] = None,
    breakdowns: Optional[dict[str, Any]] = None,
    settings: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    metrics = {} if value is None else {headline: {"value": value, "stderr": stderr, "n": n}}
    metrics.update(extra or {})
    return {
        "protocol": {"reduction": reduction, "add_bos": True, "add_eos": False, "dedup": True,
                     "scorer": "likelihood_choice", "settings": settings or {}},
        "dataset": {"path": "/data", "sha256": sha, "n_items": 2 * n, "n_choices": n, "limit": None},
        "result": {"headline": headline, "metrics": metrics, "breakdowns": breakdowns or {}},
        "files": {},
    }


def results_doc(
    tasks: dict[str, Any],
    model_path: str = "/ckpt/tiny-lm",
    weights: str = "a1" * 32,
    created: str = "2026-01-01T00-00-00",
    tokenizer_fp: str = "tok-a",
    n_parameters: int = 40_000,
    adapter: Any = None,
    schema_version: Any = 1,
) -> dict[str, Any]:
    model = {"path": model_path, "local_dir": model_path, "weights_fingerprint": weights, "n_parameters": n_parameters}
    if adapter is not None:
        model["adapter"] = adapter
    return {
        "schema_version": schema_version,
        "created": created,
        "command": ["alignslm-eval", "--model", model_path, "--tasks", ",".join(tasks)],
        "seed": 0,
        "model": model,
        "tokenizer": {"fingerprint": tokenizer_fp, "kind": "hubert", "layer": 11, "n_units": 500},
        "tasks": tasks,
    }


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path
