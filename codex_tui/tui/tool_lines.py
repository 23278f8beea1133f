"""Chat lines of MCP tool calls and web searches: a head line and a foldable detail.

Everything here comes from the model, an MCP server or the web: it reaches these functions with its
control sequences already stripped (`AppState.apply`) and is only ever shown as plain text.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

from codex_tui import protocol as p

FOLDED_LINES = 6
"""Detail lines shown before the block is expanded."""
MAX_DETAIL_CHARS = 20_000
"""Detail kept per block (the model got the whole result; the chat only needs enough to read)."""
MAX_SOURCES = 5
"""Web search sources listed under the query."""
MCP_ICON = "⚒"
SEARCH_ICON = "🔎"
_STATUS_WORDS = {"in_progress": "running", "completed": "completed", "failed": "failed"}


@dataclass(frozen=True, slots=True)
class ToolLine:
    """What the chat shows for one tool item: icon, head line, detail lines, error or not."""

    icon: str
    text: str
    detail: str = ""
    error: bool = False


def mcp_call_line(item: dict[str, Any]) -> ToolLine:
    """`⚒ server.tool(text="hi") · completed`, the result's text and image markers below it."""
    status = str(item.get("status") or "in_progress")
    call = f"{item.get('server') or '?'}.{item.get('tool') or '?'}({arguments_text(item.get('arguments'))})"
    head = f"{call} · {_STATUS_WORDS.get(status, status)}"
    result = item.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    markers = [image_marker(b) for b in blocks if b.get("type") == "image"]
    if status == "failed":
        detail = "\n".join([str(item.get("error") or "the call failed"), *markers])
        return ToolLine(MCP_ICON, head, _bounded(detail), error=True)
    texts = [content_text(b) for b in blocks]
    if not any(texts) and isinstance(result, dict) and result.get("structured_content") is not None:
        texts = [json.dumps(result["structured_content"], ensure_ascii=False)]
    return ToolLine(MCP_ICON, head, _bounded("\n".join(t for t in [*texts, *markers] if t)))


def web_search_line(item: dict[str, Any]) -> ToolLine:
    """`🔎 Searched "query"`, and up to MAX_SOURCES sources (title — url) below it."""
    query = " ".join(str(item.get("query") or "").split())
    quoted = f'"{_short(query, 120)}"' if query else "the web"
    status = str(item.get("status") or "in_progress")
    if status == "in_progress":
        return ToolLine(SEARCH_ICON, f"Searching {quoted}")
    if status == "failed":
        reason = str(item.get("error") or "")
        return ToolLine(SEARCH_ICON, f"Search failed: {quoted}", _bounded(reason), error=True)
    raw = item.get("sources")
    sources = [source_text(s) for s in raw] if isinstance(raw, list) else []
    sources = [s for s in sources if s]
    shown = sources[:MAX_SOURCES]
    if len(sources) > MAX_SOURCES:
        shown.append(f"… and {len(sources) - MAX_SOURCES} more")
    return ToolLine(SEARCH_ICON, f"Searched {quoted}", "\n".join(shown))


def arguments_text(arguments: Any, limit: int = 80) -> str:
    """A call's arguments on one line: `text="hi", n=2` (raw text when they are not an object)."""
    if isinstance(arguments, dict):
        text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    elif arguments is None:
        text = ""
    else:
        text = str(arguments)
    return _short(" ".join(text.split()), limit)


def content_text(block: dict[str, Any]) -> str:
    """One MCP content block as chat text: its text, an image marker, or what kind it was."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "image":
        return ""  # listed as markers after the text
    if kind == "resource":
        resource = block.get("resource")
        if isinstance(resource, dict):
            return str(resource.get("text") or f"[resource {resource.get('uri', '')}]")
        return "[resource]"
    if kind == "resource_link":
        return f"[resource link {block.get('uri', '')}]"
    return f"[{kind} content]"


def source_text(source: Any) -> str:
    """A web source as one line: `title — url`, or the url alone."""
    if isinstance(source, dict):
        url = " ".join(str(source.get("url") or "").split())
        title = " ".join(str(source.get("title") or "").split())
        text = f"{_short(title, 80)} — {url}" if title and url else title or url
    else:
        text = " ".join(str(source).split())
    return _short(text, 160)


def image_marker(block: dict[str, Any]) -> str:
    """`[image 640×480 png]` (size read from the data's header; `[image png, 1.2 MB]` when omitted)."""
    mime = str(block.get("mime_type") or block.get("mimeType") or "image/?")
    kind = mime.rsplit("/", 1)[-1] or "?"
    data = block.get("data")
    size = image_size(_b64_head(data)) if isinstance(data, str) else None
    if size is not None:
        return f"[image {size[0]}×{size[1]} {kind}]"
    omitted = block.get("omitted_bytes")
    if isinstance(omitted, int) and not isinstance(omitted, bool):
        return f"[image {kind}, {omitted / 1_000_000:.1f} MB]"
    return f"[image {kind}]"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, JPEG or WebP header; None when unknown or malformed."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])  # type: ignore[return-value]
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])  # type: ignore[return-value]
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
    except struct.error:
        return None
    return None


def fold(detail: str, lines: int = FOLDED_LINES) -> tuple[str, int]:
    """The first `lines` lines of `detail` and how many more there are."""
    rows = detail.splitlines()
    return "\n".join(rows[:lines]), max(0, len(rows) - lines)


def tool_line(item: dict[str, Any]) -> ToolLine:
    """The chat line of an MCP call or a web search item."""
    if item.get("type") == p.ITEM_WEB_SEARCH:
        return web_search_line(item)
    return mcp_call_line(item)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _b64_head(data: str, chars: int = 88_000) -> bytes:
    """The first bytes of base64 data (enough for any header; a JPEG's may follow EXIF)."""
    head = data[: chars - chars % 4]
    try:
        return base64.b64decode(head, validate=False)
    except (binascii.Error, ValueError):
        return b""


def _bounded(text: str) -> str:
    text = text.strip("\n")
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
