"""The batched sampler (models/sampling.py) on the tiny OPT (learned positions), LLaMA and Slam (Qwen2) models: a
prompt's samples do not depend on its batch, only units and EOS are drawn, top-k 1 is greedy decoding, EOS ends a
row, and the processing follows transformers' logits processors."""

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from alignslm_eval.api.model import SamplingConfig
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.models.sampling import _draw, _processed, _seen_tokens, sample_tokens
from tests.tiny_models import N_UNITS, save_slam_qwen2, save_twist_llama, save_twist_opt

BUILDERS = {"twist_opt": save_twist_opt, "twist_llama": save_twist_llama, "slam_qwen2": save_slam_qwen2}
PROMPT_LENGTHS = (1, 4, 9, 17, 30, 52)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampling")
    return {name: HFUnitLM.from_args(str(build(root / name))) for name, build in BUILDERS.items()}


def prompts_of(lengths=PROMPT_LENGTHS, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, N_UNITS, size=n) for n in lengths]


@contextmanager
def logit_bias(lm: HFUnitLM, bias: dict[int, float]):
    """Add `bias[token]` to the model's logits of `token` (a hook on the output layer), for the `with` block."""
    vector = torch.zeros(lm.model.get_output_embeddings().weight.shape[0])
    for token, value in bias.items():
        vector[token] = value
    handle = lm.model.get_output_embeddings().register_forward_hook(lambda module, args, out: out + vector)
    try:
        yield
    finally:
        handle.remove()


def allowed_ids(lm: HFUnitLM) -> list[int]:
    return list(range(lm.vocab.offset, lm.vocab.offset + lm.vocab.n_units)) + [lm.vocab.eos_id]


def tokens_of(lm: HFUnitLM, prompts: list[np.ndarray]) -> list[np.ndarray]:
    return [lm.vocab.encode(p, add_bos=True, add_eos=False) for p in prompts]


def raw_samples(lm: HFUnitLM, prompts: list[np.ndarray], config: SamplingConfig, seeds) -> list[list[np.ndarray]]:
    """Token ids as drawn (nothing dropped by decoding)."""
    return sample_tokens(lm.model, tokens_of(lm, prompts), seeds, config, allowed_ids(lm), lm.vocab.eos_id,
                         lm.vocab.pad_id)


def greedy_by_hand(lm: HFUnitLM, tokens: np.ndarray, steps: int) -> list[int]:
    """Argmax decoding over units and EOS, recomputing the whole unpadded sequence every step (no cache)."""
    allowed = torch.tensor(allowed_ids(lm))
    ids, out = torch.as_tensor(tokens)[None], []
    for _ in range(steps):
        with torch.no_grad():
            logits = lm.model(input_ids=ids).logits[0, -1]
        token = int(allowed[logits[allowed].argmax()])
        if token == lm.vocab.eos_id:
            break
        out.append(token)
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


def same(a: list[list[np.ndarray]], b: list[list[np.ndarray]]) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y))
                                    for x, y in zip(a, b))


# Each with an EOS bias that makes EOS likely enough for some rows to end early and leave the batch while the
# others go on (top-k 25 keeps EOS among few tokens, top-p 0.9 among hundreds).
CONFIGS = [(SamplingConfig(n=3, max_new_tokens=20), 0.5),
           (SamplingConfig(n=2, temperature=1.0, top_k=None, top_p=0.9, repetition_penalty=1.3, max_new_tokens=20),
            3.5)]


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("config,eos_bias", CONFIGS, ids=["top_k", "top_p_repetition"])
def test_a_prompts_samples_are_the_same_alone_and_in_a_batch_in_any_order(models, name, config, eos_bias):
    lm = models[name]
    prompts, seeds = prompts_of(), [101, 7, 55, 3, 9000, 12]
    with logit_bias(lm, {lm.vocab.eos_id: eos_bias}):
        batch = lm.generate(prompts, config, seeds)
        alone = [lm.generate([p], config, [s])[0] for p, s in zip(prompts, seeds)]
        backwards = lm.generate(prompts[::-1], config, seeds[::-1])[::-1]
    assert same(batch, alone) and same(batch, backwards)
    lengths = [len(c) for rows in batch for c in rows]
    assert len(lengths) == len(prompts) * config.n
    assert min(lengths) < config.max_new_tokens and max(lengths) == config.max_new_tokens
    assert all(c.min() >= 0 and c.max() < N_UNITS for rows in batch for c in rows if len(c))


def test_samples_are_reproducible_for_a_seed_and_differ_for_another(models):
    lm, config = models["twist_llama"], SamplingConfig(n=4, max_new_tokens=15)
    prompts = prompts_of((8, 20))
    first = lm.generate(prompts, config, [1, 2])
    assert same(first, lm.generate(prompts, config, [1, 2]))
    other = lm.generate(prompts, config, [1, 3])
    assert same(first[:1], other[:1]) and not any(np.array_equal(a, b) for a, b in zip(first[1], other[1]))
    # The n samples of a prompt have streams of their own.
    assert len({tuple(c) for c in first[0]}) == config.n


def test_the_global_torch_rng_is_neither_used_nor_moved(models):
    lm, config = models["slam_qwen2"], SamplingConfig(n=2, max_new_tokens=10)
    torch.manual_seed(1)
    state = torch.random.get_rng_state()
    first = lm.generate(prompts_of((5, 11)), config, [4, 5])
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(2)
    assert same(first, lm.generate(prompts_of((5, 11)), config, [4, 5]))


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("config", [SamplingConfig(n=2, max_new_tokens=12), SamplingConfig(n=2, top_k=1, max_new_tokens=12)],
                         ids=["sampled", "greedy"])
def test_only_units_and_eos_are_drawn_even_when_the_model_prefers_a_special_token(models, name, config):
    lm = models[name]
    vocab_size = lm.model.get_output_embeddings().weight.shape[0]
    specials = sorted(set(range(vocab_size)) - set(allowed_ids(lm)))
    assert specials  # pad (and BOS, and unused text tokens for TWIST)
    with logit_bias(lm, {t: 50.0 for t in specials}):
        drawn = raw_samples(lm, prompts_of((3, 14)), config, [0, 1])
    units = range(lm.vocab.offset, lm.vocab.offset + N_UNITS)
    assert all(len(c) == config.max_new_tokens and all(t in units for t in c.tolist()) for rows in drawn for c in rows)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_top_k_1_is_greedy_decoding_computed_by_hand(models, name):
    lm, config = models[name], SamplingConfig(n=2, top_k=1, max_new_tokens=12)
    prompts = prompts_of()
    drawn = raw_samples(lm, prompts, config, list(range(len(prompts))))
    for tokens, rows in zip(tokens_of(lm, prompts), drawn):
        expected = greedy_by_hand(lm, tokens, config.max_new_tokens)
        assert all(c.tolist() == expected for c in rows)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_row_is_cut_at_its_eos_and_the_others_go_on(models, name):
    lm, config = models[name], SamplingConfig(n=1, top_k=1, max_new_tokens=12)
    prompts = prompts_of()
    tokens = tokens_of(lm, prompts)
    # The smallest EOS bias (of a few) with which greedy decoding ends some prompt midway and another not at all.
    for bias in np.arange(0.0, 3.0, 0.02):
        with logit_bias(lm, {lm.vocab.eos_id: float(bias)}):
            expected = [greedy_by_hand(lm, t, config.max_new_tokens) for t in tokens]
        lengths = [len(e) for e in expected]
        if any(2 <= n < config.max_new_tokens - 2 for n in lengths) and max(lengths) == config.max_new_tokens:
            break
    else:
        pytest.fail("no EOS bias ends greedy decoding midway")
    with logit_bias(lm, {lm.vocab.eos_id: float(bias)}):
        drawn = raw_samples(lm, prompts, config, list(range(len(prompts))))
        decoded = lm.generate(prompts, config, list(range(len(prompts))))
    assert [rows[0].tolist() for rows in drawn] == expected
    assert [rows[0].tolist() for rows in decoded] == [[t - lm.vocab.offset for t in e] for e in expected]


def test_an_eos_first_gives_an_empty_continuation(models):
    lm, config = models["twist_opt"], SamplingConfig(n=3, max_new_tokens=8)
    with logit_bias(lm, {lm.vocab.eos_id: 100.0}):
        out = lm.generate(prompts_of((4, 9)), config, [0, 1])
    assert [[len(c) for c in rows] for rows in out] == [[0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("top_k,top_p,penalty,temperature", [(25, None, 1.0, 0.8), (None, 0.7, 1.5, 1.0),
                                                             (5, 0.5, 0.7, 1.3), (1, None, 1.0, 0.8)])
def test_processing_matches_transformers_logits_processors(top_k, top_p, penalty, temperature):
    from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                              TopPLogitsWarper)

    generator = torch.Generator().manual_seed(0)
    vocab_size, rows = 60, 5
    logits = torch.randn(rows, vocab_size, generator=generator) * 3
    history = torch.randint(0, vocab_size, (rows, 12), generator=generator)
    allowed = torch.arange(4, 50)
    config = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=penalty)
    seen = _seen_tokens(history, torch.ones_like(history), allowed) if penalty != 1.0 else None
    ours = _processed(logits, allowed, config, seen)

    expected = logits.clone()
    if penalty != 1.0:
        expected = RepetitionPenaltyLogitsProcessor(penalty)(history, expected)
    suppressed = torch.ones(vocab_size, dtype=torch.bool)
    suppressed[allowed] = False
    expected[:, suppressed] = float("-inf")
    expected = TemperatureLogitsWarper(temperature)(history, expected)
    if top_k:
        expected = TopKLogitsWarper(top_k)(history, expected)
    if top_p is not None:
        expected = TopPLogitsWarper(top_p)(history, expected)
    expected = expected[:, allowed].double()
    assert torch.equal(torch.isfinite(ours), torch.isfinite(expected))
    assert torch.allclose(ours[torch.isfinite(ours)], expected[torch.isfinite(expected)], atol=1e-5)


def test_inverse_cdf_draws_each_token_as_often_as_its_probability():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0]], dtype=torch.float64)
    uniforms = (torch.arange(1000, dtype=torch.float64) + 0.5) / 1000
    x = torch.log(probs).expand(1000, -1)
    counts = torch.bincount(_draw(x, uniforms), minlength=5)
    assert counts.tolist() == [100, 0, 600, 300, 0]
    # A uniform at the very top of the CDF still lands on a token of nonzero probability.
    assert _draw(x[:1], torch.tensor([1.0 - 1e-17], dtype=torch.float64)).tolist() == [3]
