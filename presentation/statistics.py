"""A person's statistics as plain sentences for the terminal, or as JSON for scripts."""
from __future__ import annotations

import dataclasses
import json

from presentation.text import bar, labelled, star_label, terminal_safe
from recommender.params import MAX_RATING, MIN_RATING
from recommending.statistics import (MIN_GENRE_FILMS, MIN_REFERENCE_RATINGS, GenreLean,
                                      TasteStatistics)

FORMATS = ("table", "json")
BAR_WIDTH = 22
SHOWN_SHARE = 0.005  # a decade under this share on both sides rounds to 0% and is not shown


def _shares(counts: tuple[int, ...]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def _signed_stars(value: float) -> str:
    return f"{value:+.2f}★"


def _leaning_sentence(stats: TasteStatistics) -> str:
    if stats.leaning == "unknown":
        return "no film you rated has other ratings in the dataset to compare with"
    gap = abs(stats.difference)
    where = {"generous": f"generous: {gap:.2f}★ above the community, film for film",
             "harsh": f"harsh: {gap:.2f}★ below the community, film for film",
             "even-handed": f"even-handed: within {gap:.2f}★ of the community"}
    return where[stats.leaning]


def _range_sentence(stats: TasteStatistics) -> str:
    words = {"wide": "a wide range", "narrow": "a narrow range", "typical": "a usual range"}
    return (f"{words[stats.range]} (spread {stats.spread_stars:.2f}★, wider than "
            f"{stats.spread_percentile:.0f}% of members)")


def _agreement_sentence(stats: TasteStatistics) -> str:
    if stats.consensus is None:
        return ""
    return f"; {stats.agreement} (correlation {stats.consensus:.2f})"


def _genre_list(leans: tuple[GenreLean, ...], side: str) -> str:
    return ", ".join(f"{terminal_safe(lean.genre)} ({_signed_stars(lean.difference)}, "
                     f"{lean.films} films)" for lean in leans) or \
        f"none: no genre with {MIN_GENRE_FILMS}+ of your films is rated {side} the community"


def _bar_rows(title: str, rows: list[tuple[str, float, float]]) -> list[str]:
    """A title line, then one line per (label, person's share, community's share); the
    largest share fills the bar's width."""
    scale = max((max(mine, theirs) for _, mine, theirs in rows), default=0.0) or 1.0
    lines = ["", f"{title:<8}{'you':>6} {'':<{BAR_WIDTH}} {'community':>10}"]
    for label, mine, theirs in rows:
        lines.append(f"{label:<8}{mine:>6.0%} {bar(mine / scale, BAR_WIDTH):<{BAR_WIDTH}} "
                     f"{theirs:>10.0%} {bar(theirs / scale, BAR_WIDTH)}".rstrip())
    return lines


def render_text(stats: TasteStatistics) -> str:
    lines = [terminal_safe(f"Statistics of {stats.name}: {stats.ratings:,} rated films "
                           "matched to the dataset"), ""]
    lines.append(labelled("Mean rating", (
        f"{stats.compared_mean_stars:.2f}★ against the community's "
        f"{stats.community_mean_stars:.2f}★ for the same {stats.compared_films:,} films"
        + (f" (all your ratings: {stats.mean_stars:.2f}★)"
           if stats.compared_films < stats.ratings else ""))))
    lines.append(labelled("Rating style", f"{_leaning_sentence(stats)}; "
                          f"{_range_sentence(stats)}{_agreement_sentence(stats)}"))
    lines.append(labelled("Obscurity", (
        f"more obscure than {stats.obscurity_percentile:.0f}% of the "
        f"{stats.reference_members:,} members with {MIN_REFERENCE_RATINGS}+ ratings; your "
        f"median film has "
        f"{stats.median_film_ratings:,.0f} ratings from others in the dataset")))
    if stats.genres_above is not None and stats.genres_below is not None:
        lines.append(labelled("Genres above", _genre_list(stats.genres_above, "above")))
        lines.append(labelled("Genres below", _genre_list(stats.genres_below, "below")))
    lines += _bar_rows("Ratings", [
        (star_label(rating) + "★", mine, theirs) for rating, mine, theirs in
        zip(range(MIN_RATING, MAX_RATING + 1), _shares(stats.histogram),
            _shares(stats.community_histogram))])
    if stats.decades:
        # Decades that round to nothing on both sides (the 1890s, mostly) are left out.
        lines += _bar_rows("Decades", [
            (f"{decade.decade}s", decade.share, decade.community_share)
            for decade in stats.decades
            if max(decade.share, decade.community_share) >= SHOWN_SHARE])
    return "\n".join(lines)


def render_json(stats: TasteStatistics) -> str:
    """Every figure, plus the words the text uses, under names a script can rely on."""
    document = dataclasses.asdict(stats)
    for name in ("histogram", "community_histogram"):
        document[name] = {f"{rating / 2:g}": count for rating, count in
                          zip(range(MIN_RATING, MAX_RATING + 1), document[name])}
    document.update(difference=stats.difference, leaning=stats.leaning, range=stats.range,
                    agreement=stats.agreement)
    return json.dumps(document, ensure_ascii=False, indent=2)


def render(stats: TasteStatistics, output_format: str) -> str:
    return render_json(stats) if output_format == "json" else render_text(stats)
