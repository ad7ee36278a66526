"""The taste match's calibration kept next to the cached model: computing it predicts
every reference film for hundreds of members, which a match must not pay each time.

Saved as plain arrays (loaded with allow_pickle=False) with the fingerprint of the
dataset the model was fitted on; anything missing, stale or inconsistent is computed
again, never trusted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dataset.layout import MODEL_DIR
from recommender.cache import CachedModel
from recommender.kept_arrays import keep_arrays, read_kept_arrays
from recommending.match import QUANTILES, MatchCalibration, match_calibration


CALIBRATION_FILE = "match_calibration.npz"
_WHAT = "the match calibration"


def _load(path: Path, data: CachedModel) -> MatchCalibration | None:
    stored = read_kept_arrays(path, data.fingerprint, _WHAT)
    if stored is None:
        return None
    try:
        calibration = MatchCalibration(
            reference_films=stored["reference_films"].astype(np.int64),
            pair_quantiles=stored["pair_quantiles"].astype(np.float64),
            members=int(stored["members"]))
    except (KeyError, ValueError, TypeError):  # an array missing or of another shape
        return None
    films, quantiles = calibration.reference_films, calibration.pair_quantiles
    consistent = (films.ndim == 1 and len(films) >= 1 and quantiles.shape == (QUANTILES,)
                  and films.min() >= 0 and films.max() < len(data.films)
                  and bool(np.all(np.diff(films) > 0))
                  and bool(np.all(np.isfinite(quantiles)))
                  and bool(np.all(np.diff(quantiles) >= 0))
                  and calibration.members >= 0)
    return calibration if consistent else None


def cached_match_calibration(data: CachedModel, data_dir: Path) -> MatchCalibration:
    """The stored calibration when it matches `data`, else a fresh one, saved for next time."""
    path = Path(data_dir) / MODEL_DIR / CALIBRATION_FILE
    calibration = _load(path, data)
    if calibration is not None:
        return calibration
    calibration = match_calibration(data)
    keep_arrays(path, data.fingerprint, {
        "reference_films": calibration.reference_films,
        "pair_quantiles": calibration.pair_quantiles,
        "members": np.array(calibration.members)}, _WHAT)
    return calibration
