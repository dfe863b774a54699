import json

import numpy as np
import pytest

from alignslm_eval.api.model import LikelihoodProtocol
from alignslm_eval.errors import UserError
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.vocab import UnitVocabulary
from tests.tiny_models import (
    N_UNITS,
    TWIST_OFFSET,
    reference_loglikelihood,
    save_slam_qwen2,
    save_twist_llama,
    save_twist_opt,
)

BUILDERS = {"twist_llama": save_twist_llama, "twist_opt": save_twist_opt, "slam_qwen2": save_slam_qwen2}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {name: build(root / name) for name, build in BUILDERS.items()}


def random_sequences(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, N_UNITS, size=int(rng.integers(3, 60))) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_conventions_are_read_from_the_checkpoint(checkpoints, name):
    lm = HFUnitLM.from_args(str(checkpoints[name]))
    if name.startswith("twist"):
        assert lm.vocab.convention == "twist" and lm.vocab.offset == TWIST_OFFSET
    else:
        assert lm.vocab == UnitVocabulary.slam(N_UNITS)
    assert lm.vocab.n_units == N_UNITS
    described = lm.describe()
    assert described["weights_fingerprint"] and described["vocab"]["offset"] == lm.vocab.offset


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("batch_size", [1, 3, 16])
@pytest.mark.parametrize("protocol", [LikelihoodProtocol(True, False), LikelihoodProtocol(True, True),
                                      LikelihoodProtocol(False, False)])
def test_loglikelihood_matches_a_direct_forward_pass(checkpoints, name, batch_size, protocol):
    lm = HFUnitLM.from_args(str(checkpoints[name]))
    seqs = random_sequences(20)
    got = lm.loglikelihood(seqs, protocol, batch_size=batch_size)
    for seq, ll in zip(seqs, got):
        ids = lm.vocab.encode(seq, protocol.add_bos, protocol.add_eos).tolist()
        assert ll.n_tokens == len(ids) - 1
        assert ll.sum == pytest.approx(reference_loglikelihood(lm.model, ids), abs=1e-4)


def test_scores_do_not_depend_on_batch_composition(checkpoints):
    lm = HFUnitLM.from_args(str(checkpoints["twist_llama"]))
    seqs = random_sequences(12, seed=3)
    alone = [lm.loglikelihood([s], LikelihoodProtocol())[0] for s in seqs]
    reversed_batch = lm.loglikelihood(seqs[::-1], LikelihoodProtocol(), batch_size=5)[::-1]
    for a, b in zip(alone, reversed_batch):
        assert a.n_tokens == b.n_tokens
        assert a.sum == pytest.approx(b.sum, abs=1e-4)


def test_on_batch_reports_every_item_once(checkpoints):
    lm = HFUnitLM.from_args(str(checkpoints["slam_qwen2"]))
    seen = []
    lm.loglikelihood(random_sequences(7), LikelihoodProtocol(), batch_size=3, on_batch=lambda i, r: seen.extend(i))
    assert sorted(seen) == list(range(7))


def test_unit_outside_vocabulary_names_the_item(checkpoints):
    lm = HFUnitLM.from_args(str(checkpoints["twist_opt"]))
    with pytest.raises(UserError, match=r"a\.wav: unit id 500 is outside"):
        lm.loglikelihood([np.array([1, 500])], LikelihoodProtocol(), names=["a.wav"])


def test_checkpoint_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="no config.json"):
        HFUnitLM.from_args(str(tmp_path))


def test_missing_directory_and_unknown_hub_id(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="does not exist"):
        HFUnitLM.from_args(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="not a local directory"):
        HFUnitLM.from_args("slprl/no-such-model-here")


def test_plain_checkpoint_needs_an_explicit_convention(tmp_path):
    path = save_twist_llama(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    del config["offset"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="--unit-convention"):
        HFUnitLM.from_args(str(path))
    lm = HFUnitLM.from_args(str(path), unit_convention="twist", unit_offset=TWIST_OFFSET)
    assert lm.vocab.offset == TWIST_OFFSET and lm.vocab.n_units == N_UNITS


def test_stored_vocabulary_file_wins(tmp_path):
    path = save_twist_llama(tmp_path / "m")
    UnitVocabulary("twist", 100, 4, 0, 2, 1).save(path)
    assert HFUnitLM.from_args(str(path)).vocab.n_units == 100


def test_hub_id_resolves_from_the_local_hub_cache(tmp_path, monkeypatch):
    """A hub id works offline when the checkpoint is in the Hugging Face cache (the layout the hub client writes)."""
    import huggingface_hub.constants as hub_constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--slprl--tiny-twist"
    save_twist_llama(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    lm = HFUnitLM.from_args("slprl/tiny-twist")
    described = lm.describe()
    assert described["hub_id"] == "slprl/tiny-twist" and described["resolved_commit"] == commit
    assert lm.vocab.offset == TWIST_OFFSET


def test_bfloat16_scores_close_to_float32(checkpoints):
    seqs = random_sequences(6)
    fp32 = HFUnitLM.from_args(str(checkpoints["slam_qwen2"])).loglikelihood(seqs, LikelihoodProtocol())
    bf16_lm = HFUnitLM.from_args(str(checkpoints["slam_qwen2"]), dtype="bfloat16")
    assert bf16_lm.describe()["dtype"] == "bfloat16"
    bf16 = bf16_lm.loglikelihood(seqs, LikelihoodProtocol())
    for a, b in zip(fp32, bf16):
        assert a.n_tokens == b.n_tokens and b.sum == pytest.approx(a.sum, rel=0.05)


def test_an_adapter_of_another_base_model_is_named_with_its_base(checkpoints, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=504, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=4)).save_pretrained(tmp_path / "other")
    other = LlamaForCausalLM.from_pretrained(tmp_path / "other")  # peft records this path as the adapter's base
    get_peft_model(other, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "adapter")
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(checkpoints["twist_llama"]), adapter=str(tmp_path / "adapter"))
    message = str(e.value)
    assert message.startswith(f"--adapter {tmp_path / 'adapter'}: does not fit this --model (size mismatch for ")
    assert message.endswith(f"it was trained on {tmp_path / 'other'}, pass that as --model") and "\n" not in message
