"""HTML of the simulated letterboxd.com, shaped like the real 2026 server markup.

The structure (tags, classes, data attributes, quoting) follows the saved real pages
(tests/fixtures/pages, copied from ../shared/letterboxd_pages) and the spec in
../shared/docs/letterboxd_markup.md, so parsers written against the real site work
here unchanged. The surrounding chrome (menus, scripts, ads) is left out: parsers must
not depend on it. Pure functions only.
"""
from __future__ import annotations

import json
from functools import lru_cache
from html import escape

from letterboxd.urls import film_url
from simulated_site.records import MemberRow, SiteEntry, SiteFilm

ROBOTS_TXT = """\
# Rules of letterboxd.com/robots.txt (2025-07 snapshot), served by the simulated site.
User-agent: *
Disallow: /*/by/*
Disallow: /*/popular/this/*
Disallow: /*/on/*
Disallow: /*/tag/*
Disallow: /*/genre/*
Disallow: /*/country/*
Disallow: /*/language/*
Disallow: /*/decade/*
Disallow: /films/year/*
Disallow: /films/*/year/*
Disallow: /films/*/size/large/*
Disallow: /*/friends/*

User-agent: GPTBot
Disallow: /

User-agent: ClaudeBot
Disallow: /

User-agent: CCBot
Disallow: /
"""

_EMPTY_POSTER = "https://s.ltrbxd.com/static/img/empty-poster-{width}-BSf-Pjrh.png"


def _attr(text: object) -> str:
    return escape(str(text), quote=True)


def _single_quoted(text: str) -> str:
    """Escape for a single-quoted attribute, as the raw pages quote their JSON."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&#039;")


def _number(value: int) -> str:
    return f"{value:,}"


def stars(rating: int) -> str:
    """`rated-7` shows as ★★★½."""
    return "★" * (rating // 2) + ("½" if rating % 2 else "")


def _document(title: str, body_attributes: str, content: str, head_extra: str = "") -> str:
    return f"""<!DOCTYPE html>
<html id="html" lang="en" class="no-mobile no-js">
<head>
\t<meta charset="UTF-8">
\t<title>{title}</title>
{head_extra}</head>
<body {body_attributes}>
<header id="header" class="site-header"><h1 class="site-logo"><a href="/" class="logo replace">Letterboxd</a></h1></header>
<div id="content" class="site-body">
\t<div class="content-wrap">
{content}
\t</div>
</div>
<footer id="page-footer" class="page-footer"><nav class="footer-nav"><ul><li><a href="/about/">About</a></li><li><a href="/legal/terms-of-use/">Terms</a></li><li><a href="/api-beta/">API</a></li></ul></nav></footer>
</body>
</html>
"""


def _identifier(film: SiteFilm) -> str:
    return json.dumps({"lid": film.lid, "uid": f"film:{film.letterboxd_id}", "type": "film",
                       "typeName": "film"}, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=65536)
def lazy_poster(film: SiteFilm, *, width: int, height: int, strip_film_id: bool,
                target_link: str | None = None) -> str:
    """The React LazyPoster island every poster grid and film page carries.

    Cached: a film's island never changes, and benchmarks need a fast site.
    """
    identifier = _identifier(film)
    resolvable = json.dumps({"postered": json.loads(identifier),
                             "posteredBaseLink": f"/film/{film.slug}/", "isAdultThemed": False,
                             "hasDefaultPoster": True, "cacheBustingKey": f"{film.letterboxd_id:08x}"},
                            separators=(",", ":"), ensure_ascii=False)
    link = f"/film/{film.slug}/"
    film_id = "" if strip_film_id else f' data-film-id="{film.letterboxd_id}"'
    empty = _EMPTY_POSTER.format(width=width)
    return (
        f'<div class="react-component" data-component-class="LazyPoster" '
        f'data-request-poster-metadata="true" data-likeable="true" data-watchable="true" '
        f'data-rateable="true" data-image-width="{width}" data-image-height="{height}" '
        f'data-item-name="{_attr(film.display_name)}" data-item-slug="{film.slug}" '
        f'data-item-link="{link}" data-item-full-display-name="{_attr(film.display_name)}"'
        f"{film_id} data-postered-identifier='{_single_quoted(identifier)}' "
        f'data-poster-url="{link}image-150/" '
        f"data-resolvable-poster-path='{_single_quoted(resolvable)}' "
        f'data-empty-poster-src="{empty}" data-is-linked="true" '
        f'data-target-link="{target_link or link}" data-details-endpoint="{link}json/" '
        f'data-show-menu="true" > <div class="poster film-poster"> <img src="{empty}" '
        f'class="image" width="{width}" height="{height}" alt="{_attr(film.title)}"/> '
        f'<span class="frame"><span class="frame-title"></span></span> </div> </div>'
    )


def _viewing_data(film: SiteFilm, entry: SiteEntry) -> str:
    parts = []
    if entry.rating is not None:
        parts.append(f'<span class="rating -micro -darker rated-{entry.rating}">'
                     f'{stars(entry.rating)}</span>')
    if entry.liked:
        parts.append('<span class="like liked-micro has-icon icon-liked icon-16">'
                     '<span class="icon"></span></span>')
    return (f'<p class="poster-viewingdata" data-item-uid="film:{film.letterboxd_id}"> '
            f'{" ".join(parts)} </p>')


def _grid(tiles: list[tuple[SiteFilm, SiteEntry]], *, width: int, height: int,
          strip_film_id: bool, with_viewing_data: bool, grid_class: str) -> str:
    items = []
    for film, entry in tiles:
        viewing = f" {_viewing_data(film, entry)}" if with_viewing_data else ""
        items.append(f'\t\t<li class="griditem">\n\t\t\t'
                     f'{lazy_poster(film, width=width, height=height, strip_film_id=strip_film_id)}'
                     f'{viewing}\n\t\t</li>\n')
    return (f'<div class="poster-grid">\n\t<ul class="{grid_class}">\n{"".join(items)}'
            f'\t</ul>\n</div>')


def _page_href(base: str, page: int) -> str:
    return base if page == 1 else f"{base}page/{page}/"


def numbered_pagination(base: str, page: int, last_page: int) -> str:
    """Prev/next plus page numbers with ellipses, as on a member's films grid."""
    if last_page <= 1 or page > last_page:
        return ""
    previous = (f'<div class="paginate-nextprev"><a class="previous" '
                f'href="{_page_href(base, page - 1)}">Newer</a></div>' if page > 1 else
                '<div class="paginate-nextprev paginate-disabled"><span class="previous">Newer</span></div>')
    following = (f'<div class="paginate-nextprev"><a class="next" '
                 f'href="{_page_href(base, page + 1)}">Older</a></div>' if page < last_page else
                 '<div class="paginate-nextprev paginate-disabled"><span class="next">Older</span></div>')
    shown = sorted({1, last_page} | {n for n in range(page - 2, page + 3) if 1 <= n <= last_page})
    items = []
    for index, number in enumerate(shown):
        if index and number - shown[index - 1] > 1:
            items.append('<li class="paginate-page unseen-pages">&hellip;</li>')
        if number == page:
            items.append(f'<li class="paginate-page paginate-current"><span>{number}</span></li>')
        else:
            items.append(f'<li class="paginate-page"><a href="{_page_href(base, number)}">'
                         f'{number}</a></li>')
    return (f'<div class="pagination"> {previous} {following} <div class="paginate-pages"> '
            f'<ul> {" ".join(items)} </ul> </div> </div>')


def members_page(rows: list[MemberRow], page: int, has_next: bool) -> str:
    """/members/popular/: a member table with prev/next links only."""
    base = "/members/popular/"
    body_rows = []
    for row in rows:
        name, user = _attr(row.display_name), row.username
        body_rows.append(
            f'<tr>\n\t<td class="col-member table-person"><div class="person-summary"> '
            f'<a class="avatar -a40" href="/{user}/"> <img src="https://s.ltrbxd.com/static/img/'
            f'avatar80-Bb3pMi4c.png" alt="{name}" width="40" height="40"> </a> '
            f'<h3 class="title-3"> <a href="/{user}/" class="name"> {name} </a> </h3> '
            f'<small class="metadata"><a href="/{user}/reviews/">0&nbsp;reviews</a></small> '
            f'</div></td>\n'
            f'\t<td class="col-watched _paddinginlinelg table-stats"><a class="has-icon icon-16 '
            f'icon-watched" href="/{user}/films/"><span class="icon"></span>'
            f'{_number(row.watched)}</a></td>\n'
            f'\t<td class="col-lists _paddinginlinelg table-stats"><a class="has-icon icon-16 '
            f'icon-list" href="/{user}/lists/"><span class="icon"></span>0</a></td>\n'
            f'\t<td class="col-likes _paddinginlinelg table-stats"><a class="has-icon icon-16 '
            f'icon-liked" href="/{user}/likes/"><span class="icon"></span>'
            f'{_number(row.liked)}</a></td>\n</tr>\n')
    previous = (f'<div class="paginate-nextprev"><a class="previous" '
                f'href="{_page_href(base, page - 1)}">Previous</a></div>' if page > 1 else
                '<div class="paginate-nextprev paginate-disabled"><span class="previous">Previous</span></div>')
    following = (f'<div class="paginate-nextprev"><a class="next" '
                 f'href="{_page_href(base, page + 1)}">Next</a></div>' if has_next else
                 '<div class="paginate-nextprev paginate-disabled"><span class="next">Next</span></div>')
    content = f"""<div class="cols-2">
<section class="section col-17 col-main">
<div id="content-nav" class="gapless"> <h2 class="section-heading">Popular Members</h2> <div class="clear"></div> </div>
<table class="table-base member-table">
\t<colgroup><col class="col-member"><col class="col-watched"><col class="col-lists"><col class="col-likes"></colgroup>
\t<thead><tr><th class="col-member">Name</th><th class="col-watched _paddinginlinelg">Watched</th><th class="col-lists _paddinginlinelg">Lists</th><th class="col-likes _paddinginlinelg">Likes</th></tr></thead>
\t<tbody>
{"".join(body_rows)}\t</tbody>
</table>
<div class="pagination"> {previous} {following} </div>
</section>
</div>"""
    return _document("&lrm;Popular members &bull; Letterboxd", 'class="members"', content)


def films_page(username: str, display_name: str, tiles: list[tuple[SiteFilm, SiteEntry]],
               page: int, last_page: int, total: int, *, strip_film_id: bool) -> str:
    """/USER/films/: 72 poster tiles with the member's rating and like under each."""
    base = f"/{username}/films/"
    grid = _grid(tiles, width=70, height=105, strip_film_id=strip_film_id,
                 with_viewing_data=True, grid_class="grid -p70")
    content = f"""<div class="cols-2 overflow">
<section class="section col-main overflow">
<div id="content-nav" class="tabbed"> <h1 class="section-heading"><span class="tooltip" title="{_number(total)}&nbsp;films">Watched</span></h1> <div class="clear"></div> </div>
{grid}
{numbered_pagination(base, page, last_page)}
<div class="clear"></div>
</section>
</div>"""
    return _document(f"&lrm;{_attr(display_name)}’s films &bull; Letterboxd",
                     f'class="screen-member-child-page films-watched wide small-poster-grid" '
                     f'data-owner="{username}"', content)


def watchlist_page(username: str, display_name: str, films: list[SiteFilm], page: int,
                   last_page: int, total: int, *, strip_film_id: bool) -> str:
    """/USER/watchlist/: 28 poster tiles, no viewing data, the count on the wrapper."""
    base = f"/{username}/watchlist/"
    tiles = [(film, SiteEntry(film.slug, None, False)) for film in films]
    grid = _grid(tiles, width=125, height=187, strip_film_id=strip_film_id,
                 with_viewing_data=False, grid_class="grid -p125 -constrained")
    content = f"""<div class="cols-2 js-watchlist-content" data-num-entries="{total}">
<section class="section col-17 col-main js-watchlist-main-content">
<header class="page-header"><h1 class="section-heading"><span class="replace-if-you" data-person="{username}">{_attr(display_name)} wants</span> to see <span class="js-watchlist-count">{_number(total)}&nbsp;films</span></h1></header>
{grid}
{numbered_pagination(base, page, last_page)}
</section>
</div>"""
    return _document(f"&lrm;{_attr(display_name)}’s Watchlist &bull; Letterboxd",
                     f'class="screen-member-child-page watchlist" data-owner="{username}"', content)


def film_page(film: SiteFilm, rating_count: int, rating_mean: float | None, *,
              strip_film_id: bool) -> str:
    """/film/SLUG/: masthead, poster column, external links and the JSON-LD block."""
    slug, title = film.slug, _attr(film.title)
    identifier = _identifier(film)
    linked_data: dict[str, object] = {
        "@type": "Movie", "@context": "http://schema.org",
        "url": film_url(slug), "@id": film_url(slug),
        "name": film.title, "genre": list(film.genres), "dateCreated": "2011-06-22",
    }
    if film.year is not None:
        linked_data["releasedEvent"] = [{"@type": "PublicationEvent", "startDate": str(film.year)}]
    if rating_count and rating_mean is not None:
        linked_data["aggregateRating"] = {
            "bestRating": 5, "reviewCount": 0, "@type": "aggregateRating",
            "ratingValue": round(rating_mean / 2, 2), "ratingCount": rating_count,
            "worstRating": 0}
    # `</` inside the script would end it early: JSON allows escaping the slash.
    json_ld = json.dumps(linked_data, ensure_ascii=False).replace("</", "<\\/")
    release = (f'<span class="releasedate"> <a href="/films/year/{film.year}/">{film.year}</a> </span>'
               if film.year is not None else "")
    links = []
    if film.imdb_id:
        links.append(f'<a href="http://www.imdb.com/title/{film.imdb_id}/maindetails" '
                     f'class="micro-button track-event" data-track-action="IMDb" '
                     f'target="_blank" >IMDb</a>')
    tmdb_kind = "tv" if film.content_type == "tv" else "movie"
    if film.tmdb_id:
        links.append(f'<a href="https://www.themoviedb.org/{tmdb_kind}/{film.tmdb_id}/" '
                     f'class="micro-button track-event" data-track-action="TMDB" '
                     f'target="_blank" >TMDB</a>')
    genres = " ".join(f'<a href="/films/genre/{_attr(genre.lower().replace(" ", "-"))}/" '
                      f'class="text-slug">{_attr(genre)}</a>' for genre in film.genres)
    runtime = f"{film.runtime}&nbsp;mins &nbsp;" if film.runtime else ""
    details = _details_tab(film)
    head = (f'\t<meta property="og:type" content="video.movie">\n'
            f'\t<meta property="og:url" content="{film_url(slug)}">\n'
            f'\t<meta property="og:title" content="{_attr(film.display_name)}">\n'
            f'\t<meta name="production:identifier" content="{_attr(identifier)}">\n'
            f'\t<meta name="production:name" content="{title}">\n'
            f'\t<script type="text/javascript"> (function(data) {{ data.viewingable = '
            f"data.viewingable || {{}}; data.viewingable.uid = 'film:{film.letterboxd_id}'; "
            f"data.viewingable.type = 'film'; data.viewingable.dataEndpoint = '/film/{slug}/json/'; "
            f'}})(window.__BXD_DATA = window.__BXD_DATA || {{}}) </script>\n')
    poster = lazy_poster(film, width=230, height=345, strip_film_id=strip_film_id, target_link="/")
    content = f"""<div id="film-page-wrapper" class="cols-3 overflow">
\t<div class="col-6 gutter-right-1 col-poster-large" id="js-poster-col">
\t\t<section class="poster-list -p230 -single no-hover el col">
\t\t\t{poster} <div class="csi js-serial-csi " data-src="/csi/film/{slug}/stats/" data-on-load=""> <div class="production-statistic-list -placeholder" aria-busy="true"> </div> </div>
\t\t</section>
\t</div>
\t<div class="col-17">
\t\t<section class="production-masthead -shadowed -productionscreen -film">
\t\t\t<div class="details">
<h1 class="headline-1 primaryname"><span class="name js-widont prettify">{title}</span></h1>
\t\t\t\t<div class="productioninfo"> {release} </div>
\t\t\t</div>
\t\t</section>
\t\t<section class="section col-10 col-main">
\t\t\t<div id="tabbed-content"><div id="tab-genres" class="tabbed-content-block column-block"> <h3><span>Genres</span></h3> <div class="text-sluglist capitalize"> <p> {genres} </p> </div> </div>{details}</div>
\t\t\t<p class="text-link text-footer"> {runtime} More at {" ".join(links)} <span class="block-flag-wrapper"> <a href="#" class="report-link" data-report-url="/ajax/film:{film.letterboxd_id}/report-form">Report this page</a> </span> </p>
\t\t</section>
\t\t<aside class="sidebar"><div class="csi js-csi " data-src="/csi/film/{slug}/ratings-summary/" data-on-load="rating-histogram"></div></aside>
\t</div>
</div>
<script type="application/ld+json">
/* <![CDATA[ */
{json_ld}
/* ]]> */
</script>"""
    # As on the real site, a series' body carries no TMDB id (its link above does).
    tmdb = film.tmdb_id if film.tmdb_id is not None and tmdb_kind == "movie" else ""
    return _document(f"&lrm;{_attr(film.display_name)} &bull; Letterboxd",
                     f'class="film backdropped" data-type="film" data-tmdb-type="movie" '
                     f'data-tmdb-id="{tmdb}"', content, head)


def _details_tab(film: SiteFilm) -> str:
    """The Details tab: countries and the primary language, linked as the site links them."""
    def slugs(kind: str, names: tuple[str, ...]) -> str:
        return " ".join(f'<a href="/films/{kind}/{_attr(name.lower().replace(" ", "-"))}/" '
                        f'class="text-slug"> {_attr(name)} </a>' for name in names)

    parts = []
    if film.countries:
        heading = "Countries" if len(film.countries) > 1 else "Country"
        parts.append(f'<h3><span>{heading}</span></h3> <div class="text-sluglist"> <p> '
                     f'{slugs("country", film.countries)} </p> </div>')
    if film.language:
        parts.append('<h3><span>Primary Language</span></h3> <div class="text-sluglist"> <p> '
                     f'{slugs("language", (film.language,))} </p> </div>')
    if not parts:
        return ""
    return ('<div id="tab-details" class="tabbed-content-block column-block"> '
            + " ".join(parts) + " </div>")


def _message_page(title: str, heading: str, text: str) -> str:
    content = (f'<section class="message"> <h2 class="title">{heading}</h2> '
               f'<p><strong>{text}</strong></p> </section>')
    return _document(title, 'class="error message-dark"', content)


def not_found_page() -> str:
    return _message_page("Letterboxd - Not Found", "Oops",
                         "Sorry, we can’t find the page you’ve requested.")


def forbidden_page() -> str:
    """Letterboxd's own 403 (hidden watchlist, private content), not Cloudflare's."""
    return _message_page("Letterboxd - Forbidden", "Access denied",
                         "The file you’re attempting to access is classified. "
                         "Please contact us if you have the correct clearance.")


def challenge_page(ray: str) -> str:
    """Cloudflare's interstitial: what a bot gets once it is spotted. Never to be solved."""
    return f"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta name="robots" content="noindex,nofollow">
</head><body><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">letterboxd.com</h1>
<h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2>
<noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript>
</div></div>
<script src="https://challenges.cloudflare.com/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray={ray}"></script>
<div class="footer" role="contentinfo">Ray ID: <code>{ray}</code> Performance &amp; security by Cloudflare</div>
</body></html>
"""


def rate_limited_page() -> str:
    return _message_page("Letterboxd - Too Many Requests", "Slow down",
                         "You are making too many requests. Please try again later.")


def server_error_page(status: int, ray: str) -> str:
    """A Cloudflare-style error page for 500/502/503."""
    reason = {500: "Internal server error", 502: "Bad gateway",
              503: "Service unavailable"}.get(status, "Error")
    return (f"<!DOCTYPE html><html><head><title>letterboxd.com | {status}: {reason}</title></head>"
            f'<body><div id="cf-error-details"><h1>{reason}</h1><span>Error code {status}</span>'
            f"<p>Ray ID: {ray}</p></div></body></html>\n")
