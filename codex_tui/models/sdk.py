"""Thin helpers around the `openai` SDK's request building."""

from __future__ import annotations

from typing import Any

LARGE_PARAMS = ("input", "instructions", "tools", "messages")


def raw_body(kwargs: dict[str, Any], keys: tuple[str, ...] = LARGE_PARAMS) -> dict[str, Any]:
    """Move already wire-shaped, potentially large params into `extra_body`.

    The SDK walks every typed param recursively before sending (about 200 ms for a history of
    180 items, growing with its length). Our history is converted to the exact wire shape already,
    so the walk adds latency to every model call and changes nothing; `extra_body` is sent as is.
    """
    out = {k: v for k, v in kwargs.items() if k not in keys}
    extra = dict(out.pop("extra_body", None) or {})
    extra.update({k: kwargs[k] for k in keys if k in kwargs})
    if "messages" in extra:
        out["messages"] = []  # required by the SDK's signature; the body's value wins when merged
    if extra:
        out["extra_body"] = extra
    return out
