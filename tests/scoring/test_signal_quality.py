"""The signal-level scorers (silence_ratio, clipping_ratio, duration_s) on synthetic wav files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from alignslm_eval.api.registry import SCORERS
from alignslm_eval.api.scorer import Continuation
from alignslm_eval.leaderboard.collect import registered_column

RATE = 16000
NAMES = ("silence_ratio", "clipping_ratio", "duration_s")


def write(path, wav: np.ndarray, rate: int = RATE) -> str:
    sf.write(str(path), wav.astype(np.float32), rate, subtype="FLOAT")
    return str(path)


@pytest.fixture
def wavs(tmp_path):
    t = np.arange(RATE) / RATE  # 1 s
    clipped = np.clip(2.0 * np.sin(2 * np.pi * 220 * t), -1.0, 1.0)
    # 0.5 s of silence then 1 s of a clipped sine: 20 of 60 frames silent, a third of the samples not at full scale.
    mixed = np.concatenate([np.zeros(RATE // 2), clipped])
    return {
        "silence": (write(tmp_path / "silence.wav", np.zeros(2 * RATE)), 1.0, 0.0, 2.0),
        "clipped": (write(tmp_path / "clipped.wav", clipped), 0.0, float(np.mean(np.abs(clipped) >= 0.999)), 1.0),
        "quiet_sine": (write(tmp_path / "quiet.wav", 0.5 * np.sin(2 * np.pi * 220 * t[: RATE // 4])), 0.0, 0.0, 0.25),
        "mixed": (write(tmp_path / "mixed.wav", mixed), 20 / 60,
                  float(np.mean(np.abs(mixed) >= 0.999)), 1.5),
        "empty": (write(tmp_path / "empty.wav", np.zeros(0)), 1.0, 0.0, 0.0),
    }


def items(wavs) -> list[Continuation]:
    out = [Continuation(prompt_id=name, sample=0, units=[1], wav=path) for name, (path, *_) in wavs.items()]
    out.append(Continuation(prompt_id="no_audio", sample=0, units=[1], wav=None))
    return out


@pytest.mark.parametrize("column", range(3))
def test_each_scorer_reports_its_stat(wavs, column):
    name = NAMES[column]
    scorer = SCORERS.get(name).from_options({})
    assert scorer.metric == name and scorer.needs == ("wav",)
    scores = scorer.score(items(wavs))
    assert len(scores) == len(wavs) + 1
    for (key, (_, *expected)), s in zip(wavs.items(), scores):
        assert s.status == "ok", key
        assert s.value == pytest.approx(expected[column], abs=1e-6), key
        # Every stat stays in the detail, whichever scorer wrote it.
        assert s.detail == pytest.approx(dict(zip(NAMES, expected)), abs=1e-6), key
    assert scores[-1].value is None and scores[-1].status == "no audio"


def test_clipped_sine_is_mostly_at_full_scale(wavs):
    # 2 * sin clipped to +-1: |sin| >= 0.4995 for about two thirds of the period.
    assert wavs["clipped"][2] == pytest.approx(1 - 2 / np.pi * np.arcsin(0.4995), abs=0.01)


def test_directions_and_descriptions():
    directions = {name: SCORERS.get(name).metric_info.direction for name in NAMES}
    assert directions == {"silence_ratio": "lower", "clipping_ratio": "lower", "duration_s": "neutral"}
    # The ratios are fractions shown as they are (not as percentages); a duration is any length from 0 up.
    ratio, duration = SCORERS.get("silence_ratio").metric_info, SCORERS.get("duration_s").metric_info
    assert not ratio.percent and ratio.admits(1.0) and not ratio.admits(1.01)
    assert duration.admits(120.0) and not duration.admits(-0.1)
    for name in NAMES:
        described = SCORERS.get(name).from_options({}).describe()
        assert described["scorer"] == name and described["frame_s"] == 0.025 and described["clip_level"] == 0.999
    # The leaderboard marks a best value for the ratios only; duration has no better or worse.
    assert registered_column("signal_quality", "clipping_ratio").direction == "lower"
    assert registered_column("signal_quality", "silence_ratio").direction == "lower"
    assert registered_column("signal_quality", "duration_s").direction is None


def test_tasks_list_the_new_scorers_after_the_headline():
    root = Path(__file__).resolve().parents[2] / "tasks"
    signal = yaml.safe_load((root / "signal_quality.yaml").read_text())["settings"]["scorers"]
    audio = yaml.safe_load((root / "audio_quality.yaml").read_text())["settings"]["scorers"]
    assert signal == ["silence_ratio", "clipping_ratio", "duration_s"]
    assert audio == ["utmos", "silence_ratio", "clipping_ratio", "duration_s"]
