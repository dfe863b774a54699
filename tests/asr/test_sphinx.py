import csv
from pathlib import Path

import numpy as np
import pytest

from alignslm_eval.api.registry import ASRS
from alignslm_eval.asr import normalize, word_error_rate
from alignslm_eval.asr.sphinx import PocketSphinxASR
from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError

LIBRISPEECH = "librispeech_dev-clean_2412-153948-0000.flac"
LJSPEECH = ("ljspeech_LJ002-0020.wav", "ljspeech_LJ002-0035.wav")


def _transcripts(shared_data: Path) -> dict[str, str]:
    with open(shared_data / "audio" / "transcripts.tsv", newline="", encoding="utf-8") as f:
        return {row["file"]: row["transcript"] for row in csv.DictReader(f, delimiter="\t")}


@pytest.fixture(scope="module")
def asr() -> PocketSphinxASR:
    return PocketSphinxASR.from_args()


def test_registered_under_its_name():
    assert ASRS.get("pocketsphinx") is PocketSphinxASR


def test_librispeech_and_ljspeech_wer(asr, shared_data):
    refs = _transcripts(shared_data)
    files = (LIBRISPEECH, *LJSPEECH)
    wavs = [load_audio(shared_data / "audio" / name, 16000) for name in files]
    hyps = asr.transcribe(wavs)
    assert len(hyps) == 3 and all(isinstance(h, str) and h for h in hyps)

    libri = word_error_rate([refs[LIBRISPEECH]], [hyps[0]])
    lj = word_error_rate([refs[n] for n in LJSPEECH], hyps[1:])
    for name, hyp in zip(files, hyps):
        print(f"\npocketsphinx {name}\n  ref: {normalize(refs[name])}\n  hyp: {normalize(hyp)}")
    print(f"pocketsphinx WER LibriSpeech 2412-153948-0000: {libri['wer']:.3f} (CER {libri['cer']:.3f}, "
          f"S/D/I {libri['substitutions']}/{libri['deletions']}/{libri['insertions']} of {libri['reference_words']})")
    print(f"pocketsphinx WER LJSpeech x2: {lj['wer']:.3f} (of {lj['reference_words']} words)")
    # A small n-gram model, not a neural recogniser: only a loose bound. 0.8 would still be far better than chance.
    assert libri["wer"] < 0.8
    assert lj["wer"] < 0.8


def test_transcript_does_not_depend_on_what_was_decoded_before(asr, shared_data):
    # Without the per-utterance front-end reset, LJ002-0020 decoded after this clip reads "the team thirteen"
    # instead of "until thirteen".
    lj = load_audio(shared_data / "audio" / LJSPEECH[0], 16000)
    other = load_audio(shared_data / "audio" / "mlx_whisper_ls_test.flac", 16000)
    alone = PocketSphinxASR.from_args().transcribe([lj])
    assert asr.transcribe([other, lj])[1] == alone[0]
    assert asr.transcribe([lj, lj]) == alone * 2


def test_empty_and_silent_input(asr):
    assert asr.transcribe([]) == []
    out = asr.transcribe([np.zeros(0, np.float32), np.zeros(160, np.float32)])
    assert out == ["", ""]
    with pytest.raises(ValueError, match="mono"):
        asr.transcribe([np.zeros((2, 100), np.float32)])


def test_describe_names_version_and_bundled_model(asr):
    info = asr.describe()
    assert info["kind"] == "pocketsphinx" and info["default_model"] is True
    assert info["pocketsphinx_version"].startswith("5.")
    assert Path(info["hmm"], "mdef").is_file() and Path(info["lm"]).is_file() and Path(info["dict"]).is_file()


def test_custom_model_paths_are_used_and_checked(asr, shared_data, tmp_path):
    # A dictionary restricted to a few words: the recogniser can then only output those words.
    words = {"eight", "the", "press", "yard"}
    lines = [line for line in Path(asr.dictionary).read_text().splitlines() if line.split(" ", 1)[0] in words]
    small_dict = tmp_path / "small.dict"
    small_dict.write_text("\n".join(lines) + "\n")
    small = PocketSphinxASR.from_args(dict=str(small_dict))
    assert small.describe()["dict"] == str(small_dict.resolve()) and small.describe()["default_model"] is False
    hyp = small.transcribe([load_audio(shared_data / "audio" / LIBRISPEECH, 16000)])[0]
    assert hyp and set(hyp.split()) <= words

    with pytest.raises(UserError, match="hmm=.*no such acoustic model directory"):
        PocketSphinxASR.from_args(hmm=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="cannot load hmm="):
        PocketSphinxASR.from_args(hmm=str(tmp_path))
    with pytest.raises(UserError, match="unknown argument.*model"):
        PocketSphinxASR.from_args(model="x")
