"""MCP tools as model tools: collision-free names, checked schemas, approvals, results in wire shape.

A task's :class:`McpToolset` asks a shared pool for its servers when the model first needs tools,
offers each server's tools as `server__tool` (the API's name pattern, deduplicated), and turns a
server that fails to start, crashes or hangs into one note while the task goes on without its tools.
Every call is an `mcp_tool_call` item (protocol.py); its arguments come from the model, its result
from a server the user trusts, and no server setting (env, headers, tokens) ever enters an event.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from codex_tui.config_mcp import McpServerConfig
from codex_tui.models.base import ToolSpec
from codex_tui.protocol import ITEM_COMPLETED, ITEM_MCP_TOOL_CALL, ITEM_STARTED, NOTE
from codex_tui.tools.base import EmitFn, Tool, ToolContext, ToolResult
from codex_tui.tools.mcp_client import McpCallResult, McpConnection, McpServerError, McpToolInfo

NAME_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""Tool names the Responses and Chat APIs accept."""
MAX_NAME: Final = 64
SEPARATOR: Final = "__"
MAX_EVENT_IMAGE_CHARS: Final = 512 * 1024
"""Base64 image data kept in an mcp_tool_call event (larger images are summarised)."""
DECLINED: Final = "declined by the user"

ConnectFn = Callable[[str], Awaitable[McpConnection]]
"""connect(server name) -> the shared, started connection; raises McpServerError."""


def qualified_name(server: str, tool: str) -> str:
    """`server__tool` with characters outside [a-zA-Z0-9_-] replaced; shortened with a hash past 64."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", f"{server}{SEPARATOR}{tool}")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def unique_names(pairs: Iterable[tuple[str, str]], taken: Iterable[str] = ()) -> dict[tuple[str, str], str]:
    """A distinct model-facing name for each (server, tool), avoiding `taken` (the built-in tools)."""
    used = set(taken)
    names: dict[tuple[str, str], str] = {}
    for server, tool in pairs:
        name = qualified_name(server, tool)
        if name in used:
            digest = hashlib.sha1(f"{server}\x00{tool}".encode()).hexdigest()[:6]
            name = f"{name[: MAX_NAME - 7]}_{digest}"
        used.add(name)
        names[(server, tool)] = name
    return names


def schema_problem(schema: Any) -> str | None:
    """Why an input schema cannot be offered (None when it can): an object schema, valid JSON Schema."""
    if not isinstance(schema, dict):
        return "its input schema is not a JSON object"
    if schema.get("type", "object") != "object":
        return f"its input schema has type {schema.get('type')!r} (tools take an object)"
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the root"
        return f"its input schema is not valid JSON Schema ({exc.message} at {where})"
    return None


def function_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as function parameters: `type: object` and `properties` filled in when left out."""
    return {"type": "object", "properties": {}} | dict(schema)


def model_output(result: McpCallResult) -> tuple[str, list[dict[str, Any]]]:
    """The text the model gets (structured content as JSON, else the text blocks) and image parts."""
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for block in result.content:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "image":
            mime = block.get("mime_type") or block.get("mimeType") or "image/png"
            images.append({"type": "image", "image_url": f"data:{mime};base64,{block.get('data', '')}"})
        elif kind == "resource":
            resource = block.get("resource") or {}
            texts.append(str(resource.get("text") or f"[resource {resource.get('uri', '')}]"))
        elif kind == "resource_link":
            texts.append(f"[resource link {block.get('uri', '')}]")
        else:
            texts.append(f"[{kind} content omitted]")
    if result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    else:
        text = "\n".join(texts)
    if images and not text:
        text = f"[{len(images)} image(s) attached below]"
    return text, images


def event_content(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Content blocks for an event: large image data replaced by its size."""
    out: list[dict[str, Any]] = []
    for block in content:
        data = block.get("data")
        if (
            block.get("type") in ("image", "audio")
            and isinstance(data, str)
            and len(data) > MAX_EVENT_IMAGE_CHARS
        ):
            block = {k: v for k, v in block.items() if k != "data"} | {"omitted_bytes": len(data) * 3 // 4}
        out.append(block)
    return out


class McpTool:
    """One MCP server tool offered to the model; each call is an `mcp_tool_call` item."""

    def __init__(
        self,
        connection: McpConnection,
        info: McpToolInfo,
        name: str,
        *,
        needs_approval: bool,
        on_server_failed: Callable[[str, str], None],
    ) -> None:
        self.connection = connection
        self.info = info
        self.needs_approval = needs_approval
        self._on_server_failed = on_server_failed
        description = info.description or f"The {info.name} tool of the {connection.name} MCP server."
        self.spec = ToolSpec(
            name=name,
            description=f"[MCP server {connection.name}] {description}",
            parameters=function_parameters(info.input_schema),
        )

    async def run(self, arguments: str, ctx: ToolContext) -> ToolResult:
        """Ask for approval when needed, call the tool, and report the call as an item."""
        server, tool = self.connection.name, self.info.name
        parsed, problem = _parse_arguments(arguments)
        item: dict[str, Any] = {
            "id": ctx.new_item_id(),
            "type": ITEM_MCP_TOOL_CALL,
            "server": server,
            "tool": tool,
            "arguments": parsed if problem is None else arguments,
            "status": "in_progress",
        }
        ctx.emit(ITEM_STARTED, {"item": dict(item)})
        if problem is not None:
            return _failed(
                ctx, item, problem, f"error: {problem}; call {self.spec.name} again with a JSON object"
            )
        if self.needs_approval:
            decision = await ctx.request_approval(
                {
                    "kind": "mcp",
                    "server": server,
                    "tool": tool,
                    "arguments": parsed,
                    "reason": f"call {tool} on the MCP server {server} (it runs on your machine)",
                }
            )
            if decision == "deny":
                return _failed(ctx, item, DECLINED, f"the user declined the call to {tool} on {server}")
        try:
            result = await self.connection.call_tool(tool, parsed)
        except McpServerError as exc:
            if self.connection.state == "failed":
                self._on_server_failed(server, str(exc))
            return _failed(ctx, item, str(exc), f"error: {exc}")
        text, images = model_output(result)
        item["result"] = {
            "content": event_content(result.content),
            "structured_content": result.structured_content,
        }
        item["status"] = "failed" if result.is_error else "completed"
        if result.is_error:
            item["error"] = text or "the tool reported an error"
        ctx.emit(ITEM_COMPLETED, {"item": item})
        for index, part in enumerate(images, 1):
            part["name"] = f"{server} {tool} image {index}"
        return ToolResult(text, success=not result.is_error, images=images)


class McpToolset:
    """The MCP tools of one task: servers started on first need, failures noted once, tools offered."""

    def __init__(
        self,
        servers: list[McpServerConfig],
        connect: ConnectFn,
        emit: EmitFn,
        *,
        ask_by_default: bool,
        taken_names: Iterable[str] = (),
        only_unattended: bool = False,
    ) -> None:
        self._servers = [s for s in servers if s.enabled]
        self._connect = connect
        self._emit = emit
        self._ask_by_default = ask_by_default
        self._taken = set(taken_names)
        self._only_unattended = only_unattended
        self._noted: set[str] = set()
        self._tools: dict[str, McpTool] = {}
        self._built_for: tuple[int, ...] = ()

    def needs_approval(self, server: McpServerConfig) -> bool:
        """on-request asks, never does not; unset follows the task's approval policy."""
        if server.approval is None:
            return self._ask_by_default
        return server.approval == "on-request"

    async def tools(self) -> list[Tool]:
        """The tools to offer now: servers that are up, tools allowed by config with valid schemas."""
        servers = [s for s in self._servers if not (self._only_unattended and self.needs_approval(s))]
        if not servers:
            return []
        results = await asyncio.gather(*(self._connection(s) for s in servers))
        live = [(s, c) for s, c in zip(servers, results, strict=True) if c is not None and c.state == "ready"]
        key = tuple(id(c) for _, c in live)
        if key != self._built_for:
            self._tools = self._build(live)
            self._built_for = key
        return list(self._tools.values())

    def server_failed(self, server: str, message: str) -> None:
        """Note a server's failure once; its tools are gone from the next request on."""
        self._note_once(f"server:{server}", f"{message}; its tools are no longer offered", "warning")

    async def _connection(self, server: McpServerConfig) -> McpConnection | None:
        try:
            connection = await self._connect(server.name)
        except McpServerError as exc:
            self._note_once(f"server:{server.name}", f"{exc}; its tools are not offered", "warning")
            return None
        if connection.state == "failed":
            self.server_failed(server.name, connection.error)
            return None
        return connection

    def _build(self, live: list[tuple[McpServerConfig, McpConnection]]) -> dict[str, McpTool]:
        offered: list[tuple[McpServerConfig, McpConnection, McpToolInfo]] = []
        for server, connection in live:
            for info in connection.tools:
                if not server.offers(info.name):
                    continue
                if problem := schema_problem(info.input_schema):
                    key = f"schema:{server.name}:{info.name}"
                    self._note_once(
                        key, f"MCP tool {info.name} of '{server.name}' skipped: {problem}", "warning"
                    )
                    continue
                offered.append((server, connection, info))
        names = unique_names(((s.name, i.name) for s, _, i in offered), self._taken)
        tools: dict[str, McpTool] = {}
        for server, connection, info in offered:
            name = names[(server.name, info.name)]
            tools[name] = McpTool(
                connection,
                info,
                name,
                needs_approval=self.needs_approval(server),
                on_server_failed=self.server_failed,
            )
        return tools

    def _note_once(self, key: str, message: str, level: str) -> None:
        if key in self._noted:
            return
        self._noted.add(key)
        self._emit(NOTE, {"level": level, "message": message})


def _parse_arguments(arguments: str) -> tuple[dict[str, Any], str | None]:
    if not arguments.strip():
        return {}, None
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        return {}, f"the arguments are not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return {}, "the arguments must be a JSON object"
    return value, None


def _failed(ctx: ToolContext, item: dict[str, Any], error: str, output: str) -> ToolResult:
    item["status"] = "failed"
    item["error"] = error
    ctx.emit(ITEM_COMPLETED, {"item": item})
    return ToolResult(output, success=False)
