"""The browser variant of the sandbox image: what it adds and how it is asked for (no build here)."""

from __future__ import annotations

from codex_tui.cli import sandbox_parser
from codex_tui.sandbox.image import (
    BROWSER_LABEL,
    BROWSER_PACKAGES,
    PACKAGES,
    _dockerfile,
    image_packages,
)


def test_browser_variant_adds_chromium_fonts_and_a_session_bus() -> None:
    assert image_packages(False) == PACKAGES
    packages = image_packages(True)
    assert packages[: len(PACKAGES)] == PACKAGES
    assert {"chromium", "fonts-liberation", "fonts-dejavu-core", "dbus-x11"} <= set(packages)
    assert set(BROWSER_PACKAGES).isdisjoint(PACKAGES)


def test_browser_dockerfile_installs_chromium_and_labels_the_image() -> None:
    text = _dockerfile(image_packages(True), {BROWSER_LABEL: "1"})
    assert " chromium " in text
    assert f'LABEL {BROWSER_LABEL}="1"' in text


def test_sandbox_build_takes_a_browser_flag() -> None:
    assert sandbox_parser().parse_args(["build", "--browser"]).browser
    assert not sandbox_parser().parse_args(["build"]).browser
