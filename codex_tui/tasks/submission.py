"""Checking a task.submit operation: prompt, images, attempts, mode, models, and for reviews the
targets, resolved in the user's repository before any task exists (a bad branch is an error now,
not a failed task later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from codex_tui.agent.review import review_request
from codex_tui.config import EFFORTS, NETWORK_ACCESS, Config, ConfigError, check_environment_key
from codex_tui.protocol import REVIEW_TARGETS, SANDBOX_MODES, TASK_KINDS
from codex_tui.tasks.kinds import kind_name, sandbox_mode_for
from codex_tui.tasks.store import TaskRecord
from codex_tui.workspace.gitrun import WorkspaceError
from codex_tui.workspace.review_target import ResolvedTarget, ReviewTarget, resolve_target

MAX_ATTEMPTS: Final = 4
MAX_REVIEWS: Final = 8
"""At most this many review tasks from one submission (e.g. every attempt of a group)."""


@dataclass(slots=True)
class Submission:
    """A validated task.submit: one task per attempt, or one review task per review target."""

    prompt: str
    images: list[str]
    attempts: int
    mode: str
    effort: str
    models: list[str]
    repo: Path
    title: str
    kind: str = "code"
    reviews: list[ReviewJob] = field(default_factory=list)
    network: str = ""
    """off|limited|on for these tasks ("" = the environment's setting)."""
    allowed_domains: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReviewJob:
    """One review task to create: its resolved target, the repository it is in, its first message."""

    target: ResolvedTarget
    repo: Path
    prompt: str


def make_title(prompt: str, limit: int = 60) -> str:
    """The first line of the prompt, shortened."""
    line = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "untitled task")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def check_submission(data: dict[str, Any], config: Config, default_repo: Path) -> Submission | str:
    """Validate task.submit data (everything but review targets); a string is the error message."""
    kind = data.get("kind") or "code"
    if kind not in TASK_KINDS:
        return f"kind '{kind}' is not one of {', '.join(TASK_KINDS)}"
    prompt = data.get("prompt", "")
    images = data.get("images") or []
    if not isinstance(prompt, str) or (kind != "review" and not (prompt.strip() or images)):
        return "a task needs a prompt"
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        return "images must be a list of file paths"
    missing = [p for p in images if not Path(p).expanduser().is_file()]
    if missing:
        return f"image not found: {missing[0]}"
    attempts = data.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        return f"attempts must be a whole number from 1 to {MAX_ATTEMPTS}"
    mode = data.get("mode") or config.sandbox_mode
    if mode not in SANDBOX_MODES:
        return f"mode '{mode}' is not one of {', '.join(SANDBOX_MODES)}"
    effort = data.get("effort") or config.model_reasoning_effort
    if effort not in EFFORTS:
        return f"reasoning effort '{effort}' is not one of {', '.join(EFFORTS)}"
    default_model = (config.review_model or config.model) if kind == "review" else config.model
    models = data.get("models") or [data.get("model") or default_model]
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        return "models must be a list of model names"
    repo = Path(data.get("repo") or default_repo).expanduser()
    if not repo.is_dir():
        return f"repository folder not found: {repo}"
    title = data.get("title") or make_title(prompt or "image task")
    network = data.get("network") or ""
    if network and network not in NETWORK_ACCESS:
        return f"network '{network}' is not one of {', '.join(NETWORK_ACCESS)}"
    try:
        domains = check_environment_key("allowed_domains", data.get("allowed_domains") or [], "task.submit")
    except ConfigError as exc:
        return str(exc)
    return Submission(
        prompt=prompt,
        images=[str(Path(p).expanduser().resolve()) for p in images],
        attempts=attempts,
        mode=sandbox_mode_for(kind, mode),
        effort=effort,
        models=models,
        repo=repo.resolve(),
        title=str(title),
        kind=kind,
        network=network,
        allowed_domains=list(domains),
    )


def review_targets(data: Any) -> list[ReviewTarget] | str:
    """The review targets asked for: {target, base?, commit?, task_id?} or {target: task, task_ids}."""
    try:
        return _review_targets(data)
    except ValueError as exc:
        return str(exc)


def _review_targets(data: Any) -> list[ReviewTarget] | str:
    if data is None:
        return [ReviewTarget("uncommitted")]
    if not isinstance(data, dict):
        return "a review needs a target: uncommitted, base (a branch), commit (a sha) or task (an id)"
    kind = data.get("target") or ("task" if data.get("task_ids") else "uncommitted")
    if kind not in REVIEW_TARGETS:
        return f"review target '{kind}' is not one of {', '.join(REVIEW_TARGETS)}"
    if kind == "task":
        ids = data.get("task_ids") or [data.get("task_id")]
        if not all(isinstance(i, str) and i for i in ids):
            return "a review of a task needs its id (task_id or task_ids)"
        if len(ids) > MAX_REVIEWS:
            return f"at most {MAX_REVIEWS} tasks can be reviewed at once"
        return [ReviewTarget("task", task_id=task_id) for task_id in dict.fromkeys(ids)]
    if kind == "base":
        base = data.get("base")
        if not isinstance(base, str) or not base.strip():
            return "a review against a base branch needs the branch name"
        return [ReviewTarget("base", base=base.strip())]
    if kind == "commit":
        commit = data.get("commit")
        if not isinstance(commit, str) or not commit.strip():
            return "a review of a commit needs its sha"
        return [ReviewTarget("commit", commit=commit.strip())]
    return [ReviewTarget("uncommitted")]


async def resolve_reviews(
    spec: Submission, data: Any, find_record: Callable[[str], TaskRecord | None]
) -> Submission | str:
    """Resolve the submission's review targets in the repository (in a thread); errors as text.

    A task target takes its repository and title from that task's record, which must exist and be
    finished (its result is what gets reviewed).
    """
    targets = review_targets(data)
    if isinstance(targets, str):
        return targets
    jobs: list[ReviewJob] = []
    for target in targets:
        repo, title = spec.repo, ""
        if target.type == "task":
            record = find_record(target.task_id)
            if record is None:
                return f"unknown task '{target.task_id}'"
            if record.kind != "code":
                return f"task {record.id} is {kind_name(record.kind)}: it has no change to review"
            if record.status in ("queued", "starting", "running", "waiting_approval"):
                return f"task {record.id} is still running; review it when it has finished"
            if record.pruned:
                return f"task {record.id}'s checkout was pruned; there is nothing to review"
            repo, title = Path(record.repo), record.title
        try:
            done = await asyncio.to_thread(resolve_target, repo, target, task_title=title)
        except WorkspaceError as exc:
            return str(exc)
        jobs.append(ReviewJob(done, repo, review_request(done.to_dict(), spec.prompt)))
    spec.reviews = jobs
    spec.attempts = 1
    return spec
