"""What tokens cost: a price table per model (USD per 1M tokens) and the cost of a task's usage.

The defaults are OpenAI's published standard-tier prices (platform.openai.com/docs/pricing, as
read in November 2026); `[pricing."model"]` tables in config.toml override or extend them. A model
is matched by its exact name, then by the longest entry it extends with `-` or `:` (dated snapshots
such as `gpt-4.1-mini-2025-04-14`, tags such as `qwen2.5-coder:14b`). A model with no entry has
no estimate: front ends show "?", not $0.

`input_tokens` counts every prompt token, cached ones included (both wire APIs report it so), so a
call costs (input − cached) × input + cached × cached_input + output × output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

PER_TOKENS: Final = 1_000_000
"""Prices are per this many tokens."""
PRICE_KEYS: Final = ("input", "cached_input", "output")


class PricingError(ValueError):
    """A `[pricing."model"]` table is wrong; the message says which key and why."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens: fresh input, cached input, output."""

    input: float
    cached_input: float
    output: float


@dataclass(frozen=True, slots=True)
class Cost:
    """The estimated USD cost of some usage, and the table entry that priced it."""

    usd: float
    model: str
    """The price-table entry used (e.g. `gpt-4.1-mini` for `gpt-4.1-mini-2025-04-14`)."""


class TokenUsage(Protocol):
    """Anything with the three token counts (the models' Usage, a task record, a task model)."""

    @property
    def input_tokens(self) -> int: ...

    @property
    def cached_input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """The three token counts as plain data (e.g. read from an event's `usage`)."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenCounts:
        """Counts from a `usage_dict`-shaped mapping; missing or non-integer values count 0."""

        def count(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

        return cls(count("input_tokens"), count("cached_input_tokens"), count("output_tokens"))


DEFAULT_PRICES: Final[Mapping[str, Price]] = {
    "gpt-5": Price(1.25, 0.125, 10.0),
    "gpt-5-mini": Price(0.25, 0.025, 2.0),
    "gpt-5-nano": Price(0.05, 0.005, 0.4),
    "gpt-5-codex": Price(1.25, 0.125, 10.0),
    "gpt-4.1": Price(2.0, 0.5, 8.0),
    "gpt-4.1-mini": Price(0.4, 0.1, 1.6),
    "gpt-4.1-nano": Price(0.1, 0.025, 0.4),
    "o3": Price(2.0, 0.5, 8.0),
    "o4-mini": Price(1.1, 0.275, 4.4),
    "gpt-4o": Price(2.5, 1.25, 10.0),
    "gpt-4o-mini": Price(0.15, 0.075, 0.6),
}


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> tuple[str, Price] | None:
    """The table entry for `model` (overrides first): exact name, else the longest `entry-…`/`entry:…`."""
    table = {**DEFAULT_PRICES, **(overrides or {})}
    name = model.strip().lower()
    lowered = {key.lower(): key for key in table}
    if name in lowered:
        return lowered[name], table[lowered[name]]
    prefixes = [key for key in lowered if name.startswith((key + "-", key + ":"))]
    if not prefixes:
        return None
    best = lowered[max(prefixes, key=len)]
    return best, table[best]


def estimate(model: str, usage: TokenUsage, overrides: Mapping[str, Price] | None = None) -> Cost | None:
    """The cost of `usage` on `model`, or None when the model has no price."""
    found = price_for(model, overrides)
    if found is None:
        return None
    entry, price = found
    cached = max(0, min(usage.cached_input_tokens, usage.input_tokens))
    fresh = max(0, usage.input_tokens - cached)
    usd = (
        fresh * price.input + cached * price.cached_input + max(0, usage.output_tokens) * price.output
    ) / PER_TOKENS
    return Cost(usd, entry)


def format_usd(cost: Cost | float | None) -> str:
    """`$0.42`, `$0.0031` under a cent, `$12.30`; `?` when unknown."""
    if cost is None:
        return "?"
    usd = cost.usd if isinstance(cost, Cost) else cost
    if usd == 0:
        return "$0.00"
    if usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"


def parse_price(model: str, raw: Any, where: str, base: Price | None = None) -> Price:
    """One `[pricing."model"]` table; keys missing from it come from `base` (the entry it overrides).

    A new model needs `input` and `output`; `cached_input` defaults to `input` (no cache discount).
    """
    if not isinstance(raw, dict):
        raise PricingError(
            f"{where}: expected a table like {{ input = 1.25, cached_input = 0.125, output = 10.0 }}"
        )
    unknown = [key for key in raw if key not in PRICE_KEYS]
    if unknown:
        raise PricingError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(PRICE_KEYS)})")
    values: dict[str, float] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PricingError(f"{where}: key '{key}': expected a number of USD per 1M tokens, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise PricingError(f"{where}: key '{key}': must be a finite number, 0 or more, got {value}")
        values[key] = float(value)
    if base is None:
        missing = [key for key in ("input", "output") if key not in values]
        if missing:
            raise PricingError(f"{where}: '{model}' has no default price: key '{missing[0]}' is required")
        values.setdefault("cached_input", values["input"])
        return Price(values["input"], values["cached_input"], values["output"])
    return Price(
        values.get("input", base.input),
        values.get("cached_input", base.cached_input),
        values.get("output", base.output),
    )
