"""An MCP server that never answers: it reads stdin and says nothing (a hang at start-up)."""

from __future__ import annotations

import sys
import time

if __name__ == "__main__":
    for _line in sys.stdin:
        time.sleep(0)
    time.sleep(3600)
