import json
from pathlib import Path

import alignslm_tasks
import pytest

from alignslm_eval.api.task import Choice, TaskData, load_specs, parse_spec, task_files
from alignslm_eval.io.errors import UserError

GOOD = """
task: mytask
version: 1
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
     (GOOD.replace("version: 1\n", ""), "missing required field 'version'; add `version: 1`"),
     (GOOD.replace("version: 1", "version: '1'"), "version must be a whole number"),
     (GOOD.replace("version: 1", "version: 1.5"), "version must be a whole number"),
     (GOOD.replace("version: 1", "version: true"), "version must be a whole number"),
     (GOOD.replace("version: 1", "version: 0"), "version must be a whole number"),
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


# ------------------------------------------------------------------------------------------- include: and version

BASE = """
kind: storycloze
data_dir: shared
likelihood: {add_bos: false, reduction: mean}
settings: {manifest: m.csv, split: dev}
"""


def test_include_merges_own_keys_first_and_mappings_key_by_key(tmp_path):
    write(tmp_path, BASE, "_base.yaml")
    path = write(tmp_path, "task: mytask\nversion: 3\ninclude: _base.yaml\nlikelihood: {reduction: sum}\n"
                           "settings: {split: test, extra: 1}\n")
    spec = parse_spec(path)
    assert (spec.kind, spec.data_dir, spec.reduction, spec.protocol.add_bos) == ("storycloze", "shared", "sum", False)
    # the including file's settings in its order, then the template's others: results record this order
    assert list(spec.settings.items()) == [("split", "test"), ("extra", 1), ("manifest", "m.csv")]
    recorded = spec.to_json()
    assert recorded["version"] == 3 and recorded["source"] == str(path)
    assert recorded["includes"] == [str(tmp_path / "_base.yaml")]


def test_include_chains_nearest_first_and_version_is_not_inherited(tmp_path):
    (tmp_path / "common").mkdir()
    write(tmp_path, "version: 7\nkind: storycloze\ndata_dir: far\nsettings: {a: 1, b: 1}\n", "common/_far.yaml")
    write(tmp_path, "include: _far.yaml\ndata_dir: near\nsettings: {b: 2}\n", "common/_near.yaml")
    path = write(tmp_path, "task: mytask\nversion: 1\ninclude: common/_near.yaml\n")
    spec = parse_spec(path)
    assert spec.version == 1 and spec.data_dir == "near" and spec.settings == {"b": 2, "a": 1}
    assert spec.includes == (str(tmp_path / "common/_near.yaml"), str(tmp_path / "common/_far.yaml"))
    with pytest.raises(UserError, match="missing required field 'version'"):
        parse_spec(write(tmp_path, "task: other\ninclude: common/_far.yaml\n", "other.yaml"))


def test_include_path_folders_skip_templates_and_resolve_includes(tmp_path):
    write(tmp_path, BASE, "_base.yaml")
    write(tmp_path, "task: mytask\nversion: 1\ninclude: _base.yaml\n")
    assert "_base" not in task_files((tmp_path,)) and "mytask" in task_files((tmp_path,))
    assert load_specs(["mytask"], (tmp_path,))[0].data_dir == "shared"
    with pytest.raises(UserError, match="unknown task"):
        load_specs(["_base"], (tmp_path,))


@pytest.mark.parametrize(
    "files,message",
    [({"_base.yaml": None}, r"mytask.yaml: included file .*_base.yaml not found; fix include: _base.yaml"),
     ({"_base.yaml": "include: mytask.yaml\n"}, r"_base.yaml: include cycle .*mytask.yaml -> .*_base.yaml -> "
                                                  r".*mytask.yaml; remove the include that leads back"),
     ({"_base.yaml": "include: _base.yaml\n"}, r"_base.yaml: include cycle .*_base.yaml -> .*_base.yaml"),
     ({"_base.yaml": "- kind\n"}, r"_base.yaml \(included by .*mytask.yaml\): a task definition must be a YAML "
                                   r"mapping"),
     ({"_base.yaml": "kind: x\nextra: 1\n"}, r"_base.yaml \(included by .*mytask.yaml\): unknown field"),
     ({"_base.yaml": "kind: [\n"}, r"_base.yaml \(included by .*mytask.yaml\): cannot read task definition")],
)
def test_include_errors_are_one_line_and_name_the_file(tmp_path, files, message):
    write(tmp_path, "task: mytask\nversion: 1\ndata_dir: d\ninclude: _base.yaml\n")
    for name, text in files.items():
        if text is not None:
            write(tmp_path, text, name)
    with pytest.raises(UserError, match=message) as e:
        load_specs(["mytask"], (tmp_path,))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("value", ["[a.yaml]", "''", "3"])
def test_include_must_name_one_file(tmp_path, value):
    path = write(tmp_path, f"task: mytask\nversion: 1\ninclude: {value}\n")
    with pytest.raises(UserError, match=r"mytask.yaml: include must name one YAML file relative to"):
        parse_spec(path)


def test_builtin_tasks_have_versions_and_keep_their_settings_order():
    folder = Path(alignslm_tasks.__file__).parent
    templates = sorted(p.name for p in folder.glob("_*.yaml"))
    assert templates and not set(task_files()) & {t[:-5] for t in templates}
    specs = {s.name: s for s in load_specs(["all"])}
    assert all(isinstance(s.version, int) and s.version >= 1 for s in specs.values())
    sampling = ["prompt_seconds", "samples", "temperature", "top_k", "max_new_tokens"]
    assert list(specs["continuation"].settings) == ["scorers", "genppl_include_prompt", "auto_bleu_n", *sampling]
    assert list(specs["gpt4o_score"].settings) == ["scorers", *sampling]
    for name in ("continuation", "gpt4o_score", "signal_quality", "audio_quality"):
        assert specs[name].includes == (str(folder / "_continuation.yaml"),)
        assert specs[name].source == str(folder / f"{name}.yaml")
        assert (specs[name].kind, specs[name].data_dir, specs[name].dedup) == ("continuation", "prompts", True)
    json.dumps([s.to_json() for s in specs.values()])


def test_ls_does_not_list_templates(capsys):
    from alignslm_eval.cli.eval import cmd_ls

    assert cmd_ls([]) == 0
    listed = capsys.readouterr().out.split("tasks:")[1].split("model back-ends")[0]
    assert "continuation.yaml" in listed and "_continuation" not in listed
