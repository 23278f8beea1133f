"""`python -m codex_tui` runs the `codex-tui` command."""

from codex_tui.cli import entry

if __name__ == "__main__":
    entry()
