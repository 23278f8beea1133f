"""The agent a task runs: its settings, tools and model client, from the task's record and config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codex_tui.agent.loop import Agent, AgentSettings
from codex_tui.config import ConfigError
from codex_tui.models.base import Usage
from codex_tui.tasks.artifacts import ArtifactStore, artifacts_folder
from codex_tui.tasks.kinds import output_schema_for, tools_for
from codex_tui.tasks.task_context import TaskFailure
from codex_tui.tasks.task_tools import mcp_toolset, web_search_enabled
from codex_tui.tools.artifact import AttachArtifactTool
from codex_tui.tools.view_image import ViewImageTool

if TYPE_CHECKING:
    from codex_tui.tasks.task import Task


async def build_agent(task: Task) -> Agent:
    """The agent with its saved history, on the task's sandbox (made before; see Task._make_sandbox)."""
    assert task.workspace is not None and task.sandbox is not None
    cfg = task.ctx.config
    history = await task.ctx.store.load_history(task.id)
    settings = AgentSettings(
        model=task.record.model,
        reasoning_effort=task.record.effort,
        context_window=cfg.model_context_window,
        mode=task.record.mode,  # type: ignore[arg-type]
        shell_timeout_ms=cfg.shell_timeout_ms,
        home=cfg.home,
        kind=task.record.kind,
        output_schema=output_schema_for(task.record.kind),
        web_search=web_search_enabled(cfg, task.record.provider, task.emit, noted=task.search_noted),
    )
    task.search_noted = task.search_noted or cfg.web_search
    tools = tools_for(task.record.kind, task.record.mode, cfg.shell_timeout_ms)
    views = artifacts_folder(task.ctx.store.data_dir, task.id) / "viewed"
    tools = [ViewImageTool(views) if tool.spec.name == "view_image" else tool for tool in tools]
    if task.record.kind != "review":  # a review's answer is its findings, not files
        tools.append(AttachArtifactTool(ArtifactStore(task.ctx.store.data_dir, task.id)))
    mcp = mcp_toolset(
        task.ctx.mcp,
        task.emit,
        kind=task.record.kind,
        mode=task.record.mode,
        approval_policy=task.ctx.approval_policy,
        taken_names=[tool.spec.name for tool in tools],
    )
    try:
        await task.ctx.models_ready()
        client = task.ctx.make_client(task.record.provider)
    except ConfigError as exc:
        raise TaskFailure(str(exc)) from None
    agent = Agent(
        task_id=task.id,
        client=client,
        sandbox=task.sandbox,
        workspace=task.workspace.path,
        settings=settings,
        emit=task.emit,
        request_approval=task.approvals.request,
        cwd=task.workspace.path / task.workspace.subdir,
        history=history,
        on_files_changed=task.files_changed,
        tools=tools,
        extra_tools=mcp.tools if mcp is not None else None,
    )
    record = task.record  # the totals go on across rebuilds and restarts (context.updated shows them)
    agent.total_usage = Usage(record.input_tokens, record.cached_input_tokens, record.output_tokens)
    return agent
