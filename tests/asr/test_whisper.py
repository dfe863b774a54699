"""WhisperASR on a tiny random-weight Whisper with an offline-built tokenizer, saved and loaded like a real checkpoint.

The vocabulary follows Whisper's layout (byte-level BPE, then <|endoftext|>, <|startoftranscript|>, the language
tokens in transformers' order, task and control tokens, then 1501 timestamp tokens), so the language, task,
no-timestamps and long-form code paths are the ones a real checkpoint exercises.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from alignslm_eval.api.registry import ASRS
from alignslm_eval.asr.whisper import WhisperASR
from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError

CLIPS = ("librispeech_dev-clean_2412-153948-0000.flac", "ljspeech_LJ002-0020.wav", "mlx_whisper_ls_test.flac")
MAX_NEW = "6"


def _save_tiny_whisper(directory: Path, multilingual: bool = True) -> Path:
    from tokenizers import pre_tokenizers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("e", "r")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    languages = [f"<|{code}|>" for code in LANGUAGES] if multilingual else []
    controls = [f"<|{name}|>" for name in ("translate", "transcribe", "startoflm", "startofprev", "nospeech")]
    controls.append("<|notimestamps|>")
    specials = ["<|endoftext|>", "<|startoftranscript|>", *languages, *controls]
    timestamps = ["<|%.2f|>" % (i * 0.02) for i in range(1501)]
    for token in specials + timestamps:
        vocab[token] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges, additional_special_tokens=specials[1:])
    tokenizer.add_tokens(timestamps)
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer)

    eot, sot = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    config = WhisperConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_target_positions=64,
        decoder_start_token_id=sot, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        begin_suppress_tokens=[vocab["Ġ"], eot],
        init_std=1.0,  # at the default 0.02 the decoder barely hears the encoder and every clip gives the same text
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():
        # Zero timestamp and end-of-text output rows (tied embeddings): their logits are 0 while some random text
        # logit is positive, so greedy decoding writes text instead of stopping at once.
        model.get_output_embeddings().weight[[eot, *(vocab[t] for t in timestamps)]] = 0.0
    gen = {
        "decoder_start_token_id": sot, "eos_token_id": eot, "pad_token_id": eot, "bos_token_id": eot,
        "no_timestamps_token_id": vocab["<|notimestamps|>"], "prev_sot_token_id": vocab["<|startofprev|>"],
        "is_multilingual": multilingual, "max_initial_timestamp_index": 50, "max_length": 64,
        "begin_suppress_tokens": [vocab["Ġ"], eot],
        "suppress_tokens": [vocab[t] for t in specials[1:]],  # text only, as a trained model would write
    }
    if multilingual:
        gen["lang_to_id"] = {token: vocab[token] for token in languages}
        gen["task_to_id"] = {"translate": vocab["<|translate|>"], "transcribe": vocab["<|transcribe|>"]}
    model.generation_config = GenerationConfig(**gen)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _save_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny")


@pytest.fixture(scope="module")
def wavs(shared_data) -> list[np.ndarray]:
    return [load_audio(shared_data / "audio" / name, 16000) for name in CLIPS]


def _asr(model_dir: Path, **kwargs: str) -> WhisperASR:
    return WhisperASR.from_args(path=str(model_dir), max_new_tokens=MAX_NEW, **kwargs)


def test_registered_under_its_name():
    assert ASRS.get("whisper") is WhisperASR


def test_batched_transcripts_match_one_by_one(model_dir, wavs):
    assert len({w.size for w in wavs}) == 3
    by_two = _asr(model_dir, batch_size="2").transcribe(wavs)
    assert len(by_two) == 3 and all(isinstance(t, str) and t for t in by_two)
    assert by_two == _asr(model_dir, batch_size="1").transcribe(wavs)
    assert by_two == _asr(model_dir, batch_size="3").transcribe(wavs)
    # Different audio, different greedy path: the decoder really attends to the encoder.
    assert len(set(by_two)) > 1


def test_empty_waveform_gives_empty_text_and_keeps_order(model_dir, wavs):
    asr = _asr(model_dir, batch_size="8")
    expected = asr.transcribe(wavs[:2])
    assert asr.transcribe([wavs[0], np.zeros(0, np.float32), wavs[1]]) == [expected[0], "", expected[1]]
    assert asr.transcribe([]) == []
    with pytest.raises(ValueError, match="mono"):
        asr.transcribe([np.zeros((2, 16000), np.float32)])


def test_long_clips(model_dir, wavs, monkeypatch):
    long_wav = np.concatenate([wavs[0], wavs[2], wavs[0], wavs[1]])  # about 31.5 s
    assert long_wav.size > 30 * 16000
    window = long_wav[: 30 * 16000]

    truncating = _asr(model_dir, long_form="truncate")
    assert truncating.transcribe([long_wav]) == truncating.transcribe([window])

    sequential = _asr(model_dir)
    calls = []
    generate = sequential.model.generate

    def spy(input_features, **kwargs):
        calls.append((input_features.shape[-1], kwargs.get("return_timestamps")))
        return generate(input_features, **kwargs)

    monkeypatch.setattr(sequential.model, "generate", spy)
    texts = sequential.transcribe([wavs[1], long_wav])
    assert all(texts) and texts[0] == truncating.transcribe([wavs[1]])[0]
    # The short clip goes through the 30 s window alone; the long one gets all its frames and timestamp decoding.
    assert calls == [(3000, False), (long_wav.size // 160, True)]

    del sequential.model.generation_config.no_timestamps_token_id
    with pytest.raises(UserError, match="long_form=truncate"):
        sequential.transcribe([long_wav])


def test_describe_and_beam_search(model_dir, wavs):
    asr = _asr(model_dir, num_beams="2")
    assert asr.transcribe(wavs[1:]) == _asr(model_dir, num_beams="2", batch_size="1").transcribe(wavs[1:])
    info = asr.describe()
    assert info["kind"] == "whisper" and info["local_dir"] == str(model_dir.resolve())
    assert (info["language"], info["task"], info["num_beams"], info["decoding"]) == ("en", "transcribe", 2, "beam")
    assert info["dtype"] == "float32" and info["long_form"] == "sequential" and info["max_new_tokens"] == 6
    assert len(info["weights_quick_sha256"]) == 64
    json.dumps(info)


def test_language_argument(model_dir, wavs):
    assert _asr(model_dir, language="English").language == "en"
    assert _asr(model_dir, language="<|fr|>").language == "fr"
    with pytest.raises(UserError, match="language='klingon' is not supported"):
        _asr(model_dir, language="klingon")


def test_english_only_checkpoint_takes_no_language_token(tmp_path, wavs):
    model_dir = _save_tiny_whisper(tmp_path / "tiny-en", multilingual=False)
    asr = _asr(model_dir)
    assert asr.language == "en" and len(asr.transcribe(wavs[1:2])) == 1
    with pytest.raises(UserError, match="English-only"):
        _asr(model_dir, language="de")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache in tmp_path, so tests never read the user's."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_cached_hub_id_loads_offline(model_dir, hub_cache, wavs):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub_cache / "models--alignslm-test--tiny-whisper"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)

    asr = WhisperASR.from_args(path="alignslm-test/tiny-whisper", max_new_tokens=MAX_NEW)
    info = asr.describe()
    assert (info["hub_id"], info["resolved_commit"]) == ("alignslm-test/tiny-whisper", commit)
    assert info["weights_quick_sha256"] == _asr(model_dir).describe()["weights_quick_sha256"]
    assert asr.transcribe(wavs[1:2]) == _asr(model_dir).transcribe(wavs[1:2])


def test_bad_paths_and_arguments(model_dir, hub_cache, tmp_path):
    (tmp_path / "no_config").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        WhisperASR.from_args(path=str(tmp_path / "no_config"))
    with pytest.raises(UserError, match="no such model directory"):
        WhisperASR.from_args(path=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        WhisperASR.from_args(path="alignslm-test/no-such-whisper")
    hubert = tmp_path / "hubert"
    hubert.mkdir()
    (hubert / "config.json").write_text(json.dumps({"model_type": "hubert"}))
    with pytest.raises(UserError, match="not 'whisper'"):
        WhisperASR.from_args(path=str(hubert))
    (hubert / "config.json").write_text("{")
    with pytest.raises(UserError, match="config.json: not valid JSON"):
        WhisperASR.from_args(path=str(hubert))
    with pytest.raises(UserError, match="missing path="):
        WhisperASR.from_args()
    with pytest.raises(UserError, match="unknown argument.*beam_size"):
        WhisperASR.from_args(path=str(model_dir), beam_size="2")
    with pytest.raises(UserError, match="batch_size='x' is not an integer"):
        WhisperASR.from_args(path=str(model_dir), batch_size="x")
    with pytest.raises(UserError, match="max_new_tokens=61 is too large; this model allows at most 60"):
        WhisperASR.from_args(path=str(model_dir), max_new_tokens="61")
    with pytest.raises(UserError, match="dtype='fp8'"):
        WhisperASR.from_args(path=str(model_dir), dtype="fp8")
