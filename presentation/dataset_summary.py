"""A dataset's summary as text for the terminal, or as JSON for scripts."""
from __future__ import annotations

import dataclasses
import json

from dataset.summary import DatasetSummary
from presentation.text import WIDTH, bar, star_label, terminal_safe

FORMATS = ("text", "json")
BAR_WIDTH = 40


def render_text(summary: DatasetSummary, source: str) -> str:
    lines = [terminal_safe(f"Dataset in {source}"), "",
             f"users      {summary.rated_users:>12,} with ratings (of {summary.users:,} known)",
             f"films      {summary.rated_films:>12,} rated ({summary.films:,} known)",
             f"ratings    {summary.ratings:>12,} (mean {summary.mean_stars:.2f}★); "
             f"{summary.watched_unrated:,} films logged without one",
             f"density    {summary.density:>12.2%} of rated users x rated films",
             f"per user   {summary.median_ratings_per_user:>12,.0f} ratings (median; most "
             f"{summary.most_ratings_by_a_user:,})",
             f"per film   {summary.median_ratings_per_film:>12,.0f} ratings (median)"]
    ages = summary.scrapes
    if ages.median is not None:
        lines.append(f"scraped    {ages.oldest[:10]} to {ages.newest[:10]} (median "
                     f"{ages.median[:10]}, UTC)")
        lines.append("           users by age: " + ", ".join(
            f"{label} {count:,}" for label, count in ages.users_by_age.items() if count))
    total = sum(summary.histogram) or 1
    top = max(summary.histogram, default=0) / total or 1.0
    lines += ["", "Ratings"]
    for rating, count in enumerate(summary.histogram, start=1):
        share = count / total
        lines.append(f"{star_label(rating) + '★':<6}{share:>6.1%} {count:>12,}  "
                     f"{bar(share / top, BAR_WIDTH)}".rstrip())
    if summary.most_rated:
        lines += ["", "Most rated films"]
        width = WIDTH - 28
        for rank, film in enumerate(summary.most_rated, start=1):
            name = terminal_safe(f"{film.title} ({film.year})" if film.year else film.title)
            name = name if len(name) <= width else name[:width - 1] + "…"
            lines.append(f"{rank:>3}. {name:<{width}} {film.ratings:>9,}  {film.mean_stars:.2f}★")
    return "\n".join(lines)


def render_json(summary: DatasetSummary, source: str) -> str:
    document = {"dataset": source, **dataclasses.asdict(summary)}
    document["histogram"] = {f"{rating / 2:g}": count
                             for rating, count in enumerate(summary.histogram, start=1)}
    return json.dumps(document, ensure_ascii=False, indent=2)


def render(summary: DatasetSummary, source: str, output_format: str) -> str:
    return (render_json if output_format == "json" else render_text)(summary, source)
