"""Structured-output fields of a scripted request, read and checked the way the real API does.

A Responses request asks for structured output with ``text.format`` ``{"type": "json_schema",
"name", "schema", "strict"}``; a Chat request with ``response_format`` ``{"type": "json_schema",
"json_schema": {"name", "schema", "strict"}}``. A malformed field is a :class:`FormatError`, which
the server answers with HTTP 400 and an OpenAI-style body naming the field (``param``). A strict
schema is held to the rules the real API enforces most often: the root is an object, and every
object lists all its properties as ``required`` and sets ``additionalProperties: false``.
"""

from __future__ import annotations

import re
from typing import Any

from codex_tui.models.base import OutputSchema

FORMAT_TYPES = ("text", "json_object", "json_schema")
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_NAME_LENGTH = 64
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions")


class FormatError(ValueError):
    """A malformed structured-output field: the message and the `param` the 400 names."""

    def __init__(self, message: str, param: str, code: str | None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def requested_schema(api: str, body: dict[str, Any]) -> OutputSchema | None:
    """The output schema a request asks for; None for plain text or JSON mode. Raises FormatError."""
    if api == "responses":
        text = body.get("text")
        if text is None:
            return None
        _expect(text, dict, "text")
        fmt = text.get("format")
        return None if fmt is None else _read_format(fmt, "text.format", nested=False)
    fmt = body.get("response_format")
    return None if fmt is None else _read_format(fmt, "response_format", nested=True)


def _read_format(fmt: Any, param: str, *, nested: bool) -> OutputSchema | None:
    _expect(fmt, dict, param)
    kind = fmt.get("type")
    if kind is None:
        raise _missing(f"{param}.type")
    if kind not in FORMAT_TYPES:
        supported = ", ".join(f"'{t}'" for t in FORMAT_TYPES[:-1]) + f", and '{FORMAT_TYPES[-1]}'"
        raise FormatError(
            f"Invalid value: {_short(kind)}. Supported values are: {supported}.",
            f"{param}.type",
            "invalid_value",
        )
    if kind != "json_schema":
        return None
    holder, where = fmt, param
    if nested:
        where = f"{param}.json_schema"
        holder = fmt.get("json_schema")
        if holder is None:
            raise _missing(where)
        _expect(holder, dict, where)
    return _read_json_schema(holder, where, schema_param=param if nested else f"{param}.schema")


def _read_json_schema(holder: dict[str, Any], where: str, *, schema_param: str) -> OutputSchema:
    name = holder.get("name")
    if name is None:
        raise _missing(f"{where}.name")
    _expect(name, str, f"{where}.name")
    if len(name) > MAX_NAME_LENGTH:
        raise FormatError(
            f"Invalid '{where}.name': string too long. Expected a string with maximum length "
            f"{MAX_NAME_LENGTH}, but got a string with length {len(name)} instead.",
            f"{where}.name",
            "string_above_max_length",
        )
    if not NAME_PATTERN.match(name):
        raise FormatError(
            f"Invalid '{where}.name': string does not match pattern. Expected a string that matches "
            f"the pattern '{NAME_PATTERN.pattern}'.",
            f"{where}.name",
            "invalid_value",
        )
    schema = holder.get("schema")
    if schema is None:
        raise _missing(f"{where}.schema")
    _expect(schema, dict, f"{where}.schema")
    strict = holder.get("strict")
    if strict is not None:
        _expect(strict, bool, f"{where}.strict")
    if holder.get("description") is not None:
        _expect(holder["description"], str, f"{where}.description")
    if strict:
        problem = strict_schema_problem(schema)
        if problem is not None:
            message = f"Invalid schema for response_format '{name}': {problem}"
            raise FormatError(message, schema_param, None)
    return OutputSchema(name=name, schema=schema, strict=bool(strict))


def strict_schema_problem(schema: dict[str, Any]) -> str | None:
    """Why the API would refuse `schema` in strict mode, or None when these checks pass."""
    if schema.get("type") != "object":
        got = schema.get("type", "None")
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    return _subschema_problem(schema, ())


def _subschema_problem(schema: Any, context: tuple[str, ...]) -> str | None:
    if not isinstance(schema, dict):
        return None
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object or "properties" in schema:
        problem = _object_problem(schema)
        if problem is not None:
            return f"In context={context!r}, {problem}"
    for key in _SCHEMA_MAPS:
        children = schema.get(key)
        if isinstance(children, dict):
            for child_name, child in children.items():
                found = _subschema_problem(child, (*context, key, str(child_name)))
                if found is not None:
                    return found
    for key in _SCHEMA_LISTS:
        children = schema.get(key)
        if isinstance(children, list):
            for index, child in enumerate(children):
                found = _subschema_problem(child, (*context, key, str(index)))
                if found is not None:
                    return found
    return _subschema_problem(schema.get("items"), (*context, "items"))


def _object_problem(schema: dict[str, Any]) -> str | None:
    if schema.get("additionalProperties") is not False:
        return "'additionalProperties' is required to be supplied and to be false."
    properties = schema.get("properties") or {}
    required = schema.get("required")
    missing = [key for key in properties if not isinstance(required, list) or key not in required]
    if missing:
        return (
            "'required' is required to be supplied and to be an array including every key in "
            f"properties. Missing '{missing[0]}'."
        )
    return None


def _expect(value: Any, expected: type, param: str) -> None:
    if isinstance(value, expected) and (expected is bool or not isinstance(value, bool)):
        return
    wanted, got = _json_kind(expected), _json_kind(type(value))
    message = f"Invalid type for '{param}': expected {wanted}, but got {got} instead."
    raise FormatError(message, param, "invalid_type")


def _missing(param: str) -> FormatError:
    return FormatError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _json_kind(kind: type) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}
    names |= {float: "a decimal", type(None): "null"}
    return names.get(kind, kind.__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
