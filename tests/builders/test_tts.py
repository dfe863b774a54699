import threading

import numpy as np
import pandas as pd
import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.builders.tts import EspeakTTS, Voice, default_tts

SENTENCE = "Who should Derek hug after shocking Richard?"


@pytest.fixture(scope="module")
def tts() -> EspeakTTS:
    return default_tts()


def test_synthesize_sentence(tts):
    wav, sr = tts.synthesize(SENTENCE)
    assert sr == tts.sample_rate == 22050
    assert wav.dtype == np.int16 and wav.ndim == 1
    assert 1.0 < len(wav) / sr < 5.0
    assert np.abs(wav.astype(np.int32)).max() > 1000


def test_output_does_not_depend_on_earlier_calls(tts):
    first, _ = tts.synthesize(SENTENCE, "en-us+f3")
    tts.synthesize("Something else entirely, spoken in between.", "en+m3", rate=300, pitch=80)
    again, _ = tts.synthesize(SENTENCE, "en-us+f3")
    assert np.array_equal(first, again)
    assert np.array_equal(EspeakTTS().synthesize(SENTENCE, "en-us+f3")[0], first)


def test_breathy_variant_is_deterministic(tts):
    # whisper mixes in espeak's noise generator, seeded on every call
    a, _ = tts.synthesize(SENTENCE, "en-us+whisper")
    tts.synthesize("Noise in between.", "en-us+whisper")
    b, _ = tts.synthesize(SENTENCE, "en-us+whisper")
    assert np.array_equal(a, b)


def test_variants_rate_and_pitch_change_the_audio(tts):
    base = tts.synthesize(SENTENCE)[0]
    for kwargs in ({"voice": "en-us+f3"}, {"voice": "en+m3"}, {"pitch": 80}):
        other = tts.synthesize(SENTENCE, **kwargs)[0]
        assert len(other) != len(base) or not np.array_equal(other, base)
    fast = tts.synthesize(SENTENCE, rate=350)[0]
    slow = tts.synthesize(SENTENCE, rate=100)[0]
    assert len(fast) < len(base) < len(slow)


def test_language_code_without_its_own_voice_file(tts):
    # en-gb is the voice file gmw/en; espeak_SetVoiceByName alone rejects the code
    wav, _ = tts.synthesize("hello there", "en-gb+f2")
    assert len(wav) > 0


def test_unknown_voice_names_it_and_lists_some(tts):
    with pytest.raises(UserError, match="xx-nowhere") as e:
        tts.synthesize("hello", "xx-nowhere")
    assert "en-us" in str(e.value)
    # espeak-ng itself silently ignores an unknown variant
    with pytest.raises(UserError, match="nosuch") as e:
        tts.synthesize("hello", "en-us+nosuch")
    assert "f3" in str(e.value)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text(tts, text):
    with pytest.raises(UserError, match="empty"):
        tts.synthesize(text)


def test_rate_out_of_range(tts):
    with pytest.raises(UserError, match="rate"):
        tts.synthesize("hello", rate=1000)


def test_ipa_input_is_converted_to_espeak_mnemonics(tts):
    from_ipa = tts.synthesize("həlˈoʊ wˈɜːld", phonemes=True)[0]
    from_mnemonics = tts.synthesize("[[h@l'oU w'3:ld]]", phonemes=True, alphabet="espeak")[0]
    assert np.array_equal(from_ipa, from_mnemonics)
    # what conversion avoids: espeak-ng stops reading a [[...]] word at its first IPA character
    raw = tts.synthesize("[[həlˈoʊ wˈɜːld]]", phonemes=True, alphabet="espeak")[0]
    assert len(raw) < 0.5 * len(from_mnemonics)


def test_ipa_segmentation(tts):
    assert tts.ipa_to_espeak("aɪ b ə s") == ("aIb@s", ["aɪ", "b", "ə", "s"])
    assert tts.ipa_to_espeak("bɹˈɪk") == ("br'Ik", ["b", "ɹ", "ɪ", "k"])
    # a vowel before r stays two phones (espeak fuses ɛɹ into the 'air' vowel)
    assert tts.ipa_to_espeak("vˈɛɹi")[0] == "v'Eri"
    assert tts.ipa_to_espeak("həlˈoʊ wˈɜːld")[0] == "h@l'oU w'3:ld"


def test_every_babyslm_phone_converts(tts, shared_data):
    table = pd.read_csv(shared_data / "babyslm" / "babyslm_lexical_dev_by_pair.csv")
    phones = set()
    for word, nonwords in zip(table["word"], table["non words"]):
        for entry in [word, *nonwords.split("/")]:
            phones.update(entry.split())
    for phone in sorted(phones):
        mnemonics, segmented = tts.ipa_to_espeak(phone)
        assert mnemonics and segmented == [phone]


def test_unknown_ipa_symbol(tts):
    with pytest.raises(UserError, match="ʘ"):
        tts.ipa_to_espeak("b ʘ k")


def test_phonemize(tts):
    assert tts.phonemize("brick") == [["b", "ɹ", "ɪ", "k"]]
    assert tts.phonemize("hello world") == [["h", "ə", "l", "oʊ"], ["w", "ɜː", "l", "d"]]


def test_threads_share_the_library_safely(tts):
    texts = [f"Sentence number {i} is spoken here." for i in range(8)]
    serial = [tts.synthesize(t)[0] for t in texts]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = tts.synthesize(texts[i])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], serial[i]) for i in range(len(texts)))


def test_voice_spec():
    voice = Voice.parse("en+m3:r150:p60")
    assert (voice.name, voice.rate, voice.pitch) == ("en+m3", 150, 60)
    assert voice.spec == "en+m3:r150:p60"
    assert Voice.parse("en-us").spec == "en-us"
    for bad in ("en-us:x3", "en-us:r20", ":r150", "en-us:p200"):
        with pytest.raises(UserError):
            Voice.parse(bad)


def test_voice_listing(tts):
    assert "en-us" in {v.language for v in tts.voices()}
    assert {"f3", "m3"} <= set(tts.variants())
    assert tts.version.startswith("1.")
