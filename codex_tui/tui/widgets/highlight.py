"""Syntax highlighting for the diff pane: pygments tokens → theme-variable styles → Rich segments.

Tokenising (`highlight_lines`) yields spans whose styles are theme-variable strings from
`textual.highlight.HighlightTheme` (`"$text-accent"`, `"$text-success 90%"`…), so the work is done
once per text and survives theme changes; `StyleResolver` turns those strings into Rich styles
for the current theme and is cleared when the theme changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.token import _TokenType
from pygments.util import ClassNotFound
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.highlight import HighlightTheme
from textual.style import Style as VisualStyle

StyledSpan = tuple[int, int, str]
"""(start, end, style) over one line's text; style is a theme-variable style string."""
LineSpans = tuple[StyledSpan, ...]

TAB_SIZE = 4
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def clean_line(text: str, tab_size: int = TAB_SIZE) -> str:
    """Expand tabs and replace control characters (C0, DEL, C1) one-for-one so a line renders as one row.

    Unlike `strip_controls` this keeps every other character in place: a diff under review shows
    where an escape sequence was instead of hiding what follows it.
    """
    if "\t" in text:
        text = text.expandtabs(tab_size)
    if _CONTROL.search(text):
        text = _CONTROL.sub("\ufffd", text)
    return text


@lru_cache(maxsize=512)
def _lexer_for_name(basename: str) -> Lexer | None:
    try:
        lexer = get_lexer_for_filename(basename, stripnl=False, ensurenl=True, tabsize=0)
    except ClassNotFound:
        return None
    except Exception:  # a broken third-party lexer plugin must not break the diff pane
        return None
    return None if isinstance(lexer, TextLexer) else lexer


def lexer_for_path(path: str) -> Lexer | None:
    """The pygments lexer for a file name (cached), or None for plain text and unknown types."""
    return _lexer_for_name(os.path.basename(path))


@lru_cache(maxsize=1024)
def style_for_token(token_type: _TokenType) -> str:
    """The theme-variable style of a pygments token type ('' when unstyled)."""
    styles = HighlightTheme.STYLES
    current: _TokenType | None = token_type
    while current is not None:
        if (style := styles.get(current)) is not None:
            return style
        current = current.parent
    return ""


def highlight_lines(lines: Sequence[str], lexer: Lexer) -> list[LineSpans]:
    """Tokenise consecutive lines as one text and return each line's styled spans."""
    spans: list[list[StyledSpan]] = [[] for _ in lines]
    if not lines:
        return []
    row = col = 0
    last = len(lines) - 1
    for token_type, value in lexer.get_tokens("\n".join(lines) + "\n"):
        style = style_for_token(token_type)
        for index, part in enumerate(value.split("\n")):
            if index:
                row, col = row + 1, 0
            if part and style and row <= last:
                spans[row].append((col, col + len(part), style))
            col += len(part)
    return [tuple(line) for line in spans]


class StyleResolver:
    """Turns theme-variable style strings into Rich styles over a base style, with a cache."""

    def __init__(self, parse: Callable[[str], VisualStyle]) -> None:
        self._parse = parse
        self._cache: dict[tuple[RichStyle, str], RichStyle] = {}

    def clear(self) -> None:
        """Forget resolved styles (call when the theme changes)."""
        self._cache.clear()

    def resolve(self, base: RichStyle, style: str) -> RichStyle:
        """The Rich style of `style` drawn over `base` (alpha colours blended on its background)."""
        key = (base, style)
        resolved = self._cache.get(key)
        if resolved is None:
            try:
                visual = VisualStyle.from_rich_style(base) + self._parse(style)
                resolved = visual.rich_style
            except Exception:  # an unknown variable in a user theme falls back to the base style
                resolved = base
            self._cache[key] = resolved
        return resolved


def styled_segments(
    text: str, spans: LineSpans, base: RichStyle, resolver: StyleResolver | None
) -> list[Segment]:
    """Segments of one line: the base style with each span's resolved style on top."""
    if not spans or resolver is None:
        return [Segment(text, base)] if text else []
    segments: list[Segment] = []
    position = 0
    for start, end, style in spans:
        if start > position:
            segments.append(Segment(text[position:start], base))
        segments.append(Segment(text[start:end], resolver.resolve(base, style)))
        position = end
    if position < len(text):
        segments.append(Segment(text[position:], base))
    return segments
