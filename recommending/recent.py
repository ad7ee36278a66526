"""Recent taste: fold in only what a person logged on or after a date ("my taste has
changed"), while every film they ever logged stays off their lists.

An export dates every row: a rated film counts from the latest of its ratings.csv row
(when the rating was given) and its diary entries (when it was watched), a film
watched but not rated from its latest row of any kind. A dataset member's stored
films and a profile read from the site carry no dates: all that is known is that
they were logged by the time they were read (the member's latest scrape, or today),
so they all count when that is on or after the date, and none do before it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from errors import BadInputError
from recommending.taste import TasteSource, UserTaste


@dataclass(frozen=True)
class SinceRequest:
    since: date
    # When a source without dates was read: a member's latest scrape (see
    # `dataset.loading.member_last_scraped`); None for a profile read today.
    read_on: date | None = None


@dataclass(frozen=True)
class RecentTaste:
    taste: UserTaste   # the recent ratings folded in; the earlier films in `earlier`
    note: str          # what was kept, and on what dates, for the log


def check_since(since: date, today: date) -> None:
    """A date to come cannot start anything yet: one clear error."""
    if since > today:
        raise BadInputError(f"--since {since.isoformat()} is in the future (today is "
                            f"{today.isoformat()})")


def recent_taste(taste: UserTaste, request: SinceRequest, today: date) -> RecentTaste:
    """`taste` with only the ratings logged on or after `request.since` folded in."""
    check_since(request.since, today)
    since = np.datetime64(request.since, "D")
    if taste.rated_on is None or taste.watched_on is None:
        read_on = request.read_on or today
        where = ("the dataset keeps no dates of ratings, only when they were read: "
                 if taste.source is TasteSource.DATASET
                 else "a profile's films page shows no dates: ")
        if read_on < request.since:
            raise BadInputError(
                f"{taste.name} has no rating known to be logged since {request.since}: "
                f"{where}theirs were read on {read_on} (add --refresh to read them now)")
        return RecentTaste(taste, f"{where}all {len(taste.rated_films)} ratings of "
                           f"{taste.name} count, as read on {read_on}")
    recent_rated = taste.rated_on >= since        # NaT compares False: undated is old
    recent_watched = taste.watched_on >= since
    if not recent_rated.any() and not recent_watched.any():
        known = np.concatenate([taste.rated_on, taste.watched_on])
        known = known[~np.isnat(known)]
        latest = f" (the latest is {known.max()})" if len(known) else ""
        raise BadInputError(f"{taste.name} logged no film on or after {request.since}"
                            f"{latest}")
    # A rated film is among the watched ones, and its rating's date is one of its rows':
    # recent ratings are recent watches.
    watched = taste.watched[recent_watched]
    earlier = np.setdiff1d(taste.logged, watched)
    recent = replace(taste, rated_films=taste.rated_films[recent_rated],
                     ratings=taste.ratings[recent_rated], rated_on=taste.rated_on[recent_rated],
                     watched=watched, watched_on=taste.watched_on[recent_watched],
                     earlier=earlier)
    undated = int(np.isnat(taste.rated_on).sum())
    return RecentTaste(recent, (
        f"folding in the {int(recent_rated.sum())} of {len(taste.rated_films)} ratings "
        f"{taste.name} logged on or after {request.since}, and "
        f"{len(watched) - int(recent_rated.sum())} films watched since without a rating; "
        f"the {len(earlier)} films logged before stay off the list"
        + (f" ({undated} ratings without a date count as before)" if undated else "")))

