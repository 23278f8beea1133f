"""Publish a task's branch: push it to the user's GitHub remote and open a pull request with `gh`.

Only the user's own repository is touched (trusted: the task's checkout is never involved). Both
commands run without a terminal (their own session, stdin closed, no git/gh/ssh prompts) and with
a timeout that ends their whole process group, so a credential prompt can neither hang the caller
nor draw over the TUI. Every failure comes back as a :class:`PublishResult` with a clear message.
Calls block: callers run :func:`publish_pr` in a thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from codex_tui.boundary.terminal import strip_controls
from codex_tui.workspace.gitrun import git_env, one_line

PUSH_TIMEOUT_S: Final = 120.0
GH_TIMEOUT_S: Final = 120.0
DETAIL_MAX: Final = 600
"""How much of a failing command's stderr a message quotes (its end, where the reason is)."""

_NO_PROMPTS: Final = {
    "GIT_TERMINAL_PROMPT": "0",
    "GCM_INTERACTIVE": "never",
    "SSH_ASKPASS_REQUIRE": "never",
    "GH_PROMPT_DISABLED": "1",
    "GH_NO_UPDATE_NOTIFIER": "1",
    "GH_SPINNER_DISABLED": "1",
    "NO_COLOR": "1",
}
_URL: Final = re.compile(r"https?://[^\s\"'<>]+")
_SCP_LIKE: Final = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.+)$")


@dataclass(slots=True, frozen=True)
class PublishResult:
    """What publishing did: ok, a message for the user, and the pull request's URL when known."""

    ok: bool
    message: str
    url: str = ""


@dataclass(slots=True, frozen=True)
class Remote:
    """One remote of the user's repository and the URL git pushes to."""

    name: str
    url: str


@dataclass(slots=True, frozen=True)
class _Ran:
    """A finished (or timed out: code None) command's exit code and output."""

    code: int | None
    out: str
    err: str


def publish_pr(repo: Path, branch: str, title: str, body: str, *, remote: str | None = None) -> PublishResult:
    """Push `branch` of `repo` to its GitHub remote (or `remote`) and open a PR with `gh pr create`."""
    gh = shutil.which("gh")
    if gh is None:
        return PublishResult(
            False,
            f"the GitHub CLI (gh) is not installed; the branch {branch} is ready: "
            "push it and open a PR yourself",
        )
    found = _remotes_or_problem(repo, branch)
    if isinstance(found, str):
        return PublishResult(False, found)
    chosen = pick_github_remote(found, remote)
    if isinstance(chosen, str):
        return PublishResult(False, chosen)
    push = _run(
        ["git", "push", chosen.name, f"refs/heads/{branch}:refs/heads/{branch}"], repo, PUSH_TIMEOUT_S
    )
    if push.code != 0:
        return PublishResult(False, f"could not push {branch} to {chosen.name}: {_detail(push)}")
    return _create_pr(gh, repo, branch, title, body, chosen)


def list_remotes(repo: Path) -> list[Remote] | str:
    """The remotes of `repo` with their push URLs, in git's order (a message when git fails)."""
    ran = _run(["git", "remote", "-v"], repo, 30.0)
    if ran.code != 0:
        return f"cannot list the remotes of {repo}: {_detail(ran)}"
    remotes: dict[str, str] = {}
    for line in ran.out.splitlines():
        name, _, rest = line.partition("\t")
        url, _, kind = rest.rpartition(" ")
        if name and url and (kind == "(push)" or name not in remotes):
            remotes[name] = url
    return [Remote(name, url) for name, url in remotes.items()]


def pick_github_remote(remotes: list[Remote], wanted: str | None = None) -> Remote | str:
    """`wanted`, else `origin` or the first remote whose URL names GitHub; a message naming the
    remotes found when there is none."""
    if wanted:
        match = next((r for r in remotes if r.name == wanted), None)
        if match is None:
            return f"there is no remote named {wanted!r}; {_remotes_found(remotes)}"
        return match
    github = [r for r in remotes if "github" in r.url.lower()]
    if not github:
        return f"no GitHub remote to push to; {_remotes_found(remotes)}"
    return next((r for r in github if r.name == "origin"), github[0])


def github_repo_of(url: str) -> str:
    """`HOST/OWNER/REPO` named by a GitHub remote URL (https, ssh, scp-like or a mirror path), or ""."""
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    elif match := _SCP_LIKE.match(url):
        host, path = match.group(1), match.group(2)
    else:
        host, path = "", url
    segments = [s for s in path.split("/") if s]
    if "github" in host.lower() and len(segments) >= 2:
        owner, name = segments[0], segments[1]
    else:
        at = next((i for i in reversed(range(len(segments) - 2)) if "github" in segments[i].lower()), -1)
        if at < 0:
            return ""
        host, owner, name = segments[at], segments[at + 1], segments[at + 2]
    name = name.removesuffix(".git")
    return f"{host}/{owner}/{name}" if host and owner and name else ""


def redact_url(url: str) -> str:
    """A remote URL without the user name or token an http(s) URL may carry (ssh users stay)."""
    return re.sub(r"^(https?://)[^/@]*@", r"\1", url, flags=re.IGNORECASE)


# --- steps ---------------------------------------------------------------------------------------


def _remotes_or_problem(repo: Path, branch: str) -> list[Remote] | str:
    if not repo.is_dir():
        return f"{repo} no longer exists"
    ran = _run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], repo, 30.0)
    if ran.code != 0:
        return f"there is no branch {branch} in {repo}" + (f": {_detail(ran)}" if ran.err.strip() else "")
    return list_remotes(repo)


def _create_pr(gh: str, repo: Path, branch: str, title: str, body: str, remote: Remote) -> PublishResult:
    subject = one_line(strip_controls(title)) or branch
    fd, body_file = tempfile.mkstemp(prefix="codex-tui-pr-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        argv = [gh, "pr", "create", "--head", branch, "--title", subject, "--body-file", body_file]
        target = github_repo_of(remote.url)
        if target:
            argv += ["--repo", target]
        ran = _run(argv, repo, GH_TIMEOUT_S)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(body_file)
    if ran.code == 0:
        url = _last_url(ran.out)
        return PublishResult(
            True, f"pushed {branch} to {remote.name} and opened {url or 'a pull request'}", url
        )
    existing = _last_url(ran.err) if "already exists" in ran.err else ""
    if existing:
        return PublishResult(
            True, f"pushed {branch} to {remote.name}; its pull request is {existing}", existing
        )
    return PublishResult(
        False, f"pushed {branch} to {remote.name}, but gh could not open the PR: {_detail(ran)}"
    )


def _run(argv: list[str], cwd: Path, timeout_s: float) -> _Ran:
    """Run a command without a terminal; past `timeout_s` its whole process group is killed."""
    env = git_env(_NO_PROMPTS)
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return _Ran(127, "", f"cannot run {argv[0]}: {exc.strerror or exc}")
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a process outside the group still holds the pipes
            proc.kill()
            proc.wait()
            out, err = b"", b""
        note = f"\n{Path(argv[0]).name} did not finish within {timeout_s:g} s and was stopped"
        return _Ran(None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace") + note)
    return _Ran(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def _detail(ran: _Ran) -> str:
    """The end of a failed command's stderr (else stdout), without control sequences, on one line."""
    text = strip_controls(ran.err.strip() or ran.out.strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = " / ".join(lines) or (f"exit code {ran.code}" if ran.code is not None else "timed out")
    return detail if len(detail) <= DETAIL_MAX else "…" + detail[-(DETAIL_MAX - 1) :]


def _last_url(text: str) -> str:
    urls = _URL.findall(strip_controls(text))
    return urls[-1].rstrip(".,;)") if urls else ""


def _remotes_found(remotes: list[Remote]) -> str:
    if not remotes:
        return "the repository has no remotes (add one with `git remote add origin URL`)"
    shown = ", ".join(f"{r.name} ({redact_url(strip_controls(r.url))})" for r in remotes)
    return f"remotes found: {shown}"
