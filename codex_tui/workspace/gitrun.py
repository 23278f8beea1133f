"""Run git for the workspace code (clean environment, bytes in and out, clear errors) + plumbing helpers.

The workspace works with git plumbing (temporary index files, `commit-tree`, `cat-file --batch`),
which needs exact control of the environment: variables a parent process may have set (`GIT_DIR`,
`GIT_INDEX_FILE`, ... e.g. when the app is started from a git hook) would silently point these
commands at the wrong repository, so they are removed before every call. Calls block: callers run
them in a thread.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)


IDENTITY = {"user.name": "codex-tui", "user.email": "codex-tui@localhost"}
"""Who commits in task checkouts (and in the user's repository when it has no identity)."""


class WorkspaceError(Exception):
    """A task checkout could not be created, read or applied; the message says what and where."""


class GitFailed(WorkspaceError):
    """A git command exited non-zero; keeps the exit code and stderr for callers that expect it."""

    def __init__(self, args: list[str], cwd: Path, code: int, stderr: str) -> None:
        self.code = code
        self.stderr = stderr
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
        super().__init__(f"git {' '.join(args[:2])} failed in {cwd}: {detail}")


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for one git call: inherited, minus repository-location variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARS}
    env.update({"LC_ALL": "C", "LANGUAGE": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"})
    if extra:
        env.update(extra)
    return env


def run_git(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> bytes:
    """Run `git args` in `cwd` and return stdout; raise GitFailed for an exit code not in `ok_codes`."""
    code, out, err = run_git_code(cwd, *args, env=env, input=input)
    if code not in ok_codes:
        raise GitFailed(list(args), cwd, code, err)
    return out


def run_git_code(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None
) -> tuple[int, bytes, str]:
    """Run git and return (exit code, stdout, stderr) without raising for a non-zero exit."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=git_env(env), input=input, capture_output=True, check=False
        )
    except OSError as exc:
        raise WorkspaceError(f"cannot run git in {cwd}: {exc.strerror}") from None
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def run_git_capped(
    cwd: Path, *args: str, max_bytes: int, env: Mapping[str, str] | None = None
) -> tuple[bytes, bool]:
    """Run git and return (stdout, cut): past `max_bytes` of output git is stopped and `cut` is True.

    For output whose size the sandbox decides (a patch of files it wrote): it is never held whole.
    """
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=git_env(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        except OSError as exc:
            raise WorkspaceError(f"cannot run git in {cwd}: {exc.strerror}") from None
        assert proc.stdout is not None
        chunks: list[bytes] = []
        total = 0
        with proc.stdout:
            while total <= max_bytes and (chunk := proc.stdout.read(min(1 << 20, max_bytes + 1 - total))):
                chunks.append(chunk)
                total += len(chunk)
            if total > max_bytes:
                proc.kill()
        code = proc.wait()
        if total > max_bytes:
            return b"".join(chunks)[:max_bytes], True
        if code != 0:
            errors.seek(0)
            raise GitFailed(list(args), cwd, code, errors.read(65536).decode("utf-8", "replace"))
    return b"".join(chunks), False


def git_text(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run git and return stdout as text without the trailing newline."""
    return run_git(cwd, *args, env=env).decode("utf-8", "surrogateescape").rstrip("\n")


def split_z(data: bytes) -> list[str]:
    """Split NUL-terminated git output (`-z`) into strings, dropping the empty tail."""
    parts = data.decode("utf-8", "surrogateescape").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def read_blobs(repo: Path, shas: list[str], env: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Contents of many blobs with one `git cat-file --batch`; missing objects are left out."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    out = run_git(repo, "cat-file", "--batch", env=env, input=("\n".join(wanted) + "\n").encode())
    blobs: dict[str, bytes] = {}
    pos = 0
    for sha in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode()
        pos = end + 1
        if header.endswith(" missing"):
            continue
        size = int(header.split()[2])
        blobs[sha] = out[pos : pos + size]
        pos += size + 1
    return blobs


def commit_tree(
    repo: Path, tree: str, parents: list[str], message: str, env: dict[str, str] | None = None
) -> str:
    """A commit object of `tree` (never signed, no hooks); returns its id."""
    args = ["commit-tree", "--no-gpg-sign", tree]
    for parent in parents:
        args += ["-p", parent]
    data = message.encode("utf-8", "replace")
    return run_git(repo, *args, "-F", "-", env=env, input=data).decode().strip()


def rev_or_empty(repo: Path, spec: str) -> str:
    """The object id `spec` names in `repo`, or "" when it names nothing."""
    code, out, _err = run_git_code(repo, "rev-parse", "--verify", "-q", spec)
    return out.decode().strip() if code == 0 else ""


def empty_tree(repo: Path) -> str:
    """The id of the empty tree in the repository's hash format."""
    return run_git(repo, "hash-object", "-t", "tree", "--stdin", input=b"").decode().strip()


def zero_oid(like: str) -> str:
    """The all-zero id (ref must not exist yet) as long as `like`."""
    return "0" * len(like)


def one_line(text: str) -> str:
    """Collapse whitespace and newlines: safe for a commit subject or a config value."""
    return " ".join(text.split())
