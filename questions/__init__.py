"""recommend.py's questions beside the list, on the command line: their flags and
typed requests (`arguments`), and how each is answered and printed (`commands`)."""
