"""Letterboxd's own facts and formats: its URLs, its pages, its export and list files."""
