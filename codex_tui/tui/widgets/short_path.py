"""Paths that fit a narrow column: the middle gives way, the file name stays whole."""

from __future__ import annotations

ELLIPSIS = "…"


def shorten_path(path: str, width: int) -> str:
    """`path` in at most `width` characters: `textkit/…/reading_time.py` rather than a wrapped line.

    The leading folders that fit are kept (whole folders only), then `…/` and the file name; a name
    longer than the room keeps its end (where the extension is). Width counts characters.
    """
    if width <= 0 or len(path) <= width:
        return path
    if width == 1:
        return ELLIPSIS
    head, _, name = path.rpartition("/")
    room = width - len(name) - 2
    if not head or room < 0:
        return ELLIPSIS + path[-(width - 1) :]
    kept = head[:room]
    kept = kept[: kept.rindex("/") + 1] if "/" in kept else ""
    return f"{kept}{ELLIPSIS}/{name}"
