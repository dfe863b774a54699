"""DPO core: the unit tokenizer lines up with the model's token ids, TRL's loss is the DPO formula, training moves the
loss and reward accuracy the right way, the saved adapter loads, the reference is the adapter-disabled base, and a
killed run resumes from its last checkpoint. Tiny random-weight models, CPU, offline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, TrainerCallback

from alignslm_eval.io.errors import UserError
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_eval.models.vocab import UnitVocabulary
from alignslm_train.dpo import (
    DPOSettings,
    PreferencePair,
    build_trainer,
    dpo_loss_by_hand,
    full_batches,
    pairs_dataset,
    text_to_units,
    train_dpo,
    unit_tokenizer,
    units_to_text,
)
from tests.tiny_models import N_UNITS, TWIST_OFFSET, reference_loglikelihood, save_slam_qwen2, save_twist_llama

# TRL 1.16 calls a transformers API that transformers 5.24 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

# High enough for a tiny model to separate 8 pairs in a few dozen steps; the real default is slamkit's 5e-5.
FAST = dict(learning_rate=5e-3, batch_size=8, save_steps=1000)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dpo-models")
    return {"slam": save_slam_qwen2(root / "slam"), "twist": save_twist_llama(root / "twist")}


def load(path: Path) -> HFUnitLM:
    return HFUnitLM.from_args(str(path))


def synthetic_pairs(n: int, seed: int = 0) -> list[PreferencePair]:
    rng = np.random.default_rng(seed)

    def units(lo: int, hi: int) -> list[int]:
        return rng.integers(0, N_UNITS, size=int(rng.integers(lo, hi))).tolist()

    return [PreferencePair(f"pair{i}", units(3, 8), units(2, 6), units(2, 6), {"seed": seed}) for i in range(n)]


def sequence_logp(model: torch.nn.Module, vocab: UnitVocabulary, pair: PreferencePair, which: str) -> torch.Tensor:
    """log p(continuation + EOS | BOS + prompt) from one unpadded forward pass."""
    prompt = vocab.encode(np.array(pair.prompt_units), add_bos=vocab.bos_id is not None, add_eos=False)
    continuation = vocab.encode(np.array(getattr(pair, f"{which}_units")), add_bos=False, add_eos=True)
    ids = torch.from_numpy(np.concatenate([prompt, continuation]))[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].double()
    token_logps = torch.log_softmax(logits, dim=-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    return token_logps[len(prompt) - 1 :].sum()


@pytest.mark.parametrize(
    "vocab",
    [UnitVocabulary.slam(N_UNITS), UnitVocabulary.twist(N_UNITS, TWIST_OFFSET, bos_id=0, eos_id=2, pad_id=1)],
    ids=["slam", "twist"],
)
def test_unit_tokenizer_ids_are_the_vocab_encoding(vocab, tmp_path):
    tokenizer = unit_tokenizer(vocab, vocab_size=N_UNITS + vocab.offset + 3)
    units = np.array([0, 17, N_UNITS - 1, 5, 5])
    text = units_to_text(units)
    assert text == f"<u0> <u17> <u{N_UNITS - 1}> <u5> <u5>"
    # Nothing is added implicitly, even when special tokens are asked for.
    for add_special_tokens in (True, False):
        ids = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
        assert ids == vocab.encode(units, add_bos=False, add_eos=False).tolist()
    framed = f"{tokenizer.bos_token} {text} {tokenizer.eos_token}"
    assert tokenizer(framed)["input_ids"] == vocab.encode(units, add_bos=True, add_eos=True).tolist()
    # TRL concatenates prompt and completion strings without a separator.
    assert tokenizer("<u0><u17>")["input_ids"] == vocab.encode(np.array([0, 17]), False, False).tolist()
    assert text_to_units(tokenizer.decode(tokenizer(framed)["input_ids"])) == units.tolist()
    assert tokenizer.pad_token_id == vocab.pad_id and tokenizer.eos_token_id == vocab.eos_id
    assert len(tokenizer) == N_UNITS + vocab.offset + 3  # filler names keep ids aligned with embedding rows
    with pytest.raises(Exception):
        tokenizer("<u3> hello")

    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(framed)["input_ids"] == tokenizer(framed)["input_ids"]
    assert reloaded(text)["input_ids"] == vocab.encode(units, add_bos=False, add_eos=False).tolist()
    assert reloaded.convert_ids_to_tokens(list(range(len(tokenizer)))) == tokenizer.convert_ids_to_tokens(
        list(range(len(tokenizer)))
    )


def test_full_batches_repeat_the_first_pairs_to_complete_the_last_batch():
    pairs = synthetic_pairs(3)
    assert full_batches(pairs, 2) == [*pairs, pairs[0]]
    assert full_batches(pairs, 3) == pairs
    assert full_batches(pairs, 8) == [*pairs, *pairs, pairs[0], pairs[1]]
    assert full_batches([], 4) == []


def test_pairs_dataset_columns_and_errors():
    vocab = UnitVocabulary.slam(N_UNITS)
    data = pairs_dataset([PreferencePair("a", [1, 2], [3], [4, 5])], vocab)
    assert data[0] == {"pair_id": "a", "prompt": "<S> <u1> <u2>", "chosen": "<u3> <S>", "rejected": "<u4> <u5> <S>"}
    with pytest.raises(UserError, match="pair b: chosen"):
        pairs_dataset([PreferencePair("b", [1], [N_UNITS], [2])], vocab)
    with pytest.raises(UserError, match="no eos_id"):
        pairs_dataset([PreferencePair("c", [1], [2], [3])], UnitVocabulary.twist(N_UNITS, 4, 0, None, 1))
    with pytest.raises(UserError, match="unit text"):
        text_to_units("<u1> oops")


@pytest.mark.parametrize("convention", ["slam", "twist"])
def test_trainer_loss_is_the_dpo_formula(checkpoints, tmp_path, convention):
    lm = load(checkpoints[convention])
    model, vocab = lm.model, lm.vocab
    base_params = sum(p.numel() for p in model.parameters())
    pairs = synthetic_pairs(4, seed=1)  # unequal lengths: the batch is padded
    settings = DPOSettings(beta=0.5, batch_size=len(pairs), max_steps=1)
    trainer = build_trainer(model, vocab, pairs, tmp_path, settings)

    # The reference is the adapter-disabled policy: no second model is built.
    assert trainer.ref_model is None
    lora_params = sum(p.numel() for n, p in trainer.model.named_parameters() if "lora_" in n)
    assert sum(p.numel() for p in trainer.model.parameters()) == base_params + lora_params

    # A fresh LoRA is the identity (B = 0); give it random weights so policy and reference differ.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)

    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(pairs))])
    with torch.no_grad():
        trl_loss = float(trainer.compute_loss(trainer.model, batch))

    policy, reference = {}, {}
    for which in ("chosen", "rejected"):
        policy[which] = torch.stack([sequence_logp(trainer.model, vocab, p, which) for p in pairs])
        with trainer.model.disable_adapter():
            reference[which] = torch.stack([sequence_logp(trainer.model, vocab, p, which) for p in pairs])
    assert not torch.allclose(policy["chosen"], reference["chosen"])
    by_hand = float(dpo_loss_by_hand(policy["chosen"], policy["rejected"], reference["chosen"],
                                     reference["rejected"], settings.beta))
    print(f"\n{convention}: TRL loss {trl_loss:.8f}, by hand {by_hand:.8f}, |diff| {abs(trl_loss - by_hand):.2e}")
    assert abs(trl_loss - by_hand) < 1e-5


@pytest.fixture(scope="module")
def trained(checkpoints, tmp_path_factory):
    """40 DPO steps on 8 pairs; base logits on a probe sequence are kept from before training."""
    lm = load(checkpoints["slam"])
    probe = torch.from_numpy(lm.vocab.encode(np.arange(0, 40, 3), add_bos=True, add_eos=True))[None]
    with torch.no_grad():
        base_logits = lm.model(input_ids=probe).logits.clone()
    pairs = synthetic_pairs(8, seed=2)
    out_dir = tmp_path_factory.mktemp("dpo-run")
    result = train_dpo(lm.model, lm.vocab, pairs, out_dir, DPOSettings(max_steps=40, **FAST))
    return {"result": result, "pairs": pairs, "vocab": lm.vocab, "probe": probe, "base_logits": base_logits,
            "out_dir": out_dir}


def test_training_lowers_the_loss_and_raises_reward_accuracy(trained):
    result = trained["result"]
    print(f"\nloss {result.train_loss_first:.4f} -> {result.train_loss_last:.4f}, reward accuracy "
          f"{result.reward_accuracy_first:.2f} -> {result.reward_accuracy_last:.2f}, {result.steps} steps in "
          f"{result.seconds:.1f} s")
    assert result.steps == 40
    assert result.train_loss_first == pytest.approx(math.log(2), abs=1e-5)  # policy == reference at step 1
    assert result.train_loss_last < result.train_loss_first
    assert result.reward_accuracy_last >= result.reward_accuracy_first and result.reward_accuracy_last > 0.5
    lines = [json.loads(line) for line in (trained["out_dir"] / "dpo_log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 41))
    assert {"loss", "rewards/accuracies", "rewards/margins", "logps/chosen"} <= set(lines[0])


def test_saved_adapter_loads_and_changes_likelihoods(trained, checkpoints):
    from peft import PeftModel

    result, vocab = trained["result"], trained["vocab"]
    adapter_dir = result.adapter_dir
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "alignslm_units.json"} <= {
        p.name for p in adapter_dir.iterdir()
    }
    assert UnitVocabulary.load(adapter_dir / "alignslm_units.json") == vocab
    assert AutoTokenizer.from_pretrained(adapter_dir)("<S> <u4>")["input_ids"] == [1, 6]

    base = load(checkpoints["slam"]).model
    adapted = PeftModel.from_pretrained(load(checkpoints["slam"]).model, adapter_dir).eval()
    margins = {"base": [], "adapted": []}
    for pair in trained["pairs"]:
        for name, model in (("base", base), ("adapted", adapted)):
            margins[name].append(float(sequence_logp(model, vocab, pair, "chosen")
                                       - sequence_logp(model, vocab, pair, "rejected")))
        chosen_ids = np.concatenate([vocab.encode(np.array(pair.prompt_units), True, False),
                                     vocab.encode(np.array(pair.chosen_units), False, True)]).tolist()
        assert abs(reference_loglikelihood(adapted, chosen_ids) - reference_loglikelihood(base, chosen_ids)) > 1e-3
        # The reloaded adapter is the trained one.
        assert reference_loglikelihood(adapted, chosen_ids) == pytest.approx(
            reference_loglikelihood(result.model, chosen_ids), abs=1e-4)
    # DPO widened the chosen-over-rejected likelihood margin on its training pairs.
    assert np.mean(margins["adapted"]) > np.mean(margins["base"])


def test_reference_is_the_adapter_disabled_base(trained):
    model = trained["result"].model
    with torch.no_grad():
        adapted = model(input_ids=trained["probe"]).logits
        with model.disable_adapter():
            disabled = model(input_ids=trained["probe"]).logits
    assert not torch.allclose(adapted, trained["base_logits"], atol=1e-4)
    torch.testing.assert_close(disabled, trained["base_logits"], rtol=0, atol=1e-6)


def test_curriculum_round_continues_the_adapter_against_the_previous_policy(trained, checkpoints, tmp_path):
    from peft import PeftModel

    previous = trained["result"]
    model = PeftModel.from_pretrained(load(checkpoints["slam"]).model, previous.adapter_dir)
    pairs = synthetic_pairs(8, seed=3)
    result = train_dpo(model, trained["vocab"], pairs, tmp_path, DPOSettings(max_steps=3, **FAST))
    # The reference is the previous round's policy, so the first step starts from log 2 again.
    assert result.train_loss_first == pytest.approx(math.log(2), abs=1e-5)
    assert "ref" in result.model.peft_config
    assert not (result.adapter_dir / "ref").exists()  # only the trained adapter is saved
    probe = trained["probe"]
    with torch.no_grad():
        continued = result.model(input_ids=probe).logits
        result.model.set_adapter("ref")
        reference = result.model(input_ids=probe).logits
        result.model.set_adapter("default")
        round_one = previous.model(input_ids=probe).logits
    torch.testing.assert_close(reference, round_one, rtol=0, atol=1e-5)
    assert not torch.allclose(continued, round_one, atol=1e-4)


class _StepRecorder(TrainerCallback):
    def __init__(self):
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_killed_run_resumes_from_its_last_checkpoint(checkpoints, tmp_path):
    pairs = synthetic_pairs(8, seed=4)
    settings = dict(FAST, batch_size=4, save_steps=2)
    first = train_dpo(load(checkpoints["slam"]).model, load(checkpoints["slam"]).vocab, pairs, tmp_path,
                      DPOSettings(max_steps=4, **settings))
    assert first.steps == 4 and (tmp_path / "checkpoints" / "checkpoint-4").is_dir()
    # A run killed after logging step 5 but before its next checkpoint leaves a line that must not be kept twice.
    log = tmp_path / "dpo_log.jsonl"
    log.write_text(log.read_text() + json.dumps({"step": 5, "loss": 0.0}) + "\n")

    recorder = _StepRecorder()
    lm = load(checkpoints["slam"])
    second = train_dpo(lm.model, lm.vocab, pairs, tmp_path, DPOSettings(max_steps=6, **settings),
                       callbacks=[recorder])
    assert recorder.steps == [5, 6]  # continued at global step 4
    assert second.steps == 6
    assert [e["step"] for e in second.log_history if "loss" in e] == [1, 2, 3, 4, 5, 6]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6] and lines[4]["loss"] != 0.0
    # The resumed steps 1-4 are the first run's.
    assert second.log_history[0]["loss"] == first.log_history[0]["loss"]


# Appends training-step logs with the trainer's own logger, each line large enough that a kill lands inside one.
_LOG_WRITER = """
import sys
from pathlib import Path
from types import SimpleNamespace
from alignslm_train.dpo import _JsonlLog

log = _JsonlLog(Path(sys.argv[1]))
print("ready", flush=True)
step = 5
while True:
    log.on_log(None, SimpleNamespace(global_step=step, is_world_process_zero=True), None,
               {"loss": 0.1, "padding": "x" * 20_000_000})
    step += 1
"""


def _kill_mid_line(log: Path) -> None:
    """Run _LOG_WRITER on `log` in a real process and kill -9 it while a line is half written."""
    import os
    import signal
    import subprocess
    import sys
    import time

    complete = log.read_bytes()
    for _ in range(20):
        log.write_bytes(complete)
        proc = subprocess.Popen([sys.executable, "-c", _LOG_WRITER, str(log)], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        while log.stat().st_size <= len(complete) + 1_000_000 and proc.poll() is None:
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        data = log.read_bytes()
        if not data.endswith(b"\n"):
            return
    pytest.fail("no kill landed inside a line in 20 tries")


def test_a_run_killed_while_writing_its_log_resumes(checkpoints, tmp_path):
    pairs = synthetic_pairs(8, seed=4)
    settings = dict(FAST, batch_size=4, save_steps=2)
    first = train_dpo(load(checkpoints["slam"]).model, load(checkpoints["slam"]).vocab, pairs, tmp_path,
                      DPOSettings(max_steps=4, **settings))
    log = tmp_path / "dpo_log.jsonl"
    _kill_mid_line(log)
    lm = load(checkpoints["slam"])
    second = train_dpo(lm.model, lm.vocab, pairs, tmp_path, DPOSettings(max_steps=6, **settings))
    assert second.steps == 6
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every line whole again
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6] and "padding" not in lines[4]
    assert lines[0]["loss"] == first.log_history[0]["loss"]


def test_target_module_the_model_lacks_is_a_user_error_naming_its_layers(checkpoints, tmp_path):
    lm = load(checkpoints["twist"])
    settings = DPOSettings(target_modules=["q_proj", "nosuchmodule"], **FAST)
    with pytest.raises(UserError, match=r"--target-modules nosuchmodule: .*k_proj"):
        build_trainer(lm.model, lm.vocab, synthetic_pairs(2), tmp_path, settings)
