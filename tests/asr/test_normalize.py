import math

import pytest

from alignslm_eval.asr import normalize, word_error_rate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  MiXeD\tcase\n\u00a0text ", "mixed case text"),
        ("Don’t say 'hello' to the dogs' o'clock", "don't say hello to the dogs o'clock"),
        ("well-known U.S. snake_case", "well known u s snake case"),
        ('"Rock\'n\'roll" — yes… (really)?', "rock'n'roll yes really"),
        ("In 1813, $5 was 50% of 1,000", "in 1813 5 was 50 of 1 000"),
        ("Ça va? ÉLAN", "ça va élan"),
        ("नमस्ते, दुनिया", "नमस्ते दुनिया"),  # combining vowel signs stay inside their words
        ("?!...", ""),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_normalize_is_idempotent():
    text = "It's the U.K.'s 'best' —  isn't it?"
    assert normalize(normalize(text)) == normalize(text)


def test_wer_ignores_case_and_punctuation():
    out = word_error_rate(["If the READER will excuse me."], ["if the reader, will excuse me"])
    assert out["wer"] == 0 and out["cer"] == 0 and out["hits"] == 6


def test_wer_exact_counts_over_a_corpus():
    refs = ["the cat sat on the mat", "Hello world", "don't stop"]
    hyps = ["The cat sat on mat.", "hello there world", "do not stop"]
    out = word_error_rate(refs, hyps)
    # utterance 1: one deletion; 2: one insertion; 3: "don't" -> "do" substituted plus "not" inserted
    assert (out["substitutions"], out["deletions"], out["insertions"], out["hits"]) == (1, 1, 2, 8)
    assert out["reference_words"] == 10 and out["n_utterances"] == 3
    assert out["wer"] == pytest.approx(4 / 10)  # corpus-level, not the mean of per-utterance rates
    # characters: "the " deleted (4), "there " inserted (6), "don't" -> "do not" (space inserted, ' -> o: 2)
    assert (out["char_errors"], out["reference_chars"]) == (12, 22 + 11 + 10)
    assert out["cer"] == pytest.approx(12 / 43)


def test_wer_empty_reference_counts_insertions_and_all_empty_is_an_error():
    out = word_error_rate(["...", "one two"], ["noise", "one two"])
    assert out["insertions"] == 1 and out["wer"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["", "?"], ["a", "b"])
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(TypeError):
        word_error_rate("a b", "a b")


def test_wer_of_empty_hypotheses_is_one():
    out = word_error_rate(["one two three"], [""])
    assert out["deletions"] == 3 and math.isclose(out["wer"], 1.0) and math.isclose(out["cer"], 1.0)
