"""How a task's resource meters read on screen (status bar, task tiles): `cpu 12% · mem 140M · disk 35M`."""

from __future__ import annotations

from codex_tui.protocol import ResourceUsage


def format_bytes(count: int) -> str:
    """A short size: `512B`, `140M`, `2.0G` (binary units)."""
    value = float(count)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            break
        value /= 1024
    if unit in ("B", "K", "M") or value >= 10:
        return f"{value:.0f}{unit}"
    return f"{value:.1f}{unit}"


def usage_text(usage: ResourceUsage | None) -> str:
    """One line of the known meters ("" when nothing is known)."""
    if usage is None:
        return ""
    parts: list[str] = []
    if usage.cpu_percent is not None:
        parts.append(f"cpu {usage.cpu_percent:.0f}%")
    if usage.memory_bytes is not None:
        limit = f"/{format_bytes(usage.memory_limit_bytes)}" if usage.memory_limit_bytes else ""
        parts.append(f"mem {format_bytes(usage.memory_bytes)}{limit}")
    if usage.disk_bytes is not None:
        parts.append(f"disk {format_bytes(usage.disk_bytes)}")
    return " · ".join(parts)
