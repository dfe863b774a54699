"""Protocol presets: the shipped files parse, every value says where it comes from, and bad files are named."""

import pytest

from alignslm_eval.api.protocol import (
    DEFAULT_PROTOCOL,
    TASK_KEYS,
    all_presets,
    load_preset,
    matching_preset,
    parse_preset,
    resolve_overrides,
)
from alignslm_eval.api.task import load_specs
from alignslm_eval.io.errors import UserError


def test_shipped_presets_parse_and_source_every_value():
    names = [p.name for p in all_presets()]
    assert {"alignslm", "slamkit", "twist"} <= set(names) and DEFAULT_PROTOCOL in names
    for preset in all_presets():
        assert preset.repository and preset.commit and preset.description
        for values in (*preset.tasks.values(), preset.model):
            for value in values.values():
                assert bool(value.source) != bool(value.unverified)


def test_slamkit_preset_is_slamkits_rule_on_every_likelihood_task():
    slamkit = load_preset("slamkit")
    for task in ("swuggy", "sblimp", "sstorycloze", "tstorycloze", "salmon"):
        assert slamkit.task_values(task) == {"add_bos": True, "add_eos": True, "reduction": "mean", "dedup": True}
    assert slamkit.commit == "388b40222a1736930dad5e6b231754217c69629a"
    assert load_preset("twist").task_values("swuggy")["add_bos"] is False
    # the default preset is the task files themselves: it sets nothing
    assert load_preset("alignslm").tasks == {}


def test_set_values_go_on_top_and_what_they_replaced_is_returned():
    merged, replaced = resolve_overrides(load_preset("slamkit"), ["swuggy", "continuation"],
                                         {"swuggy": {"reduction": "sum", "split": "test"}})
    assert merged["swuggy"] == {"add_bos": True, "add_eos": True, "reduction": "sum", "dedup": True, "split": "test"}
    assert replaced == {"swuggy": {"reduction": "sum"}, "continuation": {}}
    assert "continuation" not in merged


def test_specs_record_the_preset_and_its_values():
    spec = load_specs(["sblimp"], preset=load_preset("slamkit"))[0]
    assert (spec.protocol.add_bos, spec.protocol.add_eos, spec.reduction) == (True, True, "mean")
    recorded = spec.to_json()["preset"]
    assert recorded["name"] == "slamkit" and len(recorded["sha256"]) == 64
    assert recorded["set_by_preset"] == sorted(TASK_KEYS)
    # without a preset nothing is claimed
    assert "preset" not in load_specs(["sblimp"])[0].to_json()


def test_a_recorded_protocol_is_matched_to_the_preset_it_equals():
    slamkit_like = {"add_bos": True, "add_eos": True, "reduction": "mean", "dedup": True}
    assert matching_preset("sblimp", slamkit_like) == "slamkit"
    assert matching_preset("sblimp", {**slamkit_like, "add_eos": False}) is None
    assert matching_preset("swuggy", {"add_bos": False, "add_eos": False, "reduction": "sum", "dedup": True}) == "twist"


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UserError, match="choose one of alignslm, slamkit, twist"):
        load_preset("slam")


@pytest.mark.parametrize("body, needle", [
    ("protocol: other\nversion: 1\ndescription: d\nrepository: r\ncommit: c\n", "field protocol is 'other'"),
    ("protocol: bad\nversion: 0\ndescription: d\nrepository: r\ncommit: c\n", "version must be"),
    ("protocol: bad\nversion: 1\ndescription: d\nrepository: r\ncommit: c\ntasks: {swuggy: {add_bos: true}}\n",
     "tasks.swuggy.add_bos: expected {value"),
    ("protocol: bad\nversion: 1\ndescription: d\nrepository: r\ncommit: c\n"
     "tasks: {swuggy: {add_bos: {value: true}}}\n", "give exactly one of source"),
    ("protocol: bad\nversion: 1\ndescription: d\nrepository: r\ncommit: c\n"
     "tasks: {swuggy: {split: {value: dev, source: s}}}\n", "not a setting a preset sets"),
    ("protocol: bad\nversion: 1\ndescription: d\nrepository: r\ncommit: c\nscore: 1\n", "unknown field(s) ['score']"),
    ("protocol: bad\nversion: 1\nrepository: r\ncommit: c\n", "description must be"),
])
def test_a_broken_preset_names_its_file_and_field(tmp_path, body, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(UserError) as e:
        parse_preset(path)
    assert str(path) in str(e.value) and needle in str(e.value)
