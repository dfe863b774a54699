import subprocess
import sys
from pathlib import Path

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_train.config import AlignConfig, DPOSettings, parse_schedule


def test_reading_the_settings_loads_no_torch() -> None:
    # `alignslm-train --help` and a library user's config build on this module alone.
    code = "import sys, alignslm_train.config, alignslm_train.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mid_training_evaluation_needs_tasks_and_a_step_count_together(tmp_path: Path) -> None:
    base = {"model": "demo", "prompts": tmp_path, "output_dir": tmp_path / "out"}
    for tasks, every in ((["sstorycloze"], 0), ([], 5)):
        with pytest.raises(UserError, match="mid-training evaluation needs both"):
            AlignConfig(**base, eval_tasks=tasks, eval_every=every)
    assert AlignConfig(**base, eval_tasks=["sstorycloze"], eval_every=5).eval_every == 5


def test_field_rules_hold_for_a_library_user_too() -> None:
    with pytest.raises(UserError, match=r"^--batch-size 0: must be at least 1$"):
        DPOSettings(batch_size=0)
    with pytest.raises(UserError, match="CHOSEN_MIN > REJECTED_MAX"):
        parse_schedule("1:3")
