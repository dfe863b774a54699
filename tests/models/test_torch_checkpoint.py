import builtins
import os

import pytest
import torch

from alignslm_eval.io.errors import UserError
from alignslm_eval.models.torch_checkpoint import ForeignObject, load_checkpoint, load_tensors, refuse_pickled_code


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class RunsEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w')",)


def test_a_blocked_global_is_refused_in_one_line_and_never_called(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"w": torch.ones(2), "x": RunsShell(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UserError) as e:
        load_checkpoint(tmp_path / "evil.pt", "--opt")
    message = str(e.value)
    assert "evil.pt" in message and "system" in message and "\n" not in message
    assert "weights_only` set to `False`" not in message  # torch's advice to load unsafely is not passed on
    assert not marker.exists()


def test_other_foreign_callables_become_inert_placeholders(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"w": torch.ones(2), "x": RunsEval(marker)}, tmp_path / "evil.pt")
    loaded = load_checkpoint(tmp_path / "evil.pt", "--opt")
    assert torch.equal(loaded["w"], torch.ones(2))
    assert isinstance(loaded["x"], ForeignObject) and loaded["x"].pickled_as == "builtins.eval"
    assert not marker.exists()


def test_a_pre_zip_torch_file_of_tensors_loads(tmp_path):
    torch.save({"w": torch.arange(3)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(load_checkpoint(tmp_path / "old.pt", "--opt")["w"], torch.arange(3))


@pytest.mark.parametrize("kind", ["missing", "directory", "garbage"])
def test_unreadable_paths_are_one_line_errors(tmp_path, kind):
    path = tmp_path / "weights.pt"
    if kind == "directory":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage")
    with pytest.raises(UserError) as e:
        load_checkpoint(path, "--opt")
    assert str(e.value).startswith(f"--opt {path}:") and "\n" not in str(e.value)


def test_a_file_that_is_no_torch_pickle_is_named_as_such(tmp_path):
    import numpy as np

    np.save(tmp_path / "km500.npy", np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(UserError) as e:
        load_checkpoint(tmp_path / "km500.npy", "--mos-checkpoint")
    message = str(e.value)
    assert message.startswith(f"--mos-checkpoint {tmp_path / 'km500.npy'}: not a readable torch checkpoint (")
    assert message.endswith("is it a file written by torch.save?)") and "pickles code" not in message
    assert "file an issue" not in message and "\n" not in message


def test_pickled_code_is_refused_by_scanning_before_any_load(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"w": torch.ones(2), "x": RunsEval(marker)}, tmp_path / "evil.bin")
    with pytest.raises(UserError) as e:
        refuse_pickled_code(tmp_path / "evil.bin", "weights.bin")
    assert str(e.value).startswith("weights.bin: pickles builtins.eval besides tensors; that code is never run")
    with pytest.raises(UserError, match="pickles builtins.eval"):
        load_tensors(tmp_path / "evil.bin", "weights.bin")
    assert not marker.exists()


def test_load_tensors_reads_a_state_dict_and_refuses_anything_else(tmp_path):
    torch.save({"w": torch.arange(3)}, tmp_path / "ok.bin")
    assert torch.equal(load_tensors(tmp_path / "ok.bin", "ok.bin")["w"], torch.arange(3))
    torch.save([torch.arange(3)], tmp_path / "list.bin")
    with pytest.raises(UserError, match=r"^list.bin: holds a list, not a dict of named tensors"):
        load_tensors(tmp_path / "list.bin", "list.bin")
    (tmp_path / "garbage.bin").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(UserError) as e:
        load_tensors(tmp_path / "garbage.bin", "garbage.bin")
    assert str(e.value).startswith("garbage.bin: not a readable torch checkpoint (") and "\n" not in str(e.value)
