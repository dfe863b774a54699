"""Speech recognisers (`whisper`, `pocketsphinx`) and the text normalisation and error rates used to score them.

Recognisers are looked up by name in `alignslm_eval.api.registry.ASRS`; this package's modules register them.

Scoring compares normalised text. `normalize` is deliberately simple, so that its effect on a WER is easy to state:

* curly apostrophes (’ ‘ ʼ) become ', then everything is lower-cased (Unicode-aware);
* Unicode punctuation and symbols (categories P and S, e.g. `.,;:!?-"()$%_`) other than the apostrophe become
  spaces, so "well-known" gives "well known", "U.S." gives "u s" and "$5" gives "5"; letters, digits and combining
  marks stay;
* an apostrophe is kept only between two letters or digits ("don't", "o'clock"); quote marks and trailing possessive
  apostrophes ("'hi'", "dogs'") are dropped;
* whitespace runs collapse to one space, and the ends are stripped.

Numbers are left as they are, neither spelled out nor spelled in: "13" against "thirteen" is a substitution, and
"1,000" becomes "1 000". Contractions are not expanded ("don't" against "do not" is two errors), and no spelling
variants are merged. References written in words (LibriSpeech, LJSpeech normalised text) therefore favour recognisers
that also write words.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Sequence

import jiwer


class _PunctuationToSpace(jiwer.AbstractTransform):
    """Unicode punctuation (P*) and symbols (S*), apostrophe excepted, become spaces; letters and combining marks
    (accents, Indic vowel signs) stay, which a `[^\\w]` regex would split off."""

    def process_string(self, s: str) -> str:
        return "".join(" " if c != "'" and unicodedata.category(c)[0] in "PS" else c for c in s)


_NORMALIZE = jiwer.Compose(
    [
        jiwer.SubstituteRegexes({"[\u2019\u2018\u02bc]": "'"}),
        jiwer.ToLowerCase(),
        _PunctuationToSpace(),
        jiwer.SubstituteRegexes({r"(?<!\w)'|'(?!\w)": " "}),
        jiwer.SubstituteRegexes({r"\s+": " "}),
        jiwer.Strip(),
    ]
)


def normalize(text: str) -> str:
    """Lower-case, punctuation (except word-internal apostrophes) to spaces, collapsed whitespace; see the module
    docstring for the exact rules."""
    return _NORMALIZE(text)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, Any]:
    """Corpus-level WER and CER of `hypotheses` against `references`, both normalised with `normalize` first.

    WER = (substitutions + deletions + insertions) / reference words, summed over all utterances (not a mean of
    per-utterance rates). CER is the same over characters of the normalised text, spaces included. An utterance whose
    reference is empty after normalisation counts its hypothesis words as insertions.

    Returns {"wer", "cer", "n_utterances", "reference_words", "hits", "substitutions", "deletions", "insertions",
    "reference_chars", "char_errors"}. Raises ValueError if the lists differ in length or the references hold no
    words at all (the rate would be undefined).
    """
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise TypeError("word_error_rate takes lists of strings, one per utterance, not a single string")
    if len(references) != len(hypotheses):
        raise ValueError(
            f"{len(references)} references but {len(hypotheses)} hypotheses; give one of each per utterance"
        )
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    n_ref_words = sum(len(r.split()) for r in refs)
    if n_ref_words == 0:
        raise ValueError("the references contain no words after normalisation; the error rate is undefined")

    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    word_errors = words.substitutions + words.deletions + words.insertions
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    n_ref_chars = sum(len(r) for r in refs)
    return {
        "wer": word_errors / n_ref_words,
        "cer": char_errors / n_ref_chars,
        "n_utterances": len(refs),
        "reference_words": n_ref_words,
        "hits": words.hits,
        "substitutions": words.substitutions,
        "deletions": words.deletions,
        "insertions": words.insertions,
        "reference_chars": n_ref_chars,
        "char_errors": char_errors,
    }
