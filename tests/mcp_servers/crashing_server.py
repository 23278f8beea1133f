"""An MCP server that dies during start-up, after writing a complaint on stderr."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    sys.stderr.write("crashing_server: missing configuration, exiting\n")
    sys.exit(2)
