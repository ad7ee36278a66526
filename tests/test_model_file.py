"""The model's files: a round trip, a file saved by earlier code, and every damage refused."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from errors import ModelFileError
from recommender.file_stamps import STAMP_SUFFIX
from recommender.fit import fit_model
from recommender.model import RecommenderModel
from recommender.model_file import (ARRAYS_FILE, FORMAT_VERSION, META_FILE, array_shapes,
                                    load_model, model_arrays, save_model)
from recommender.params import ModelParams
from tests.conftest import PROJECT_ROOT
from tests.helpers import ratings_of
from tests.synthetic_ratings import SyntheticRatings, synthetic_ratings

FINGERPRINT = "dataset-v1"
# Saved by recommender_model.py before the recommender became a package (format 5), with
# the ranking and stars it gave three users.
FORMAT_5_MODEL = PROJECT_ROOT / "tests" / "fixtures" / "model_format_5"
FORMAT_5_FINGERPRINT = "fixture-format-5"


@pytest.fixture(scope="module")
def data() -> SyntheticRatings:
    return synthetic_ratings(seed=0)


@pytest.fixture(scope="module")
def model(data: SyntheticRatings) -> RecommenderModel:
    return fit_model(*data)


@pytest.fixture
def format_5_model(tmp_path: Path) -> Path:
    """The fixture copied: a load may leave a stamp beside a file it checked."""
    return Path(shutil.copytree(FORMAT_5_MODEL, tmp_path / "format_5"))


def test_a_model_saved_before_the_package_loads_and_recommends_as_it_did(
        format_5_model: Path) -> None:
    loaded = load_model(format_5_model, FORMAT_5_FINGERPRINT)
    expected = json.loads((format_5_model / "expected.json").read_text())
    assert len(expected) == 3
    for user in expected.values():
        profile = loaded.fold_in(np.array(user["films"]), np.array(user["ratings"]))
        ranked = loaded.rank(profile, len(user["ranked"]))
        assert ranked.tolist() == user["ranked"]
        np.testing.assert_allclose(loaded.predict(profile, ranked), user["predicted"],
                                   atol=1e-4)


def test_saving_a_loaded_model_writes_the_same_bytes(tmp_path: Path,
                                                     format_5_model: Path) -> None:
    """The writer is unchanged: a format-5 file read and written again is that file."""
    saved = tmp_path / "saved"
    save_model(load_model(format_5_model, FORMAT_5_FINGERPRINT), saved, FORMAT_5_FINGERPRINT)
    for name in (ARRAYS_FILE, META_FILE):
        assert (saved / name).read_bytes() == (FORMAT_5_MODEL / name).read_bytes(), name


def test_the_array_registry_is_what_a_fit_makes(model: RecommenderModel) -> None:
    shapes = array_shapes(model.params, model.n_users, model.n_films)
    assert set(model.arrays) == set(shapes)
    assert {name: array.shape for name, array in model_arrays(model).items()} == shapes


def test_save_and_load_round_trip(tmp_path: Path, data: SyntheticRatings,
                                  model: RecommenderModel) -> None:
    save_model(model, tmp_path, FINGERPRINT)
    loaded = load_model(tmp_path, expected_fingerprint=FINGERPRINT)
    assert loaded.params == model.params
    assert (loaded.n_users, loaded.n_films) == (model.n_users, model.n_films)
    items, ratings = ratings_of(data, 9)
    before, after = model.fold_in(items, ratings), loaded.fold_in(items, ratings)
    films = np.arange(data.n_films)
    np.testing.assert_array_equal(model.rank(before, 20), loaded.rank(after, 20))
    np.testing.assert_array_equal(model.predict(before, films), loaded.predict(after, films))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [ARRAYS_FILE, META_FILE, ARRAYS_FILE + STAMP_SUFFIX])
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["fingerprint"] == FINGERPRINT and meta["format_version"] == FORMAT_VERSION
    with np.load(tmp_path / ARRAYS_FILE, allow_pickle=False) as stored:
        assert all(stored[name].dtype == np.float32 for name in stored.files)


_UNPICKLED: list[str] = []


class _Tripwire:
    """Unpickling this records it: the proof that a load ran code from the file."""

    def __reduce__(self) -> tuple:
        return (_UNPICKLED.append, ("unpickled",))


def test_load_never_unpickles(tmp_path: Path, model: RecommenderModel) -> None:
    save_model(model, tmp_path, FINGERPRINT)
    _rewrite_arrays(tmp_path, {**_stored_arrays(tmp_path),
                               "popularity": np.array([_Tripwire()], dtype=object)})
    with pytest.raises(ModelFileError, match="not a readable model"):
        load_model(tmp_path, expected_fingerprint=FINGERPRINT)
    assert _UNPICKLED == []


def test_loaded_arrays_equal_the_saved_ones_aligned_and_read_only(
        tmp_path: Path, model: RecommenderModel) -> None:
    save_model(model, tmp_path, FINGERPRINT)
    loaded = load_model(tmp_path, expected_fingerprint=FINGERPRINT)
    payload = (tmp_path / ARRAYS_FILE).read_bytes()
    with np.load(io.BytesIO(payload), allow_pickle=False) as plain:  # any npz reader can
        for name, array in model_arrays(model).items():
            stored = model_arrays(loaded)[name]
            np.testing.assert_array_equal(stored, array)
            np.testing.assert_array_equal(plain[name], array)
            assert not stored.flags.writeable
            # On 64-byte boundaries of the file, so no view sits at an odd address.
            assert (payload.find(array.tobytes()) if array.size else 0) % 64 == 0


def _rewrite_arrays(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    """Replace the arrays file and make the JSON vouch for it, so only content checks fire.

    np.savez writes an object array as a pickle, as a hostile file would hold one.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (directory / ARRAYS_FILE).write_bytes(buffer.getvalue())
    meta = json.loads((directory / META_FILE).read_text())
    meta["arrays_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (directory / META_FILE).write_text(json.dumps(meta))


def _edit_meta(directory: Path, **changes: object) -> None:
    meta = json.loads((directory / META_FILE).read_text())
    meta.update(changes)
    (directory / META_FILE).write_text(json.dumps(meta))


def _stored_arrays(directory: Path) -> dict[str, np.ndarray]:
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def _replace_with(path: Path, kind: str) -> None:
    """The file moved aside and a symlink to it, or a FIFO (which must not be waited on),
    put in its place."""
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    if kind == "symlink":
        path.symlink_to(aside)
    else:
        os.mkfifo(path)


DAMAGES = {
    "arrays missing": lambda d: (d / ARRAYS_FILE).unlink(),
    "metadata missing": lambda d: (d / META_FILE).unlink(),
    "arrays truncated": lambda d: (d / ARRAYS_FILE).write_bytes(
        (d / ARRAYS_FILE).read_bytes()[:1000]),
    "arrays empty": lambda d: (d / ARRAYS_FILE).write_bytes(b""),
    "a flipped byte": lambda d: (d / ARRAYS_FILE).write_bytes(
        (lambda b: b[:5000] + bytes([b[5000] ^ 1]) + b[5001:])((d / ARRAYS_FILE).read_bytes())),
    "metadata truncated": lambda d: (d / META_FILE).write_text(
        (d / META_FILE).read_text()[:40]),
    "metadata not an object": lambda d: (d / META_FILE).write_text("[1, 2]"),
    "metadata binary": lambda d: (d / META_FILE).write_bytes(b"\xff\xfe\x00garbage"),
    "another format version": lambda d: _edit_meta(d, format_version=FORMAT_VERSION + 1),
    "unknown parameter": lambda d: _edit_meta(d, params={**json.loads(
        (d / META_FILE).read_text())["params"], "extra": 1}),
    "invalid parameter": lambda d: _edit_meta(d, params={**json.loads(
        (d / META_FILE).read_text())["params"], "rating_factors": -1}),
    "shapes disagree with sizes": lambda d: _edit_meta(d, n_items=999),
    "second-stage features reordered": lambda d: _edit_meta(d, second_stage_features=[
        *reversed(json.loads((d / META_FILE).read_text())["second_stage_features"])]),
    "non-finite statistic": lambda d: (d / META_FILE).write_text(
        (d / META_FILE).read_text().replace('"global_mean": ', '"global_mean": NaN, "x": ')),
    # Finite, well-typed, and still impossible: every later product would overflow.
    "global mean far out of range": lambda d: _edit_meta(d, global_mean=1e300),
    "pooled variance far out of range": lambda d: _edit_meta(d, pooled_variance=1e300),
    "affinity coefficient far out of range": lambda d: _edit_meta(d, affinity_coefficient=-1e6),
    "a count above int64": lambda d: _edit_meta(d, n_ratings=2**70),
    "a parameter far out of range": lambda d: _edit_meta(d, params={**json.loads(
        (d / META_FILE).read_text())["params"], "ranking_reg": 1e300}),
    "metadata nested deeply": lambda d: (d / META_FILE).write_text("[" * 100_000 + "]" * 100_000),
    "metadata nested past its shape": lambda d: _edit_meta(d, shapes={"x": [[[1]]]}),
    "metadata larger than a megabyte": lambda d: (d / META_FILE).write_text(
        (d / META_FILE).read_text() + " " * 1_000_000),
    "metadata a symlink": lambda d: _replace_with(d / META_FILE, "symlink"),
    "metadata a FIFO": lambda d: _replace_with(d / META_FILE, "fifo"),
    "arrays a FIFO": lambda d: _replace_with(d / ARRAYS_FILE, "fifo"),
    "array of the wrong shape": lambda d: _rewrite_arrays(d, {
        **_stored_arrays(d), "item_bias": np.zeros(3, np.float32)}),
    "array of the wrong type": lambda d: _rewrite_arrays(d, {
        **_stored_arrays(d), "item_bias": _stored_arrays(d)["item_bias"].astype(np.float64)}),
    "array missing": lambda d: _rewrite_arrays(d, {
        name: array for name, array in _stored_arrays(d).items() if name != "popularity"}),
    "non-finite array": lambda d: _rewrite_arrays(d, {
        **_stored_arrays(d), "popularity": np.full_like(_stored_arrays(d)["popularity"],
                                                        np.nan)}),
    "pickled object array": lambda d: _rewrite_arrays(d, {
        **_stored_arrays(d), "popularity": np.array([{"x": 1}] * 3, dtype=object)}),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_damaged_model_files_raise_model_file_error(tmp_path: Path, model: RecommenderModel,
                                                    damage) -> None:
    """The full check (a damage after a stamp is tests/test_model_cache.py's)."""
    save_model(model, tmp_path, FINGERPRINT)
    (tmp_path / (ARRAYS_FILE + STAMP_SUFFIX)).unlink()
    damage(tmp_path)
    with pytest.raises(ModelFileError):
        load_model(tmp_path, expected_fingerprint=FINGERPRINT)


def test_a_model_of_other_data_is_stale(tmp_path: Path, model: RecommenderModel) -> None:
    save_model(model, tmp_path, FINGERPRINT)
    with pytest.raises(ModelFileError, match="dataset has changed since the model was fitted"):
        load_model(tmp_path, expected_fingerprint="dataset-v2")


def test_a_crash_between_the_two_writes_is_detected(tmp_path: Path, data: SyntheticRatings,
                                                    model: RecommenderModel) -> None:
    save_model(model, tmp_path, FINGERPRINT)
    old_meta = (tmp_path / META_FILE).read_bytes()
    other = fit_model(*data, params=ModelParams(seed=1))
    save_model(other, tmp_path, FINGERPRINT)
    (tmp_path / META_FILE).write_bytes(old_meta)
    with pytest.raises(ModelFileError):
        load_model(tmp_path, expected_fingerprint=FINGERPRINT)


def test_saving_replaces_files_atomically(tmp_path: Path, model: RecommenderModel,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    save_model(model, tmp_path, FINGERPRINT)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def failing_replace(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("safe_files.os.replace", failing_replace)
    with pytest.raises(OSError):
        save_model(model, tmp_path, "dataset-v2")
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)
