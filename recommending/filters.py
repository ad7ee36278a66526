"""Which films a list may hold, from the filter flags, whoever asks.

The flags become one `FilmFilter` before any profile is read, so a mistyped genre
costs no request; `allowed_films` turns it into a mask over the dataset's films.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from errors import BadInputError
from recommender.cache import CachedModel


@dataclass(frozen=True)
class FilmFilter:
    min_ratings: int | None = None   # ratings the film has in the dataset
    max_ratings: int | None = None
    year_from: int | None = None
    year_to: int | None = None
    genres: tuple[str, ...] = ()     # any of these (case does not matter)
    excluded_genres: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.year_from is not None and self.year_to is not None
                and self.year_from > self.year_to):
            raise BadInputError("--year-from is after --year-to")
        if (self.min_ratings is not None and self.max_ratings is not None
                and self.min_ratings > self.max_ratings):
            raise BadInputError("--min-ratings is above --max-ratings")


def _film_genres(films: pd.DataFrame, asked: set[str]) -> pd.Series:
    """Each film's genres, lower case, once the asked genres are known to make sense here."""
    genre_text = films["genres"].fillna("")
    if not (genre_text != "").any():
        raise BadInputError("this dataset has no genre metadata; import one with genres "
                            "(e.g. movie_data.csv) to filter by genre")
    genres = genre_text.str.lower().str.split("|")
    known = set().union(*genres)
    known.discard("")
    if asked - known:
        raise BadInputError(f"unknown genre {sorted(asked - known)[0]!r}; "
                            f"this dataset has: {', '.join(sorted(known))}")
    return genres


def allowed_films(data: CachedModel, film_filter: FilmFilter) -> np.ndarray:
    """Boolean per dataset film: does it pass the filter?"""
    films = data.films
    mask = np.ones(len(films), dtype=bool)
    counts = data.rating_counts
    if film_filter.min_ratings is not None:
        mask &= counts >= film_filter.min_ratings
    if film_filter.max_ratings is not None:
        mask &= counts <= film_filter.max_ratings
    years = films["year"].to_numpy(dtype="float64", na_value=np.nan)
    if film_filter.year_from is not None:
        mask &= years >= film_filter.year_from
    if film_filter.year_to is not None:
        mask &= years <= film_filter.year_to
    wanted = {genre.lower() for genre in film_filter.genres}
    unwanted = {genre.lower() for genre in film_filter.excluded_genres}
    if wanted or unwanted:
        genres = _film_genres(films, wanted | unwanted)
        if wanted:
            mask &= genres.map(lambda names: bool(wanted.intersection(names))).to_numpy()
        if unwanted:
            mask &= ~genres.map(lambda names: bool(unwanted.intersection(names))).to_numpy()
    return mask
