import hashlib
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from alignslm_eval.io.audio import load_audio
from alignslm_eval.io.errors import UserError
from alignslm_eval.tokenizers.hubert import HubertTokenizer, receptive_field

HIDDEN = 16
N_UNITS = 12

# The real conv stacks of mHuBERT-25Hz (extra stride-2 layer) and HuBERT-base, with tiny channel counts.
SHAPES = {
    "mhubert25": {"conv_stride": (5, 2, 2, 2, 2, 2, 2, 2), "conv_kernel": (10, 3, 3, 3, 3, 2, 2, 2), "hop": 640},
    "hubert_base": {"conv_stride": (5, 2, 2, 2, 2, 2, 2), "conv_kernel": (10, 3, 3, 3, 3, 2, 2), "hop": 320},
}


def _make_model(directory: Path, shape: str) -> Path:
    from transformers import HubertConfig, HubertModel

    spec = SHAPES[shape]
    config = HubertConfig(
        hidden_size=HIDDEN,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * len(spec["conv_stride"]),
        conv_stride=spec["conv_stride"],
        conv_kernel=spec["conv_kernel"],
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    HubertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hubert")
    return {shape: _make_model(root / shape, shape) for shape in SHAPES}


@pytest.fixture(scope="module")
def kmeans_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Layer-normed hidden states are roughly unit-variance per frame, so random unit-scale data spreads the centroids.
    data = np.random.default_rng(0).standard_normal((300, HIDDEN)).astype(np.float32)
    path = tmp_path_factory.mktemp("km") / "km.bin"
    joblib.dump(KMeans(n_clusters=N_UNITS, n_init=1, random_state=0).fit(data), path)
    return path


@pytest.fixture(scope="module")
def wavs(shared_data: Path) -> dict[str, np.ndarray]:
    names = ("ljspeech_LJ002-0020.wav", "ljspeech_LJ002-0035.wav")
    return {name: load_audio(shared_data / "audio" / name, 16000) for name in names}


def _reference_units(model_dir: Path, centroids: np.ndarray, wav: np.ndarray, layer: int) -> np.ndarray:
    """Full model, slamkit-style 40-sample padding, brute-force nearest centroid."""
    from transformers import HubertModel

    model = HubertModel.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        hidden = model(F.pad(torch.from_numpy(wav)[None], (40, 40)), output_hidden_states=True).hidden_states[layer]
    feats = hidden[0].double().numpy()
    return np.argmin(((feats[:, None, :] - centroids.astype(np.float64)[None]) ** 2).sum(-1), axis=1)


@pytest.mark.parametrize("shape,layer", [("mhubert25", "2"), ("hubert_base", "1"), ("mhubert25", "0")])
def test_encode_real_audio(
    shape: str, layer: str, models: dict[str, Path], kmeans_file: Path, wavs: dict[str, np.ndarray]
) -> None:
    tok = HubertTokenizer.from_args(path=str(models[shape]), kmeans=str(kmeans_file), layer=layer)
    hop = SHAPES[shape]["hop"]
    assert tok.hop_length == hop and tok.frame_rate == 16000 / hop and tok.n_units == N_UNITS
    assert tok.pad == 40 and not tok.normalize

    first, second = wavs.values()
    units = tok.encode(first)
    assert units.dtype == np.int64 and len(units) == len(first) // hop
    assert units.min() >= 0 and units.max() < N_UNITS and len(np.unique(units)) > 1
    other = tok.encode(second)
    assert len(other) == len(second) // hop
    np.testing.assert_array_equal(tok.encode(first), units)

    expected = _reference_units(models[shape], tok.quantizer.centroids, first, int(layer))
    np.testing.assert_array_equal(units, expected)


def test_short_audio_gives_no_frames(models: dict[str, Path], kmeans_file: Path) -> None:
    tok = HubertTokenizer(models["mhubert25"], kmeans_file, layer=1)
    assert receptive_field(SHAPES["mhubert25"]["conv_kernel"], SHAPES["mhubert25"]["conv_stride"]) == 720
    assert tok.encode(np.zeros(100, np.float32)).shape == (0,)
    assert len(tok.encode(np.zeros(640, np.float32))) == 1


def test_describe_and_fingerprint(models: dict[str, Path], kmeans_file: Path) -> None:
    tok = HubertTokenizer(models["hubert_base"], kmeans_file, layer=2)
    desc = tok.describe()
    weights = hashlib.sha256((models["hubert_base"] / "model.safetensors").read_bytes()).hexdigest()
    assert desc["weights_sha256"] == weights
    assert desc["kmeans_sha256"] == tok.quantizer.sha256
    assert (desc["layer"], desc["hop_length"], desc["n_units"]) == (2, 320, N_UNITS)
    assert desc["path"] == str(models["hubert_base"]) and desc["normalize"] is False
    json.dumps(desc)
    assert tok.fingerprint() == HubertTokenizer(models["hubert_base"], kmeans_file, layer=2).fingerprint()
    assert tok.fingerprint() != HubertTokenizer(models["hubert_base"], kmeans_file, layer=1).fingerprint()


def test_do_normalize_from_preprocessor_config(models: dict[str, Path], kmeans_file: Path, tmp_path: Path,
                                              caplog) -> None:
    model_dir = tmp_path / "normalized"
    model_dir.mkdir()
    for f in models["hubert_base"].iterdir():
        (model_dir / f.name).write_bytes(f.read_bytes())
    (model_dir / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
    # the file asks for normalisation, the published units have none: the user must say which
    with pytest.raises(UserError, match="do_normalize: true.*normalize=false to match them"):
        HubertTokenizer.from_args(path=str(model_dir), kmeans=str(kmeans_file), layer="1")
    tok = HubertTokenizer.from_args(path=str(model_dir), kmeans=str(kmeans_file), layer="1", normalize="true")
    assert tok.normalize and tok.describe()["normalize"]
    wav = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    np.testing.assert_array_equal(tok.encode(0.3 * wav + 0.1), tok.encode(wav))
    with caplog.at_level("WARNING"):
        raw = HubertTokenizer.from_args(path=str(model_dir), kmeans=str(kmeans_file), layer="1", normalize="false")
    assert not raw.normalize and "says do_normalize: true; following normalize=false" in caplog.text
    # the setting is part of the fingerprint: the unit cache never mixes the two
    assert raw.fingerprint() != tok.fingerprint()
    with pytest.raises(UserError, match="normalize='maybe' is not true or false"):
        HubertTokenizer.from_args(path=str(model_dir), kmeans=str(kmeans_file), normalize="maybe")


def test_user_errors(models: dict[str, Path], kmeans_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="config.json"):
        HubertTokenizer.from_args(path=str(empty), kmeans=str(kmeans_file))
    whisper = tmp_path / "whisper"
    whisper.mkdir()
    (whisper / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(UserError, match="model_type is 'whisper', not 'hubert'"):
        HubertTokenizer.from_args(path=str(whisper), kmeans=str(kmeans_file))
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((models["hubert_base"] / "config.json").read_text())
    with pytest.raises(UserError, match="cannot load a HuBERT model"):
        HubertTokenizer.from_args(path=str(no_weights), kmeans=str(kmeans_file))
    with pytest.raises(UserError, match="no such model directory"):
        HubertTokenizer.from_args(path=str(tmp_path / "missing" / "model"), kmeans=str(kmeans_file))
    with pytest.raises(UserError, match="cannot load a HuBERT model"):  # hub id, not cached, offline
        HubertTokenizer.from_args(path="no-such-org/no-such-hubert", kmeans=str(kmeans_file))
    with pytest.raises(UserError, match="out of range"):
        HubertTokenizer.from_args(path=str(models["hubert_base"]), kmeans=str(kmeans_file), layer="4")
    with pytest.raises(UserError, match="not an integer"):
        HubertTokenizer.from_args(path=str(models["hubert_base"]), kmeans=str(kmeans_file), layer="last")
    with pytest.raises(UserError, match="missing kmeans"):
        HubertTokenizer.from_args(path=str(models["hubert_base"]))
    with pytest.raises(UserError, match="unknown argument"):
        HubertTokenizer.from_args(path=str(models["hubert_base"]), kmeans=str(kmeans_file), layr="3")
    wrong_dim = tmp_path / "wrong_dim.npy"
    np.save(wrong_dim, np.zeros((4, HIDDEN + 1), np.float32))
    with pytest.raises(UserError, match="hidden size"):
        HubertTokenizer.from_args(path=str(models["hubert_base"]), kmeans=str(wrong_dim), layer="1")
