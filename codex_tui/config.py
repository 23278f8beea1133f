"""Configuration: config.toml in the home folder, a profile, `-c key=value` overrides, environment.

Precedence (last wins): built-in defaults < config.toml < [profiles.NAME] < -c overrides < flags.
Every mistake becomes a ConfigError whose message names the file and the key, never a traceback.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tui.config_mcp import McpConfigError, McpServerConfig, parse_mcp_servers
from codex_tui.pricing import DEFAULT_PRICES, Price, PricingError, parse_price
from codex_tui.protocol import SANDBOX_MODES

WIRE_APIS = ("responses", "chat")
EFFORTS = ("minimal", "low", "medium", "high")
BACKENDS = ("auto", "docker", "local", "kubernetes")
DOCKER_SYNC_MODES = ("auto", "mount", "copy")
"""sandbox.docker_sync: how a Docker task gets its checkout (see Config.sandbox_docker_sync)."""
APPROVAL_POLICIES = ("on-request", "never")
NOTIFICATIONS = ("auto", "osc9", "osc777", "off")


class ConfigError(Exception):
    """A config file, profile or override is wrong; the message says where and how."""


@dataclass(slots=True)
class ModelProvider:
    """Where a model is reached: Codex's [model_providers.NAME] table."""

    name: str
    base_url: str | None = None
    env_key: str | None = "OPENAI_API_KEY"
    wire_api: str = "responses"
    requires_api_key: bool = True

    def api_key(self) -> str | None:
        """The key from the environment, if this provider names one."""
        return os.environ.get(self.env_key) if self.env_key else None


BUILTIN_PROVIDERS: dict[str, ModelProvider] = {
    "openai": ModelProvider("openai", None, "OPENAI_API_KEY", "responses"),
    "ollama": ModelProvider("ollama", "http://localhost:11434/v1", None, "chat", False),
    "lmstudio": ModelProvider("lmstudio", "http://localhost:1234/v1", None, "chat", False),
    "openrouter": ModelProvider("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "chat"),
}


@dataclass(slots=True)
class KubernetesSettings:
    """The [sandbox.kubernetes] table: where task pods run (`sandbox.backend = "kubernetes"`)."""

    kubeconfig: str = ""
    """Path of the kubeconfig ("" = $KUBECONFIG, else ~/.kube/config, else in-cluster)."""
    context: str = ""
    namespace: str = "default"
    image: str = ""
    """Image of task pods ("" = `sandbox.image`)."""
    image_pull_policy: str = "Never"
    """"Never" for images imported into the cluster's runtime; "IfNotPresent"/"Always" with a registry."""
    registry: str = ""
    """Push setup images here (e.g. "registry.example.com/codex"); "" = import them locally."""
    containerd_socket: str = "/run/codex-tui-k8s/containerd.sock"
    """The local test cluster's containerd, where setup images are imported when no registry is set."""
    containerd_sockets: list[str] = field(default_factory=list)
    """The containerds of the cluster's other nodes on this machine (scripts/k8s/add-node.sh's is
    /run/codex-tui-k8s/node2/containerd.sock): setup images are imported there too, so a pod placed on
    any node finds its image; a socket that is not there (its node is down) is skipped."""
    node_selector: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Config:
    """Resolved settings for one run of the app."""

    model: str = "gpt-5-codex"
    review_model: str = ""
    """The model review tasks use ("" = `model`), as Codex's `review_model`."""
    model_provider: str = "openai"
    model_providers: dict[str, ModelProvider] = field(default_factory=dict)
    model_reasoning_effort: str = "medium"
    model_context_window: int = 272_000
    sandbox_mode: str = "auto"
    sandbox_backend: str = "auto"
    sandbox_image: str = "codex-tui-sandbox:latest"
    sandbox_cpus: float = 2.0
    sandbox_memory_mb: int = 2048
    sandbox_pids: int = 512
    sandbox_disk_mb: int = 10240
    """Per-task limit on the checkout's size (its own filesystem as root, else a watchdog); 0: none."""
    sandbox_kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    sandbox_docker_sync: str = "auto"
    """Docker: "mount" the checkout, "copy" it in and back as data, or "auto" (copy when DOCKER_HOST
    names an engine that is not on this machine's unix socket)."""
    environment: EnvironmentSettings = field(default_factory=lambda: EnvironmentSettings())
    """Network access, setup, maintenance, env and secrets names ([environment])."""
    setup: str | None = None
    approval_policy: str = "on-request"
    max_parallel_tasks: int = 4
    include_uncommitted: bool = True
    allow_non_git: bool = False
    """Let tasks work on a folder that is not in a git repository (a plain copy, no branch)."""
    shell_timeout_ms: int = 10_000
    stream_idle_timeout_s: float = 300.0
    request_max_retries: int = 4
    theme: str = "codex-dark"
    layout: str = "auto"
    """The TUI's panes: `panes` (together), `tabs`, or `auto` (panes when the terminal is large enough)."""
    keymap: dict[str, str] = field(default_factory=dict)
    mcp_servers: dict[str, McpServerConfig] = field(default_factory=dict)
    """[mcp_servers.NAME] tables (config_mcp.py): MCP servers whose tools tasks may use."""
    web_search: bool = False
    """`tools.web_search` / `--search`: offer the hosted web_search tool (Responses API only)."""
    pricing: dict[str, Price] = field(default_factory=dict)
    """[pricing."model"] tables: USD per 1M tokens, over the built-in table (pricing.py)."""
    notifications: str = "auto"
    """Desktop notifications by escape sequence: auto (by terminal), osc9, osc777 or off (tui/notify.py)."""
    home: Path = field(default_factory=lambda: default_home())
    source: str = "defaults"

    @property
    def provider(self) -> ModelProvider:
        """The active provider (built-in or from config)."""
        providers = {**BUILTIN_PROVIDERS, **self.model_providers}
        try:
            return providers[self.model_provider]
        except KeyError:
            known = ", ".join(sorted(providers))
            raise ConfigError(
                f"{self.source}: model_provider '{self.model_provider}' is not defined "
                f"(known: {known}; add [model_providers.{self.model_provider}])"
            ) from None

    @property
    def data_dir(self) -> Path:
        """Rollouts, the task index and task checkouts live here."""
        return self.home / "data"

    @property
    def themes_dir(self) -> Path:
        """The user's own theme files."""
        return self.home / "themes"


def default_home() -> Path:
    """CODEX_TUI_HOME, else $XDG_CONFIG_HOME/codex-tui, else ~/.config/codex-tui."""
    if env := os.environ.get("CODEX_TUI_HOME"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "codex-tui"


_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "review_model": str,
    "model_provider": str,
    "model_reasoning_effort": str,
    "model_context_window": int,
    "sandbox_mode": str,
    "sandbox_backend": str,
    "sandbox_image": str,
    "sandbox_cpus": (int, float),
    "sandbox_memory_mb": int,
    "sandbox_pids": int,
    "sandbox_disk_mb": int,
    "sandbox_docker_sync": str,
    "setup": str,
    "approval_policy": str,
    "max_parallel_tasks": int,
    "include_uncommitted": bool,
    "allow_non_git": bool,
    "shell_timeout_ms": int,
    "stream_idle_timeout_s": (int, float),
    "request_max_retries": int,
    "theme": str,
    "notifications": str,
    "layout": str,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "model_reasoning_effort": EFFORTS,
    "sandbox_mode": SANDBOX_MODES,
    "sandbox_backend": BACKENDS,
    "sandbox_docker_sync": DOCKER_SYNC_MODES,
    "approval_policy": APPROVAL_POLICIES,
    "notifications": NOTIFICATIONS,
    "layout": ("auto", "panes", "tabs"),
}
_TABLES = ("model_providers", "profiles", "keymap")
_POSITIVE = frozenset(
    {
        "model_context_window",
        "sandbox_cpus",
        "sandbox_memory_mb",
        "sandbox_pids",
        "max_parallel_tasks",
        "shell_timeout_ms",
        "stream_idle_timeout_s",
    }
)
_NON_NEGATIVE = frozenset({"request_max_retries", "sandbox_disk_mb"})


def load_config(
    *,
    home: Path | None = None,
    profile: str | None = None,
    overrides: list[str] | None = None,
) -> Config:
    """Read config.toml under `home`, apply a profile and `-c key=value` overrides."""
    home = home or default_home()
    path = home / "config.toml"
    raw = _read_toml(path)
    source = str(path)
    cfg = Config(home=home, source=source)
    _apply(cfg, {k: v for k, v in raw.items() if k not in ("profiles",)}, source)
    profile = profile or raw.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise ConfigError(f"{source}: key 'profile' must be a profile name (a string), got {profile!r}")
    if profile:
        profiles = raw.get("profiles", {})
        if not isinstance(profiles, dict) or profile not in profiles:
            raise ConfigError(f"{source}: profile '{profile}' not found under [profiles]")
        if not isinstance(profiles[profile], dict):
            raise ConfigError(f"{source}: [profiles.{profile}] must be a table")
        _apply(cfg, profiles[profile], f"{source} [profiles.{profile}]")
    for item in overrides or []:
        key, value = parse_override(item)
        _apply(cfg, _nest(key, value), f"-c {item}")
    return cfg


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's tables, or {} when there is no file; every failure names the file."""
    if not path.exists():
        return {}
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder, not a file")
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def parse_override(item: str) -> tuple[str, Any]:
    """`key=value` with a TOML value; a bare word is taken as a string (`-c model=o3`)."""
    if "=" not in item:
        raise ConfigError(f"-c {item}: expected key=value")
    key, _, text = item.partition("=")
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key, value


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = dotted.split(".")
    out: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


def _apply(cfg: Config, data: dict[str, Any], source: str) -> None:
    for key, value in data.items():
        if key == "profile":
            continue
        if key == "model_providers":
            _apply_providers(cfg, value, source)
        elif key == "keymap":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ConfigError(f"{source}: key 'keymap': expected a table of id = \"key\"")
            cfg.keymap.update(value)
        elif key == "mcp_servers":
            try:
                cfg.mcp_servers = parse_mcp_servers(value, source, cfg.mcp_servers)
            except McpConfigError as exc:
                raise ConfigError(str(exc)) from None
        elif key == "tools":
            _apply_tools(cfg, value, source)
        elif key == "pricing":
            _apply_pricing(cfg, value, source)
        elif key == "sandbox":
            _apply_sandbox(cfg, value, source)
        elif key == "environment":
            _apply_environment(cfg, value, source)
        elif key in NETWORK_KEYS:
            cfg.environment.values[key] = check_environment_key(key, value, source)
        elif key in _TYPES:
            setattr(cfg, key, _check(key, value, source))
        else:
            raise ConfigError(f"{source}: unknown key '{key}'")


def _apply_tools(cfg: Config, value: Any, source: str) -> None:
    """The [tools] table: `web_search = true` offers the hosted web search (Responses API)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: key 'tools': expected a table ([tools])")
    for key, item in value.items():
        if key != "web_search":
            raise ConfigError(f"{source}: [tools]: unknown key '{key}'")
        if not isinstance(item, bool):
            raise ConfigError(f"{source}: [tools]: key 'web_search': expected true or false, got {item!r}")
        cfg.web_search = item


def _apply_pricing(cfg: Config, value: Any, source: str) -> None:
    """The [pricing."model"] tables: `input`, `cached_input`, `output` in USD per 1M tokens."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: key 'pricing': expected a table ([pricing.\"model\"])")
    for model, item in value.items():
        base = cfg.pricing.get(model) or DEFAULT_PRICES.get(model)
        try:
            cfg.pricing[model] = parse_price(model, item, f'{source}: [pricing."{model}"]', base)
        except PricingError as exc:
            raise ConfigError(str(exc)) from None


def _apply_sandbox(cfg: Config, value: Any, source: str) -> None:
    """The [sandbox] table: `mode`, `cpus`… stand for the `sandbox_mode`, `sandbox_cpus`… keys."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: key 'sandbox': expected a table ([sandbox])")
    for key, item in value.items():
        if key == "kubernetes":
            _apply_kubernetes(cfg.sandbox_kubernetes, item, source)
            continue
        name = f"sandbox_{key}"
        if name not in _TYPES:
            raise ConfigError(f"{source}: [sandbox]: unknown key '{key}'")
        setattr(cfg, name, _check(name, item, f"{source}: [sandbox]", shown=key))


_PULL_POLICIES = ("Never", "IfNotPresent", "Always")


def _apply_kubernetes(settings: KubernetesSettings, value: Any, source: str) -> None:
    """The [sandbox.kubernetes] table: strings, plus `node_selector` (a table of strings) and
    `containerd_sockets` (a list of paths)."""
    where = f"{source}: [sandbox.kubernetes]"
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: key 'sandbox.kubernetes': expected a table ([sandbox.kubernetes])")
    for key, item in value.items():
        if key == "node_selector":
            if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
                raise ConfigError(f"{where}: key 'node_selector': expected a table of label = \"value\"")
            settings.node_selector = dict(item)
            continue
        if key == "containerd_sockets":
            if not isinstance(item, list) or not all(isinstance(v, str) and v for v in item):
                raise ConfigError(f"{where}: key 'containerd_sockets': expected a list of socket paths")
            settings.containerd_sockets = list(item)
            continue
        if key not in KubernetesSettings.__dataclass_fields__:
            raise ConfigError(f"{where}: unknown key '{key}'")
        if not isinstance(item, str):
            raise ConfigError(f"{where}: key '{key}': expected a string, got {item!r}")
        if key == "image_pull_policy" and item not in _PULL_POLICIES:
            raise ConfigError(f"{where}: key '{key}': '{item}' is not one of {', '.join(_PULL_POLICIES)}")
        if key == "namespace" and not item:
            raise ConfigError(f"{where}: key 'namespace' must not be empty")
        setattr(settings, key, item)


def _check(key: str, value: Any, source: str, *, shown: str | None = None) -> Any:
    expected = _TYPES[key]
    where = f"{source}: key '{shown or key}'"
    if isinstance(value, bool) and expected is not bool:
        raise ConfigError(f"{where}: expected {_type_name(expected)}, got a boolean")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {_type_name(expected)}, got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{where}: '{value}' is not one of {', '.join(_CHOICES[key])}")
    if isinstance(value, int | float):
        _check_range(key, value, where)
    return value


def _check_range(key: str, value: float, where: str) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value}")
    if key in _POSITIVE and value <= 0:
        rule = "at least 1" if _TYPES[key] is int else "greater than 0"
    elif key in _NON_NEGATIVE and value < 0:
        rule = "0 or more"
    else:
        return
    raise ConfigError(f"{where}: must be {rule}, got {value}")


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return "a number"
    return {str: "a string", int: "an integer", bool: "true or false"}.get(expected, "a value")


def _apply_providers(cfg: Config, value: Any, source: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: key 'model_providers': expected a table")
    for name, table in value.items():
        where = f"{source}: [model_providers.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table")
        base = cfg.model_providers.get(name) or BUILTIN_PROVIDERS.get(name) or ModelProvider(name)
        provider = ModelProvider(name, base.base_url, base.env_key, base.wire_api, base.requires_api_key)
        for key, item in table.items():
            if key == "name":
                continue
            if key not in ("base_url", "env_key", "wire_api", "requires_api_key"):
                raise ConfigError(f"{where}: unknown key '{key}'")
            if key == "requires_api_key":
                if not isinstance(item, bool):
                    raise ConfigError(f"{where}: key '{key}': expected true or false")
            elif not isinstance(item, str):
                raise ConfigError(f"{where}: key '{key}': expected a string")
            if key == "wire_api" and item not in WIRE_APIS:
                raise ConfigError(f"{where}: key 'wire_api': '{item}' is not one of responses, chat")
            setattr(provider, key, item)
        if "env_key" not in table and "base_url" in table and name not in BUILTIN_PROVIDERS:
            provider.requires_api_key = False
            provider.env_key = None
        cfg.model_providers[name] = provider


# --- the environment: network access, setup, maintenance, secrets ------------------------------

NETWORK_ACCESS = ("off", "limited", "on")
HTTP_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
DOMAIN_PRESETS: dict[str, tuple[str, ...]] = {
    "@registries": (
        "pypi.org",
        "files.pythonhosted.org",
        "registry.npmjs.org",
        "*.npmjs.org",
        "registry.yarnpkg.com",
        "crates.io",
        "static.crates.io",
        "index.crates.io",
        "proxy.golang.org",
        "sum.golang.org",
        "deb.debian.org",
        "security.debian.org",
    ),
    "@none": (),
}
"""Allowlist presets: an `allowed_domains` entry naming one stands for its domains."""
_DOMAIN_ENTRY = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_TYPES: dict[str, type] = {
    "setup": str,
    "maintenance": str,
    "maintenance_inputs": list,
    "maintenance_every_reuse": bool,
    "env": dict,
    "secrets": list,
    "network_access": str,
    "allowed_domains": list,
    "allowed_methods": list,
}
NETWORK_KEYS = ("network_access", "allowed_domains", "allowed_methods")
"""Keys also accepted at the top level of config.toml and profiles (they set [environment])."""


@dataclass(slots=True)
class EnvironmentSettings:
    """The [environment] table (and the top-level network keys); see sandbox/environment.py."""

    values: dict[str, Any] = field(default_factory=dict)
    """Only the keys the config set, checked: the repository's `.codex-tui/environment.toml`
    fills in the others."""


def check_environment_key(key: str, value: Any, where: str) -> Any:
    """One [environment] key checked (types, choices, domain and method syntax); returns the value."""
    expected = _ENV_TYPES.get(key)
    if expected is None:
        raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(_ENV_TYPES)})")
    if not _has_type(value, expected):
        raise ConfigError(f"{where}: key '{key}': expected {_ENV_TYPE_NAMES[expected]}, got {value!r}")
    if key == "network_access" and value not in NETWORK_ACCESS:
        raise ConfigError(f"{where}: key '{key}': '{value}' is not one of {', '.join(NETWORK_ACCESS)}")
    if expected is list and not all(isinstance(item, str) and item.strip() for item in value):
        raise ConfigError(f"{where}: key '{key}': expected a list of non-empty strings")
    if key == "env" and not all(_ENV_NAME.match(k) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{where}: key 'env': expected a table of NAME = \"value\"")
    if key == "secrets":
        bad = [name for name in value if not _ENV_NAME.match(name)]
        if bad:
            raise ConfigError(f"{where}: key 'secrets': '{bad[0]}' is not a variable name")
    if key == "allowed_methods":
        value = [method.upper() for method in value]
        bad = [method for method in value if method not in HTTP_METHODS]
        if bad:
            raise ConfigError(f"{where}: key '{key}': '{bad[0]}' is not one of {', '.join(HTTP_METHODS)}")
    if key == "allowed_domains":
        for entry in value:
            problem = domain_entry_problem(entry)
            if problem:
                raise ConfigError(f"{where}: key '{key}': {problem}")
    return value


def _has_type(value: Any, expected: type) -> bool:
    return isinstance(value, expected) and (expected is bool or not isinstance(value, bool))


_ENV_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    list: "a list of strings",
    bool: "true or false",
    dict: "a table",
}


def domain_entry_problem(entry: str) -> str:
    """Why an allowlist entry is malformed ("" when it is fine): a name, `*.suffix`, an IP, `:port`."""
    text = entry.strip().lower()
    if text.startswith("@"):
        return "" if text in DOMAIN_PRESETS else f"'{entry}' is not a preset ({', '.join(DOMAIN_PRESETS)})"
    if "://" in text or "/" in text:
        return f"'{entry}' is a URL, not a domain: give the host name only (e.g. pypi.org)"
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"'{entry}': bad port '{port}'"
    try:
        ipaddress.ip_address(host)
        return ""
    except ValueError:
        pass
    if not _DOMAIN_ENTRY.match(host) or (host.startswith("*.") and host.count(".") < 2):
        return f"'{entry}' is not a domain name, a '*.' suffix or an IP address"
    return ""


def _apply_environment(cfg: Config, value: Any, source: str) -> None:
    """The [environment] table: every key checked, only set keys recorded."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: key 'environment': expected a table ([environment])")
    for key, item in value.items():
        cfg.environment.values[key] = check_environment_key(key, item, f"{source}: [environment]")
