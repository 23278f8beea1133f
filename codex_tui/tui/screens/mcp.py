"""The /mcp screen: every configured MCP server with its transport, target, state and tools."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from codex_tui.boundary.terminal import strip_controls
from codex_tui.protocol import OpResult
from codex_tui.tui.bindings import MCP_BINDINGS

StatusLoader = Callable[[bool], Awaitable[OpResult]]
"""Reads the servers' status (OP_MCP_STATUS); True first starts the enabled servers."""

STATE_LOOKS: dict[str, tuple[str, str]] = {
    "stopped": ("○ not started", "$text-muted"),
    "starting": ("◔ starting", "$warning"),
    "ready": ("● running", "$success"),
    "failed": ("✘ failed", "$error"),
    "disabled": ("⊘ disabled", "$text-muted"),
}
NO_SERVERS = "No MCP servers configured: add [mcp_servers.NAME] tables to config.toml (see the README)."


def server_content(row: dict[str, Any]) -> Content:
    """One server: name and state, then transport · target · enabled, then its tools or its error."""
    name, state = _text(row.get("name")) or "?", _text(row.get("state")) or "stopped"
    label, style = STATE_LOOKS.get(state, (state, ""))
    enabled = "enabled" if row.get("enabled", True) else "disabled in config"
    parts: list[str | tuple[str, str]] = [
        (name, "bold $primary"),
        "  ",
        (label, style),
        "\n",
        (f"  {_text(row.get('transport')) or '?'} · {_text(row.get('target'))} · {enabled}", "$text-muted"),
    ]
    error = _text(row.get("error"))
    if state == "failed":
        parts += ["\n", ("  " + (error or "failed without a message"), "$error")]
    tools = [_text(t) for t in row.get("tools") or []]
    if tools:
        parts += ["\n", ("  tools: ", "bold"), ", ".join(tools)]
    elif state == "ready":
        parts += ["\n", ("  (no tools offered)", "$text-muted")]
    elif state == "stopped":
        parts += ["\n", ("  tools are listed once it starts (s starts the servers)", "$text-muted")]
    return Content.assemble(*parts)


class McpScreen(ModalScreen[None]):
    """Esc or q closes it; r reads the status again; s starts the enabled servers."""

    CSS_PATH = "mcp.tcss"
    BINDINGS: ClassVar[list[BindingType]] = MCP_BINDINGS

    def __init__(self, load: StatusLoader) -> None:
        super().__init__()
        self.load = load
        self.rows: list[dict[str, Any]] = []
        self.message = ""

    def compose(self) -> ComposeResult:
        """A title, one block per server, and the keys."""
        with Vertical(id="mcp-dialog"):
            yield Static(Content.styled("MCP servers", "bold $primary"), id="mcp-title")
            yield VerticalScroll(id="mcp-servers")
            yield Footer()

    def on_mount(self) -> None:
        """Read the status without starting anything."""
        self.refresh_status(start=False)

    def action_refresh(self) -> None:
        """Read the servers' status again."""
        self.refresh_status(start=False)

    def action_start(self) -> None:
        """Start the enabled servers (bounded by their startup timeouts), then show their status."""
        self.refresh_status(start=True)

    def action_close(self) -> None:
        """Close the screen."""
        self.dismiss(None)

    @work(exclusive=True, group="mcp-status")
    async def refresh_status(self, *, start: bool) -> None:
        """Ask the source for the status and show it (a failure is shown in place of the list)."""
        await self._show_message("Starting the servers…" if start else "Reading the servers' status…")
        try:
            result = await self.load(start)
        except Exception as exc:  # the source answers with values; guard the screen anyway
            result = OpResult(False, f"could not read the MCP servers: {exc}")
        servers = result.data.get("servers") if result.ok else None
        if not isinstance(servers, list):
            self.rows = []
            await self._show_message(result.message or "could not read the MCP servers", error=True)
            return
        self.rows = [row for row in servers if isinstance(row, dict)]
        if not self.rows:
            await self._show_message(NO_SERVERS)
            return
        self.message = ""
        body = self.query_one("#mcp-servers", VerticalScroll)
        await body.remove_children()
        await body.mount_all(Static(server_content(row), classes="mcp-server") for row in self.rows)

    async def _show_message(self, text: str, *, error: bool = False) -> None:
        self.message = strip_controls(text)
        body = self.query_one("#mcp-servers", VerticalScroll)
        await body.remove_children()
        classes = "mcp-message error" if error else "mcp-message"
        await body.mount(Static(Content(self.message), classes=classes))


def _text(value: Any) -> str:
    return strip_controls(str(value)) if value is not None else ""
