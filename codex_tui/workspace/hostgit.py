"""The host's own git directory for a task: objects, snapshot refs and config the sandbox never sees.

It lives beside the checkout (``<checkout>.state/git``), outside anything mounted into a sandbox,
and borrows the user's object store through an alternates file the host writes once. Every git
call on it runs with a hardened environment: no system or global config (so no user-level filter,
textconv or hook setting applies either), hooks and fsmonitor off, and no work tree — git never
reads the checkout. Objects for the checkout's files are written here by Python from bytes the host
read safely (:mod:`codex_tui.boundary.safe_fs`); trees are built the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from codex_tui.workspace.gitrun import WorkspaceError, git_text, read_blobs, run_git, run_git_code, split_z

MODE_FILE: Final = "100644"
MODE_EXEC: Final = "100755"
MODE_LINK: Final = "120000"
MODE_GITLINK: Final = "160000"
MODE_TREE: Final = "40000"

_CONFIG: Final = """[core]
\trepositoryformatversion = {version}
\tbare = true
\thooksPath = /dev/null
\tfsmonitor = false
\tuntrackedCache = false
\tautocrlf = false
\tsymlinks = true
\tquotepath = false
{excludes}[gc]
\tauto = 0
[user]
\tname = codex-tui
\temail = codex-tui@localhost
{extensions}"""

Tree = dict[str, tuple[str, str]]
"""A flat tree: path -> (mode, object id)."""


class HostGit:
    """One task's host-side git directory (bare, with no work tree)."""

    def __init__(self, gitdir: Path) -> None:
        self.gitdir = gitdir
        self.objects = gitdir / "objects"
        fmt = (
            (gitdir / "object-format").read_text().strip() if (gitdir / "object-format").exists() else "sha1"
        )
        self.object_format = fmt

    @classmethod
    def init(cls, gitdir: Path, *, object_format: str, borrow: list[Path], excludes_file: str) -> HostGit:
        """Create the git directory (borrowing `borrow` object folders) and return it."""
        if object_format not in ("sha1", "sha256"):
            raise WorkspaceError(f"unsupported git object format {object_format!r}")
        for sub in ("objects/info", "objects/pack", "refs/heads", "refs/tags", "info"):
            (gitdir / sub).mkdir(parents=True, exist_ok=True)
        (gitdir / "HEAD").write_text("ref: refs/heads/main\n")
        excludes = f"\texcludesFile = {_quote(excludes_file)}\n" if excludes_file else ""
        extensions = "[extensions]\n\tobjectFormat = sha256\n" if object_format == "sha256" else ""
        version = "1" if object_format == "sha256" else "0"
        config = _CONFIG.format(version=version, excludes=excludes, extensions=extensions)
        (gitdir / "config").write_text(config)
        (gitdir / "object-format").write_text(object_format + "\n")
        if borrow:
            (gitdir / "objects" / "info" / "alternates").write_text("".join(f"{p}\n" for p in borrow))
        return cls(gitdir)

    # --- running git ----------------------------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The hardened environment of every git call on this directory."""
        env = {
            "GIT_DIR": str(self.gitdir),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_PROTOCOL_FROM_USER": "0",
            "HOME": str(self.gitdir),
            "XDG_CONFIG_HOME": str(self.gitdir / "xdg"),
        }
        env.update(extra or {})
        return env

    def run(self, *args: str, input: bytes | None = None, ok_codes: tuple[int, ...] = (0,)) -> bytes:
        """Run git on this directory; raises GitFailed on an unexpected exit code."""
        return run_git(self.gitdir, *args, env=self.env(), input=input, ok_codes=ok_codes)

    def run_code(self, *args: str, input: bytes | None = None) -> tuple[int, bytes, str]:
        """Run git on this directory and return (exit code, stdout, stderr)."""
        return run_git_code(self.gitdir, *args, env=self.env(), input=input)

    def text(self, *args: str) -> str:
        """Run git on this directory and return stdout as text."""
        return git_text(self.gitdir, *args, env=self.env())

    def rev(self, spec: str) -> str:
        """The object id `spec` names, or ""."""
        code, out, _err = self.run_code("rev-parse", "--verify", "-q", spec)
        return out.decode().strip() if code == 0 else ""

    def blobs(self, shas: list[str]) -> dict[str, bytes]:
        """Contents of blobs by id (missing ones left out)."""
        return read_blobs(self.gitdir, shas, env=self.env())

    def blob_sizes(self, shas: list[str]) -> dict[str, int]:
        """Sizes of objects by id, without reading their content (missing ones left out)."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        listed = ("\n".join(wanted) + "\n").encode()
        out = self.run("cat-file", "--batch-check=%(objectname) %(objectsize)", input=listed)
        sizes: dict[str, int] = {}
        for line in out.decode().splitlines():
            name, _, size = line.partition(" ")
            if size.isdigit():
                sizes[name] = int(size)
        return sizes

    def ls_tree(self, treeish: str) -> Tree:
        """Every non-tree entry of a tree, recursively, as a flat mapping."""
        out = self.run("ls-tree", "-r", "-z", "--full-tree", treeish)
        tree: Tree = {}
        for item in split_z(out):
            meta, path = item.split("\t", 1)
            mode, _kind, sha = meta.split()
            tree[path] = (mode, sha)
        return tree

    # --- writing objects ------------------------------------------------------------------------

    def hash_object(self, kind: str, data: bytes) -> str:
        """The id git gives an object of `kind` with `data`."""
        digest = hashlib.new(self.object_format, f"{kind} {len(data)}\0".encode())
        digest.update(data)
        return digest.hexdigest()

    def write_object(self, kind: str, data: bytes, known: set[str] | None = None) -> str:
        """Store an object as a loose object (unless it is known to exist); returns its id."""
        sha = self.hash_object(kind, data)
        if known is not None and sha in known:
            return sha
        path = self.objects / sha[:2] / sha[2:]
        if path.exists():
            with contextlib.suppress(OSError):
                os.utime(path)  # as git does: fresh again, so a prune's grace period keeps it
        else:
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_name(f"tmp-{secrets.token_hex(6)}")
            compressor = zlib.compressobj(1)
            with open(tmp, "wb") as handle:
                handle.write(compressor.compress(f"{kind} {len(data)}\0".encode()))
                handle.write(compressor.compress(data))
                handle.write(compressor.flush())
            os.replace(tmp, path)
        if known is not None:
            known.add(sha)
        return sha

    def write_tree(self, entries: Tree, known: set[str]) -> str:
        """Write the tree objects for a flat mapping of paths; returns the root tree's id."""
        folders: dict[str, dict[str, tuple[str, str]]] = {"": {}}
        for path in entries:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folders.setdefault("/".join(parts[:depth]), {})
        for path, (mode, sha) in entries.items():
            parent, _, name = path.rpartition("/")
            folders[parent][name] = (mode, sha)
        for folder in sorted(folders, key=lambda f: f.count("/") if f else -1, reverse=True):
            if not folder:
                continue
            sha = self.write_object("tree", self._tree_bytes(folders[folder]), known)
            parent, _, name = folder.rpartition("/")
            folders[parent][name] = (MODE_TREE, sha)
        return self.write_object("tree", self._tree_bytes(folders[""]), known)

    def _tree_bytes(self, items: dict[str, tuple[str, str]]) -> bytes:
        def key(name: str) -> bytes:
            suffix = "/" if items[name][0] == MODE_TREE else ""
            return (name + suffix).encode("utf-8", "surrogateescape")

        out = bytearray()
        for name in sorted(items, key=key):
            mode, sha = items[name]
            out += f"{mode} ".encode() + name.encode("utf-8", "surrogateescape") + b"\0" + bytes.fromhex(sha)
        return bytes(out)

    def commit(self, tree: str, parents: Iterable[str], message: str) -> str:
        """A commit object of `tree` (never signed, no hooks)."""
        args = ["commit-tree", "--no-gpg-sign", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.run(*args, "-F", "-", input=message.encode("utf-8", "replace")).decode().strip()

    def update_ref(self, ref: str, value: str) -> None:
        """Point `ref` at `value`."""
        self.run("update-ref", ref, value)

    def loose_bytes(self) -> int:
        """Disk used by this directory's loose objects (the borrowed stores not counted)."""
        for line in self.text("count-objects", "-v").splitlines():
            key, _, value = line.partition(":")
            if key == "size" and value.strip().isdigit():
                return int(value.strip()) * 1024
        return 0

    def prune(self, grace: str) -> None:
        """Delete the loose objects no ref reaches that are older than `grace` ("10.minutes.ago")."""
        self.run("prune", f"--expire={grace}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
