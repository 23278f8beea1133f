#!/usr/bin/env bash
# The programs the end-to-end tests drive: tmux (the TUI in a terminal), git, and Debian's
# chromium (`codex-tui serve` in a headless browser). Installed with apt when missing and root;
# otherwise the tests that need them say what is missing and skip.
set -euo pipefail
need_apt=()
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_tools: missing ${need_apt[*]} (install them to run every end-to-end test)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure_tools: installing ${need_apt[*]} (log: /tmp/codex-tui-apt.log)"
apt-get update -qq >/tmp/codex-tui-apt.log 2>&1
apt-get install -y -qq "${need_apt[@]}" >>/tmp/codex-tui-apt.log 2>&1
