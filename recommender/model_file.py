"""The model's files: plain float32 arrays in an aligned npz, and a JSON description.

`array_shapes` is the one list of the model's arrays: saving writes them in its order,
loading expects exactly them, at its shapes. Nothing is ever pickled, and anything
missing, damaged, of another version or of other data is a ModelFileError.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import mmap
import struct
import zipfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from errors import ModelFileError, UnusableFileError
from recommender.file_stamps import map_file, remember_checked, stamp_saved
from recommender.model import SECOND_STAGE_ARRAYS, RecommenderModel
from recommender.params import MAX_RATING, MIN_RATING, ModelParams
from recommender.ranking import ranking_ranks
from recommender.second_stage import FEATURES
from safe_files import parse_json_limited, read_regular_file, write_atomically

# 2: watched-unrated films enter the ranking matrix; 3: affinity statistics are saved;
# 4: ranking by low-rank-plus-diagonal EASE, then a learned second stage;
# 5: EASE's Gram keeps a down-weighted tail of components (ranking_tail_factors)
FORMAT_VERSION = 5
ARRAYS_FILE = "recommender_model.npz"
META_FILE = "recommender_model.json"
# More than any honest metadata file; a bigger or deeper one is not ours.
_MAX_META_BYTES = 1_000_000
_MAX_META_DEPTH = 3
# Sizes and parameters past these are not a model's: they would overflow what uses them.
_MAX_COUNT = 2**62
_MAX_PARAMETER = 1e9
# Array data start on multiples of this in the saved file (numpy pads .npy headers to it).
_ALIGNMENT = 64
# The extra-field id zipalign uses for padding.
_PADDING_FIELD = 0xD935
# numpy's own limit on an array header; ours are a few hundred bytes.
_MAX_NPY_HEADER_BYTES = 10_000
_META_TYPES = {"format_version": int, "fingerprint": str, "params": dict, "n_users": int,
              "n_items": int, "n_ratings": int, "global_mean": float, "pooled_variance": float,
              "affinity_coefficient": float, "second_stage_features": list, "shapes": dict,
              "arrays_sha256": str}


def array_shapes(params: ModelParams, n_users: int, n_films: int
                 ) -> dict[str, tuple[int, ...]]:
    """Every array of a model of this size, in the order the file holds them."""
    head, tail = ranking_ranks(params, n_users, n_films)
    return {"item_scale": (n_films,),
            "item_ranking_factors": (n_films, head),
            "item_bias": (n_films,),
            "item_rating_factors": (n_films, params.rating_factors),
            "user_ranking_embeddings": (n_users, head),
            "user_rating_weights": (n_users, params.rating_factors + 2),
            "popularity": (n_films,),
            "affinity_mean": (head,),
            "affinity_covariance": (head, head),
            "ranking_tail_factors": (n_films, tail),
            "ranking_query_scale": (n_films,),
            "ranking_mixing": (head + tail, head + tail),
            "ranking_output_scale": (n_films,),
            "ranking_singular": (head,),
            "rating_count": (n_films,),
            **{name: (len(FEATURES),) for name in SECOND_STAGE_ARRAYS}}


def model_arrays(model: RecommenderModel) -> dict[str, np.ndarray]:
    """The model's arrays in the file's order."""
    return {name: model.arrays[name]
            for name in array_shapes(model.params, model.n_users, model.n_films)}


def save_model(model: RecommenderModel, directory: Path, fingerprint: str) -> None:
    """Write plain float32 arrays and a JSON description, each replaced atomically.

    The JSON (written after the arrays) holds the arrays file's SHA-256, so a crash
    between the two writes leaves a pair that `load_model` rejects rather than mixes.
    The stamp, last, spares the next loads the hash (recommender/file_stamps.py).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = model_arrays(model)
    payload = _aligned_npz(arrays)
    meta = {"format_version": FORMAT_VERSION, "fingerprint": fingerprint,
            "params": asdict(model.params), "n_users": model.n_users,
            "n_items": model.n_films, "n_ratings": model.n_ratings,
            "global_mean": model.global_mean, "pooled_variance": model.pooled_variance,
            "affinity_coefficient": model.affinity_coefficient,
            "second_stage_features": list(FEATURES),
            "shapes": {name: list(array.shape) for name, array in arrays.items()},
            "arrays_sha256": hashlib.sha256(payload).hexdigest()}
    write_atomically(directory / ARRAYS_FILE, payload)
    write_atomically(directory / META_FILE, json.dumps(meta, indent=1).encode("utf-8"))
    stamp_saved(directory / ARRAYS_FILE, meta["arrays_sha256"])


def load_model(directory: Path, expected_fingerprint: str) -> RecommenderModel:
    """The saved model, or ModelFileError if anything about it cannot be trusted."""
    directory = Path(directory)
    meta = _read_meta(directory / META_FILE)
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelFileError(f"model format {meta['format_version']!r}, expected "
                             f"{FORMAT_VERSION}")
    if meta["fingerprint"] != expected_fingerprint:
        raise ModelFileError("the dataset has changed since the model was fitted")
    if meta["second_stage_features"] != list(FEATURES):
        raise ModelFileError("the second stage's weights are for other features")
    try:
        params = ModelParams(**meta["params"])
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"invalid model parameters ({error})") from None
    n_users, n_films = meta["n_users"], meta["n_items"]
    expected = array_shapes(params, n_users, n_films)
    if meta["shapes"] != {name: list(shape) for name, shape in expected.items()}:
        raise ModelFileError("the model's array shapes do not match its parameters")
    arrays = _read_arrays(directory / ARRAYS_FILE, meta["arrays_sha256"], expected)
    return RecommenderModel(params=params, n_users=n_users, n_films=n_films,
                            n_ratings=meta["n_ratings"], global_mean=meta["global_mean"],
                            pooled_variance=meta["pooled_variance"],
                            affinity_coefficient=meta["affinity_coefficient"], arrays=arrays)


def _read_meta(path: Path) -> dict:
    """The JSON description, its fields of the right types and in range."""
    try:
        meta = parse_json_limited(read_regular_file(path, _MAX_META_BYTES), _MAX_META_DEPTH)
    except (OSError, UnusableFileError) as error:
        raise ModelFileError(f"cannot read {path} "
                             f"({getattr(error, 'strerror', None) or error})") from None
    except ValueError as error:
        raise ModelFileError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path} is not model metadata")
    for key, kind in _META_TYPES.items():
        value = meta.get(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = meta[key] = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelFileError(f"{path}: missing or invalid {key!r}")
    for key in ("n_users", "n_items", "n_ratings"):
        if not 0 <= meta[key] <= _MAX_COUNT:
            raise ModelFileError(f"{path}: {key!r} is out of range")
    spread = MAX_RATING - MIN_RATING
    if not (MIN_RATING <= meta["global_mean"] <= MAX_RATING
            and 0 < meta["pooled_variance"] <= spread ** 2
            and abs(meta["affinity_coefficient"]) <= spread):
        raise ModelFileError(f"{path}: global statistics out of range")
    if set(meta["params"]) != {field.name for field in fields(ModelParams)}:
        raise ModelFileError(f"{path}: parameters of another model version")
    # ModelParams checks each one's own rule; this keeps every product with them finite.
    if any(isinstance(value, bool) or not isinstance(value, (int, float))
           or not abs(value) <= _MAX_PARAMETER for value in meta["params"].values()):
        raise ModelFileError(f"{path}: a parameter is not a number within "
                             f"{_MAX_PARAMETER:g} of zero")
    return meta


def _read_arrays(path: Path, expected_sha256: str, shapes: dict[str, tuple[int, ...]]
                ) -> dict[str, np.ndarray]:
    """The arrays as views of the memory-mapped file, once its SHA-256 is the expected one
    and every value is finite, or once its stamp says both were checked on this very file
    (recommender/file_stamps.py: what a stamp does not catch).

    Mapping rather than reading saves copying the file once more than hashing it does.
    `save_model` only ever replaces the file, so a mapping stays valid while the arrays
    are in use; a file rewritten in place by something else (a copy onto it) would go
    unchecked, or end the process with SIGBUS if it shrank, as it would for the
    memory-mapped per-user index.
    """
    mapped = map_file(path, expected_sha256)
    try:
        arrays = _stored_npz_views(mapped.payload)
    except (OSError, ValueError, EOFError, KeyError, struct.error,
            zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path} is not a readable model ({error})") from None
    if set(arrays) != set(shapes):
        raise ModelFileError(f"{path} holds other arrays than a model")
    for name, array in arrays.items():
        if array.dtype != np.float32 or array.shape != shapes[name]:
            raise ModelFileError(f"{path}: {name} has shape {array.shape} and type "
                                 f"{array.dtype}, expected {shapes[name]} float32")
        if not mapped.stamped and not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: {name} holds non-finite values")
    if not mapped.stamped:
        remember_checked(path, mapped.identity, expected_sha256)
    return arrays


def _aligned_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed npz whose array data start on 64-byte boundaries of the file.

    A load then uses the arrays in place, as aligned as the buffer holding the file
    (16 bytes or more): a view at an odd offset made the product over all films
    slower than a copy. Each member's local header carries a padding extra field, as
    Android's zipalign does; zip readers skip it.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            # Plain numeric arrays only: nothing is ever pickled.
            np.lib.format.write_array(npy, np.ascontiguousarray(array), allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            unpadded = buffer.tell() + 30 + len(member.filename.encode()) + 4
            padding = -unpadded % _ALIGNMENT
            member.extra = struct.pack("<HH", _PADDING_FIELD, padding) + bytes(padding)
            archive.writestr(member, npy.getvalue())
    return buffer.getvalue()


def _stored_npz_views(payload: mmap.mmap) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed npz (what `np.savez` writes) as read-only views of
    its bytes. `np.load` would copy every array and check every CRC, for bytes the
    SHA-256 has already vouched for."""
    arrays = {}
    with zipfile.ZipFile(payload) as archive:
        for member in archive.infolist():
            if member.compress_type != zipfile.ZIP_STORED or not member.filename.endswith(".npy"):
                raise ValueError(f"{member.filename} is not a stored .npy array")
            name_length, extra_length = struct.unpack_from("<HH", payload,
                                                           member.header_offset + 26)
            start = member.header_offset + 30 + name_length + extra_length
            end = start + member.file_size
            header = io.BytesIO(payload[start:min(end, start + _MAX_NPY_HEADER_BYTES)])
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[
                               np.lib.format.read_magic(header)]
            shape, fortran_order, dtype = read_header(header)
            if fortran_order or dtype.hasobject:
                raise ValueError(f"{member.filename} is not a plain C-ordered array")
            count = math.prod(shape)
            offset = start + header.tell()
            if offset + count * dtype.itemsize != end:
                raise ValueError(f"{member.filename} has the wrong length for its shape")
            arrays[member.filename[:-len(".npy")]] = np.frombuffer(
                payload, dtype=dtype, count=count, offset=offset).reshape(shape)
    return arrays
