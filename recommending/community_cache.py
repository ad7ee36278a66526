"""The community's figures kept next to the cached model: `--stats` then reads a few
megabytes instead of passing over every rating.

They are computed from the per-user index the first time statistics are asked for
after a fit, and saved as plain arrays (loaded with allow_pickle=False) with the
fingerprint of the dataset they sum up. Anything missing, stale or inconsistent with
the index is computed again, never trusted.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from dataset.layout import MODEL_DIR
from errors import ModelFileError
from recommender.cache import CachedModel
from recommender.kept_arrays import keep_arrays, read_kept_arrays
from recommending.statistics import N_VALUES, Community, community_of

logger = logging.getLogger(__name__)

COMMUNITY_FILE = "community_figures.npz"
_WHAT = "the community's figures"
_MEMBER_ARRAYS = ("member_ratings", "member_spread", "member_obscurity")


def _consistent(community: Community, data: CachedModel) -> bool:
    """Do the stored figures fit the index they claim to sum up? Cheap checks only: the
    per-film and per-member counts must be the index's own."""
    histograms, members = community.film_histograms, community.members
    counts = np.diff(np.asarray(data.rating_indptr))
    return (histograms.shape == (len(data.films), N_VALUES) and members.ndim == 1
            and all(getattr(community, name).shape == members.shape
                    for name in _MEMBER_ARRAYS)
            and bool((histograms >= 0).all())
            and np.array_equal(histograms.sum(axis=1), np.asarray(data.rating_counts))
            and np.array_equal(members, np.flatnonzero(counts > 0))
            and np.array_equal(community.member_ratings, counts[members])
            and bool(np.isfinite(community.member_spread).all())
            and bool(np.isfinite(community.member_obscurity).all()))


def _load(path: Path, data: CachedModel) -> Community | None:
    stored = read_kept_arrays(path, data.fingerprint, _WHAT)
    if stored is None:
        return None
    try:
        community = Community(**{name: stored[name] for name in Community.__annotations__})
    except KeyError:  # a file without every array
        return None
    return community if _consistent(community, data) else None


def community_figures(data: CachedModel, data_dir: Path) -> Community:
    """The cached figures when they match `data`, else fresh ones, saved for next time."""
    path = Path(data_dir) / MODEL_DIR / COMMUNITY_FILE
    community = _load(path, data)
    if community is not None:
        return community
    community = community_of(data)
    keep_arrays(path, data.fingerprint, asdict(community), _WHAT)
    return community


def community_figures_or_refit(data: CachedModel, data_dir: Path,
                               refit: Callable[[], CachedModel]
                               ) -> tuple[CachedModel, Community]:
    """The figures, fitting the model again once (`refit`) when summing them up finds the
    cached model damaged; the model they belong to."""
    try:
        return data, community_figures(data, data_dir)
    except ModelFileError as damage:
        logger.warning("%s: fitting the model again", damage)
        data = refit()
        return data, community_figures(data, data_dir)
