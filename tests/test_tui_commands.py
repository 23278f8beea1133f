"""Slash commands and completions typed in the composer."""

from __future__ import annotations

from pathlib import Path

from codex_tui.tui.commands import (
    SLASH_COMMANDS,
    SlashCommand,
    SlashError,
    complete_mention,
    complete_slash,
    parse_slash,
)
from codex_tui.tui.widgets.composer import check_image, image_path_from_paste


def test_plain_text_is_a_prompt_not_a_command() -> None:
    assert parse_slash("fix the bug") is None
    assert parse_slash("//not a command") is None


def test_commands_parse_with_their_argument() -> None:
    assert parse_slash("/attempts 3") == SlashCommand("attempts", "3")
    assert parse_slash("  /mode read-only ") == SlashCommand("mode", "read-only")
    assert parse_slash("/new add a README") == SlashCommand("new", "add a README")
    assert parse_slash("/diff") == SlashCommand("diff", "")


def test_bad_commands_explain_what_is_wrong() -> None:
    assert parse_slash("/attempts 9") == SlashError("/attempts needs a number from 1 to 4")
    assert parse_slash("/mode yolo") == SlashError("/mode needs one of: read-only, auto, full-access")
    assert parse_slash("/image") == SlashError("/image needs PATH")
    assert parse_slash("/diff now") == SlashError("/diff takes no argument")
    error = parse_slash("/difff")
    assert isinstance(error, SlashError) and "did you mean /diff" in error.message


def test_every_listed_command_is_accepted() -> None:
    samples = {"attempts": "2", "mode": "auto", "image": "a.png", "model": "o3", "theme": "ember", "new": ""}
    for spec in SLASH_COMMANDS:
        arg = samples.get(spec.name, "")
        assert isinstance(parse_slash(f"/{spec.name} {arg}".strip()), SlashCommand), spec.name


def test_slash_completion_offers_names_then_choices() -> None:
    assert complete_slash("/com") == ["/compact"]
    assert complete_slash("/mo") == ["/mode ", "/model "]
    assert complete_slash("/mode r") == ["/mode read-only"]
    assert complete_slash("/theme e", ["glacier", "ember"]) == ["/theme ember"]
    assert complete_slash("hello") == []


def test_mention_completion_prefers_prefix_matches() -> None:
    files = ["src/app.py", "tests/test_app.py", "README.md"]
    assert complete_mention("look at @src", files) == ("src", ["src/app.py"])
    assert complete_mention("see @app", files) == ("app", ["src/app.py", "tests/test_app.py"])
    assert complete_mention("mail me@home", files) == ("", [])


def test_pasted_image_path_is_recognised_in_its_usual_shapes(tmp_path: Path) -> None:
    image = tmp_path / "my shot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    assert image_path_from_paste(f"'{image}'", tmp_path) == image
    assert image_path_from_paste(str(image).replace(" ", "\\ "), tmp_path) == image
    assert image_path_from_paste("file://" + str(image).replace(" ", "%20"), tmp_path) == image
    assert image_path_from_paste("my shot.png", tmp_path) == image
    assert image_path_from_paste("some prose that is not a path", tmp_path) is None
    assert image_path_from_paste(str(tmp_path / "missing.png"), tmp_path) is None


def test_attaching_a_non_image_is_refused_with_a_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    assert check_image(text) == "Not an image (.gif, .jpeg, .jpg, .png, .webp): notes.txt"
    assert check_image(tmp_path / "nope.png") == f"No such file: {tmp_path / 'nope.png'}"
