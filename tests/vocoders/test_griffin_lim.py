from pathlib import Path

import numpy as np
import pytest
import torch

from alignslm_eval.api.registry import VOCODERS
from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError
from alignslm_eval.tokenizers.offline import OfflineTokenizer
from alignslm_eval.io.units import Units, from_frames
from alignslm_eval.vocoders.griffin_lim import GriffinLimVocoder, spread_durations

SPEECH = "librispeech_dev-clean_2412-153948-0000.flac"
HOP = 640


@pytest.fixture(scope="module")
def tokenizer_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("griffin_lim") / "offline16.npz"
    OfflineTokenizer.fit([shared_data / "audio" / SPEECH], n_units=16, seed=0).save(path)
    return path


@pytest.fixture(scope="module")
def tokenizer(tokenizer_file: Path) -> OfflineTokenizer:
    return OfflineTokenizer.load(tokenizer_file)


@pytest.fixture(scope="module")
def vocoder(tokenizer_file: Path) -> GriffinLimVocoder:
    return VOCODERS.get("griffin_lim").from_args(tokenizer=str(tokenizer_file))


@pytest.fixture(scope="module")
def speech(shared_data: Path, tokenizer: OfflineTokenizer) -> tuple[np.ndarray, Units]:
    frames = tokenizer.encode(load_audio(shared_data / "audio" / SPEECH, 16000))
    return frames, from_frames(frames)


def test_round_trip_through_the_tokenizer(
    vocoder: GriffinLimVocoder, tokenizer: OfflineTokenizer, speech: tuple[np.ndarray, Units]
) -> None:
    frames, units = speech
    wav = vocoder.synthesize(units.units, units.durations)
    assert wav.dtype == np.float32 and wav.shape == (int(units.durations.sum()) * HOP,)
    assert np.all(np.isfinite(wav)) and 0.5 < np.abs(wav).max() <= 1.0
    agreement = float(np.mean(tokenizer.encode(wav) == frames))
    chance = float(np.sum((np.bincount(frames, minlength=16) / len(frames)) ** 2))
    print(f"griffin_lim round trip: frame agreement {agreement:.3f} (chance {chance:.3f})")
    # Measured 1.000; half a hop of misalignment already drops it to about 0.66, one frame to 0.41.
    assert agreement > 0.9


def test_deterministic_and_leaves_the_rng_alone(vocoder: GriffinLimVocoder, speech: tuple[np.ndarray, Units]) -> None:
    _, units = speech
    state = torch.get_rng_state()
    first = vocoder.synthesize(units.units[:40], units.durations[:40])
    torch.manual_seed(123)
    second = vocoder.synthesize(units.units[:40], units.durations[:40])
    assert first.tobytes() == second.tobytes()
    torch.set_rng_state(state)
    vocoder.synthesize(units.units[:5])
    assert torch.equal(torch.get_rng_state(), state)


def test_default_durations(vocoder: GriffinLimVocoder, speech: tuple[np.ndarray, Units]) -> None:
    _, units = speech
    n = 30
    assert vocoder.default_duration == 1.3
    durations = spread_durations(n, 1.3)
    assert durations.sum() == round(n * 1.3) and set(durations.tolist()) == {1, 2}
    assert vocoder.synthesize(units.units[:n]).shape == (round(n * 1.3) * HOP,)
    two = GriffinLimVocoder.from_args(tokenizer=str(vocoder.source), default_duration="2", n_iter="4")
    assert two.synthesize(units.units[:n]).shape == (2 * n * HOP,)
    np.testing.assert_array_equal(spread_durations(4, 1.0), [1, 1, 1, 1])


def test_short_and_empty(vocoder: GriffinLimVocoder) -> None:
    assert vocoder.synthesize(np.array([3]), np.array([1])).shape == (HOP,)
    assert vocoder.synthesize(np.array([3, 5]), np.array([0, 1])).shape == (HOP,)
    assert vocoder.synthesize(np.zeros(0, np.int64)).shape == (0,)
    with pytest.raises(UserError, match="unit id 16 is outside the vocoder's inventory 0..15"):
        vocoder.synthesize(np.array([1, 16]))


def test_describe(vocoder: GriffinLimVocoder, tokenizer: OfflineTokenizer, tokenizer_file: Path) -> None:
    described = vocoder.describe()
    assert described["kind"] == "griffin_lim" and described["tokenizer"] == str(tokenizer_file)
    assert described["centroids_sha256"] == tokenizer.quantizer.sha256
    assert [described[k] for k in ("hop", "n_fft", "sample_rate", "n_units")] == [640, 1024, 16000, 16]
    assert vocoder.n_units == 16 and vocoder.sample_rate == 16000


def test_argument_errors(tokenizer_file: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing tokenizer="):
        GriffinLimVocoder.from_args()
    with pytest.raises(UserError, match="unknown argument"):
        GriffinLimVocoder.from_args(tokenizer=str(tokenizer_file), hop="320")
    with pytest.raises(UserError, match="n_iter='many' is not an integer"):
        GriffinLimVocoder.from_args(tokenizer=str(tokenizer_file), n_iter="many")
    with pytest.raises(UserError, match="at least 1 frame per unit"):
        GriffinLimVocoder.from_args(tokenizer=str(tokenizer_file), default_duration="0.5")
    assert GriffinLimVocoder.from_args(path=str(tokenizer_file)).source == tokenizer_file
    with pytest.raises(UserError, match="disagree"):
        GriffinLimVocoder.from_args(path=str(tokenizer_file), tokenizer=str(tmp_path / "other.npz"))
    with pytest.raises(UserError, match="offline tokenizer file not found"):
        GriffinLimVocoder.from_args(tokenizer=str(tmp_path / "absent.npz"))
