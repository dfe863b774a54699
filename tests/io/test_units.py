import json

import numpy as np
import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.io.units import Units, from_frames, parse_unit_string, read_units_jsonl


def test_dedup_keeps_run_lengths():
    u = from_frames(np.array([5, 5, 5, 2, 7, 7, 5]))
    assert u.units.tolist() == [5, 2, 7, 5]
    assert u.durations.tolist() == [3, 1, 2, 1]
    assert u.frames().tolist() == [5, 5, 5, 2, 7, 7, 5]


def test_no_dedup_and_empty():
    assert from_frames(np.array([1, 1]), dedup=False).units.tolist() == [1, 1]
    assert len(from_frames(np.array([], dtype=np.int64))) == 0


def test_real_hubert_25hz_units_round_trip(shared_data):
    records = read_units_jsonl(shared_data / "units" / "slamkit_features.jsonl")
    assert len(records) == 2
    total = 0
    for name, units in records.items():
        # The released units are already deduplicated: expanding and deduplicating again must give them back.
        again = from_frames(units.frames())
        assert again.units.tolist() == units.units.tolist()
        assert again.durations.tolist() == units.durations.tolist()
        assert units.units.min() >= 0 and units.units.max() < 500
        total += len(units)
    assert total == 288 + 328  # the counts MANIFEST.md gives
    frames = sorted(int(u.durations.sum()) for u in records.values())
    assert frames == [352, 398]  # 25 Hz x 14.085 s and 15.945 s


def test_real_token_strings_match_the_units(shared_data):
    features = read_units_jsonl(shared_data / "units" / "slamkit_features.jsonl")
    with open(shared_data / "units" / "slamkit_tokens.jsonl") as f:
        tokens = {row["file_name"]: parse_unit_string(row["audio_repr"]) for row in map(json.loads, f)}
    assert tokens.keys() == features.keys()
    for name, ids in tokens.items():
        assert ids.tolist() == features[name].units.tolist()


def test_parse_unit_string_rejects_other_text():
    with pytest.raises(ValueError):
        parse_unit_string("<Un1>hello<Un2>")


def test_bad_units_file_names_line(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text('{"units": [1], "file_name": "a"}\n{"file_name": "b"}\n')
    with pytest.raises(UserError, match=r"u\.jsonl:2"):
        read_units_jsonl(path)


def test_units_shape_check():
    with pytest.raises(ValueError):
        Units(np.array([1, 2]), np.array([1]))
