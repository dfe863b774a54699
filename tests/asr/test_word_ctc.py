"""The closed-vocabulary word recogniser: loading, decoding that ignores batch company, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alignslm_eval.api.registry import ASRS
from alignslm_eval.asr.word_ctc import CONFIG_FILE, WordCTC, words_of
from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError


def test_words_of_keeps_letters_and_apostrophes():
    assert words_of("It's the Dog, running.") == ["it's", "the", "dog", "running"]


def test_a_folder_without_a_recogniser_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match=r"holds no word_ctc.json"):
        ASRS.get("word_ctc").from_args(path=str(tmp_path))
    with pytest.raises(UserError, match=r"give the recogniser's folder"):
        WordCTC.from_args()
    with pytest.raises(UserError, match=r"unknown argument\(s\) lang"):
        WordCTC.from_args(path=str(tmp_path), lang="en")


@pytest.mark.slow
def test_the_story_worlds_recogniser_loads_and_transcribes_alike_in_any_batch(story_world):
    asr = ASRS.get("word_ctc").from_args(path=str(story_world.asr_dir))
    wavs = [load_audio(story_world.root / "vocoded" / f"{s.id}.wav", 16000) for s in story_world.split(True)[:3]]
    together = asr.transcribe(wavs + [np.zeros(0, dtype=np.float32)])
    assert together[:3] == [asr.transcribe([w])[0] for w in wavs] and together[3] == ""
    assert all(set(t.split()) <= set(asr.vocabulary) for t in together)
    described = asr.describe()
    assert described["kind"] == "word_ctc" and len(described["weights_sha256"]) == 64
    config = json.loads((story_world.asr_dir / CONFIG_FILE).read_text())
    assert config["vocabulary"] == asr.vocabulary and config["training"]["epochs"] >= 1


def test_a_recogniser_of_another_format_is_refused(story_world, tmp_path):
    import shutil

    folder = tmp_path / "asr"
    shutil.copytree(story_world.asr_dir, folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["features"]["n_mels"] = 80
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"not a recogniser this version reads"):
        WordCTC.load(folder)
