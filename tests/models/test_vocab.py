import json

import numpy as np
import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.models.vocab import UnitVocabulary


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


@pytest.mark.parametrize("vocab, size, expected", [
    (UnitVocabulary.slam(64), 66, None),
    (UnitVocabulary.twist(65, 1, 1, 1, 0), 66, "units 0..64 would be token ids 1..65, so unit 0 would be the "
                                                "bos_id/eos_id token 1"),
    (UnitVocabulary.twist(-934, 1000, 1, 1, 0), 66, "unit 0 would be token id 1000, past the model's 66 token ids"),
    (UnitVocabulary.twist(10, -1, None, None, None), 66, "unit offset -1 is negative"),
    (UnitVocabulary.twist(0, 4, None, None, None), 66, "0 units: at least 1 is needed"),
    (UnitVocabulary.slam(65), 66, "65 units at offset 2 need token ids up to 66, past the model's 66 token ids"),
    (UnitVocabulary.twist(10, 4, 0, 99, 1), 66, "eos_id 99 is outside the model's 66 token ids"),
    (UnitVocabulary.twist(10, 4, 0, 9, 1), 66, "so unit 5 would be the eos_id token 9"),
])
def test_misfit(vocab, size, expected):
    problem = vocab.misfit(size)
    assert problem is None if expected is None else expected in problem


def test_misfit_counts_reserved_ids_within_the_embeddings_only():
    slam = UnitVocabulary.slam(64)
    assert slam.misfit(66, {"config.json eos_token_id": 2}) == (
        "units 0..63 would be token ids 2..65, so unit 0 would be the config.json eos_token_id token 2")
    assert slam.misfit(66, {"config.json eos_token_id": 151643, "config.json bos_token_id": 1}) is None


def test_check_tokenizer():
    v = UnitVocabulary.slam(64)
    v.check_tokenizer(64, "offline tokenizer")
    with pytest.raises(UserError) as e:
        v.check_tokenizer(65, "offline tokenizer")
    assert str(e.value).startswith("offline tokenizer: makes 65 units, but the model's unit vocabulary has 64 "
                                   "(slam: 64 units, unit 0 = token 2); give the tokenizer the model was trained with")
    assert str(e.value).endswith("or --n-units 65 (with --unit-convention when the model dir has alignslm_units.json)")
    with pytest.raises(UserError) as e:  # a caller without --n-units: the model dir's file is the way
        v.check_tokenizer(65, "offline tokenizer", n_units_flag=False)
    assert str(e.value).endswith('or an alignslm_units.json with "n_units": 65 in the model dir (see '
                                 "docs/scoring-protocol.md, Models)")


@pytest.mark.parametrize("fields, expected", [
    ({"n_units": "64"}, "n_units is '64', not an integer"),
    ({"offset": True}, "offset is True, not an integer"),
    ({"eos_id": 1.5}, "eos_id is 1.5, not an integer or null"),
    ({"convention": "hubert"}, "convention is 'hubert', not 'twist' or 'slam'"),
])
def test_load_checks_field_types(tmp_path, fields, expected):
    path = tmp_path / "alignslm_units.json"
    path.write_text(json.dumps({**UnitVocabulary.slam(64).__dict__, **fields}))
    with pytest.raises(UserError) as e:
        UnitVocabulary.load(path)
    assert str(e.value) == f"{path}: {expected}"
