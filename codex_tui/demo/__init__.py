"""The demo: a sample repository with a real bug, scripted model scenarios, and `prepare_demo()`.

`prepare_demo()` copies `sample_repo/` into a temporary folder and commits it, starts the scripted
model server (a real HTTP server speaking the OpenAI wire APIs) with `scenarios/*.json`, and returns
a config whose provider points at it. No API key and no network are needed.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from codex_tui.config import Config, ModelProvider, load_config
from codex_tui.pricing import DEFAULT_PRICES
from codex_tui.protocol import OP_SUBMIT, Op
from codex_tui.scripted import ScriptedServer, load_scenarios

DEMO_DIR = Path(__file__).parent
SAMPLE_REPO = DEMO_DIR / "sample_repo"
SCENARIOS_DIR = DEMO_DIR / "scenarios"
PROVIDER = "codex-tui-demo"


@dataclass(slots=True)
class DemoPrompt:
    """One demo task: its prompt and the scripted model of each attempt (`scripted:<scenario>`)."""

    prompt: str
    models: list[str]
    title: str = ""

    @property
    def attempts(self) -> int:
        """One attempt per scripted model."""
        return len(self.models)

    def submission(self, mode: str = "auto") -> dict[str, Any]:
        """The data of the OP_SUBMIT that starts this demo task."""
        data: dict[str, Any] = {
            "prompt": self.prompt,
            "attempts": self.attempts,
            "model": self.models[0],
            "models": list(self.models),
            "mode": mode,
        }
        if self.title:
            data["title"] = self.title
        return data

    def op(self, mode: str = "auto") -> Op:
        """The OP_SUBMIT operation that starts this demo task."""
        return Op(OP_SUBMIT, data=self.submission(mode))


FIX_BUG = DemoPrompt(
    "The tests are failing. Find the bug in textkit and fix it, then make sure the whole suite passes.",
    ["scripted:fix-median"],
    "Fix the failing tests",
)
ADD_FEATURE = DemoPrompt(
    "Add a reading_time(text, wpm=200) function to textkit that estimates reading minutes, with tests.",
    ["scripted:reading-time-a", "scripted:reading-time-b"],
    "Add reading_time()",
)
WRITE_DOCS = DemoPrompt(
    "Document slugify(): add a docstring and a README section that explains how slugs are made.",
    ["scripted:docs-slug"],
    "Document slugify()",
)
DEMO_PROMPTS = (FIX_BUG, ADD_FEATURE, WRITE_DOCS)
DEMO_MODEL = "scripted"
"""The model of tasks the user starts in the demo: the scenario is picked by the prompt's words
(e.g. a question about counting words gets the scripted Ask answer; anything else, the bug fix)."""
REVIEW_MODEL = "scripted:demo-review"
"""The scripted reviewer of every demo review (`/review`, `codex-tui review` in the demo)."""
PRICED_AS: Final = "gpt-5-codex"
"""The demo's scripted models (`scripted`, `scripted:…`) are priced as this one: the demo shows a cost."""


@dataclass(slots=True)
class Demo:
    """A prepared demo: the sample repository, a config using the scripted server, the prompts."""

    repo: Path
    config: Config
    server: ScriptedServer
    prompts: list[DemoPrompt]
    root: Path
    """Temporary folder holding the repository and the demo's data (tasks, rollouts, checkouts)."""
    keep: bool = False
    closed: bool = field(default=False, init=False)

    @property
    def submissions(self) -> list[dict[str, Any]]:
        """OP_SUBMIT data for each demo prompt (the TUI submits them all at start)."""
        return [p.submission(self.config.sandbox_mode) for p in self.prompts]

    def close(self) -> None:
        """Stop the scripted server and remove the temporary folder (unless `keep`)."""
        if self.closed:
            return
        self.closed = True
        self.server.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


class DemoError(Exception):
    """The demo could not be prepared (e.g. git is missing); the message says why."""


def prepare_demo(config: Config | None = None, *, root: Path | None = None, keep: bool = False) -> Demo:
    """Copy and commit the sample repo, start the scripted server, and point a config at it.

    The returned config keeps the user's settings but uses the scripted provider, the default demo
    model, and a home inside the demo folder, so demo tasks never mix with the user's own tasks.
    Blocking (git, file copies): call it before the event loop starts or in a thread.
    """
    base = config or load_config()
    root = Path(tempfile.mkdtemp(prefix="codex-tui-demo-")) if root is None else root
    repo = root / "textkit"
    try:
        copy_sample_repo(repo)
        commit_all(repo, "textkit 0.3.0")
    except (OSError, subprocess.CalledProcessError) as exc:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        raise DemoError(f"could not prepare the demo repository in {root}: {_reason(exc)}") from None
    server = ScriptedServer(load_scenarios(SCENARIOS_DIR)).start_in_thread()
    return Demo(
        repo, demo_config(base, server.base_url, root / "home"), server, list(DEMO_PROMPTS), root, keep
    )


def demo_config(base: Config, base_url: str, home: Path) -> Config:
    """`base` with the scripted provider (no key), the demo model and a private home."""
    provider = ModelProvider(PROVIDER, base_url, None, "responses", False)
    home.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(
        base,
        model=DEMO_MODEL,
        review_model=REVIEW_MODEL,
        model_provider=PROVIDER,
        model_providers={**base.model_providers, PROVIDER: provider},
        home=home,
        keymap=dict(base.keymap),
        pricing={DEMO_MODEL: DEFAULT_PRICES[PRICED_AS], **base.pricing},
        source=f"{base.source} (demo)",
    )


def copy_sample_repo(dest: Path) -> None:
    """Copy the bundled sample repository (without caches) to `dest`."""
    shutil.copytree(SAMPLE_REPO, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def commit_all(repo: Path, message: str) -> None:
    """`git init` (branch main) and commit everything in `repo` as the demo author."""
    identity = [
        "-c",
        "user.name=codex-tui demo",
        "-c",
        "user.email=demo@codex-tui.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*identity, "commit", "-q", "-m", message]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return (exc.stderr or "").strip() or f"git exited with {exc.returncode}"
    if isinstance(exc, FileNotFoundError) and exc.filename == "git":
        return "git is not installed"
    return str(exc)
