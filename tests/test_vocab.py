import numpy as np
import pytest

from alignslm_eval.errors import UserError
from alignslm_eval.vocab import UnitVocabulary


def test_slam_convention():
    v = UnitVocabulary.slam(500)
    assert v.encode(np.array([0, 499]), add_bos=True, add_eos=True).tolist() == [1, 2, 501, 1]
    assert v.decode(np.array([1, 2, 501, 0, 1])).tolist() == [0, 499]


def test_twist_convention():
    v = UnitVocabulary.twist(500, offset=4, bos_id=0, eos_id=2, pad_id=1)
    assert v.encode(np.array([3]), add_bos=True, add_eos=False).tolist() == [0, 7]


def test_out_of_range_unit_names_source():
    v = UnitVocabulary.slam(10)
    with pytest.raises(UserError, match="x.wav: unit id 10 is outside"):
        v.encode(np.array([10]), True, False, source="x.wav")
    with pytest.raises(UserError, match="unit id -1"):
        v.encode(np.array([-1]), True, False)


def test_missing_special_token():
    v = UnitVocabulary("twist", 10, 0, None, None, None)
    with pytest.raises(UserError, match="no bos_id"):
        v.encode(np.array([1]), add_bos=True, add_eos=False)


def test_save_load(tmp_path):
    v = UnitVocabulary.slam(500)
    v.save(tmp_path)
    assert UnitVocabulary.load(tmp_path / "alignslm_units.json") == v
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="bad.json"):
        UnitVocabulary.load(tmp_path / "bad.json")
