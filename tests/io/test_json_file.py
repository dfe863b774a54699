from pathlib import Path

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.io.json_file import read_json_object

FIX = "write it again"


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON ("),
    (b"\xff", "not valid JSON ("),
    (b"[1, 2]", "not a JSON object"),
    (b'{"a": 1}', "missing b, c"),
])
def test_each_fault_is_one_line_naming_the_file_and_ending_with_the_fix(tmp_path: Path, content: bytes,
                                                                       message: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        read_json_object(path, FIX, required=("a", "b", "c"))
    text = str(caught.value)
    assert text.startswith(f"{path}: {message}") and text.endswith(f"; {FIX}") and "\n" not in text


def test_an_unreadable_path_names_the_reason(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"config\.json: cannot read it \(.*\); write it again"):
        read_json_object(tmp_path / "config.json", FIX)
    with pytest.raises(UserError, match=r"cannot read it \(Is a directory\)"):
        read_json_object(tmp_path, FIX)


def test_an_object_with_the_required_keys_is_returned_whole(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"a": 1, "b": [2], "extra": null}', encoding="utf-8")
    assert read_json_object(path, FIX, required=("a", "b")) == {"a": 1, "b": [2], "extra": None}
