import json
from pathlib import Path

import numpy as np
import pytest

from alignslm_eval.api.registry import TOKENIZERS
from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError
from alignslm_eval.tokenizers.hubert import HubertTokenizer
from alignslm_eval.tokenizers.offline import OfflineTokenizer

FIT_FILES = ("ljspeech_LJ002-0020.wav", "mlx_whisper_ls_test.flac", "librispeech_dev-clean_2412-153948-0001.flac")
N_UNITS = 16


@pytest.fixture(scope="module")
def audio(shared_data: Path) -> Path:
    return shared_data / "audio"


@pytest.fixture(scope="module")
def fitted(audio: Path) -> OfflineTokenizer:
    return OfflineTokenizer.fit([audio / name for name in FIT_FILES], n_units=N_UNITS, seed=0)


def test_fit_is_deterministic_for_a_seed(fitted: OfflineTokenizer, audio: Path) -> None:
    again = OfflineTokenizer.fit([audio / name for name in FIT_FILES], n_units=N_UNITS, seed=0)
    np.testing.assert_array_equal(again.quantizer.centroids, fitted.quantizer.centroids)
    assert again.fingerprint() == fitted.fingerprint()
    assert fitted.config["fit_files"] == list(FIT_FILES) and fitted.config["fit_frames"] > N_UNITS


def test_save_load_round_trip(fitted: OfflineTokenizer, audio: Path, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tok.npz"
    fitted.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["tok.npz"]
    loaded = OfflineTokenizer.from_args(path=str(path))
    np.testing.assert_array_equal(loaded.quantizer.centroids, fitted.quantizer.centroids)
    assert loaded.describe() == fitted.describe() and loaded.fingerprint() == fitted.fingerprint()
    wav = load_audio(audio / "slamkit_audio1.flac", 16000)
    np.testing.assert_array_equal(loaded.encode(wav), fitted.encode(wav))


@pytest.mark.parametrize("name", ["ljspeech_LJ002-0035.wav", "whisper_jfk.flac"])
def test_encode_other_rates_and_stereo(fitted: OfflineTokenizer, audio: Path, name: str) -> None:
    wav = load_audio(audio / name, fitted.sample_rate)
    units = fitted.encode(wav)
    assert fitted.frame_rate == 25.0 and fitted.n_units == N_UNITS
    assert units.dtype == np.int64 and len(units) == len(wav) // 640
    assert units.min() >= 0 and units.max() < N_UNITS and len(np.unique(units)) > 3
    # per-utterance normalisation: the gain does not matter
    assert np.mean(fitted.encode(0.2 * wav) == units) > 0.95
    np.testing.assert_array_equal(fitted.encode(wav), units)


def test_short_audio(fitted: OfflineTokenizer) -> None:
    assert fitted.encode(np.zeros(639, np.float32)).shape == (0,)
    assert fitted.encode(np.zeros(640, np.float32)).shape == (1,)


def test_too_few_frames(audio: Path) -> None:
    with pytest.raises(UserError, match="fewer than n_units=100"):
        OfflineTokenizer.fit([audio / "ljspeech_LJ002-0020.wav"], n_units=100)
    with pytest.raises(UserError, match="no audio files"):
        OfflineTokenizer.fit([], n_units=4)


def test_bad_files(fitted: OfflineTokenizer, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        OfflineTokenizer.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(UserError, match="garbage.npz"):
        OfflineTokenizer.load(garbage)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, centroids=np.zeros((3, 80), np.float32), config=np.array(json.dumps({"format": "other"})))
    with pytest.raises(UserError, match="not an offline tokenizer file"):
        OfflineTokenizer.load(wrong)
    with pytest.raises(UserError, match="missing path"):
        OfflineTokenizer.from_args()
    with pytest.raises(UserError, match="unknown argument"):
        OfflineTokenizer.from_args(path="x.npz", seed="1")


def test_registered() -> None:
    assert TOKENIZERS.get("offline") is OfflineTokenizer
    assert TOKENIZERS.get("hubert") is HubertTokenizer
