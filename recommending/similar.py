"""Films like X: the nearest films in the model's space, for anyone (no profile needed).

Near is the cosine of two films' ranking factors (the model's own notion of similar
films, the one `RecommenderModel.explain` uses), shrunk for a film known from few
ratings, whose direction is mostly noise: a film with n ratings scores

    cos(f_X, f_Y) * n / (n + SHRINK_RATINGS).

Each film comes with its shared fans, the reason in the members' own words: how many
of the members who loved X (rated it 4 stars or more) loved it too; where fewer than
MIN_FANS members loved X, how many of those who rated X rated it too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from errors import BadInputError
from films.matching import FilmReference
from recommender.cache import CachedModel
from recommending.filters import FilmFilter, allowed_films
from recommending.picks import ShownFilm, films_shown

SHRINK_RATINGS = 30
LOVED_RATING = 8
MIN_FANS = 5


@dataclass(frozen=True)
class LikeRequest:
    film: FilmReference
    film_filter: FilmFilter = field(default_factory=FilmFilter)
    top: int = 20


@dataclass(frozen=True)
class SimilarFilm:
    rank: int
    film: ShownFilm
    similarity: float          # see the module's docstring: at most 1
    shared_fans: int           # of the film asked about's fans, those who are this one's


@dataclass(frozen=True)
class SimilarFilms:
    film: ShownFilm            # the film asked about
    fans: int                  # members who loved it (or rated it, see fan_rating)
    fan_rating: int            # the lowest rating (1..10) that made a member a fan
    films: tuple[SimilarFilm, ...]

    @property
    def fans_word(self) -> str:
        """What being a fan meant here: "loved" (4 stars or more) or "rated"."""
        return "loved" if self.fan_rating > 1 else "rated"


def find_film(data: CachedModel, reference: FilmReference) -> int:
    """The dataset film `reference` names, or one clear error saying why none is."""
    found = data.catalogue.match([reference])
    if found.film_ids[0] >= 0:
        return int(found.film_ids[0])
    missing = found.unmatched[0]
    closest = f" (closest: {missing.closest})" if missing.closest else ""
    raise BadInputError(f"no film of the dataset matches {reference.describe()!r}: "
                        f"{missing.reason}{closest}")


def _fan_counts(data: CachedModel, film: int) -> tuple[int, int, np.ndarray]:
    """How many members are fans of `film`, the rating that made them one, and per film
    how many of them are its fans too (the same rating or more)."""
    films = np.asarray(data.rating_films)
    values = np.asarray(data.rating_values)
    indptr = np.asarray(data.rating_indptr)
    positions = np.flatnonzero(films == film)
    fan_rating = LOVED_RATING
    if np.count_nonzero(values[positions] >= LOVED_RATING) < MIN_FANS:
        fan_rating = 1
    positions = positions[values[positions] >= fan_rating]
    fans = np.searchsorted(indptr, positions, side="right") - 1
    if not len(fans):
        return 0, fan_rating, np.zeros(len(data.films), dtype=np.int64)
    slices = [slice(indptr[fan], indptr[fan + 1]) for fan in fans.tolist()]
    their_films = np.concatenate([films[part] for part in slices])
    their_values = np.concatenate([values[part] for part in slices])
    counts = np.bincount(their_films[their_values >= fan_rating], minlength=len(data.films))
    return len(fans), fan_rating, counts


def films_like(data: CachedModel, request: LikeRequest) -> SimilarFilms:
    """The films nearest `request.film`; see the module's docstring."""
    if request.top < 1:
        raise BadInputError("--top must be at least 1")
    film = find_film(data, request.film)
    ratings = np.asarray(data.rating_counts)
    if ratings[film] == 0:
        raise BadInputError(f"{data.catalogue.label(film)} has no ratings in the dataset: "
                            "the model cannot tell which films are like it")
    factors = data.model.item_ranking_factors
    norms = np.linalg.norm(factors, axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = (factors @ factors[film]).astype(np.float64) / (norms * norms[film])
    similarity = np.nan_to_num(cosine, nan=0.0) * ratings / (ratings + SHRINK_RATINGS)
    allowed = allowed_films(data, request.film_filter)
    allowed[data.catalogue.same_films([film])] = False
    allowed &= ratings > 0
    similarity[~allowed] = -np.inf
    best = np.argsort(-similarity, kind="stable")[:min(request.top, int(allowed.sum()))]
    fans, fan_rating, shared = _fan_counts(data, film)
    shown = films_shown(data, [film, *best.tolist()])
    return SimilarFilms(
        film=shown[film], fans=fans, fan_rating=fan_rating,
        films=tuple(SimilarFilm(rank=rank, film=shown[other],
                                similarity=float(similarity[other]),
                                shared_fans=int(shared[other]))
                    for rank, other in enumerate(best.tolist(), start=1)))
