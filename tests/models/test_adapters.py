"""LoRA adapters and their chains: merged as peft applies them, and only onto the model they were trained on; every
broken adapter dir is a one-line UserError."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from alignslm_eval.api.model import LikelihoodProtocol
from alignslm_eval.io.errors import UserError
from alignslm_eval.models.adapters import ADAPTER_CHAIN_FILE, BaseModel, check_base
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.models.vocab import UnitVocabulary
from tests.tiny_models import CreatesFile, save_lora_adapter, save_slam_qwen2, save_twist_llama

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return save_twist_llama(tmp_path_factory.mktemp("base") / "twist")


@pytest.fixture(scope="module")
def rounds(base, tmp_path_factory) -> Path:
    """Two curriculum rounds laid out as alignslm-train writes them: round 2 trained with round 1 merged in."""
    root = tmp_path_factory.mktemp("align")
    first = save_lora_adapter(AutoModelForCausalLM.from_pretrained(base), root / "round-1" / "adapter", seed=1)
    (first / ADAPTER_CHAIN_FILE).write_text("[]\n")
    merged = HFUnitLM.from_args(str(base), adapter=str(first)).model
    second = save_lora_adapter(merged, root / "round-2" / "adapter", seed=2)
    (second / ADAPTER_CHAIN_FILE).write_text(json.dumps(["../../round-1/adapter"]) + "\n")
    return root


def scores(model: torch.nn.Module, vocab: UnitVocabulary) -> list[float]:
    lm = HFUnitLM(model, vocab, {})
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, vocab.n_units, size=12) for _ in range(3)]
    return [r.sum for r in lm.loglikelihood(seqs, LikelihoodProtocol())]


def copy_adapter(rounds: Path, tmp_path: Path, k: int = 1) -> Path:
    target = tmp_path / f"round-{k}" / "adapter"
    shutil.copytree(rounds / f"round-{k}" / "adapter", target)
    return target


def edit_config(adapter: Path, **changes) -> None:
    config = json.loads((adapter / "adapter_config.json").read_text())
    for key, value in changes.items():
        if value is KeyError:
            config.pop(key)
        else:
            config[key] = value
    (adapter / "adapter_config.json").write_text(json.dumps(config))


def refused(model: Path, adapter: Path, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        HFUnitLM.from_args(str(model), adapter=str(adapter), **kwargs)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_a_chain_merges_as_peft_applies_each_adapter(base, rounds):
    from peft import PeftModel

    lm = HFUnitLM.from_args(str(base), adapter=str(rounds / "round-2" / "adapter"))
    expected = AutoModelForCausalLM.from_pretrained(base)
    for k in (1, 2):
        expected = PeftModel.from_pretrained(expected, str(rounds / f"round-{k}" / "adapter")).merge_and_unload()
    got, want = scores(lm.model, lm.vocab), scores(expected, lm.vocab)
    assert got == pytest.approx(want, abs=1e-4)
    assert got != pytest.approx(scores(AutoModelForCausalLM.from_pretrained(base), lm.vocab), abs=1e-2)
    assert [Path(a["path"]).parts[-2] for a in lm.describe()["adapter"]] == ["round-1", "round-2"]


def test_an_adapter_of_another_base_with_the_same_shapes_is_refused(base, tmp_path):
    other = save_twist_llama(tmp_path / "other", seed=1)  # same architecture and shapes, other weights
    adapter = save_lora_adapter(AutoModelForCausalLM.from_pretrained(other), tmp_path / "adapter")
    message = refused(base, adapter)
    assert message == f"--adapter {adapter}: trained on {other}, not on --model {base}; pass --model {other}"


def test_an_adapter_of_another_base_with_other_shapes_names_that_base(base, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=504, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=4)).save_pretrained(tmp_path / "other")
    adapter = save_lora_adapter(AutoModelForCausalLM.from_pretrained(tmp_path / "other"), tmp_path / "adapter")
    assert refused(base, adapter).endswith(f"trained on {tmp_path / 'other'}, not on --model {base}; pass --model "
                                           f"{tmp_path / 'other'}")


def test_a_copy_of_the_base_is_the_same_model(base, rounds, tmp_path):
    """Same weights elsewhere (a copied checkpoint, the demo built in another cache dir) are the same model."""
    copy = tmp_path / "cache" / "demo" / "model"
    shutil.copytree(base, copy)
    lm = HFUnitLM.from_args(str(copy), adapter=str(rounds / "round-2" / "adapter"))
    assert len(lm.describe()["adapter"]) == 2


def test_a_base_missing_here_is_refused_and_the_new_place_can_be_recorded(tmp_path):
    trained_on = save_twist_llama(tmp_path / "machine-a" / "twist")
    adapter = save_lora_adapter(AutoModelForCausalLM.from_pretrained(trained_on), tmp_path / "adapter")
    moved = tmp_path / "machine-b" / "twist"
    shutil.move(trained_on, moved)
    message = refused(moved, adapter)
    assert message.startswith(f"--adapter {adapter}: trained on {trained_on}, which is not here to compare with "
                              f"--model {moved}; pass that model, or, if ")
    assert message.endswith(f"set base_model_name_or_path in adapter_config.json to {moved}")
    edit_config(adapter, base_model_name_or_path=str(moved))
    assert HFUnitLM.from_args(str(moved), adapter=str(adapter)).describe()["adapter"]


def test_an_alignslm_adapter_moved_with_its_base_is_known_by_the_base_weights(tmp_path):
    from alignslm_eval.models.adapters import write_base_record

    trained_on = save_twist_llama(tmp_path / "machine-a" / "twist")
    adapter = save_lora_adapter(AutoModelForCausalLM.from_pretrained(trained_on), tmp_path / "adapter")
    write_base_record(adapter, trained_on)  # as alignslm-train does beside each adapter it trains
    moved = tmp_path / "machine-b" / "twist"
    shutil.move(trained_on, moved)
    assert HFUnitLM.from_args(str(moved), adapter=str(adapter)).describe()["adapter"]
    other = save_twist_llama(tmp_path / "other", seed=1)  # same shapes, other weights: still refused
    assert refused(other, adapter).startswith(f"--adapter {adapter}: trained on {trained_on}, which is not here")


def test_a_relative_base_path_is_resolved(base, tmp_path, monkeypatch):
    adapter = save_lora_adapter(AutoModelForCausalLM.from_pretrained(base), tmp_path / "adapter")
    monkeypatch.chdir(base.parent)
    edit_config(adapter, base_model_name_or_path=f"./{base.name}")
    assert HFUnitLM.from_args(str(base), adapter=str(adapter)).describe()["adapter"]


HUB_DIR = Path("/elsewhere/hub/models--slprl--Tiny-Twist/snapshots") / COMMIT


@pytest.mark.parametrize("recorded, hub_id, commit, ok", [
    ("slprl/tiny-twist", "slprl/Tiny-Twist", COMMIT, True),  # hub ids are case-insensitive
    ("slprl/other-twist", "slprl/Tiny-Twist", COMMIT, False),
    (str(HUB_DIR), "slprl/tiny-twist", COMMIT, True),  # a snapshot in another machine's hub cache
    (str(HUB_DIR), "slprl/tiny-twist", "f" * 40, False),
    (str(HUB_DIR), None, None, False),  # a local dir that came from nowhere on the hub
])
def test_hub_bases_compare_repo_and_commit(base, recorded, hub_id, commit, ok):
    model = BaseModel(hub_id or str(base), base, hub_id, commit)
    config = {"base_model_name_or_path": recorded}
    if ok:
        check_base(base, config, "--adapter a", model)
        return
    with pytest.raises(UserError) as e:
        check_base(base, config, "--adapter a", model)
    message = str(e.value)
    if commit == "f" * 40:
        assert f"at commit {COMMIT}" in message and f"pass --revision {COMMIT}" in message
    elif hub_id:
        assert message == f"--adapter a: trained on the hub model slprl/other-twist, not on --model {hub_id}; " \
                          "pass --model slprl/other-twist"
    else:
        assert message == f"--adapter a: trained on the hub model slprl/tiny-twist, not on --model {base}; pass " \
                          f"--model slprl/tiny-twist, or, if {base} is a copy of it, set base_model_name_or_path in " \
                          f"adapter_config.json to {base}"


def test_a_local_dir_in_a_hub_cache_counts_as_that_hub_repo(base, tmp_path):
    snapshot = tmp_path / "hub" / "models--slprl--tiny-twist" / "snapshots" / COMMIT
    shutil.copytree(base, snapshot)
    check_base(base, {"base_model_name_or_path": "slprl/tiny-twist"}, "--adapter a", BaseModel(str(snapshot), snapshot))


def test_an_adapter_without_a_recorded_base_is_applied_with_a_warning(base, rounds, tmp_path, caplog):
    adapter = copy_adapter(rounds, tmp_path)
    edit_config(adapter, base_model_name_or_path=None)
    with caplog.at_level(logging.WARNING, logger="alignslm_eval.models.adapters"):
        lm = HFUnitLM.from_args(str(base), adapter=str(adapter))
    assert lm.describe()["adapter"]
    assert f"--adapter {adapter}: adapter_config.json names no base model" in caplog.text
    assert f"cannot be checked against --model {base}" in caplog.text


def test_a_slam_checkpoint_records_itself_as_its_adapters_base(tmp_path):
    slam, other = save_slam_qwen2(tmp_path / "slam"), save_slam_qwen2(tmp_path / "other", seed=1)
    adapter = save_lora_adapter(HFUnitLM.from_args(str(slam)).model, tmp_path / "adapter")
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(slam)
    assert HFUnitLM.from_args(str(slam), adapter=str(adapter)).describe()["adapter"]
    assert "trained on " in refused(other, adapter)


def test_a_merged_checkpoint_is_not_its_origin(base, rounds, tmp_path):
    from alignslm_train.cli import main as train_main

    merged = tmp_path / "merged"
    first = rounds / "round-1" / "adapter"
    assert train_main(["merge", "--model", str(base), "--adapter", str(first), "--output", str(merged)]) == 0
    message = refused(merged, first)
    assert message.startswith(f"--adapter {first}: already merged into --model {merged} (see its "
                              "alignslm_merged_from.json)")
    assert message.endswith(f"pass --model {base} with the adapter")
    other = save_lora_adapter(AutoModelForCausalLM.from_pretrained(base), tmp_path / "adapter")
    assert refused(merged, other).endswith(f"pass --model {base} ({merged} is {base} with adapters merged in, see "
                                           "its alignslm_merged_from.json)")
    # An adapter trained on the merged checkpoint itself applies to it.
    on_merged = save_lora_adapter(AutoModelForCausalLM.from_pretrained(merged), tmp_path / "on-merged")
    assert HFUnitLM.from_args(str(merged), adapter=str(on_merged)).describe()["adapter"]


@pytest.mark.parametrize("chain, expected", [
    ("[../../round-1", "alignslm_adapter_chain.json: not valid JSON ("),
    ('{"round": 1}', "alignslm_adapter_chain.json: not a JSON list of adapter dir paths"),
    ("[1]", "alignslm_adapter_chain.json: not a JSON list of adapter dir paths"),
    ('["../../round-7/adapter"]', "alignslm_adapter_chain.json: lists '../../round-7/adapter', which is no adapter dir"),
    ('["../../round-1/adapter", "."]', "alignslm_adapter_chain.json: lists the adapter itself (a cycle)"),
    ('["../../round-1/adapter", "../../round-1/adapter"]', "round-1/adapter twice"),
])
def test_a_broken_chain_file_is_one_line(base, rounds, tmp_path, chain, expected):
    copy_adapter(rounds, tmp_path, 1)
    second = copy_adapter(rounds, tmp_path, 2)
    (second / ADAPTER_CHAIN_FILE).write_text(chain)
    message = refused(base, second)
    assert message.startswith(str(second / ADAPTER_CHAIN_FILE)) and expected in message


def test_a_cycle_between_rounds_is_named(base, rounds, tmp_path):
    first, second = copy_adapter(rounds, tmp_path, 1), copy_adapter(rounds, tmp_path, 2)
    (first / ADAPTER_CHAIN_FILE).write_text('["../../round-2/adapter"]')
    first, second = first.resolve(), second.resolve()
    assert f"a cycle: {first} was trained on top of {second}, which this chain merges after it" in refused(base, second)
    assert f"a cycle: {second} was trained on top of {first}, which this chain merges after it" in refused(base, first)


def test_rounds_out_of_order_are_named(base, rounds, tmp_path):
    copy_adapter(rounds, tmp_path, 1)
    second, third = copy_adapter(rounds, tmp_path, 2), tmp_path / "round-3" / "adapter"
    shutil.copytree(second, third)
    (third / ADAPTER_CHAIN_FILE).write_text('["../../round-2/adapter"]')  # round 1 left out
    assert "merges 0 adapter(s) before" in refused(base, third)


@pytest.mark.parametrize("break_config, expected", [
    (lambda a: (a / "adapter_config.json").write_text("{"), "adapter_config.json: not valid JSON ("),
    (lambda a: (a / "adapter_config.json").write_text("[1]"), "adapter_config.json: not a JSON object"),
    (lambda a: (a / "adapter_config.json").write_bytes(b"\xff"), "adapter_config.json: not valid JSON ("),
    (lambda a: edit_config(a, peft_type=KeyError), "adapter_config.json: missing peft_type"),
    (lambda a: edit_config(a, r=KeyError, lora_alpha=KeyError), "adapter_config.json: missing r, lora_alpha"),
    (lambda a: edit_config(a, peft_type="PREFIX_TUNING"), "peft_type is 'PREFIX_TUNING'; only LoRA adapters"),
    (lambda a: edit_config(a, r="2"), "adapter_config.json: r is '2', not a positive integer"),
    (lambda a: edit_config(a, r=0), "adapter_config.json: r is 0, not a positive integer"),
    (lambda a: edit_config(a, lora_alpha=True), "adapter_config.json: lora_alpha is True, not a positive number"),
    (lambda a: edit_config(a, target_modules=[]), "adapter_config.json: target_modules is []"),
    (lambda a: edit_config(a, base_model_name_or_path=5), "base_model_name_or_path is 5, not a path or hub id"),
])
def test_a_broken_adapter_config_is_one_line(base, rounds, tmp_path, break_config, expected):
    adapter = copy_adapter(rounds, tmp_path)
    break_config(adapter)
    message = refused(base, adapter)
    assert message.startswith(str(adapter / "adapter_config.json")) and expected in message


def test_a_broken_config_of_a_chained_adapter_is_found_before_any_merge(base, rounds, tmp_path):
    first = copy_adapter(rounds, tmp_path, 1)
    second = copy_adapter(rounds, tmp_path, 2)
    edit_config(first, peft_type="IA3")
    assert refused(base, second).startswith(f"{first.resolve() / 'adapter_config.json'}: peft_type is 'IA3'")


def test_target_modules_the_model_lacks_are_named_with_its_layers(base, rounds, tmp_path):
    adapter = copy_adapter(rounds, tmp_path)
    edit_config(adapter, target_modules=["c_attn"])  # GPT-2's attention, not a Llama layer
    message = refused(base, adapter)
    assert message.startswith(f"--adapter {adapter}: target_modules ['c_attn'] name no layer of --model {base}")
    assert "q_proj" in message and "down_proj" in message


def test_weights_of_other_target_modules_are_refused(base, rounds, tmp_path):
    adapter = copy_adapter(rounds, tmp_path)
    edit_config(adapter, target_modules=["k_proj"])  # the weights adapt q_proj and v_proj
    assert "tensor(s) of its weights adapt no layer its target_modules ['k_proj'] select" in refused(base, adapter)
    edit_config(adapter, target_modules=["q_proj", "v_proj", "o_proj"])
    assert "its weights lack 4 LoRA tensor(s) of target_modules" in refused(base, adapter)


def test_missing_or_damaged_weights_are_one_line(base, rounds, tmp_path):
    adapter = copy_adapter(rounds, tmp_path)
    (adapter / "adapter_model.safetensors").write_bytes(b"garbage")
    assert refused(base, adapter).startswith(f"{adapter / 'adapter_model.safetensors'}: not a readable safetensors")
    (adapter / "adapter_model.safetensors").unlink()
    assert refused(base, adapter) == (f"--adapter {adapter}: no adapter weights (adapter_model.safetensors or "
                                      "adapter_model.bin) next to adapter_config.json; copy the whole adapter dir "
                                      "from its training run")


def test_a_pickled_adapter_is_loaded_weights_only_and_code_in_it_never_runs(base, rounds, tmp_path):
    adapter = copy_adapter(rounds, tmp_path)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_model.safetensors").unlink()
    torch.save(weights, adapter / "adapter_model.bin")  # what older peft wrote: tensors only
    from_bin = HFUnitLM.from_args(str(base), adapter=str(adapter))
    reference = HFUnitLM.from_args(str(base), adapter=str(rounds / "round-1" / "adapter"))
    assert scores(from_bin.model, from_bin.vocab) == pytest.approx(scores(reference.model, reference.vocab), abs=1e-5)
    marker = tmp_path / "ran"
    torch.save({**weights, "payload": CreatesFile(marker)}, adapter / "adapter_model.bin")
    message = refused(base, adapter)
    assert message.startswith(f"{adapter / 'adapter_model.bin'}: pickles posix.system besides tensors")
    assert not marker.exists()
    torch.save(CreatesFile(marker), adapter / "adapter_model.bin", _use_new_zipfile_serialization=False)
    assert "not a readable torch checkpoint" in refused(base, adapter)  # a file too old to scan: weights-only refuses
    assert not marker.exists()


def test_an_adapter_trained_with_other_units_is_refused(base, rounds, tmp_path):
    adapter = copy_adapter(rounds, tmp_path)
    UnitVocabulary.twist(500, 4, 0, 2, 1).save(adapter)  # as alignslm-train saves it next to the adapter
    assert HFUnitLM.from_args(str(base), adapter=str(adapter)).describe()["adapter"]
    message = refused(base, adapter, unit_convention="twist", unit_offset=4, n_units=400)
    assert message.startswith(f"--adapter {adapter}: trained with the units of {adapter / 'alignslm_units.json'} "
                              "(twist: 500 units, unit 0 = token 4), but the model is read as twist: 400 units")


def test_a_missing_adapter_dir_is_one_line(base, tmp_path):
    assert refused(base, tmp_path / "nowhere").startswith(f"--adapter {tmp_path / 'nowhere'}: directory does not exist")
    (tmp_path / "empty").mkdir()
    assert refused(base, tmp_path / "empty").startswith(f"--adapter {tmp_path / 'empty'}: no adapter_config.json")
