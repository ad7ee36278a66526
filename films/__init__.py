"""One identity for a film across sources: titles, slugs, years and the matcher."""
