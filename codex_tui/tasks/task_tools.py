"""Tools a task offers beyond the built-in ones: its MCP servers' tools and the hosted web search."""

from __future__ import annotations

from codex_tui.agent.web_search import NO_HOSTED_SEARCH
from codex_tui.config import BUILTIN_PROVIDERS, Config
from codex_tui.protocol import NOTE
from codex_tui.tasks.mcp_servers import McpServerPool
from codex_tui.tools.base import EmitFn
from codex_tui.tools.mcp_tools import McpToolset


def wire_api_of(cfg: Config, provider: str) -> str:
    """The wire API ("responses" or "chat") of a provider by name; "responses" when unknown."""
    known = {**BUILTIN_PROVIDERS, **cfg.model_providers}.get(provider)
    return known.wire_api if known is not None else "responses"


def web_search_enabled(cfg: Config, provider: str, emit: EmitFn, *, noted: bool) -> bool:
    """True when search is on and the provider has hosted search; on Chat, one note (unless `noted`)."""
    if not cfg.web_search:
        return False
    if wire_api_of(cfg, provider) == "responses":
        return True
    if not noted:
        emit(NOTE, {"level": "warning", "message": NO_HOSTED_SEARCH})
    return False


def mcp_toolset(
    pool: McpServerPool | None,
    emit: EmitFn,
    *,
    kind: str,
    mode: str,
    approval_policy: str,
    taken_names: list[str],
) -> McpToolset | None:
    """The task's MCP toolset, or None (no servers, or a review task, whose answer is review JSON).

    Calls ask for approval by default when the task's policy asks and the mode is not full access;
    an Ask task offers only the servers whose calls need no approval (it cannot approve anything).
    """
    if pool is None or kind == "review" or not pool.configured:
        return None
    return McpToolset(
        pool.configured,
        pool.connect,
        emit,
        ask_by_default=approval_policy == "on-request" and mode != "full-access",
        taken_names=taken_names,
        only_unattended=kind == "ask",
    )
