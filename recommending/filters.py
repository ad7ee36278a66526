"""Which films a list may hold, from the filter flags, whoever asks.

The flags become one `FilmFilter` before any profile is read, so a mistyped genre or
language costs no request; `allowed_films` turns it into a mask over the dataset's
films. Unknown metadata never passes a filter that asks for it (a film of unknown
runtime is not "at most 100 minutes"), except that only films known to be series are
left out by default.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from errors import BadInputError
from films.codes import country_code, language_code
from films.metadata import LAST_YEAR, TV
from films.titles import FIRST_FILM_YEAR
from recommender.cache import CachedModel

REFRESH_METADATA = ("import a dataset with its movies file, or run `compile_training_data.py "
                    "films` to read the films' pages")


@dataclass(frozen=True)
class FilmFilter:
    min_ratings: int | None = None   # ratings the film has in the dataset
    max_ratings: int | None = None
    obscurity: float | None = None   # leave out this percentage of the most-rated films
    year_from: int | None = None
    year_to: int | None = None
    genres: tuple[str, ...] = ()     # any of these (case does not matter)
    excluded_genres: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # ISO 639-1 codes or English names
    countries: tuple[str, ...] = ()  # ISO 3166 codes or names
    min_runtime: int | None = None   # minutes
    max_runtime: int | None = None
    include_tv: bool = False

    def __post_init__(self) -> None:
        for flag, value in (("--min-ratings", self.min_ratings),
                            ("--max-ratings", self.max_ratings),
                            ("--min-runtime", self.min_runtime),
                            ("--max-runtime", self.max_runtime)):
            if value is not None and value < 0:
                raise BadInputError(f"{flag} is a count: 0 or more, not {value}")
        for flag, value in (("--year-from", self.year_from), ("--year-to", self.year_to)):
            if value is not None and not FIRST_FILM_YEAR <= value <= LAST_YEAR:
                raise BadInputError(f"{flag} is a year from {FIRST_FILM_YEAR} to {LAST_YEAR}, "
                                    f"not {value}")
        for low, high, flags in ((self.year_from, self.year_to, "--year-from is after --year-to"),
                                 (self.min_ratings, self.max_ratings,
                                  "--min-ratings is above --max-ratings"),
                                 (self.min_runtime, self.max_runtime,
                                  "--min-runtime is above --max-runtime")):
            if low is not None and high is not None and low > high:
                raise BadInputError(flags)
        if self.obscurity is not None and not 0 <= self.obscurity < 100:
            raise BadInputError("--obscurity is a percentage from 0 up to (not including) 100")
        for name in self.languages:
            if not language_code(name):
                raise BadInputError(f"unknown language {name!r}: give an ISO 639-1 code such "
                                    "as ja, or an English name such as Japanese")
        for name in self.countries:
            if not country_code(name):
                raise BadInputError(f"unknown country {name!r}: give an ISO 3166 code such "
                                    "as FR, or a name such as France")


def _names_column(films: pd.DataFrame, column: str, what: str, asked: set[str]) -> pd.Series:
    """Each film's `|`-separated names, lower case, once the asked ones make sense here."""
    text = films[column].fillna("")
    if not (text != "").any():
        raise BadInputError(f"this dataset has no {what} metadata: {REFRESH_METADATA}")
    names = text.str.lower().str.split("|")
    known = set().union(*names)
    known.discard("")
    if asked - known:
        raise BadInputError(f"unknown {what} {sorted(asked - known)[0]!r}; "
                            f"this dataset has: {', '.join(sorted(known))}")
    return names


def _any_of(names: pd.Series, wanted: set[str]) -> np.ndarray:
    return names.map(lambda found: bool(wanted.intersection(found))).to_numpy(dtype=bool)


def _known_numbers(films: pd.DataFrame, column: str, what: str) -> np.ndarray:
    values = films[column].to_numpy(dtype="float64", na_value=np.nan)
    if np.isnan(values).all():
        raise BadInputError(f"this dataset has no {what} metadata: {REFRESH_METADATA}")
    return values


def listable_by_default(films: pd.DataFrame) -> np.ndarray:
    """The films a list may hold when no flag says otherwise: all but known series."""
    return (films["content_type"] != TV).to_numpy()


def allowed_films(data: CachedModel, film_filter: FilmFilter) -> np.ndarray:
    """Boolean per dataset film: may a list hold it? Only one id of a film stored under
    two slugs may (its canonical one)."""
    films = data.films
    mask = np.asarray(data.film_canonical) == np.arange(len(films))
    counts = data.rating_counts
    if film_filter.min_ratings is not None:
        mask &= counts >= film_filter.min_ratings
    if film_filter.max_ratings is not None:
        mask &= counts <= film_filter.max_ratings
    if film_filter.obscurity:
        rated = counts[counts > 0]
        ceiling = np.percentile(rated, 100 - film_filter.obscurity) if len(rated) else 0
        mask &= counts <= ceiling
    if film_filter.year_from is not None:
        mask &= data.catalogue.years >= film_filter.year_from
    if film_filter.year_to is not None:
        mask &= (data.catalogue.years <= film_filter.year_to) & (data.catalogue.years > 0)
    if not film_filter.include_tv:
        mask &= listable_by_default(films)
    wanted = {genre.lower() for genre in film_filter.genres}
    unwanted = {genre.lower() for genre in film_filter.excluded_genres}
    if wanted or unwanted:
        genres = _names_column(films, "genres", "genre", wanted | unwanted)
        if wanted:
            mask &= _any_of(genres, wanted)
        if unwanted:
            mask &= ~_any_of(genres, unwanted)
    if film_filter.languages:
        codes = {language_code(name) for name in film_filter.languages}
        languages = _names_column(films, "language", "language", codes)
        mask &= _any_of(languages, codes)
    if film_filter.countries:
        codes = {country_code(name).lower() for name in film_filter.countries}
        countries = _names_column(films, "countries", "country", codes)
        mask &= _any_of(countries, codes)
    if film_filter.min_runtime is not None or film_filter.max_runtime is not None:
        runtimes = _known_numbers(films, "runtime", "runtime")
        if film_filter.min_runtime is not None:
            mask &= runtimes >= film_filter.min_runtime
        if film_filter.max_runtime is not None:
            mask &= runtimes <= film_filter.max_runtime
    return mask
