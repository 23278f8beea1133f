"""Network in the TUI: log lines for the egress proxy's `network.request` events, and `/network`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codex_tui.config import NETWORK_ACCESS, domain_entry_problem

NETWORK_ICON = "⇄"


def network_log_line(data: dict[str, Any]) -> tuple[str, bool]:
    """`⇄ GET pypi.org:443 allowed (pypi.org)` or `⇄ POST x:443 refused — reason (would need: rule)`."""
    if data.get("suppressed"):  # requests counted, not logged one by one (sandbox/egress.py)
        return f"{NETWORK_ICON} {data.get('reason') or ''}", False
    method = str(data.get("method") or "?").upper()
    host = str(data.get("host") or "?")
    port = data.get("port")
    target = f"{host}:{port}" if isinstance(port, int) and not isinstance(port, bool) else host
    rule = str(data.get("rule") or "")
    allowed = data.get("allowed") is True
    if allowed:
        return f"{NETWORK_ICON} {method} {target} allowed" + (f" ({rule})" if rule else ""), True
    reason = str(data.get("reason") or "")
    text = f"{NETWORK_ICON} {method} {target} refused" + (f" — {reason}" if reason else "")
    return text + (f" (would need: {rule})" if rule else ""), False


@dataclass(frozen=True, slots=True)
class NetworkChoice:
    """The internet access asked for the next new task: off, limited (plus domains) or on."""

    access: str
    domains: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """`net limited: pypi.org, github.com` (the composer title shows it)."""
        extra = f": {', '.join(self.domains)}" if self.domains else ""
        return f"net {self.access}{extra}"

    def submit_data(self) -> dict[str, Any]:
        """The `network` / `allowed_domains` keys of a task.submit."""
        data: dict[str, Any] = {"network": self.access}
        if self.domains:
            data["allowed_domains"] = list(self.domains)
        return data


def parse_network_arg(arg: str) -> NetworkChoice | str | None:
    """`/network` arguments: a choice, the reason they are wrong, or None when there are none."""
    words = arg.split()
    if not words:
        return None
    access, domains = words[0].lower(), words[1:]
    if access not in NETWORK_ACCESS:
        return f"/network needs one of: {', '.join(NETWORK_ACCESS)} (then domains for limited)"
    if domains and access != "limited":
        return "Domains only apply to /network limited"
    for domain in domains:
        problem = domain_entry_problem(domain)
        if problem:
            return f"/network: {problem}"
    return NetworkChoice(access, tuple(dict.fromkeys(domains)))


class NextNetwork:
    """The `/network` choice held for the next task the composer submits (then forgotten)."""

    def __init__(self) -> None:
        self.choice: NetworkChoice | None = None

    def command(self, arg: str) -> tuple[str, bool]:
        """Carry out `/network [off|limited|on] [domain …]`; returns (message, is_error)."""
        parsed = parse_network_arg(arg)
        if isinstance(parsed, str):
            return parsed, True
        if parsed is None:
            if self.choice is None:
                return (
                    "Network of the next task: as configured (change it with /network off|limited|on)",
                    False,
                )
            return f"Network of the next task: {self.choice.label.removeprefix('net ')}", False
        self.choice = parsed
        return f"The next task runs with network {parsed.label.removeprefix('net ')}", False

    def label(self) -> str:
        """` · net limited: pypi.org` for the composer title, or "" when nothing was chosen."""
        return f" · {self.choice.label}" if self.choice is not None else ""

    def take(self) -> dict[str, Any]:
        """The submit data for the choice, which is then forgotten (it applies to one task)."""
        choice, self.choice = self.choice, None
        return choice.submit_data() if choice is not None else {}
