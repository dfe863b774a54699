"""DPO data-parallel under real torchrun ranks (gloo, CPU): the optimiser sees the same batches at every world size."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from alignslm_eval.io.errors import UserError
from alignslm_train.config import DPOSettings
from alignslm_train.dpo import per_device_batch
from tests.tiny_models import save_twist_llama

REPO = Path(__file__).resolve().parents[2]

# Trains 2 steps of 4 pairs on the tiny model, over 7 pairs (so the second batch is completed, dpo.full_batches);
# every rank runs it, and only rank 0 may write the adapter.
SCRIPT = """
import os
import sys
from pathlib import Path
from alignslm_eval.models.hf_unit_lm import HFUnitLM
from alignslm_train.config import DPOSettings
from alignslm_train.dpo import train_dpo
from tests.train.test_dpo import synthetic_pairs

lm = HFUnitLM.from_args(sys.argv[1])
settings = DPOSettings(batch_size=4, max_steps=2, learning_rate=5e-3, save_steps=1000, logging_steps=1)
result = train_dpo(lm.model, lm.vocab, synthetic_pairs(7), Path(sys.argv[2]), settings)
# One file per rank: ranks printing to one stdout interleave their lines.
Path(sys.argv[2], "steps.rank" + os.environ.get("RANK", "0")).write_text(str(result.steps))
"""


def train(world: int, model: Path, out: Path) -> dict[str, torch.Tensor]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(world), "--no-python", sys.executable, "-c", SCRIPT, str(model),
                           str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted((p.name, p.read_text()) for p in out.glob("steps.rank*")) == [(f"steps.rank{r}", "2")
                                                                               for r in range(world)]
    return load_file(str(out / "adapter" / "adapter_model.safetensors"))


@pytest.mark.slow
def test_one_process_with_batch_4_equals_two_ranks_with_2_each(tmp_path):
    model = save_twist_llama(tmp_path / "model")
    alone, ranks = train(1, model, tmp_path / "one"), train(2, model, tmp_path / "two")
    assert alone.keys() == ranks.keys() and alone
    assert max((alone[k] - ranks[k]).abs().max().item() for k in alone) < 1e-5
    assert any((v != 0).any() for k, v in alone.items() if "lora_B" in k)  # the steps did move the adapter
    log = (tmp_path / "two" / "dpo_log.jsonl").read_text().splitlines()
    assert len(log) == 2  # rank 0 alone logs each step


def test_the_batch_is_split_over_ranks_and_accumulation_or_refused():
    assert per_device_batch(DPOSettings(batch_size=8, gradient_accumulation_steps=2), 2) == 2
    assert per_device_batch(DPOSettings(batch_size=4), 1) == 4
    with pytest.raises(UserError, match=r"^--batch-size 4: must be a multiple of 3 \(3 rank\(s\) x"):
        per_device_batch(DPOSettings(batch_size=4), 3)
