"""Small rating sets with a known structure, for tests that must be able to fail.

Users and films have a few latent taste dimensions; users watch films that are
popular (Zipf-like) and match their taste, and rate them by biases + taste +
noise. So a collaborative model can beat popularity at ranking and the biases
at rating, but only if it actually learns the structure.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SyntheticRatings(NamedTuple):
    user_index: np.ndarray  # int32
    film_index: np.ndarray  # int32
    ratings: np.ndarray     # int8, 1..10
    n_users: int
    n_films: int


def synthetic_ratings(seed: int = 0, n_users: int = 300, n_films: int = 200, rank: int = 3,
                      per_user: tuple[int, int] = (30, 80)) -> SyntheticRatings:
    rng = np.random.default_rng(seed)
    user_taste = rng.normal(size=(n_users, rank))
    film_taste = rng.normal(size=(n_films, rank))
    popularity = 1.0 / np.arange(1, n_films + 1) ** 0.8
    rng.shuffle(popularity)
    affinity = user_taste @ film_taste.T / np.sqrt(rank)
    user_bias = rng.normal(0.0, 0.8, n_users)
    film_bias = rng.normal(0.0, 0.8, n_films)
    users, films, ratings = [], [], []
    for user in range(n_users):
        logits = np.log(popularity) + affinity[user]
        chance = np.exp(logits - logits.max())
        watched = rng.choice(n_films, size=int(rng.integers(*per_user)), replace=False,
                             p=chance / chance.sum())
        stars = (6.5 + user_bias[user] + film_bias[watched] + 1.2 * affinity[user, watched]
                 + rng.normal(0.0, 0.8, len(watched)))
        users.append(np.full(len(watched), user))
        films.append(watched)
        ratings.append(np.clip(np.round(stars), 1, 10))
    return SyntheticRatings(np.concatenate(users).astype(np.int32),
                            np.concatenate(films).astype(np.int32),
                            np.concatenate(ratings).astype(np.int8), n_users, n_films)
