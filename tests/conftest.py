import os
from pathlib import Path

import pytest

# The shared real data sits beside the repository (CI clones main next to shared/); never copied into the project.
SHARED_DATA = Path(os.environ.get("ALIGNSLM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}; set ALIGNSLM_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    # Tests never touch the network or the user's caches.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ALIGNSLM_CACHE", str(tmp_path / "alignslm-cache"))


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The embedded demo, built once per test session (about 40 s) and shared by the tests that need it."""
    from alignslm_eval.demo import ensure_demo

    return ensure_demo(tmp_path_factory.mktemp("demo-cache"))


@pytest.fixture(scope="session")
def story_world(tmp_path_factory):
    """The story world at its small scale (two of the grammar's times, short training; about 45 s), once per
    session: real speech, tokenizer, unit LM, recogniser and text LM, too weak for effects, right for mechanics."""
    from alignslm_eval.demo.story_world import ensure_story_world

    return ensure_story_world(tmp_path_factory.mktemp("story-cache"), "small")
