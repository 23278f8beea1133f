"""`codex-tui serve [--host H] [--port P] [TUI options]`: the TUI in a browser (see serve.py)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from codex_tui.cli_common import CliError, resolve_config, resolve_repo
from codex_tui.serve import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    CodexServer,
    Listening,
    ServeError,
    app_command,
    is_loopback,
    new_token,
    quiet_logging,
    serve,
)


def serve_parser() -> argparse.ArgumentParser:
    """`codex-tui serve`: its own options; every other option is the TUI's and is passed on."""
    parser = argparse.ArgumentParser(
        prog="codex-tui serve",
        usage="codex-tui serve [--host HOST] [--port PORT] [TUI options: --demo, -C DIR, -m MODEL, …]",
        description="Serve the TUI in a browser: each browser tab runs its own codex-tui. "
        "Bound to any address other than localhost, the URL carries a random token and every "
        "request without it is refused (403).",
        epilog="Every other option is codex-tui's own (see `codex-tui --help`), e.g. --demo or -C DIR.",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"the address to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT}; 0 picks one)"
    )
    parser.add_argument(
        "--token",
        action="store_true",
        help="require the random token on localhost too (a machine shared with other users)",
    )
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, not {value}")
    return value


def cmd_serve(argv: Sequence[str], tui: argparse.ArgumentParser) -> int:
    """Check the TUI options with the `tui` parser (and the config), then serve until stopped."""
    args, tui_argv = serve_parser().parse_known_args(list(argv))
    tui_args = tui.parse_args(tui_argv)  # bad TUI options: argparse's usage line and exit code 2
    resolve_config(tui_args)
    if not tui_args.demo:
        resolve_repo(tui_args)
    token = new_token() if args.token or not is_loopback(args.host) else None
    server = CodexServer(app_command(tui_argv), host=args.host, port=args.port, token=token)
    quiet_logging()

    def ready(where: Listening) -> None:
        print(f"codex-tui: serving the TUI on {where.url}", flush=True)
        if token:
            print("codex-tui: the token in this URL is the key: anyone who has it drives your agents")
        print("codex-tui: Ctrl+C stops the server and each tab's tasks (they stay resumable)", flush=True)

    try:
        asyncio.run(serve(server, ready))
    except ServeError as exc:
        raise CliError(str(exc)) from None
    return 0
