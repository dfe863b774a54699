"""What the judge tests share: the environment variable holding the test key, the options of a scorer asking the
loopback server (tests/judge_server.py), and a sample to score."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignslm_eval.api.scorer import Continuation
from tests.judge_server import JudgeServer

KEY_ENV = "ALIGNSLM_TEST_JUDGE_KEY"
SECRET = "sk-test-0123456789-DO-NOT-LEAK"
MAX_RETRIES = 4  # 5 attempts in all
TIMEOUT_S = 0.3


@pytest.fixture
def key(monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def options(server: JudgeServer, cache_dir: Path, **extra) -> dict:
    return {"judge_model": "loopback-judge", "judge_base_url": server.base_url, "judge_api_key_env": KEY_ENV,
            "judge_concurrency": 4, "judge_timeout_s": TIMEOUT_S, "judge_max_retries": MAX_RETRIES,
            "judge_backoff_s": 0.01, "judge_cache_dir": str(cache_dir), **extra}


def item(i: int, text: str | None, prompt_text: str | None = "the prompt of the story") -> Continuation:
    return Continuation(prompt_id=f"p{i}", sample=0, units=[1, 2, 3], prompt_text=prompt_text, text=text)


def marked(i: int, marker: str) -> Continuation:
    """Sample `i`, its text ending in a server rule's marker."""
    return item(i, f"continuation {i} {marker}")
