"""Rank a given list for one person: a festival line-up, a friend's list, a watchlist.

Every line goes through the one film matcher (films/matching.py). The films the person
has not logged are ordered exactly as their own list would order them (the model's
`pick`, both stages) with the list as the only candidates; the films they have
logged follow, marked: the ones they rated by their own rating, then the others by
the rating the model predicts. Lines no film matches are named, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from errors import BadInputError
from letterboxd.film_lists import ListLine
from recommender.cache import CachedModel
from recommending.filters import FilmFilter, allowed_films
from recommending.picks import ShownFilm, films_shown
from recommending.taste import UserTaste


@dataclass(frozen=True)
class GivenListRequest:
    lines: tuple[ListLine, ...]
    # The list chooses the films: series stay in unless a filter says otherwise.
    film_filter: FilmFilter = field(default_factory=lambda: FilmFilter(include_tv=True))


@dataclass(frozen=True)
class RankedFilm:
    rank: int
    film: ShownFilm
    predicted_rating: float        # 1..10
    own_rating: int | None         # 1..10, where the person rated it
    seen: bool                     # logged under any of the film's slugs
    on_watchlist: bool
    because: tuple[str, ...]       # "Title (Year)" of their loved films most like it
    lines: tuple[int, ...]         # the file's lines naming it

    @property
    def predicted_stars(self) -> float:
        return round(self.predicted_rating) / 2


@dataclass(frozen=True)
class UnmatchedLine:
    line: int
    text: str
    reason: str
    closest: str | None = None     # "Title (Year)" of the nearest dataset film


@dataclass(frozen=True)
class RankedList:
    name: str                              # whose ranking
    films: tuple[RankedFilm, ...]          # every matched film, best first, seen ones last
    unmatched: tuple[UnmatchedLine, ...]
    filtered_out: tuple[ShownFilm, ...]    # matched films the filters leave out
    cold_start: bool                       # too few ratings: ordered by popularity

    @property
    def unseen(self) -> int:
        return sum(not film.seen for film in self.films)


def rank_given_list(data: CachedModel, taste: UserTaste, request: GivenListRequest
                    ) -> RankedList:
    """The list's films ranked for `taste`; see the module's docstring."""
    naming = [line for line in request.lines if line.reference is not None]
    unmatched = [UnmatchedLine(line.line, line.text, "names no film: give a title, "
                               "\"Title (Year)\" or a film's letterboxd.com or boxd.it link")
                 for line in request.lines if line.reference is None]
    found = data.catalogue.match([line.reference for line in naming if line.reference])
    misses = iter(found.unmatched)
    lines_of: dict[int, list[int]] = {}
    for line, film in zip(naming, found.film_ids.tolist()):
        if film < 0:
            missing = next(misses)
            unmatched.append(UnmatchedLine(line.line, line.text, missing.reason,
                                           missing.closest))
        else:
            lines_of.setdefault(film, []).append(line.line)
    unmatched.sort(key=lambda missing: missing.line)
    films = np.array(list(lines_of), dtype=np.int64)
    allowed = allowed_films(data, request.film_filter)
    kept, left_out = films[allowed[films]], films[~allowed[films]]
    seen = np.isin(kept, data.catalogue.same_films(taste.logged))

    model = data.model
    profile = model.fold_in(taste.rated_films, taste.ratings, watched_films=taste.watched)
    unseen_mask = np.zeros(len(data.films), dtype=bool)
    unseen_mask[kept[~seen]] = True
    chosen = model.pick(profile, int((~seen).sum()), allowed=unseen_mask)
    own = dict(zip(taste.rated_films.tolist(), taste.ratings.tolist()))
    watched = kept[seen]
    predicted_seen = model.predict(profile, watched)
    seen_order = np.lexsort((watched, -predicted_seen,
                             -np.array([own.get(film, 0) for film in watched.tolist()])))
    ordered = np.concatenate([chosen.films, watched[seen_order]]).astype(np.int64)
    predicted = model.predict(profile, ordered)
    reasons = {film: () if chosen.cold_start else model.explain(profile, film)
               for film in chosen.films.tolist()}
    shown = films_shown(data, [*ordered.tolist(), *left_out.tolist(),
                               *(other for found in reasons.values() for other in found)])
    on_watchlist = set() if taste.watchlist is None else set(taste.watchlist.tolist())
    ranked = tuple(RankedFilm(
        rank=rank, film=shown[film], predicted_rating=float(rating),
        own_rating=own.get(film), seen=rank > len(chosen.films),
        on_watchlist=film in on_watchlist,
        because=tuple(shown[other].label for other in reasons.get(film, ())),
        lines=tuple(lines_of[film]))
        for rank, (film, rating) in enumerate(zip(ordered.tolist(), predicted.tolist()),
                                              start=1))
    if not ranked and not left_out.size and not unmatched:
        raise BadInputError("the list names no film")
    return RankedList(name=taste.name, films=ranked, unmatched=tuple(unmatched),
                      filtered_out=tuple(shown[film] for film in left_out.tolist()),
                      cold_start=chosen.cold_start and len(chosen.films) > 0)
