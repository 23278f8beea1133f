"""The browser image: a real headless chromium inside the sandbox screenshots a page served inside the
same container (network off), and the screenshot becomes an artifact. Run with `make test-browser`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import docker
import pytest

from codex_tui.protocol import ITEM_COMPLETED
from codex_tui.sandbox.base import SandboxError
from codex_tui.sandbox.image import BROWSER_IMAGE, BROWSER_LABEL, ensure_default_image
from codex_tui.tasks.artifacts import ArtifactStore
from codex_tui.tools.artifact import AttachArtifactTool
from tests.conftest_docker import MakeDockerSandbox
from tests.sandbox_helpers import Recorder, make_context

pytestmark = [pytest.mark.docker, pytest.mark.browser]

PAGE = "<!doctype html><title>hi</title><body style='background:#3a6'><h1>Hello from the sandbox</h1>"
SHOOT = (
    "python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 & sleep 1; "
    "chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --screenshot=shot.png "
    "--window-size=1280,800 http://127.0.0.1:8000/ 2>&1 | tail -n 5; kill %1; test -s shot.png"
)


@pytest.fixture(scope="session")
def browser_image(docker_engine: docker.DockerClient) -> str:
    """The browser image, built first when missing or stale (several minutes; see the README)."""
    try:
        asyncio.run(ensure_default_image(BROWSER_IMAGE, browser=True))
    except SandboxError as exc:
        pytest.fail(f"cannot build {BROWSER_IMAGE}: {exc}", pytrace=False)
    labels = docker_engine.images.get(BROWSER_IMAGE).labels
    assert labels.get(BROWSER_LABEL) == "1", f"{BROWSER_IMAGE} was built without the browser"
    return BROWSER_IMAGE


async def test_screenshot_of_a_local_page_is_attached_as_a_png(
    browser_image: str, make_docker_sandbox: MakeDockerSandbox, sandbox_workspace: Path, tmp_path: Path
) -> None:
    sandbox = make_docker_sandbox(image=browser_image)
    await sandbox.start()
    output: list[bytes] = []
    await sandbox.exec(["bash", "-c", f"cat > index.html <<'EOF'\n{PAGE}\nEOF"], timeout_s=30)
    result = await sandbox.exec(
        ["bash", "-c", SHOOT], timeout_s=120, on_output=lambda _stream, data: output.append(data)
    )
    assert result.exit_code == 0, b"".join(output).decode(errors="replace")
    recorder = Recorder()
    ctx = make_context(sandbox_workspace, sandbox, recorder)
    store = ArtifactStore(tmp_path / "data", "task-b")
    arguments = json.dumps({"path": "shot.png", "caption": "the page served inside the sandbox"})
    attached = await AttachArtifactTool(store).run(arguments, ctx)
    assert attached.success, attached.output
    [item] = recorder.items(ITEM_COMPLETED)
    assert item["mime_type"] == "image/png"
    data = Path(item["path"]).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(data[16:20], "big") == 1280  # IHDR width
