# Shared settings and helpers for scripts/k8s/*.sh (sourced, not run).
# Every path and port can be overridden from the environment.

# --- what is built ------------------------------------------------------------------------------
# Debian bookworm's `kubernetes` source package (upstream v1.20.2 with vendor/).
K8S_SRC_VERSION=${K8S_SRC_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}
# Cache of the built binaries, outside any clone, keyed by the source version.
K8S_CACHE_ROOT=${K8S_CACHE_ROOT:-/var/cache/codex-tui/k8s}
K8S_CACHE=${K8S_CACHE:-$K8S_CACHE_ROOT/$K8S_SRC_VERSION}
K8S_BIN=$K8S_CACHE/bin
K8S_BUILD_LOG=${K8S_BUILD_LOG:-/tmp/codex-tui-k8s-build.log}
K8S_APT_LOG=${K8S_APT_LOG:-/tmp/codex-tui-k8s-apt.log}

# --- the running cluster ------------------------------------------------------------------------
# All state (etcd data, certificates, containerd root, kubelet root, logs, pid files) lives here.
K8S_STATE=${K8S_STATE:-/var/lib/codex-tui-k8s}
K8S_KUBECONFIG=${K8S_KUBECONFIG:-$K8S_STATE/kubeconfig}
K8S_LOGS=$K8S_STATE/logs
K8S_SAVED_LOGS=${K8S_SAVED_LOGS:-/tmp/codex-tui-k8s-logs}   # down.sh moves the last run's logs here
K8S_PIDS=$K8S_STATE/pids
K8S_RUN=${K8S_RUN:-/run/codex-tui-k8s}                 # sockets (short paths)
K8S_CONTAINERD_SOCK=$K8S_RUN/containerd.sock
K8S_NODE_NAME=${K8S_NODE_NAME:-codex-tui-node}
K8S_API_PORT=${K8S_API_PORT:-16443}
K8S_ETCD_PORT=${K8S_ETCD_PORT:-12379}
K8S_ETCD_PEER_PORT=${K8S_ETCD_PEER_PORT:-12380}
K8S_KUBELET_PORT=${K8S_KUBELET_PORT:-10250}
K8S_KUBELET_HEALTHZ_PORT=${K8S_KUBELET_HEALTHZ_PORT:-10248}
K8S_CM_PORT=${K8S_CM_PORT:-10257}
K8S_SCHED_PORT=${K8S_SCHED_PORT:-10259}
K8S_POD_CIDR=${K8S_POD_CIDR:-10.244.0.0/24}
K8S_SERVICE_CIDR=${K8S_SERVICE_CIDR:-10.96.0.0/16}
K8S_CNI_NAME=codex-tui-k8s
K8S_CNI_BRIDGE=${K8S_CNI_BRIDGE:-ctk8s0}
K8S_PAUSE_IMAGE=docker.io/codex-tui/pause:3.2
K8S_POD_EGRESS=${K8S_POD_EGRESS:-0}                   # 1: masquerade pod traffic (pods reach out)

# --- the second node (add-node.sh): a kubelet and a containerd in their own network namespace ------
K8S_NODE2_NAME=${K8S_NODE2_NAME:-codex-tui-node2}
K8S_NODE2_STATE=$K8S_STATE/node2                       # its kubelet root, CNI, pid files, logs
K8S_NODE2_STORE=${K8S_NODE2_STORE:-$K8S_STATE/containerd-node2}  # its image store (kept by down.sh)
K8S_NODE2_RUN=$K8S_RUN/node2
K8S_NODE2_SAVED_LOGS=${K8S_NODE2_SAVED_LOGS:-$K8S_SAVED_LOGS-node2}  # its logs after --remove
K8S_NODE2_SOCK=$K8S_NODE2_RUN/containerd.sock
K8S_NODE2_NETNS=${K8S_NODE2_NETNS:-ctk8s-node2}
K8S_NODE2_VETH_HOST=${K8S_NODE2_VETH_HOST:-ctk8s-h2}    # host end of the veth pair
K8S_NODE2_VETH_NODE=${K8S_NODE2_VETH_NODE:-ctk8s-n2}    # node end, inside the namespace
K8S_NODE2_HOST_IP=${K8S_NODE2_HOST_IP:-10.250.2.1}
K8S_NODE2_IP=${K8S_NODE2_IP:-10.250.2.2}               # the node's InternalIP (kubelet :10250)
K8S_NODE2_POD_CIDR=${K8S_NODE2_POD_CIDR:-10.244.1.0/24}
K8S_NODE2_BRIDGE=${K8S_NODE2_BRIDGE:-ctk8s1}
K8S_NODE2_CGROUP=${K8S_NODE2_CGROUP:-codex-tui-node2}   # --cgroup-root, under every cgroup v1 controller

k8s_log_stamp() { date '+%H:%M:%S'; }

# Monotonic-ish seconds with milliseconds.
k8s_now() { date +%s.%N; }
k8s_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Install Debian packages that are missing (root). `apt-get update` runs at most once per script.
_K8S_APT_UPDATED=0
k8s_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "k8s: installing ${missing[*]} (log: $K8S_APT_LOG)"
    if [[ $_K8S_APT_UPDATED -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$K8S_APT_LOG" 2>&1 || return 1
        _K8S_APT_UPDATED=1
    fi
    # policy-rc.d tells invoke-rc.d not to start services (etcd-server ships one): only our
    # scripts start daemons. Remove it again only if we created it.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >>"$K8S_APT_LOG" 2>&1
    local rc=$?
    [[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    return $rc
}

# Pid file helpers: every daemon the scripts start has $K8S_PIDS/NAME.pid, NAME being the name of
# its executable (checked, so a stale pid file never points at another process).
# A process counts as alive unless it is gone or a zombie (the daemons are reparented to PID 1,
# which may reap them late).
k8s_proc_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ "$st" != Z && "$st" != X ]]
}
# The pid of the live daemon NAME, or nothing (status 1).
k8s_daemon_pid() {
    local pid exe
    pid=$(cat "$K8S_PIDS/$1.pid" 2>/dev/null) && [[ -n "$pid" ]] && k8s_proc_alive "$pid" || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ "${exe##*/}" == "$1" ]] || return 1
    echo "$pid"
}
k8s_pid_alive() { k8s_daemon_pid "$1" >/dev/null; }

# Stop the daemons NAME... by their pid files: SIGTERM to all, wait up to $K8S_STOP_WAIT s
# (default 10), then SIGKILL.
k8s_stop_pids() {
    local wait_s=${K8S_STOP_WAIT:-10} pids=() name pid i left
    for name in "$@"; do
        pid=$(k8s_daemon_pid "$name") && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for ((i = 0; i < wait_s * 20; i++)); do
        left=0
        for pid in "${pids[@]}"; do k8s_proc_alive "$pid" && left=1; done
        [[ $left -eq 0 ]] && break
        sleep 0.05
    done
    for pid in "${pids[@]}"; do k8s_proc_alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    for ((i = 0; i < 100; i++)); do
        left=0
        for pid in "${pids[@]}"; do k8s_proc_alive "$pid" && left=1; done
        [[ $left -eq 0 ]] && break
        sleep 0.05
    done
    for name in "$@"; do k8s_pid_alive "$name" || rm -f "$K8S_PIDS/$name.pid"; done
}

k8s_kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$K8S_KUBECONFIG" "$@"; }

# --- images without a registry ---------------------------------------------------------------------
# The image name containerd stores for a docker reference (docker.io/library/NAME:latest ...).
normalize_ref() {
    local ref=$1 first rest
    [[ "$ref" == *@* ]] || { local last=${ref##*/}; [[ "$last" == *:* ]] || ref="$ref:latest"; }
    first=${ref%%/*}
    if [[ "$ref" != */* ]]; then
        echo "docker.io/library/$ref"
    elif [[ "$first" == *.* || "$first" == *:* || "$first" == localhost ]]; then
        echo "$ref"
    else
        echo "docker.io/$ref"
    fi
}

# The config digest (= docker image id) of an image in the k8s.io namespace of the containerd of CTR, or nothing.
containerd_image_id() {
    local manifest
    manifest=$("${CTR[@]}" images ls -q "name==$1" 2>/dev/null | head -n 1)
    [[ -n "$manifest" ]] || return 0
    manifest=$("${CTR[@]}" images ls "name==$1" 2>/dev/null | awk 'NR == 2 { print $3 }')
    "${CTR[@]}" content get "$manifest" 2>/dev/null \
        | tr -d ' \n' | sed -n -E 's/.*"config":\{[^}]*"digest":"(sha256:[0-9a-f]+)".*/\1/p'
}

# Import the pause image and IMAGES (array) into the containerd of CTR (array: a `ctr` command line);
# writes LOGDIR/images.log and "ok" or the reason in LOGDIR/images.status (LOGDIR: $1, default $K8S_LOGS).
import_images() {
    local logdir=${1:-$K8S_LOGS}
    local log="$logdir/images.log" img ref want have t
    : >"$log"
    if [[ ${#IMAGES[@]} -gt 0 ]] && ! docker info >/dev/null 2>&1; then
        echo "no Docker engine answers, so ${IMAGES[*]} cannot be exported (scripts/ensure_docker.sh starts one)" \
            >"$logdir/images.status"
        return 1
    fi
    if [[ -z "$("${CTR[@]}" images ls -q "name==$K8S_PAUSE_IMAGE" 2>/dev/null)" ]]; then
        "${CTR[@]}" images import "$K8S_BIN/pause.tar" >>"$log" 2>&1 \
            || { echo "import of the pause image failed" >"$logdir/images.status"; return 1; }
    fi
    for img in "${IMAGES[@]}"; do
        [[ -n "$img" ]] || continue
        ref=$(normalize_ref "$img")
        want=$(docker image inspect -f '{{.Id}}' "$img" 2>/dev/null) \
            || { echo "docker image $img not found (build it first: docker images)" >"$logdir/images.status"; return 1; }
        have=$(containerd_image_id "$ref")
        if [[ "$have" == "$want" ]]; then
            echo "$img: already imported ($want)" >>"$log"
            continue
        fi
        t=$(k8s_now)
        if ! docker save "$img" | "${CTR[@]}" images import --snapshotter overlayfs - >>"$log" 2>&1; then
            echo "import of $img failed: $(tail -n 1 "$log")" >"$logdir/images.status"
            return 1
        fi
        have=$(containerd_image_id "$ref")
        [[ "$have" == "$want" ]] \
            || { echo "$img imported but containerd has no $ref with id $want" >"$logdir/images.status"; return 1; }
        echo "$img: imported as $ref in $(k8s_since "$t") s" >>"$log"
    done
    echo ok >"$logdir/images.status"
}
