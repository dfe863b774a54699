import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans, MiniBatchKMeans

from alignslm_eval.io.errors import UserError
from alignslm_eval.tokenizers.kmeans import KMeansQuantizer, load_centroids


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((400, 12)).astype(np.float32)


def _fitted(kind: str, data: np.ndarray) -> BaseEstimator:
    if kind == "kmeans":
        return KMeans(n_clusters=7, n_init=1, random_state=0).fit(data)
    if kind == "minibatch":
        return MiniBatchKMeans(n_clusters=7, n_init=1, batch_size=64, random_state=0).fit(data)
    # fairseq-style settings plus a RandomState and partial_fit: the pickle then holds numpy random-state objects
    km = MiniBatchKMeans(
        n_clusters=7, n_init=3, batch_size=64, compute_labels=False, random_state=np.random.RandomState(1)
    )
    return km.fit(data).partial_fit(data)


@pytest.mark.parametrize("kind", ["kmeans", "minibatch", "minibatch_random_state"])
@pytest.mark.parametrize("compress", [0, 3, ("xz", 1)])
def test_joblib_sklearn_dump_round_trip(
    kind: str, compress: object, data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    km = _fitted(kind, data)
    path = tmp_path / "km.bin"
    joblib.dump(km, path, compress=compress)

    def no_sklearn_code(self: object, state: object) -> None:
        raise AssertionError("scikit-learn code ran while loading")

    monkeypatch.setattr(BaseEstimator, "__setstate__", no_sklearn_code)
    centers = load_centroids(path)
    assert centers.dtype == np.float32 and centers.flags.c_contiguous
    np.testing.assert_array_equal(centers, km.cluster_centers_)


def test_npy_round_trip_and_same_hash(data: np.ndarray, tmp_path: Path) -> None:
    km = _fitted("kmeans", data)
    joblib.dump(km, tmp_path / "km.pkl")
    np.save(tmp_path / "km.npy", km.cluster_centers_)
    from_npy = KMeansQuantizer.load(tmp_path / "km.npy")
    from_pkl = KMeansQuantizer.load(tmp_path / "km.pkl")
    np.testing.assert_array_equal(from_npy.centroids, km.cluster_centers_)
    assert from_npy.sha256 == from_pkl.sha256 and len(from_npy.sha256) == 64
    assert (from_npy.n_units, from_npy.dim) == (7, 12)


def test_float64_npy_is_cast(tmp_path: Path) -> None:
    centers = np.random.default_rng(1).standard_normal((5, 3))
    np.save(tmp_path / "c.npy", centers)
    np.testing.assert_array_equal(load_centroids(tmp_path / "c.npy"), centers.astype(np.float32))


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"echo pwned > {self.marker}",))


@pytest.mark.parametrize("writer", ["pickle", "joblib", "joblib_compressed", "inside_kmeans"])
def test_malicious_pickle_is_refused_and_nothing_runs(writer: str, data: np.ndarray, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    if writer == "pickle":
        with open(path, "wb") as f:
            pickle.dump(_Evil(marker), f)
    elif writer == "joblib":
        joblib.dump(_Evil(marker), path)
    elif writer == "joblib_compressed":
        joblib.dump(_Evil(marker), path, compress=3)
    else:
        km = _fitted("kmeans", data)
        km.extra = _Evil(marker)
        joblib.dump(km, path)
    with pytest.raises(UserError) as exc:
        load_centroids(path)
    assert str(exc.value) == (
        f"{path}: refusing to unpickle {os.system.__module__}.system; only scikit-learn k-means files are accepted"
    )
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    joblib.dump(np.array([_Evil(marker)], dtype=object), tmp_path / "obj.bin")
    with pytest.raises(UserError, match="object array"):
        load_centroids(tmp_path / "obj.bin")
    np.save(tmp_path / "obj.npy", np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="obj.npy"):
        load_centroids(tmp_path / "obj.npy")
    assert not marker.exists()


def test_bad_contents(data: np.ndarray, tmp_path: Path) -> None:
    cases = {
        "unfitted.bin": lambda p: joblib.dump(KMeans(n_clusters=3), p),
        "dict.bin": lambda p: joblib.dump({"cluster_centers_": np.zeros((3, 2))}, p),
        "vector.npy": lambda p: np.save(p, np.zeros(4)),
        "empty.npy": lambda p: np.save(p, np.zeros((0, 4))),
        "nan.npy": lambda p: np.save(p, np.full((2, 2), np.nan)),
        "garbage.bin": lambda p: p.write_bytes(np.random.default_rng(0).bytes(256)),
        "truncated.bin": lambda p: (joblib.dump(_fitted("kmeans", data), p), p.write_bytes(p.read_bytes()[:200])),
        "text.npy": lambda p: p.write_text("1 2 3\n"),
    }
    for name, write in cases.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(UserError) as exc:
            load_centroids(path)
        assert str(path) in str(exc.value) and "\n" not in str(exc.value), name
    with pytest.raises(UserError, match="cluster_centers_"):
        load_centroids(tmp_path / "unfitted.bin")
    with pytest.raises(UserError, match="not found"):
        load_centroids(tmp_path / "missing.bin")


def test_quantize_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    centroids = rng.standard_normal((50, 16)).astype(np.float32)
    features = rng.standard_normal((9000, 16)).astype(np.float32)  # more than one distance block
    expected = np.argmin(
        ((features.astype(np.float64)[:, None, :] - centroids.astype(np.float64)[None]) ** 2).sum(-1), axis=1
    )
    quantizer = KMeansQuantizer(centroids)
    ids = quantizer.quantize(features)
    assert ids.dtype == np.int64 and ids.shape == (9000,)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(quantizer.quantize(torch.from_numpy(features[:100]).double()), expected[:100])
    assert quantizer.quantize(np.zeros((0, 16), np.float32)).shape == (0,)
    with pytest.raises(ValueError):
        quantizer.quantize(features[:, :8])


def test_build_on_an_allowed_class_is_refused(tmp_path: Path) -> None:
    from joblib.numpy_pickle import NumpyArrayWrapper

    # GLOBAL NumpyArrayWrapper; state (None, {"read": 1}); BUILD: would setattr on the class itself
    path = tmp_path / "patch.pkl"
    path.write_bytes(b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\nN}X\x04\x00\x00\x00readK\x01s\x86b.")
    with pytest.raises(UserError, match="refusing to modify class"):
        load_centroids(path)
    assert callable(NumpyArrayWrapper.read)
    for cls in ("sklearn.cluster._kmeans\nKMeans", "numpy.random._pickle\n__randomstate_ctor"):
        path.write_bytes(b"\x80\x02c" + cls.encode() + b"\nN}X\x01\x00\x00\x00xK\x01s\x86b.")
        with pytest.raises(UserError):
            load_centroids(path)
    joblib.dump(np.ones((2, 3), np.float32), tmp_path / "ok.bin")
    np.testing.assert_array_equal(load_centroids(tmp_path / "ok.bin"), np.ones((2, 3)))
