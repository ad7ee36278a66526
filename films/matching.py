"""One film identity: every reference to a film (an export row, a scraped tile, a list
line, a title typed on the command line) resolves to a dataset film here.

The rules, strongest first; each is tried only for references the ones before left
unmatched:

1. the Letterboxd id (`boxd.it/<lid>`);
2. the slug (a `letterboxd.com/film/<slug>/` link, or a scraped tile);
3. the title written as a slug, with the year appended ("oppenheimer-2023"), then
   without it: this is how films known only by their slug (no metadata) are found;
4. the normalised title (`titles.title_key`) with the same year;
5. the normalised title alone, where one side has no year and the title names one
   film only;
6. the normalised title a year off, where that leaves exactly one candidate and its
   slug carries no year of its own (a film whose slug says "-2013" is not a 2014
   film: two different films with one title are never merged);
7. the title without a subtitle ("Glass Onion" for "Glass Onion: A Knives Out
   Mystery"), same year, one candidate.

A title that stays ambiguous is reported with its candidates, never guessed. The same
film stored under two slugs (an old and a new one) is one film: `FilmCatalogue`
maps both to one canonical id, so logging either excludes both.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from films.name_lookup import NameLookup
from films.titles import shown_title_and_year, slug_candidates, split_slug_year, title_key

# How far apart two runtimes of one film may be (cuts, rounding) before they are two films.
_SAME_RUNTIME_MINUTES = 5
_SAME_RUNTIME_MINUTES_A_YEAR_APART = 2
# Subtitle separators: "Title: Subtitle", "Title - Subtitle".
_SUBTITLE_SEPARATORS = (":", " - ", " – ")
_NOT_FOUND = "not in the dataset"


@dataclass(frozen=True, slots=True)
class FilmReference:
    """What a source says of a film; any field may be missing."""

    title: str = ""
    year: int | None = None
    lid: str | None = None
    slug: str | None = None

    def describe(self) -> str:
        name = self.title or self.slug or (f"boxd.it/{self.lid}" if self.lid else "?")
        return f"{name} ({self.year})" if self.year else name


@dataclass(frozen=True, slots=True)
class Unmatched:
    reference: FilmReference
    reason: str
    closest: str | None = None  # "Title (Year)" of the nearest dataset film, if any


@dataclass(frozen=True)
class MatchResult:
    """Per reference, the canonical film id (-1 when unmatched) and the rule that found it."""

    film_ids: np.ndarray
    rules: tuple[str, ...]
    unmatched: tuple[Unmatched, ...]

    @property
    def matched(self) -> int:
        return int((self.film_ids >= 0).sum())


class FilmCatalogue:
    """The dataset's films as one identity each: titles and years as shown, and the
    canonical id that merges one film stored under two slugs.

    `films` is indexed by film id (0..n-1) with at least `slug`, `lid`, `title` and
    `year` (`Int64`); `runtime` is used when present.
    """

    def __init__(self, films: pd.DataFrame, canonical: np.ndarray | None = None,
                 lids: NameLookup | None = None) -> None:
        """`canonical` and the lookup of `lids` may come from a cache: working them out
        reads every title or lid."""
        self._films = films
        self.size = len(films)
        self._canonical = canonical
        self._lids = lids

    # --- titles and years as shown -----------------------------------------------

    @cached_property
    def _spelled_out(self) -> dict[int, tuple[str, int]]:
        """Title and year as shown (`titles.shown_title_and_year`) of each film whose
        metadata lacks a title: usually none, or a few, of a large crawl."""
        title_text = self._films["title"].fillna("").astype(str)
        slug_text = self._films["slug"].astype(str)
        # has_no_title, for every film at once.
        missing = ((title_text.str.strip() == "")
                   | ((title_text == slug_text) & slug_text.str.contains("-", regex=False)))
        flagged = np.flatnonzero(missing.to_numpy()).tolist()
        return dict(zip(flagged, self.shown_each(flagged)))

    @cached_property
    def titles(self) -> np.ndarray:
        """A readable title per film: its own, or one spelled out from its slug."""
        titles = self._films["title"].fillna("").astype(str).to_numpy(dtype=object).copy()
        for film, (title, _) in self._spelled_out.items():
            titles[film] = title
        return titles

    @cached_property
    def years(self) -> np.ndarray:
        """Release year per film, 0 when unknown (see `titles.shown_title_and_year`)."""
        years = self._films["year"].to_numpy(dtype="float64", na_value=np.nan)
        years = np.where(np.isnan(years), 0, years).astype(np.int64)
        for film, (_, year) in self._spelled_out.items():
            years[film] = year
        return years

    def shown_each(self, films: Sequence[int]) -> list[tuple[str, int]]:
        """`titles[film]` and `years[film]` of these films, without working them out for
        every film."""
        rows = list(films)
        shown = []
        for title, year, slug in zip(self._films["title"].iloc[rows].fillna("").astype(str),
                                     self._films["year"].iloc[rows].astype("Int64").tolist(),
                                     self._films["slug"].iloc[rows].astype(str)):
            title, year = shown_title_and_year(title, None if year is pd.NA else year, slug)
            shown.append((title, year or 0))
        return shown

    def label(self, film: int) -> str:
        [(title, year)] = self.shown_each([film])
        return f"{title} ({year})" if year else title

    def _told_apart(self, film: int) -> str:
        """The label with the film's slug, so that films of one title and year differ."""
        return f"{self.label(film)} [{self._films['slug'].iat[film]}]"

    # --- one film under two slugs ------------------------------------------------------

    @cached_property
    def _keys(self) -> np.ndarray:
        return np.array([title_key(title) for title in self.titles], dtype=object)

    @cached_property
    def canonical(self) -> np.ndarray:
        """Canonical film id per film: the lowest id among the films that are one film:
        the same lid; the same title and year (or years one apart) with runtimes both
        known and agreeing; or the same title under a slug that is the other's plus the
        film's year."""
        if self._canonical is not None:
            return self._canonical
        parent = np.arange(self.size)

        def root(film: int) -> int:
            while parent[film] != film:
                parent[film] = parent[parent[film]]
                film = parent[film]
            return film

        for first, second in self._same_film_pairs():
            a, b = root(int(first)), root(int(second))
            if a != b:
                parent[max(a, b)] = min(a, b)
        return np.array([root(film) for film in range(self.size)], dtype=np.int64)

    def _same_film_pairs(self) -> Iterable[tuple[int, int]]:
        films = np.arange(self.size)
        lids = self._films["lid"].fillna("").astype(str).to_numpy(dtype=object)
        with_lid = films[lids != ""]
        order = with_lid[np.argsort(lids[with_lid], kind="stable")]
        repeated = lids[order[1:]] == lids[order[:-1]]
        yield from zip(order[:-1][repeated], order[1:][repeated])

        runtimes = (self._films["runtime"].to_numpy(dtype="float64", na_value=np.nan)
                    if "runtime" in self._films else np.full(self.size, np.nan))
        runtimes = np.where(runtimes > 0, runtimes, np.nan)  # published data writes 0: unknown
        known = films[(self.years > 0) & (self._keys != "")]
        frame = pd.DataFrame({"key": self._keys[known], "year": self.years[known],
                              "film": known}).sort_values(["key", "year", "film"])
        same_key = frame["key"].to_numpy()[1:] == frame["key"].to_numpy()[:-1]
        year_gap = np.diff(frame["year"].to_numpy())
        ordered = frame["film"].to_numpy()
        first, second = ordered[:-1][same_key], ordered[1:][same_key]
        gap = year_gap[same_key]
        runtime_gap = np.abs(runtimes[first] - runtimes[second])
        # Two films may share a title and a year: only a runtime both know makes it one;
        # a year apart (sources disagree on release years) only a nearly equal one.
        one = ((gap == 0) & (runtime_gap <= _SAME_RUNTIME_MINUTES)) | (
            (gap == 1) & (runtime_gap <= _SAME_RUNTIME_MINUTES_A_YEAR_APART))
        yield from zip(first[one], second[one])

        slugs = self._films["slug"].astype(str)
        # "-YEAR-N" says Letterboxd has several films of that title and year: never linked.
        parts = slugs.str.extract(r"^(?P<base>.+?)-(?P<year>\d{4})$")
        slug_year = pd.to_numeric(parts["year"]).to_numpy(dtype="float64", na_value=np.nan)
        base = pd.Index(slugs.to_numpy()).get_indexer(parts["base"].fillna("").to_numpy())
        linked = (base >= 0) & (slug_year == self.years.astype("float64"))
        linked[linked] &= ((np.isin(self.years[base[linked]], [0])
                            | (self.years[base[linked]] == self.years[linked]))
                           & (self._keys[base[linked]] == self._keys[linked]))
        first, second = base[linked], films[linked]
        # Unknown runtimes (NaN) compare False: they do not keep the two apart.
        apart = np.abs(runtimes[first] - runtimes[second]) > _SAME_RUNTIME_MINUTES
        yield from zip(first[~apart], second[~apart])

    def same_films(self, film_ids: Iterable[int]) -> np.ndarray:
        """Every film id that is one of these films, under any of its slugs."""
        ids = np.asarray(list(film_ids) if not isinstance(film_ids, np.ndarray) else film_ids,
                         dtype=np.int64)
        ids = ids[ids >= 0]
        return np.flatnonzero(np.isin(self.canonical, self.canonical[ids]))

    # --- indexes --------------------------------------------------------------------------

    @cached_property
    def _slug_ids(self) -> dict[str, int]:
        return dict(zip(self._films["slug"].tolist(), range(self.size)))

    @cached_property
    def _lid_lookup(self) -> NameLookup:
        """Non-empty lids, each once (the first film holding it)."""
        return self._lids or NameLookup.of(self._films["lid"].fillna(""))

    @cached_property
    def _films_by_key(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for film, key in enumerate(self._keys.tolist()):
            if key:
                groups.setdefault(key, []).append(film)
        return groups

    @cached_property
    def _films_by_first_word(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for film, key in enumerate(self._keys.tolist()):
            if key:
                groups.setdefault(key.split(" ", 1)[0], []).append(film)
        return groups

    # --- matching --------------------------------------------------------------------------

    def match(self, references: Sequence[FilmReference]) -> MatchResult:
        """Resolve each reference; see the module's docstring for the rules."""
        found = np.full(len(references), -1, dtype=np.int64)
        rules = [""] * len(references)
        lids = [reference.lid or "" for reference in references]
        if any(lids):
            for row, film in enumerate(self._lid_lookup.find(lids).tolist()):
                if film >= 0:
                    found[row], rules[row] = film, "lid"
        unmatched = []
        for row, reference in enumerate(references):
            if found[row] >= 0:
                continue
            film, rule, reason = self._match_one(reference)
            if film >= 0:
                found[row], rules[row] = film, rule
            else:
                # An ambiguous title or one in other years names its candidates already.
                closest = self._closest(reference) if reason == _NOT_FOUND else None
                unmatched.append(Unmatched(reference, reason, closest))
        hit = found >= 0
        found[hit] = self.canonical[found[hit]]
        return MatchResult(found, tuple(rules), tuple(unmatched))

    def _match_one(self, reference: FilmReference) -> tuple[int, str, str]:
        if reference.slug and reference.slug in self._slug_ids:
            return self._slug_ids[reference.slug], "slug", ""
        if not reference.title.strip():
            return -1, "", _NOT_FOUND
        year = reference.year or 0
        for slug in slug_candidates(reference.title):
            if year and f"{slug}-{year}" in self._slug_ids:
                return self._slug_ids[f"{slug}-{year}"], "title as slug", ""
            film = self._slug_ids.get(slug)
            if film is not None and (self.years[film] in (0, year) if year
                                     else self._names_one_film(reference.title)):
                return film, "title as slug", ""
        candidates = self._distinct(self._films_by_key.get(title_key(reference.title), []))
        if not len(candidates):
            return self._without_subtitle(reference)
        years = self.years[candidates]
        if year:
            exact = candidates[years == year]
            if len(exact) == 1:
                return int(exact[0]), "title and year", ""
            if len(exact) > 1:
                return -1, "", "ambiguous: " + "; ".join(self._told_apart(f) for f in exact)
        if len(candidates) == 1 and (not year or years[0] == 0):
            return int(candidates[0]), "title", ""
        if year:
            near = candidates[(np.abs(years - year) == 1) & self._slug_has_no_year(candidates)]
            if len(near) == 1 and (np.abs(years - year) <= 1).sum() == 1:
                return int(near[0]), "title, year one off", ""
            return self._without_subtitle(reference, other_years=candidates)
        return -1, "", "ambiguous: " + "; ".join(self._told_apart(f) for f in candidates[:5])

    def _names_one_film(self, title: str) -> bool:
        return len(self._distinct(self._films_by_key.get(title_key(title), []))) <= 1

    def _slug_has_no_year(self, films: np.ndarray) -> np.ndarray:
        slugs = self._films["slug"].to_numpy(dtype=object)
        return np.array([split_slug_year(slugs[film])[1] is None for film in films], dtype=bool)

    def _distinct(self, films: list[int]) -> np.ndarray:
        """Candidates as distinct films: one film under two slugs counts once."""
        if not films:
            return np.empty(0, dtype=np.int64)
        films = np.asarray(films, dtype=np.int64)
        _, first = np.unique(self.canonical[films], return_index=True)
        return films[np.sort(first)]

    def _without_subtitle(self, reference: FilmReference,
                          other_years: np.ndarray | None = None) -> tuple[int, str, str]:
        """Rule 7: a dataset title that is this one plus a subtitle, in the same year."""
        key = title_key(reference.title)
        year = reference.year or 0
        if key and year:
            first_word = key.split(" ", 1)[0]
            longer = [film for film in self._films_by_first_word.get(first_word, [])
                      if self.years[film] == year and self._keys[film].startswith(key + " ")
                      and self._has_subtitle_after(film, reference.title)]
            longer = self._distinct(longer)
            if len(longer) == 1:
                return int(longer[0]), "title without subtitle", ""
        if other_years is not None:
            return -1, "", "the dataset has that title only in other years: " + "; ".join(
                self.label(film) for film in other_years[:5])
        return -1, "", _NOT_FOUND

    def _has_subtitle_after(self, film: int, title: str) -> bool:
        own = self.shown_each([film])[0][0]
        for separator in _SUBTITLE_SEPARATORS:
            head = own.split(separator, 1)[0]
            if head != own and title_key(head) == title_key(title):
                return True
        return False

    def _closest(self, reference: FilmReference) -> str | None:
        """The dataset film whose title is nearest, among those sharing the first word
        (comparing each miss against every title of a large crawl would take seconds)."""
        key = title_key(reference.title) if reference.title else ""
        if not key:
            return None
        pool = self._films_by_first_word.get(key.split(" ", 1)[0], [])
        if not pool:
            return None
        keys = self._keys
        scored = [(difflib.SequenceMatcher(None, key, keys[film]).ratio(), film)
                  for film in pool[:2000]]
        ratio, film = max(scored)
        return self.label(film) if ratio >= 0.6 else None
