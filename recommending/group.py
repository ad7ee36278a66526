"""Group picks: one list for several people, holding no film any of them has logged.

Every member is folded into the model on their own. The candidates are each member's
own best films (`RecommenderModel.pick`: what their personal list would hold, first
and second stage, `CANDIDATES_PER_MEMBER` each) among the allowed films that no member
has logged under any of the film's slugs. Every candidate then gets every member's
predicted rating, and the group rule orders them:

* least misery (the default): the lowest of the members' predicted ratings, so the
  evening is chosen for whoever would enjoy it least (ties: the higher average);
* average: the mean of the members' predicted ratings (ties: the higher lowest).

Taking the candidates from the members' own lists keeps films that nobody would pick
(a well-rated film far from every member's taste) out of the group's list; ranking
them by the predicted stars makes the rule's promise readable beside each pick.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np

from errors import BadInputError
from recommender.cache import CachedModel
from recommending.filters import FilmFilter, allowed_films
from recommending.picks import ShownFilm, films_shown
from recommending.taste import UserTaste

CANDIDATES_PER_MEMBER = 300
MAX_MEMBERS = 20


class GroupRule(Enum):
    LEAST_MISERY = "least-misery"
    AVERAGE = "average"


GROUP_TOP = 20  # picks a group is shown unless told otherwise


@dataclass(frozen=True)
class GroupRequest:
    film_filter: FilmFilter = field(default_factory=FilmFilter)
    rule: GroupRule = GroupRule.LEAST_MISERY
    top: int = GROUP_TOP


@dataclass(frozen=True)
class GroupPick:
    rank: int
    film: ShownFilm
    predicted_ratings: tuple[float, ...]  # 1..10, one per member, in the group's order
    group_rating: float                   # what the rule orders by, 1..10

    @property
    def predicted_stars(self) -> tuple[float, ...]:
        """Each member's predicted rating in half stars, as the lists show stars."""
        return tuple(round(rating) / 2 for rating in self.predicted_ratings)


@dataclass(frozen=True)
class GroupPicks:
    members: tuple[str, ...]
    rule: GroupRule
    picks: tuple[GroupPick, ...]
    notes: tuple[str, ...] = ()  # e.g. a member with too few ratings for personal picks


def group_rating(ratings: np.ndarray, rule: GroupRule) -> np.ndarray:
    """Per film (a column of `ratings`, members by film), the rule's rating and the
    tie-breaker, as two rows: least misery is the lowest then the mean, average the
    other way round."""
    lowest, mean = ratings.min(axis=0), ratings.mean(axis=0)
    return np.vstack([lowest, mean] if rule is GroupRule.LEAST_MISERY else [mean, lowest])


def group_picks(data: CachedModel, tastes: Sequence[UserTaste], request: GroupRequest
                ) -> GroupPicks:
    """The group's list: see the module's docstring for the rule."""
    if len(tastes) < 2:
        raise BadInputError("a group needs at least two people")
    if len(tastes) > MAX_MEMBERS:
        raise BadInputError(f"a group of at most {MAX_MEMBERS} people, please")
    if request.top < 1:
        raise BadInputError("a group's list needs at least one film (--top)")
    model = data.model
    allowed = allowed_films(data, request.film_filter)
    logged = np.concatenate([taste.logged for taste in tastes])
    allowed[data.catalogue.same_films(logged)] = False
    profiles = [model.fold_in(taste.rated_films, taste.ratings, watched_films=taste.watched)
                for taste in tastes]
    notes = tuple(f"{taste.name} has only {len(taste.rated_films)} ratings in the dataset: "
                  "their candidates are the dataset's most loved films"
                  for taste, profile in zip(tastes, profiles) if model.is_cold(profile))
    candidates = np.unique(np.concatenate(
        [model.pick(profile, CANDIDATES_PER_MEMBER, allowed=allowed).films
         for profile in profiles]))
    ratings = np.vstack([model.predict(profile, candidates) for profile in profiles]
                        ).astype(np.float64)
    order_by = group_rating(ratings, request.rule)
    # lexsort sorts by its last key first, ascending: negate for best first.
    best = np.lexsort((candidates, -order_by[1], -order_by[0]))[:request.top]
    shown = films_shown(data, candidates[best].tolist())
    picks = tuple(GroupPick(rank=rank, film=shown[int(candidates[column])],
                            predicted_ratings=tuple(float(r) for r in ratings[:, column]),
                            group_rating=float(order_by[0, column]))
                  for rank, column in enumerate(best.tolist(), start=1))
    return GroupPicks(members=tuple(taste.name for taste in tastes), rule=request.rule,
                      picks=picks, notes=notes)
