import hashlib

import numpy as np
import pytest
import soundfile as sf

from alignslm_eval.io.errors import UserError
from alignslm_eval.builders.salmon import PARTS, build_salmon
from alignslm_tasks.choice import load_salmon

SENTENCES = ["the small dog runs across the green field", "my sister bakes fresh bread on sunday"]


def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.wav"))}


def test_build_reads_back_and_is_deterministic(tmp_path):
    build_salmon(SENTENCES, tmp_path / "a", seed=3)
    build_salmon(SENTENCES, tmp_path / "b", seed=3)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    data = load_salmon(tmp_path / "a" / "salmon", PARTS)
    assert len(data.choices) == len(PARTS) * len(SENTENCES)
    for choice in data.choices:
        positive, negative = (sf.read(data.items[k].path)[0] for k in choice.candidates)
        assert choice.positive == 0 and len(positive) > 16000
        assert not np.array_equal(positive, negative)


def test_only_the_second_half_differs(tmp_path):
    build_salmon(SENTENCES[:1], tmp_path, parts=["rir_consistency"], seed=0)
    pos, _ = sf.read(tmp_path / "salmon" / "rir_consistency" / "sample_0_0.wav")
    neg, _ = sf.read(tmp_path / "salmon" / "rir_consistency" / "sample_0_1.wav")
    first_diff = int(np.flatnonzero(np.abs(pos - neg) > 1e-4)[0])
    assert first_diff > len(pos) * 0.2  # the first half is shared


def test_bad_input(tmp_path):
    with pytest.raises(UserError, match="cannot be built"):
        build_salmon(SENTENCES, tmp_path, parts=["sentiment_consistency"])
    with pytest.raises(UserError, match="sentence 1"):
        build_salmon(["too short"], tmp_path)
