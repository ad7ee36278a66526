"""How answers are shown: terminal tables, CSV and JSON, Letterboxd's list import."""
