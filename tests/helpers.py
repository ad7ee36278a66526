"""Helpers shared by several test modules. Each section is kept by whoever added it."""
from __future__ import annotations

import numpy as np

from tests.synthetic_ratings import SyntheticRatings

# --- the recommender: ratings of synthetic users ----------------------------------------


def ratings_of(data: SyntheticRatings, user: int) -> tuple[np.ndarray, np.ndarray]:
    """The films one synthetic user rated, and their ratings."""
    rows = data.user_index == user
    return data.film_index[rows], data.ratings[rows]
