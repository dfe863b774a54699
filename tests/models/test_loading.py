import json
import re
from pathlib import Path

import pytest

from alignslm_eval.io.errors import UserError
from alignslm_eval.models.loading import read_config, read_model_config

HINT = "give a Whisper directory saved with save_pretrained or a hub id"


def _model_dir(tmp_path: Path, config: bytes | None) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    if config is not None:
        (directory / "config.json").write_bytes(config)
    return directory


def test_missing_config_names_directory_and_hint(tmp_path: Path) -> None:
    directory = _model_dir(tmp_path, None)
    with pytest.raises(UserError, match=re.escape(f"{directory}: no config.json here; {HINT}")):
        read_model_config(directory, ("whisper",), "Whisper", HINT)
    with pytest.raises(UserError, match="no config.json here; pass a checkpoint directory"):
        read_config(directory)


def test_path_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "model.bin"
    file.write_bytes(b"")
    with pytest.raises(UserError, match="no config.json here"):
        read_model_config(file, ("whisper",), "Whisper", HINT)


@pytest.mark.parametrize(
    "text, message", [(b"{not json", "not valid JSON"), (b"[1, 2]", "not a JSON object"), (b"\xff", "not valid JSON")]
)
def test_malformed_config(tmp_path: Path, text: bytes, message: str) -> None:
    directory = _model_dir(tmp_path, text)
    config = re.escape(str(directory / "config.json"))
    with pytest.raises(UserError, match=f"{config}: {message}.*re-save the model with save_pretrained") as e:
        read_model_config(directory, ("whisper",), "Whisper", HINT)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "model_types, config, wanted",
    [
        (("whisper",), {"model_type": "hubert"}, "'whisper'"),
        (("whisper",), {}, "'whisper'"),
        ((None, "hubert"), {"model_type": "wav2vec2"}, "'hubert'"),
    ],
)
def test_wrong_model_type(tmp_path: Path, model_types: tuple, config: dict, wanted: str) -> None:
    directory = _model_dir(tmp_path, json.dumps(config).encode())
    found = repr(config.get("model_type"))
    with pytest.raises(UserError, match=f"model_type is {found}, not {wanted}; give a Foo model"):
        read_model_config(directory, model_types, "Foo", HINT)


@pytest.mark.parametrize(
    "model_types, config",
    [
        (("whisper",), {"model_type": "whisper", "d_model": 4}),
        ((None, "hubert"), {"model_type": "hubert"}),
        ((None, "hubert"), {}),
    ],
)
def test_right_model_type_returns_config(tmp_path: Path, model_types: tuple, config: dict) -> None:
    directory = _model_dir(tmp_path, json.dumps(config).encode())
    assert read_model_config(directory, model_types, "Foo", HINT) == config
