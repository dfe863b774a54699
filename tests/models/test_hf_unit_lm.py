import json

import numpy as np
import pytest
import torch

from alignslm_eval.api.model import LikelihoodProtocol, SamplingConfig
from alignslm_eval.io.errors import UserError
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.models.vocab import UnitVocabulary
from tests.tiny_models import (
    N_UNITS,
    CreatesFile,
    TWIST_OFFSET,
    reference_loglikelihood,
    save_slam_llama,
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


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_generate_gives_n_continuations_in_unit_ids_per_prompt(checkpoints, name):
    lm = HFUnitLM.from_args(str(checkpoints[name]))
    config = SamplingConfig(n=3, max_new_tokens=10)
    out = lm.generate(random_sequences(4), config, seeds=[0, 1, 2, 3])
    assert [len(rows) for rows in out] == [3] * 4
    assert all(c.dtype == np.int64 and len(c) <= 10 and (len(c) == 0 or 0 <= c.min() <= c.max() < N_UNITS)
               for rows in out for c in rows)
    assert lm.generate([], config, seeds=[]) == []


def test_generate_refuses_a_prompt_too_long_for_the_model_naming_its_length(checkpoints):
    lm = HFUnitLM.from_args(str(checkpoints["twist_llama"]))  # 512 positions
    prompts = [np.zeros(10, dtype=np.int64), np.zeros(400, dtype=np.int64)]
    with pytest.raises(UserError, match=r"^prompt 1: 401 tokens \+ 150 new tokens exceeds the model's 512 positions"):
        lm.generate(prompts, SamplingConfig(), seeds=[0, 1])
    with pytest.raises(UserError, match=r"^prompt 0: unit id 500 is outside"):
        lm.generate([np.array([1, 500])], SamplingConfig(), seeds=[0])


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


def _pickled_weights(path, marker=None, legacy=False):
    """The checkpoint at `path` with its weights as pytorch_model.bin (a torch pickle, in the pre-1.6 format with
    `legacy`), plus a payload when `marker` is given."""
    from safetensors.torch import load_file

    state = load_file(str(path / "model.safetensors"))
    (path / "model.safetensors").unlink()
    torch.save({**state, **({"payload": CreatesFile(marker)} if marker else {})}, path / "pytorch_model.bin",
               _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("build", [save_twist_llama, save_slam_qwen2])
def test_a_pickled_model_checkpoint_loads_weights_only_and_its_code_never_runs(tmp_path, build):
    plain = _pickled_weights(build(tmp_path / "plain"))
    reference = HFUnitLM.from_args(str(build(tmp_path / "reference")))
    seqs = random_sequences(3)
    got = HFUnitLM.from_args(str(plain)).loglikelihood(seqs, LikelihoodProtocol())
    assert [r.sum for r in got] == pytest.approx([r.sum for r in reference.loglikelihood(seqs, LikelihoodProtocol())])
    marker = tmp_path / "ran"
    evil = _pickled_weights(build(tmp_path / "evil"), marker)
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(evil))
    message = str(e.value)
    assert message.startswith(f"{evil / 'pytorch_model.bin'}: pickles posix.system besides tensors; that code is never "
                              "run") and "\n" not in message
    legacy = _pickled_weights(build(tmp_path / "legacy"), marker, legacy=True)  # cannot be scanned: weights-only refuses
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(legacy))
    assert str(e.value).startswith(str(legacy)) and "GLOBAL posix.system" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("build", [save_twist_llama, save_slam_qwen2])
def test_damaged_weights_are_one_line(tmp_path, build):
    path = build(tmp_path / "m")
    (path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(path))
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """The demo's format: a Llama over Slam-convention tokens, 64 units, the convention in alignslm_units.json."""
    return save_slam_llama(tmp_path_factory.mktemp("demo") / "model")


@pytest.mark.parametrize("flags, expected", [
    # the audit's case: unit 0 would land on the BOS/EOS token, 65 units for a 64-unit model
    (dict(unit_convention="twist", unit_offset=1),
     "--unit-convention twist --unit-offset 1: units 0..64 would be token ids 1..65, so unit 0 would be the "
     "bos_id/eos_id token 1; without the flags the model's own vocabulary fits (slam: 64 units, unit 0 = token 2, "
     "from {model}/alignslm_units.json); --unit-offset 2 fits 64 units after the special tokens"),
    (dict(unit_convention="twist", unit_offset=1000),
     "--unit-convention twist --unit-offset 1000: unit 0 would be token id 1000, past the model's 66 token ids "
     "(0..65); without the flags"),
    (dict(unit_convention="twist", unit_offset=3, n_units=64),
     "--unit-convention twist --unit-offset 3 --n-units 64: 64 units at offset 3 need token ids up to 66, past the "
     "model's 66 token ids (0..65)"),
    (dict(unit_convention="slam", n_units=65), "--unit-convention slam --n-units 65: 65 units at offset 2 need"),
    (dict(unit_convention="slam", unit_offset=3), "--unit-offset 3: the slam convention puts unit 0 at token 2"),
    (dict(unit_convention="twist", unit_offset=0, n_units=1), "unit 0 would be the pad_id token 0"),
])
def test_unit_overrides_that_do_not_fit_the_model_name_the_flags(demo_like, flags, expected):
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(demo_like), **flags)
    message = str(e.value)
    assert expected.format(model=demo_like) in message and "\n" not in message


def test_unit_overrides_that_fit_are_used(demo_like, checkpoints):
    assert HFUnitLM.from_args(str(demo_like), unit_convention="twist", unit_offset=2).vocab == UnitVocabulary.twist(
        64, 2, 1, 1, 0)
    # After the config's special tokens (bos 0, pad 1, eos 2), any offset works: 3 leaves room for 501 units.
    assert HFUnitLM.from_args(str(checkpoints["twist_llama"]), unit_offset=3).vocab.n_units == 501


def test_a_unit_may_not_take_a_special_token_of_the_config(checkpoints):
    with pytest.raises(UserError) as e:  # twist_llama's config: bos 0, pad 1, eos 2, units from 4
        HFUnitLM.from_args(str(checkpoints["twist_llama"]), unit_convention="slam")
    assert str(e.value).startswith("--unit-convention slam: units 0..501 would be token ids 2..503, so unit 0 would be "
                                   "the config.json eos_token_id token 2; without the flags the model's own vocabulary "
                                   "fits (twist: 500 units, unit 0 = token 4, from ")


def test_a_stored_vocabulary_that_does_not_fit_names_the_file(tmp_path):
    path = save_twist_llama(tmp_path / "m")
    UnitVocabulary("twist", 600, 4, 0, 2, 1).save(path)
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(path))
    assert str(e.value).startswith(f"{path / 'alignslm_units.json'}: 600 units at offset 4 need token ids up to 603")


def test_a_config_offset_that_is_no_integer(tmp_path):
    path = save_twist_llama(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "offset": "4"}))
    with pytest.raises(UserError, match="config.json: offset is '4', not an integer"):
        HFUnitLM.from_args(str(path))


def test_a_sharded_pickled_checkpoint_is_scanned_shard_by_shard(tmp_path):
    from safetensors.torch import load_file

    path = save_twist_llama(tmp_path / "m")
    state = load_file(str(path / "model.safetensors"))
    (path / "model.safetensors").unlink()
    names = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2 :]}
    marker = tmp_path / "ran"
    for i, (shard, keys) in enumerate(shards.items()):
        torch.save({**{k: state[k] for k in keys}, **({"payload": CreatesFile(marker)} if i else {})}, path / shard)
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (path / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(path))
    assert str(e.value).startswith(f"{path / 'pytorch_model-00002-of-00002.bin'}: pickles posix.system")
    assert not marker.exists()
    (path / "pytorch_model.bin.index.json").write_text("{")
    with pytest.raises(UserError, match="pytorch_model.bin.index.json: not a weights index"):
        HFUnitLM.from_args(str(path))


def test_a_stored_vocabulary_states_its_own_specials_whatever_the_config_says(tmp_path):
    # What `alignslm-train merge` writes for a Slam model whose text LM had OPT-style ids (bos = eos = 2, pad = 1):
    # save_pretrained's plain config keeps those ids, while alignslm_units.json maps units from token 2.
    import transformers

    cfg = transformers.LlamaConfig(vocab_size=N_UNITS + 2, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=4, bos_token_id=2, eos_token_id=2,
                                   pad_token_id=1)
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    UnitVocabulary.slam(N_UNITS).save(tmp_path)
    lm = HFUnitLM.from_args(str(tmp_path))
    assert lm.vocab == UnitVocabulary.slam(N_UNITS)


def test_a_negative_pad_token_id_means_none_and_padded_batches_score_as_alone(tmp_path):
    """LLaMA conversions of 2023 write `pad_token_id: -1` ("no pad token"); padded batches must still work."""
    path = save_twist_llama(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "pad_token_id": -1}))
    lm = HFUnitLM.from_args(str(path))
    assert lm.vocab.pad_id is None and lm.vocab.bos_id == config["bos_token_id"]
    seqs = random_sequences(6, seed=5)
    alone = [lm.loglikelihood([s], LikelihoodProtocol())[0].sum for s in seqs]
    batched = [ll.sum for ll in lm.loglikelihood(seqs, LikelihoodProtocol(), batch_size=6)]
    assert batched == pytest.approx(alone, abs=1e-4)
    rows = lm.generate(seqs[:3], SamplingConfig(n=2, max_new_tokens=8), [1, 2, 3])
    assert [len(r) for r in rows] == [2, 2, 2]
    assert all(((c >= 0) & (c < N_UNITS)).all() for r in rows for c in r)
