"""The shape of the offline corpora's captions, "name: keyword, keyword" (CLDR's and
openclipart's habit), read back by training's text views and by evaluation's references."""

from __future__ import annotations


def parts(caption: str) -> tuple[str, list[str]]:
    """A caption's name and keywords: "name: a, b" → ("name", ["a", "b"])."""
    name, colon, rest = caption.partition(": ")
    keywords = [k.strip() for k in rest.split(",") if k.strip()] if colon else []
    return name.strip() or caption, keywords
