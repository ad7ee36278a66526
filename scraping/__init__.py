"""Reading the site: the fetcher's parts (fetch_ratings.py is its face), page walking, the crawl."""
