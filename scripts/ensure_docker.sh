#!/usr/bin/env bash
# Make sure a Docker engine answers and the default sandbox image exists (for CI and the Docker tests).
#
# Idempotent: does nothing when the engine runs and the image is current. Otherwise, as root (or with
# passwordless sudo), installs docker.io, debootstrap and bubblewrap with apt-get, starts dockerd in
# the background (log: /tmp/codex-tui-dockerd.log), waits up to 60 s for it, then builds the image
# with `$PYTHON -m codex_tui.sandbox.image build --if-missing`.
# On any failure it prints ONE line saying what failed and exits non-zero: Docker tests never skip.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
APT_LOG=/tmp/codex-tui-apt.log
DOCKERD_LOG=/tmp/codex-tui-dockerd.log
BUILD_LOG=/tmp/codex-tui-image-build.log
WAIT_S=${CODEX_TUI_DOCKERD_WAIT_S:-60}

fail() { echo "ensure_docker: $*" >&2; exit 1; }

# The most telling line of dockerd's log: its fatal error if any, else the last line.
dockerd_reason() {
    local line
    line="$(grep -E 'failed to start daemon|level=fatal' "$DOCKERD_LOG" 2>/dev/null | tail -n 1)"
    [[ -n "$line" ]] || line="$(tail -n 1 "$DOCKERD_LOG" 2>/dev/null)"
    echo "${line:0:300}"
}

engine_up() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 126
    fi
}

can_be_root() { [[ $(id -u) -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }

install_packages() {
    local missing=()
    # The docker client alone may be present (no engine): look for the daemon itself.
    command -v dockerd >/dev/null 2>&1 || [[ -x /usr/sbin/dockerd ]] || missing+=(docker.io)
    [[ -x /usr/sbin/debootstrap ]] || command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "ensure_docker: installing ${missing[*]} (log: $APT_LOG)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$APT_LOG" 2>&1 \
        || fail "apt-get update failed (see $APT_LOG: $(tail -n 1 "$APT_LOG"))"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >>"$APT_LOG" 2>&1 \
        || fail "apt-get install ${missing[*]} failed (see $APT_LOG: $(tail -n 1 "$APT_LOG"))"
}

start_dockerd() {
    local dockerd
    dockerd="$(command -v dockerd || echo /usr/sbin/dockerd)"
    [[ -x "$dockerd" ]] || fail "dockerd not found after installing docker.io"
    echo "ensure_docker: starting dockerd (log: $DOCKERD_LOG)"
    # setsid + nohup: the engine outlives this script and the CI step that ran it.
    as_root setsid nohup "$dockerd" >"$DOCKERD_LOG" 2>&1 < /dev/null &
    local pid=$! waited=0
    until engine_up; do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail "dockerd exited at start-up (see $DOCKERD_LOG): $(dockerd_reason)"
        fi
        if (( waited >= WAIT_S * 5 )); then
            fail "dockerd did not answer within ${WAIT_S}s (see $DOCKERD_LOG): $(dockerd_reason)"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
}

if ! engine_up; then
    if [[ -n "${DOCKER_HOST:-}" ]] && command -v docker >/dev/null 2>&1; then
        fail "the Docker engine at DOCKER_HOST=$DOCKER_HOST does not answer (docker info failed)"
    fi
    if pgrep -x dockerd >/dev/null 2>&1 && [[ -S /var/run/docker.sock ]]; then
        fail "dockerd runs but does not answer this user (add $(id -un) to the docker group, or run as root)"
    fi
    can_be_root || fail "no Docker engine answers and this user cannot become root to install/start one"
    install_packages
    engine_up || start_dockerd
else
    # The engine runs; the image build may still need debootstrap (no registry access).
    if can_be_root; then install_packages; fi
fi

"$PYTHON" -c "import codex_tui.sandbox.image" 2>/dev/null \
    || fail "cannot import codex_tui with $PYTHON (set PYTHON= to the project's interpreter)"
if ! "$PYTHON" -m codex_tui.sandbox.image status >/dev/null 2>&1; then
    echo "ensure_docker: building the default sandbox image (log: $BUILD_LOG)"
    if [[ $(id -u) -ne 0 ]] && can_be_root; then
        as_root "$PYTHON" -m codex_tui.sandbox.image build --if-missing >"$BUILD_LOG" 2>&1
    else
        "$PYTHON" -m codex_tui.sandbox.image build --if-missing >"$BUILD_LOG" 2>&1
    fi || fail "building the sandbox image failed (see $BUILD_LOG: $(tail -n 1 "$BUILD_LOG"))"
fi
echo "ensure_docker: $("$PYTHON" -m codex_tui.sandbox.image status 2>&1)"
