"""The composer: a multi-line prompt with history, slash/@ completion and image attachments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image as PILImage
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from codex_tui.tui.bindings import COMPOSER_BINDINGS
from codex_tui.tui.clipboard import ClipboardError, paste_image
from codex_tui.tui.commands import complete_mention, complete_slash
from codex_tui.tui.images import image_widget, load_image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
HISTORY_LIMIT = 200
PREVIEW_BOX = (16, 4)
"""Size (columns, rows) of the small preview of each attached image."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image file to send with the next message."""

    path: Path
    size: int

    @property
    def label(self) -> str:
        """`shot.png 48 KB`."""
        return f"{self.path.name} {human_size(self.size)}"


def human_size(size: int) -> str:
    """`512 B`, `48 KB`, `1.2 MB`."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def image_path_from_paste(text: str, cwd: Path) -> Path | None:
    """The image file a paste/drop names (quoted, `file://` or backslash-escaped), else None."""
    candidate = text.strip()
    if not candidate or "\n" in candidate:
        return None
    if len(candidate) >= 2 and candidate[0] == candidate[-1] and candidate[0] in "'\"":
        candidate = candidate[1:-1]
    if candidate.startswith("file://"):
        candidate = unquote(urlparse(candidate).path)
    candidate = candidate.replace("\\ ", " ")
    path = Path(candidate).expanduser()
    if not path.is_absolute():
        path = cwd / path
    if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
        return path
    return None


def check_image(path: Path) -> Attachment | str:
    """An Attachment for a readable image file, or the reason it cannot be attached."""
    if not path.exists():
        return f"No such file: {path}"
    if not path.is_file():
        return f"Not a file: {path}"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"Not an image ({', '.join(sorted(IMAGE_SUFFIXES))}): {path.name}"
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        return f"{path.name} is {human_size(size)}; the limit is {human_size(MAX_IMAGE_BYTES)}"
    return Attachment(path.resolve(), size)


class PromptArea(TextArea):
    """The text area; a pasted image path becomes an attachment instead of text."""

    class ImagePasted(Message):
        """A paste or drop named an image file."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, cwd: Path, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=True,
            placeholder="Describe a task…  / commands · @ files · paste an image path to attach",
        )
        self.cwd = cwd

    async def _on_paste(self, event: events.Paste) -> None:
        path = image_path_from_paste(event.text, self.cwd)
        if path is None:
            await super()._on_paste(event)
            return
        event.prevent_default()
        event.stop()
        self.post_message(self.ImagePasted(path))


class Composer(Vertical):
    """Posts Composer.Submitted(text, images) on Enter; the App decides what the text means."""

    BINDINGS = COMPOSER_BINDINGS

    class Submitted(Message):
        """The user sent a message, or a slash command (which keeps the attachments for later)."""

        def __init__(self, text: str, images: list[Path]) -> None:
            super().__init__()
            self.text = text
            self.images = images

    class Notice(Message):
        """Something the user should see as a toast (e.g. an attachment was refused)."""

        def __init__(self, message: str, severity: str = "information") -> None:
            super().__init__()
            self.message = message
            self.severity = severity

    def __init__(self, cwd: Path, *, id: str | None = None, paste_dir: Path | None = None) -> None:
        super().__init__(id=id)
        self.cwd = cwd
        self.paste_dir = paste_dir
        """Where images pasted from the clipboard are saved (None: pasting images is off)."""
        self.previews_shown: list[Path] = []
        """The attachments whose small previews are on screen (set once they are decoded)."""
        self.attachments: list[Attachment] = []
        self.history: list[str] = []
        self._history_index = 0
        self._draft = ""
        self._mention_files: list[str] = []
        self._themes: list[str] = []
        self._completions: list[str] = []
        self._completion_span: tuple[int, int] = (0, 0)
        self._programmatic: str | None = None
        self._completed_for = ""
        """The text the completion list was computed for (or set by us, which is not completed)."""

    def compose(self) -> ComposeResult:
        """Completion list, attachment chips, text area."""
        yield OptionList(id="completions")
        yield Horizontal(id="chips")
        yield Horizontal(id="previews")
        yield PromptArea(self.cwd, id="prompt")

    def on_mount(self) -> None:
        """Start with the completion list and chips hidden; typing keeps the focus."""
        completions = self.query_one("#completions", OptionList)
        completions.display = False
        completions.can_focus = False
        self.query_one("#chips").display = False
        self.query_one("#previews").display = False

    @property
    def mention_files(self) -> list[str]:
        """Repository paths offered after `@`."""
        return self._mention_files

    @property
    def area(self) -> PromptArea:
        """The text area."""
        return self.query_one(PromptArea)

    @property
    def completing(self) -> bool:
        """The completion list is open."""
        return bool(self._completions)

    def set_target(self, label: str) -> None:
        """Say where the next message goes (new task, steer, follow-up); the label is plain text."""
        title = Content(label)  # it quotes a task title: `[/]` in it is words, not markup
        if title.markup != self.border_title:
            self.border_title = title

    def set_mention_files(self, files: list[str]) -> None:
        """Repository paths offered after `@` (computed by the App in a thread)."""
        self._mention_files = files

    def set_theme_names(self, names: list[str]) -> None:
        """Theme names offered after `/theme `."""
        self._themes = names

    def attach(self, path: Path) -> str | None:
        """Attach an image file; returns why not when it cannot be attached."""
        result = check_image(path if path.is_absolute() else self.cwd / path)
        if isinstance(result, str):
            return result
        if any(a.path == result.path for a in self.attachments):
            return f"{result.path.name} is already attached"
        self.attachments.append(result)
        self._render_chips()
        return None

    def clear_attachments(self) -> None:
        """Drop every attachment."""
        self.attachments.clear()
        self._render_chips()

    def _render_chips(self) -> None:
        chips = self.query_one("#chips", Horizontal)
        chips.remove_children()
        chips.mount_all(
            Static(
                Content.assemble(("▣ ", "$secondary"), a.label, (" ✕", "$error")), classes="chip", name=str(i)
            )
            for i, a in enumerate(self.attachments)
        )
        for chip in chips.children:
            chip.tooltip = "Click to remove"
        chips.display = bool(self.attachments)
        self._load_previews([a.path for a in self.attachments])

    @work(thread=True, exclusive=True, group="attachment-previews", exit_on_error=False)
    def _load_previews(self, paths: list[Path]) -> None:
        """Decode the attached images off the event loop, then show them."""
        pictures = [(path, load_image(path)) for path in paths]
        self.app.call_from_thread(self.call_later, self._show_previews, paths, pictures)

    async def _show_previews(
        self, paths: list[Path], pictures: list[tuple[Path, PILImage.Image | str]]
    ) -> None:
        if paths != [a.path for a in self.attachments]:
            return  # the attachments changed since: a newer load is on its way
        row = self.query_one("#previews", Horizontal)
        await row.remove_children()
        widgets = [
            image_widget(picture, *PREVIEW_BOX, classes="attachment-preview")
            for _, picture in pictures
            if not isinstance(picture, str)
        ]
        await row.mount_all(widgets)
        row.display = bool(widgets)
        self.previews_shown = paths

    def action_paste_image(self) -> None:
        """Ctrl+V: attach the clipboard's image (the clipboard tool runs in a thread)."""
        if self.paste_dir is None:
            self.post_message(self.Notice("Pasting images is not available here", "warning"))
            return
        self._paste_from_clipboard(self.paste_dir)

    @work(thread=True, exclusive=True, group="clipboard", exit_on_error=False)
    def _paste_from_clipboard(self, folder: Path) -> None:
        try:
            path = paste_image(folder)
        except ClipboardError as exc:
            self.app.call_from_thread(self._no_clipboard_image, str(exc))
            return
        except OSError as exc:
            self.post_message(self.Notice(f"Cannot save the pasted image: {exc}", "error"))
            return
        self.app.call_from_thread(self._attach_pasted, path)

    def _no_clipboard_image(self, message: str) -> None:
        """Text copied inside the app still pastes (TextArea's own Ctrl+V); else say why nothing came."""
        if self.app.clipboard:
            self.area.action_paste()
        else:
            self.post_message(self.Notice(message, "warning"))

    def _attach_pasted(self, path: Path) -> None:
        error = self.attach(path)
        self.post_message(
            self.Notice(error or f"Attached {path.name}", "warning" if error else "information")
        )

    def on_click(self, event: events.Click) -> None:
        """A click on a chip removes that attachment."""
        widget = event.widget
        if widget is not None and widget.has_class("chip") and widget.name is not None:
            index = int(widget.name)
            if index < len(self.attachments):
                del self.attachments[index]
                self._render_chips()

    # --- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """History keys only at the first/last line; Tab and Escape only while completing."""
        if action == "history":
            if self.completing:
                return True
            row = self.area.cursor_location[0]
            last = self.area.document.line_count - 1
            return bool((parameters[0] == -1 and row == 0) or (parameters[0] == 1 and row == last))
        if action in ("complete", "dismiss_completion"):
            return self.completing
        return True

    def action_submit(self) -> None:
        """Enter: accept a completion, or send the text and attachments.

        The key reaches this binding before the text area has handled the keys typed just before it
        (a fast typist, a lagging loop, keys sent by a script), so the work runs from the text
        area's own queue, after them.
        """
        self.area.call_later(self._submit_now)

    def _submit_now(self) -> None:
        if self.area.text != self._completed_for:
            self._refresh_completions()  # the list still reflects an older text
        text = self.area.text
        if self.completing:
            command = self._complete_command()
            if command is None:
                self.action_complete()
                return
            text = command
            self._show_completions([])
        if not text.strip() and not self.attachments:
            return
        images = [a.path for a in self.attachments]
        if text.strip() and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-HISTORY_LIMIT]
        self._history_index = len(self.history)
        self.area.clear()
        if not text.lstrip().startswith("/"):
            self.clear_attachments()
        self.post_message(self.Submitted(text.strip(), images))

    def _complete_command(self) -> str | None:
        """The highlighted slash completion when it is a whole command (`/status`, `/mode auto`)."""
        choice = self._completions[self.query_one("#completions", OptionList).highlighted or 0]
        if not choice.startswith("/") or choice.endswith(" ") or self._completion_span[0] != 0:
            return None
        return choice

    def action_newline(self) -> None:
        """Shift+Enter / Ctrl+J: a new line."""
        self.area.insert("\n")

    def action_history(self, step: int) -> None:
        """Up/Down at the edges: walk the sent messages (or the completion list)."""
        if self.completing:
            options = self.query_one("#completions", OptionList)
            options.action_cursor_down() if step > 0 else options.action_cursor_up()
            return
        if not self.history:
            return
        if self._history_index == len(self.history):
            self._draft = self.area.text
        index = max(0, min(len(self.history), self._history_index + step))
        if index == self._history_index:
            return
        self._history_index = index
        text = self.history[index] if index < len(self.history) else self._draft
        self._set_text(text)

    def action_complete(self) -> None:
        """Tab: replace the partial word with the highlighted completion."""
        options = self.query_one("#completions", OptionList)
        index = options.highlighted or 0
        if not self._completions:
            return
        choice = self._completions[index]
        start, end = self._completion_span
        text = self.area.text
        self._set_text(text[:start] + choice + text[end:], cursor_offset=start + len(choice))
        self._show_completions([])

    def action_dismiss_completion(self) -> None:
        """Escape while completing: close the list."""
        self._show_completions([])

    # --- completion --------------------------------------------------------------------------

    @on(TextArea.Changed, "#prompt")
    def _text_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        text = self.area.text
        if self._programmatic is not None and text == self._programmatic:
            self._programmatic = None
            return
        self._refresh_completions()

    def _refresh_completions(self) -> None:
        """Offer slash commands (and their arguments) or repository paths for what is typed."""
        text = self.area.text
        self._completed_for = text
        if text.startswith("/") and "\n" not in text:
            items = [c for c in complete_slash(text, self._themes) if c.rstrip() != text.rstrip()]
            self._completion_span = (0, len(text))
            self._show_completions(items)
            return
        before = self._text_before_cursor()
        partial, files = complete_mention(before, self._mention_files)
        if files and not (len(files) == 1 and files[0] == partial):
            end = len(before)
            self._completion_span = (end - len(partial), end)
            self._show_completions([f"{f} " for f in files])
            return
        self._show_completions([])

    @on(PromptArea.ImagePasted)
    def _image_pasted(self, event: PromptArea.ImagePasted) -> None:
        event.stop()
        error = self.attach(event.path)
        if error:
            self.post_message(self.Notice(error, "warning"))

    @on(OptionList.OptionSelected, "#completions")
    def _completion_clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_complete()
        self.area.focus()

    def _text_before_cursor(self) -> str:
        row, column = self.area.cursor_location
        lines = self.area.text.split("\n")
        return "\n".join([*lines[:row], lines[row][:column] if row < len(lines) else ""])

    def _show_completions(self, items: list[str]) -> None:
        if items == self._completions:
            return  # unchanged: keep the highlighted entry
        self._completions = items
        options = self.query_one("#completions", OptionList)
        options.set_options([Option(Content(i.rstrip())) for i in items])
        options.display = bool(items)
        if items:
            options.highlighted = 0

    def _set_text(self, text: str, cursor_offset: int | None = None) -> None:
        self._programmatic = text
        self._completed_for = text
        self.area.load_text(text)
        offset = len(text) if cursor_offset is None else cursor_offset
        head = text[:offset]
        self.area.move_cursor((head.count("\n"), len(head.rsplit("\n", 1)[-1])))
