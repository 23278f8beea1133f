"""`python -m codex_tui.scripted`: run the scripted model server standalone."""

import sys

from codex_tui.scripted.server import main

if __name__ == "__main__":
    sys.exit(main())
