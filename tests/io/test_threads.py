"""torch_threads: a fixed torch thread count for a block or a function, the caller's count restored after."""

from __future__ import annotations

import pytest
import torch

from alignslm_eval.io.threads import torch_threads


def test_the_count_holds_inside_and_is_restored_after_an_error():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(RuntimeError, match="inside"):
            with torch_threads(3):
                assert torch.get_num_threads() == 3
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_as_a_decorator_every_call_runs_on_the_count():
    @torch_threads(3)
    def count() -> int:
        return torch.get_num_threads()

    before = torch.get_num_threads()
    assert count() == count() == 3 and torch.get_num_threads() == before
