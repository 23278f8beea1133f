"""`python -m codex_tui` runs the `codex-tui` command."""

import sys

from codex_tui.cli import main

if __name__ == "__main__":
    sys.exit(main())
