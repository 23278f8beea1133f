"""Reading a tool call's JSON arguments: every mistake becomes a message the model can act on."""

from __future__ import annotations

import json
from typing import Any


class ArgumentsError(Exception):
    """The model's arguments are unusable; the message is returned to the model as the tool output."""


def parse_json_object(arguments: str) -> dict[str, Any]:
    """The arguments as a JSON object (an empty string counts as `{}`)."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ArgumentsError(f"failed to parse function arguments: {error}") from None
    if not isinstance(value, dict):
        raise ArgumentsError(
            f"failed to parse function arguments: expected a JSON object, got {type(value).__name__}"
        )
    return value


def required_str(args: dict[str, Any], key: str) -> str:
    """A required string field."""
    value = args.get(key)
    if not isinstance(value, str):
        raise ArgumentsError(f"missing or invalid field `{key}`: expected a string")
    return value


def optional_str(args: dict[str, Any], key: str) -> str | None:
    """An optional string field (null counts as absent)."""
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise ArgumentsError(f"invalid field `{key}`: expected a string")
    return value


def optional_bool(args: dict[str, Any], key: str) -> bool:
    """An optional boolean field, false when absent."""
    value = args.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ArgumentsError(f"invalid field `{key}`: expected true or false")
    return value


def optional_positive_int(args: dict[str, Any], key: str) -> int | None:
    """An optional integer greater than zero (a whole float like 5000.0 is accepted)."""
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ArgumentsError(f"invalid field `{key}`: expected a positive integer")
    return value
