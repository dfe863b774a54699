"""GenPPL on a tiny Llama saved with a Llama-2-style SentencePiece tokenizer (a "▁" prepended, spaces as "▁", BPE),
loaded through the --text-lm path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from alignslm_eval.api.scorer import Continuation
from alignslm_eval.scoring.genppl import GenPPL

WORDS = ["the", "dog", "ran", "home", "cat", "sat"]


def _save_text_lm(directory: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for ch in sorted(set("".join(WORDS)) | {"▁"}):
        vocab.setdefault(ch, len(vocab))
    merges = []
    for word in WORDS:
        piece = "▁"
        for ch in word:
            merges.append((piece, ch))
            piece += ch
            vocab.setdefault(piece, len(vocab))
    backend = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Strip(" ", 1, 0)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def text_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_text_lm(tmp_path_factory.mktemp("sp_lm") / "lm")


def _direct_ppl(text_lm: Path, tokens: list[str], n_context: int) -> float:
    """exp of the mean negative log-probability of tokens[n_context:], from one forward pass."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(text_lm)
    model = AutoModelForCausalLM.from_pretrained(text_lm).eval()
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(tokens)])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    picked = logp.gather(-1, ids[0, 1:, None]).squeeze(-1)[n_context - 1 :]
    return math.exp(-float(picked.mean()))


def test_the_boundary_adds_no_stray_token(text_lm: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(text_lm)
    # What the scorer must avoid: the continuation tokenized on its own starts with a lone "▁".
    assert tokenizer.tokenize(" ran home")[0] == "▁"

    [score] = GenPPL(str(text_lm)).score([Continuation("p", 0, [], prompt_text="the dog", text="ran home")])
    assert score.status == "ok" and score.detail == {"tokens": 2}
    expected = _direct_ppl(text_lm, ["<s>", "▁the", "▁dog", "▁ran", "▁home"], n_context=3)
    assert score.value == pytest.approx(expected, rel=1e-5)


def test_prompt_included_scores_every_token_after_bos(text_lm: Path) -> None:
    [score] = GenPPL(str(text_lm), include_prompt=True).score(
        [Continuation("p", 0, [], prompt_text="the dog", text="ran home")])
    assert score.detail == {"tokens": 4}
    assert score.value == pytest.approx(
        _direct_ppl(text_lm, ["<s>", "▁the", "▁dog", "▁ran", "▁home"], n_context=1), rel=1e-5)


def test_scores_do_not_depend_on_the_batch(text_lm: Path) -> None:
    scorer = GenPPL(str(text_lm))
    items = [Continuation("p", i, [], prompt_text=prompt, text=text) for i, (prompt, text) in enumerate(
        [("the dog", "ran home"), ("the cat", "sat"), ("", "the cat sat"), ("the", ""), ("dog ran", "home home")])]
    together = scorer.score(items)
    alone = [scorer.score([item])[0] for item in items]
    assert [(s.value, s.status) for s in together] == [(s.value, s.status) for s in alone]
    assert together[3].status == "empty transcript" and together[3].value is None
    assert together[2].detail == {"tokens": 3}  # no prompt transcript: the whole continuation after BOS
