"""Group picks as a table (a column of predicted stars per member), CSV or JSON."""
from __future__ import annotations

import json

import pandas as pd

from presentation.film_table import FilmRow, film_table, wrapped
from presentation.picks import stars
from presentation.text import terminal_safe
from presentation.text_width import cut_to_width
from recommending.group import GroupPicks, GroupRule
from safe_files import spreadsheet_safe

FORMATS = ("table", "csv", "json")
MEMBER_COLUMN = 10  # at most: a name is cut to this many columns over its stars
RULE_WORDS = {
    GroupRule.LEAST_MISERY: "least misery: the lowest of the members' predicted stars, so "
                            "the film suits whoever would like it least",
    GroupRule.AVERAGE: "average: the mean of the members' predicted stars",
}


def render_group(group: GroupPicks, output_format: str, width: int | None = 80) -> str:
    names = [terminal_safe(name) for name in group.members]
    if output_format == "json":
        return json.dumps({
            "members": list(group.members), "rule": group.rule.value,
            "picks": [{"rank": pick.rank, "title": pick.film.title, "year": pick.film.year,
                       "slug": pick.film.slug, "letterboxd_uri": pick.film.uri,
                       "group_rating": round(pick.group_rating, 2),
                       "predicted_stars": dict(zip(group.members, pick.predicted_stars)),
                       "predicted_rating": {name: round(rating, 2) for name, rating in
                                            zip(group.members, pick.predicted_ratings)}}
                      for pick in group.picks]}, ensure_ascii=False, indent=2)
    if output_format == "csv":
        columns = ["rank", "title", "year", "slug", "letterboxd_uri", "group_rating",
                   *(f"stars_{name}" for name in group.members)]
        frame = pd.DataFrame([[pick.rank, spreadsheet_safe(pick.film.title),
                               pick.film.year or "", pick.film.slug, pick.film.uri,
                               f"{pick.group_rating:.1f}", *pick.predicted_stars]
                              for pick in group.picks], columns=columns)
        frame.columns = [spreadsheet_safe(column) for column in frame.columns]
        return frame.to_csv(index=False, lineterminator="\n").rstrip("\n")
    column = MEMBER_COLUMN
    if width is not None:  # narrower names before a title is cut to nothing
        column = max(5, min(column, (width - 30) // max(len(names), 1) - 2))
    headers = [cut_to_width(name, column) for name in names]
    rows = [FilmRow(pick.film.title, pick.film.year,
                    tuple(stars(value) for value in pick.predicted_stars))
            for pick in group.picks]
    lines = wrapped(f"For {', '.join(names)}: films none of you has logged, "
                    f"by {RULE_WORDS[group.rule]}.", width)
    if not rows:
        return "\n".join([*lines, "No film passes the filters."])
    lines += film_table(rows, headers, width)
    shortened = [f"{header} = {name}" for header, name in zip(headers, names)
                 if header != name]
    if shortened:
        lines += wrapped("Columns: " + "; ".join(shortened), width)
    lines += wrapped("★ = the rating the model predicts each of you would give.", width)
    return "\n".join(lines)
