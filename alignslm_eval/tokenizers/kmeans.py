"""Nearest-centroid quantization of frame features, and safe loading of k-means centroid files.

Centroid files come in two formats:

* `.npy`: a float [K, D] array (read with `allow_pickle=False`).
* the textlesslib / fairseq / slamkit k-means `.bin` (or `.pkl`, `.joblib`): a `joblib.dump` of a fitted
  scikit-learn `KMeans` or `MiniBatchKMeans`, possibly compressed. These are pickles, so they are read through a
  restricted unpickler that resolves only an allow-list of globals (the k-means class, which is replaced by an inert
  local stand-in so no scikit-learn code runs, numpy array/dtype/scalar reconstruction, joblib's array wrapper, and
  inert stand-ins for numpy random-state objects). Anything else is refused before it can be called.
"""

from __future__ import annotations

import hashlib
import inspect
import pickle
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from alignslm_eval.io.errors import UserError

_NPY_MAGIC = b"\x93NUMPY"
# Rows per distance block: bounds the [rows, K] distance matrix to a few MiB for K = 500.
_QUANTIZE_CHUNK = 4096

_KMEANS_MODULES = ("sklearn.cluster._kmeans", "sklearn.cluster.k_means_")
_KMEANS_CLASSES = ("KMeans", "MiniBatchKMeans")
_ARRAY_WRAPPER_MODULES = ("joblib.numpy_pickle", "sklearn.externals.joblib.numpy_pickle")
# A MiniBatchKMeans fitted with a RandomState instance, or after partial_fit, pickles numpy random-state objects
# (checked against scikit-learn 1.9 / numpy 2.4 dumps); older numpy versions used the other module names.
_NUMPY_RANDOM_MODULES = frozenset(
    {
        "numpy.random",
        "numpy.random.mtrand",
        "numpy.random._pickle",
        "numpy.random._mt19937",
        "numpy.random._pcg64",
        "numpy.random._philox",
        "numpy.random._sfc64",
        "numpy.random.bit_generator",
        "numpy.random._bit_generator",
    }
)


class _KMeansState:
    """Stand-in for a pickled scikit-learn k-means estimator: keeps its attribute dict, runs no scikit-learn code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


class _Inert:
    """Stand-in for numpy random-state objects inside an estimator pickle; they are not needed to quantize."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _multiarray() -> Any:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return multiarray


def _printable(text: str, limit: int = 100) -> str:
    """A global's name as read from an untrusted file, made safe for a one-line message."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


@lru_cache(maxsize=1)
def _restricted_unpickler_class() -> type:
    """Build the restricted unpickler lazily so importing this module does not import joblib."""
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class SafeArrayWrapper(NumpyArrayWrapper):
        # Object arrays are stored as a nested pickle, which some joblib versions read with plain pickle.load;
        # k-means files never contain them, so refuse rather than depend on the joblib version.
        def read(self, unpickler: Any, *args: Any, **kwargs: Any) -> Any:
            dtype = getattr(self, "dtype", None)
            if not isinstance(dtype, np.dtype) or dtype.hasobject:
                raise UserError(
                    f"{unpickler.source_path}: refusing to read an object array; "
                    "only scikit-learn k-means files are accepted"
                )
            return super().read(unpickler, *args, **kwargs)

    multiarray = _multiarray()
    allowed: dict[tuple[str, str], Any] = {}
    for module in _KMEANS_MODULES:
        for name in _KMEANS_CLASSES:
            allowed[(module, name)] = _KMeansState
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for module in _ARRAY_WRAPPER_MODULES:
        allowed[(module, "NumpyArrayWrapper")] = SafeArrayWrapper

    takes_byte_order = "ensure_native_byte_order" in inspect.signature(NumpyUnpickler.__init__).parameters

    class RestrictedUnpickler(NumpyUnpickler):
        dispatch = NumpyUnpickler.dispatch.copy()

        def __init__(self, path: Path, file_handle: Any):
            self.source_path = path
            if takes_byte_order:
                super().__init__(str(path), file_handle, ensure_native_byte_order=True)
            else:  # older joblib, before ensure_native_byte_order existed
                super().__init__(str(path), file_handle)

        def find_class(self, module: str, name: str) -> Any:
            obj = allowed.get((module, name))
            if obj is None and module in _NUMPY_RANDOM_MODULES:
                obj = _Inert
            if obj is None:
                raise UserError(
                    f"{self.source_path}: refusing to unpickle {_printable(f'{module}.{name}')}; "
                    "only scikit-learn k-means files are accepted"
                )
            return obj

        def load_build(self) -> None:
            # BUILD on a class object would set attributes on an allowed class itself (e.g. our array wrapper),
            # altering how later files are read; no k-means pickle does that.
            target = self.stack[-2] if len(self.stack) >= 2 else None  # the stack ends with (object, state)
            if isinstance(target, type):
                raise UserError(
                    f"{self.source_path}: refusing to modify class {_printable(target.__name__)}; "
                    "only scikit-learn k-means files are accepted"
                )
            NumpyUnpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

    return RestrictedUnpickler


def _load_joblib_kmeans(path: Path) -> Any:
    """Unpickle a joblib k-means dump with the restricted unpickler; returns the top-level object."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    unpickler_class = _restricted_unpickler_class()
    try:
        with open(path, "rb") as raw, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # Same decompression detection as joblib.load (zlib, gzip, bz2, lzma, xz, lz4).
            with _validate_fileobject_and_memmap(raw, str(path), None) as (fobj, _):
                if isinstance(fobj, str):
                    raise UserError(
                        f"{path}: written by joblib < 0.10, which this loader does not read; "
                        "re-save it with a recent joblib or export cluster_centers_ as .npy"
                    )
                return unpickler_class(path, fobj).load()
    except UserError:
        raise
    except Exception as e:  # any decoding failure of an untrusted file is a bad-input error
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        raise UserError(
            f"{path}: not a joblib/pickle k-means file ({reason}); "
            "give a scikit-learn k-means dump or a .npy [K, D] array"
        )


def _check_centroids(array: Any, path: Path | str) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.ndim != 2 or 0 in array.shape:
        shape = getattr(array, "shape", type(array).__name__)
        raise UserError(f"{path}: centroids must be a non-empty [K, D] array, got {shape}; check the k-means file")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise UserError(f"{path}: centroids must be numeric, got dtype {array.dtype}; check the k-means file")
    out = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(out).all():
        raise UserError(f"{path}: centroids contain NaN or infinite values; re-fit or re-export the k-means model")
    return out


def load_centroids(path: Path) -> np.ndarray:
    """Read k-means centroids (float32 [K, D]) from a `.npy` array or a joblib scikit-learn k-means dump."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: k-means file not found; pass kmeans=<.bin/.pkl joblib dump or .npy centroids>")
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
    if magic == _NPY_MAGIC:
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"{path}: not a readable .npy array ({e}); save the centroids with numpy.save")
        return _check_centroids(array, path)
    if path.suffix == ".npy":
        raise UserError(f"{path}: not a .npy file (no numpy header); save the centroids with numpy.save")
    obj = _load_joblib_kmeans(path)
    if isinstance(obj, np.ndarray):
        return _check_centroids(obj, path)
    if not isinstance(obj, _KMeansState):
        raise UserError(f"{path}: does not contain a scikit-learn k-means model; give a KMeans/MiniBatchKMeans dump")
    if "cluster_centers_" not in obj.state:
        raise UserError(f"{path}: k-means model has no cluster_centers_ (was it fitted?); give a fitted model")
    return _check_centroids(obj.state["cluster_centers_"], path)


class KMeansQuantizer:
    """Maps each feature frame to the id of its nearest centroid (squared euclidean distance)."""

    def __init__(self, centroids: np.ndarray):
        self.centroids = _check_centroids(np.asarray(centroids), "centroids")
        self.sha256 = hashlib.sha256(self.centroids.tobytes()).hexdigest()
        self._on_device: dict[str, tuple[Any, Any]] = {}

    @classmethod
    def load(cls, path: Path) -> "KMeansQuantizer":
        """Quantizer with the centroids of a `.npy` or joblib k-means file (see `load_centroids`)."""
        return cls(load_centroids(path))

    @property
    def n_units(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def _centroids_on(self, device: Any) -> tuple[Any, Any]:
        import torch

        key = str(device)
        if key not in self._on_device:
            c = torch.from_numpy(self.centroids).to(device)
            self._on_device[key] = (c, (c * c).sum(dim=1))
        return self._on_device[key]

    def quantize(self, features: Any) -> np.ndarray:
        """Nearest-centroid ids (int64 [T]) for features [T, D] (numpy array or torch tensor, on any device)."""
        import torch

        x = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must have shape [T, {self.dim}], got {tuple(x.shape)}")
        x = x.detach().to(torch.float32)
        c, c_sq = self._centroids_on(x.device)
        out = []
        with torch.no_grad():
            for start in range(0, x.shape[0], _QUANTIZE_CHUNK):
                block = x[start : start + _QUANTIZE_CHUNK]
                # ||x||^2 - 2 x.c + ||c||^2 without the ||x||^2 term: it is the same for every centroid of a row, so
                # it cannot change the argmin and would only add float32 rounding error.
                dist = torch.addmm(c_sq, block, c.T, alpha=-2.0)
                out.append(dist.argmin(dim=1))
        if not out:
            return np.zeros(0, dtype=np.int64)
        return torch.cat(out).cpu().numpy().astype(np.int64)
