"""A recommendation list as a terminal table, CSV or JSON, and as list-import entries."""
from __future__ import annotations

import json
from typing import Sequence

import pandas as pd

from letterboxd.list_import import ListEntry
from safe_files import spreadsheet_safe
from recommending.picks import Recommendation

FORMATS = ("table", "csv", "json")


def stars(value: float) -> str:
    whole = int(value)
    return "★" * whole + ("½" if value - whole >= 0.5 else "")


def _title_and_year(title: str, year: int | None) -> str:
    return f"{title} ({year})" if year else title


def render(picks: Sequence[Recommendation], output_format: str) -> str:
    if output_format == "json":
        return json.dumps([{
            "rank": pick.rank, "title": pick.title, "year": pick.year, "slug": pick.slug,
            "letterboxd_uri": pick.uri, "predicted_stars": pick.predicted_stars,
            "predicted_rating": round(pick.predicted_rating, 2), "because": list(pick.because),
            "on_watchlist": pick.on_watchlist} for pick in picks], ensure_ascii=False, indent=2)
    if output_format == "csv":
        frame = pd.DataFrame([{
            "rank": pick.rank, "title": pick.title, "year": pick.year or "", "slug": pick.slug,
            "letterboxd_uri": pick.uri, "predicted_stars": pick.predicted_stars,
            "because": "; ".join(pick.because),
            "on_watchlist": "yes" if pick.on_watchlist else ""} for pick in picks],
            columns=["rank", "title", "year", "slug", "letterboxd_uri", "predicted_stars",
                     "because", "on_watchlist"])
        for column in ("title", "because"):
            frame[column] = frame[column].map(spreadsheet_safe)
        return frame.to_csv(index=False, lineterminator="\n").rstrip("\n")
    lines = []
    width = max((len(_title_and_year(pick.title, pick.year)) for pick in picks), default=10)
    width = min(width, 48)
    for pick in picks:
        name = _title_and_year(pick.title, pick.year)
        name = name if len(name) <= width else name[:width - 1] + "…"
        reason = ("because you rated " + "; ".join(pick.because) + " highly") if pick.because \
            else ""
        mark = " [watchlist]" if pick.on_watchlist else ""
        lines.append(f"{pick.rank:>3}. {name:<{width}}  {stars(pick.predicted_stars):<5} "
                     f"{reason}{mark}".rstrip())
    return "\n".join(lines)


def list_entries(picks: Sequence[Recommendation]) -> list[ListEntry]:
    return [ListEntry(uri=pick.uri, title=pick.title, year=pick.year,
                      review=f"predicted {pick.predicted_stars:g}★"
                      + (f" · because you rated {'; '.join(pick.because)} highly"
                         if pick.because else ""))
            for pick in picks]
