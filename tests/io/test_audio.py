import csv
import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from alignslm_eval.io.audio import file_sha256, load_audio
from alignslm_eval.io.errors import UserError

@pytest.fixture
def audio(shared_data: Path) -> Path:
    return shared_data / "audio"


def _durations(audio: Path) -> dict[str, float]:
    with open(audio / "transcripts.tsv", encoding="utf-8", newline="") as f:
        return {row["file"]: float(row["duration_s"]) for row in csv.DictReader(f, delimiter="\t")}


@pytest.mark.parametrize("name", ["ljspeech_LJ002-0020.wav", "whisper_jfk.flac", "mlx_whisper_ls_test.flac"])
def test_real_files_load_at_16k_with_expected_duration(name: str, audio: Path) -> None:
    path = audio / name
    info = sf.info(str(path))
    wav = load_audio(path, 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1 and wav.flags.c_contiguous
    assert len(wav) == math.ceil(info.frames * 16000 / info.samplerate)
    # transcripts.tsv rounds durations; allow one 20 ms frame
    assert abs(len(wav) - _durations(audio)[name] * 16000) <= 320
    assert 1e-3 < float(np.sqrt(np.mean(wav**2))) and float(np.abs(wav).max()) <= 1.05


def test_stereo_24bit_is_mean_downmixed(audio: Path) -> None:
    path = audio / "whisper_jfk.flac"
    raw, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert (sr, raw.shape[1], sf.info(str(path)).subtype) == (44100, 2, "PCM_24")
    np.testing.assert_array_equal(load_audio(path, 44100), raw.mean(axis=1))


def test_native_rate_is_not_resampled(audio: Path) -> None:
    path = audio / "mlx_whisper_ls_test.flac"
    raw, _ = sf.read(str(path), dtype="float32")
    np.testing.assert_array_equal(load_audio(path, 16000), raw)


def test_downmix_and_bit_depths(tmp_path: Path) -> None:
    left = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    stereo = np.stack([left, -0.5 * left], axis=1)
    for subtype in ("PCM_16", "PCM_24", "FLOAT"):
        path = tmp_path / f"stereo_{subtype}.wav"
        sf.write(str(path), stereo, 16000, subtype=subtype)
        np.testing.assert_allclose(load_audio(path, 16000), 0.25 * left, atol=1e-4)


def test_resampled_tone_keeps_its_frequency(tmp_path: Path) -> None:
    t = np.arange(22050) / 22050
    path = tmp_path / "tone.flac"
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 440 * t), 22050, subtype="PCM_16")
    wav = load_audio(path, 16000)
    spectrum = np.abs(np.fft.rfft(wav))
    assert len(wav) == 16000 and abs(np.argmax(spectrum) * 16000 / len(wav) - 440) <= 1


def _assert_one_line_error(path: Path) -> str:
    with pytest.raises(UserError) as exc:
        load_audio(path, 16000)
    message = str(exc.value)
    assert str(path) in message and "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in _assert_one_line_error(tmp_path / "nope.wav")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(str(path), np.zeros(0, dtype=np.float32), 16000)
    assert "no samples" in _assert_one_line_error(path)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "re-export it as wav or flac" in _assert_one_line_error(path)


def test_directory_is_rejected(tmp_path: Path) -> None:
    _assert_one_line_error(tmp_path)


def test_file_sha256_streams_large_files(audio: Path, tmp_path: Path) -> None:
    path = audio / "whisper_jfk.flac"
    assert os.path.getsize(path) > 1 << 20  # more than one chunk
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(UserError, match="nope.bin"):
        file_sha256(tmp_path / "nope.bin")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples_are_refused_naming_the_file_and_where(audio: Path, tmp_path: Path, bad: float) -> None:
    # The audit's case: a 2000-sample burst in real speech, stored as float so the values survive.
    wav, sr = sf.read(str(audio / "ljspeech_LJ002-0020.wav"), dtype="float32")
    wav[sr : sr + 2000] = bad
    path = tmp_path / "burst.wav"
    sf.write(str(path), wav, sr, subtype="FLOAT")
    with pytest.raises(UserError, match=rf"burst.wav: 2000 of {len(wav)} samples are NaN or infinite \(the first at "
                                        r"1.000 s\)"):
        load_audio(path, 16000)


def test_a_fifo_named_like_audio_is_refused_instead_of_hashed_forever(tmp_path: Path) -> None:
    fifo = tmp_path / "stream.wav"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="stream.wav: not a regular file"):
        file_sha256(fifo)
    with pytest.raises(UserError, match="stream.wav: not a file"):
        load_audio(fifo, 16000)
