"""Selectors of this domain; see ../shared/STYLE.md for what belongs here."""
