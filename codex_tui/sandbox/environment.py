"""A repository's environment, as Codex cloud has them: the agent's network access (off, limited to
an allowlist, on), the setup and maintenance scripts, plain variables and setup-only secrets.

Where it comes from (later wins): `.codex-tui/environment.toml` in the user's repository (read on
the host from the user's own tree before any sandbox exists: trusted, like the rest of the
repository), then `[environment]` and the top-level network keys of config.toml, its profile and
`-c` overrides, then the task (`exec --network`, task.submit's `network` / `allowed_domains`).
Domains given for the task are added to the configured allowlist.

Secrets: `secrets = ["NPM_TOKEN"]` names a host environment variable, else an entry of
`secrets.toml` in codex-tui's home folder (never inside the repository; owner-only permissions).
Their values go to the setup and maintenance commands only — as the `docker exec` environment,
which is not part of the container's config, so `docker commit` never copies them into the
cached image — and are masked (`***`) in everything those commands print. The agent's
container never receives them. The cache hash covers the definition (names), never the values.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from codex_tui.config import (
    DOMAIN_PRESETS,
    NETWORK_ACCESS,
    Config,
    ConfigError,
    check_environment_key,
)
from codex_tui.sandbox.base import SandboxError
from codex_tui.sandbox.egress_proxy import DEFAULT_METHODS, Policy

ENVIRONMENT_FILE = ".codex-tui/environment.toml"
SECRETS_FILE = "secrets.toml"
MASK = b"***"
MIN_SECRET_CHARS = 4
"""Shorter values would mask innocent output everywhere; such a secret is refused."""
MAX_ENVIRONMENT_FILE_BYTES = 256 * 1024
NetworkAccess = Literal["off", "limited", "on"]


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """The agent phase's internet: off, limited (allowlist + methods, via the egress proxy) or on."""

    access: NetworkAccess = "off"
    domains: tuple[str, ...] = ()
    """Allowlist entries with presets expanded."""
    methods: tuple[str, ...] = DEFAULT_METHODS

    def policy(self) -> Policy:
        """The egress proxy's policy."""
        return Policy(self.domains, self.methods)

    def describe(self) -> str:
        """`network limited to pypi.org, *.npmjs.org (GET, HEAD, OPTIONS)`."""
        if self.access != "limited":
            return f"network {self.access}"
        shown = ", ".join(self.domains[:6]) + (
            f" and {len(self.domains) - 6} more" if len(self.domains) > 6 else ""
        )
        return f"network limited to {shown or 'no domain'} ({', '.join(self.methods)})"


@dataclass(slots=True)
class Environment:
    """Everything a task's environment adds to the sandbox (secrets by name only)."""

    setup: str | None = None
    maintenance: str | None = None
    maintenance_inputs: tuple[str, ...] = ()
    """Repository-relative paths or glob patterns: the files the maintenance script refreshes."""
    maintenance_every_reuse: bool = False
    env: dict[str, str] = field(default_factory=dict)
    secret_names: tuple[str, ...] = ()
    network: NetworkSettings = field(default_factory=NetworkSettings)

    def definition(self) -> str:
        """What the cached image depends on besides script and files, as text; never a secret's value."""
        return json.dumps(
            {
                "env": sorted(self.env.items()),
                "secrets": sorted(self.secret_names),
                "maintenance": self.maintenance or "",
                "maintenance_inputs": sorted(self.maintenance_inputs),
            },
            sort_keys=True,
        )


def expand_domains(entries: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Allowlist entries with presets (`@registries`, `@none`) replaced by their domains, no duplicates."""
    out: list[str] = []
    for entry in entries:
        text = entry.strip().lower()
        out.extend(DOMAIN_PRESETS.get(text, (text,)) if text.startswith("@") else (text,))
    return tuple(dict.fromkeys(out))


def read_environment_file(repo: Path) -> dict[str, Any]:
    """The repository's `.codex-tui/environment.toml`, checked ({} when there is none)."""
    path = repo / ENVIRONMENT_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ENVIRONMENT_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_ENVIRONMENT_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_ENVIRONMENT_FILE_BYTES // 1024} KiB")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    table = data.get("environment", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [environment] must be a table")
    return {key: check_environment_key(key, value, str(path)) for key, value in table.items()}


def load_environment(
    cfg: Config,
    repo: Path | None,
    *,
    network: str | None = None,
    allowed_domains: list[str] | None = None,
) -> Environment:
    """The task's environment: repository file < config < the task's own network settings.

    Raises ConfigError with the file and key for a bad value.
    """
    values: dict[str, Any] = read_environment_file(repo) if repo is not None else {}
    values.update(cfg.environment.values)
    if network is not None:
        if network not in NETWORK_ACCESS:
            raise ConfigError(f"network '{network}' is not one of {', '.join(NETWORK_ACCESS)}")
        values["network_access"] = network
    domains = list(values.get("allowed_domains", []))
    if allowed_domains:
        domains += check_environment_key("allowed_domains", list(allowed_domains), "--allow-domain")
    return Environment(
        setup=cfg.setup if cfg.setup and cfg.setup.strip() else values.get("setup"),
        maintenance=values.get("maintenance") or None,
        maintenance_inputs=tuple(values.get("maintenance_inputs", ())),
        maintenance_every_reuse=bool(values.get("maintenance_every_reuse", False)),
        env=dict(values.get("env", {})),
        secret_names=tuple(dict.fromkeys(values.get("secrets", ()))),
        network=NetworkSettings(
            access=cast(NetworkAccess, values.get("network_access", "off")),
            domains=expand_domains(domains),
            methods=tuple(values.get("allowed_methods", DEFAULT_METHODS)),
        ),
    )


def secrets_path(home: Path) -> Path:
    """`secrets.toml` in codex-tui's home folder ($CODEX_TUI_HOME or ~/.config/codex-tui)."""
    return home / SECRETS_FILE


def resolve_secrets(names: tuple[str, ...], home: Path, repo: Path | None = None) -> dict[str, str]:
    """Each named secret's value: the host environment variable, else the entry in secrets.toml.

    Raises SandboxError naming what is missing or unsafe (never printing a value).
    """
    if not names:
        return {}
    values: dict[str, str] = {}
    missing = [name for name in names if not os.environ.get(name)]
    stored = _read_secrets_file(secrets_path(home), repo) if missing else {}
    for name in names:
        value = os.environ.get(name) or stored.get(name)
        if not value:
            raise SandboxError(
                f"secret {name} is neither a host environment variable nor an entry of {secrets_path(home)}"
            )
        if len(value) < MIN_SECRET_CHARS:
            raise SandboxError(
                f"secret {name} is shorter than {MIN_SECRET_CHARS} characters: it cannot be masked"
            )
        values[name] = value
    return values


def _read_secrets_file(path: Path, repo: Path | None) -> dict[str, str]:
    if not path.exists():
        return {}
    resolved = path.resolve()
    if repo is not None and resolved.is_relative_to(repo.resolve()):
        raise SandboxError(f"{path} is inside the repository {repo}: keep secrets outside it")
    try:
        mode = resolved.stat().st_mode
        if mode & 0o077:
            raise SandboxError(f"{path} is readable by other users: run `chmod 600 {path}`")
        data = tomllib.loads(resolved.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SandboxError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise SandboxError(f'{path}: not valid TOML (expected NAME = "value" lines)') from None
    return {str(k): v for k, v in data.items() if isinstance(v, str)}


class SecretMasker:
    """Replaces secret values with `***` in streamed output, also when a value is split across chunks.

    Per stream it holds back only the end of the output that could still begin a secret, and
    releases it with the next chunk or `flush`. Thread-safe (setup output arrives from a thread).
    """

    def __init__(self, secrets: dict[str, str] | list[str]) -> None:
        values = secrets.values() if isinstance(secrets, dict) else secrets
        self._secrets = sorted({v.encode() for v in values if v}, key=len, reverse=True)
        self._pending: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def feed(self, stream: str, data: bytes) -> bytes:
        """The masked part of the stream that is safe to show now."""
        if not self._secrets:
            return data
        with self._lock:
            buffer = self.mask(self._pending.pop(stream, b"") + data)
            keep = self._partial_suffix(buffer)
            if keep:
                self._pending[stream] = buffer[-keep:]
                return buffer[:-keep]
            return buffer

    def flush(self, stream: str) -> bytes:
        """What was held back for the stream (it ended: a partial secret is shown as is)."""
        with self._lock:
            return self._pending.pop(stream, b"")

    def mask(self, data: bytes) -> bytes:
        """Every secret value in `data` replaced."""
        for secret in self._secrets:
            data = data.replace(secret, MASK)
        return data

    def mask_text(self, text: str) -> str:
        """The same for text (error messages, notes)."""
        return self.mask(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def _partial_suffix(self, buffer: bytes) -> int:
        longest = 0
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(buffer)), longest, -1):
                if buffer.endswith(secret[:size]):
                    longest = size
                    break
        return longest


def secrets_source(environment: Environment, home: Path, repo: Path | None) -> Callable[[], dict[str, str]]:
    """A callable giving the environment's secrets (resolved only when a script actually runs)."""
    return functools.partial(resolve_secrets, environment.secret_names, home, repo)
