"""Source citations in agent answers (`path:line`, `path:start-end`) turned into Markdown links.

Ask answers cite files of the task's checkout; the chat renders each citation as a link whose
href is `cite:PATH:START-END`, and activating one opens the read-only file viewer there.
Fenced code blocks are left alone; a citation that is a whole inline code span (`` `a.py:3` ``)
becomes a link around that code span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

CITE_SCHEME = "cite:"
WORKSPACE_PREFIX = "/workspace/"
"""Where the checkout is mounted in the sandbox: absolute citations under it are made relative."""

_PATH = r"(?:\.{0,2}/)?(?:[\w.@+-]+/)*[\w@+-][\w.@+-]*\.[A-Za-z][A-Za-z0-9_]*"
_CITE = rf"(?P<path>{_PATH}):(?P<start>\d{{1,7}})(?:[-–](?P<end>\d{{1,7}}))?"
CITATION = re.compile(rf"(?<![\w/.:@-]){_CITE}(?![\w-])")
_CODE_CITE = re.compile(rf"`(?P<body>{_CITE})`")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True, slots=True)
class Citation:
    """A cited file and line range (1-based; `end` equals `start` for a single line)."""

    path: str
    start: int
    end: int

    @property
    def href(self) -> str:
        """The link target the chat uses for this citation."""
        return f"{CITE_SCHEME}{quote(self.path)}:{self.start}-{self.end}"

    @property
    def label(self) -> str:
        """`a.py:3` or `a.py:3-7`."""
        return (
            f"{self.path}:{self.start}" if self.end == self.start else f"{self.path}:{self.start}-{self.end}"
        )


def repo_path(path: str) -> str:
    """A cited path relative to the checkout, as the task manager expects it (`./`, /workspace/ dropped)."""
    if path.startswith(WORKSPACE_PREFIX):
        path = path[len(WORKSPACE_PREFIX) :]
    while path.startswith("./"):
        path = path[2:]
    return path


def _citation(match: re.Match[str]) -> Citation:
    start = int(match.group("start"))
    end = int(match.group("end") or start)
    return Citation(repo_path(match.group("path")), start, max(start, end))


def find_citations(text: str) -> list[Citation]:
    """Every citation in a text, in order (also inside code)."""
    return [_citation(m) for m in CITATION.finditer(text)]


def parse_href(href: str) -> Citation | None:
    """The citation of a `cite:` link (None for any other link)."""
    if not href.startswith(CITE_SCHEME):
        return None
    body = href[len(CITE_SCHEME) :]
    path, _, lines = body.rpartition(":")
    start, _, end = lines.partition("-")
    if not path or not start.isdigit():
        return None
    first = int(start)
    last = int(end) if end.isdigit() else first
    return Citation(unquote(path), first, max(first, last))


def linkify(markdown: str) -> str:
    """The Markdown with every citation outside fenced code made a `cite:` link."""
    if not CITATION.search(markdown):
        return markdown
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            out.append(line)
        elif opened:
            fence = opened.group(1)
            out.append(line)
        else:
            out.append(_linkify_line(line))
    return "\n".join(out)


def _linkify_line(line: str) -> str:
    """Link citations in one line, leaving existing links and other code spans as they are."""
    pieces: list[str] = []
    position = 0
    for protected in re.finditer(r"\[[^\]]*\]\([^)]*\)|`[^`]*`", line):
        pieces.append(_link_plain(line[position : protected.start()]))
        span = protected.group(0)
        code = _CODE_CITE.fullmatch(span)
        if code is not None:
            citation = _citation(code)
            span = f"[{span}]({citation.href})"
        pieces.append(span)
        position = protected.end()
    pieces.append(_link_plain(line[position:]))
    return "".join(pieces)


def _link_plain(text: str) -> str:
    return CITATION.sub(lambda m: f"[{m.group(0)}]({_citation(m).href})", text)
