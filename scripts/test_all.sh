#!/usr/bin/env bash
# `make test`: the whole test suite. The main suite (unit, integration on the real Docker engine,
# TUI, tmux end to end), then, as root, the Kubernetes tests on a real single-node cluster
# (`make test-k8s`). The cluster's binaries are built once from Debian's source (10-20 min on a
# fresh machine, cached in /var/cache/codex-tui/k8s, then 0 s): the build runs in the background,
# niced, while the main suite runs. CODEX_TUI_SKIP_K8S=1 leaves the Kubernetes tests out.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}

k8s=0
if [ "$(id -u)" = 0 ] && [ "${CODEX_TUI_SKIP_K8S:-0}" != 1 ]; then
  k8s=1
  build_log=/tmp/codex-tui-k8s-build-bg.log
  bash scripts/k8s/build.sh >"$build_log" 2>&1 &
  build=$!
fi

"$python" -m pytest -q -p no:cacheprovider -m "not k8s"
rc=$?

if [ "$k8s" = 1 ]; then
  if ! wait "$build"; then
    echo "codex-tui: the Kubernetes build failed: $(tail -n 3 "$build_log")" >&2
    exit 1
  fi
  make --no-print-directory test-k8s || rc=1
else
  echo "codex-tui: the Kubernetes tests need root (a real cluster is started); run make test-k8s as root"
fi
exit "$rc"
