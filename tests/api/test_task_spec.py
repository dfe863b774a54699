import pytest

from alignslm_eval.api.task import Choice, TaskData, load_specs, parse_spec, task_files
from alignslm_eval.io.errors import UserError

GOOD = """
task: mytask
kind: storycloze
data_dir: mine
likelihood: {reduction: mean, add_bos: true, add_eos: false}
settings: {split: dev}
"""


def write(tmp_path, text, name="mytask.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_and_overrides(tmp_path):
    path = write(tmp_path, GOOD)
    spec = parse_spec(path, {"reduction": "sum", "split": "test", "add_eos": "true"})
    assert spec.reduction == "sum" and spec.settings["split"] == "test" and spec.protocol.add_eos
    assert spec.to_json()["data_dir"] == "mine"


@pytest.mark.parametrize(
    "text,message",
    [("task: x\nkind: y\n", "missing required field 'data_dir'"),
     (GOOD + "extra: 1\n", "unknown field"),
     (GOOD.replace("mean", "median"), "reduction must be"),
     (GOOD.replace("add_bos: true", "add_bos: maybe"), "add_bos must be true or false"),
     ("- a\n", "must be a YAML mapping"),
     ("task: [\n", "cannot read task definition")],
)
def test_bad_specs_name_file_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=message) as e:
        parse_spec(path)
    assert str(path) in str(e.value)


def test_include_path_and_unknown_task(tmp_path):
    write(tmp_path, GOOD)
    assert "mytask" in task_files((tmp_path,))
    assert load_specs(["mytask"], (tmp_path,))[0].name == "mytask"
    with pytest.raises(UserError, match="unknown task"):
        load_specs(["nope"], (tmp_path,))
    write(tmp_path, GOOD, "other.yaml")
    with pytest.raises(UserError, match="named other.yaml"):
        load_specs(["other"], (tmp_path,))


def test_limited_keeps_only_used_items(tmp_path):
    from alignslm_eval.api.task import AudioItem

    items = {k: AudioItem(k, tmp_path / k) for k in "abcd"}
    data = TaskData(items, [Choice("2", ("c", "d")), Choice("1", ("a", "b"))])
    small = data.limited(1)
    assert [c.id for c in small.choices] == ["1"] and set(small.items) == {"a", "b"}
