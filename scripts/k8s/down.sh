#!/usr/bin/env bash
# Stop the cluster started by up.sh and clean what it leaves behind.
#
#   scripts/k8s/down.sh [--purge]
#
# Deletes the pods (so the kubelet tears their network down), stops every daemon up.sh started by
# its pid file (SIGTERM, then SIGKILL), removes what is left in the private containerd (tasks,
# containers, their shims), unmounts what the kubelet and containerd mounted, and removes the
# kubelet's and CNI's leftovers: /var/lib/kubelet, /var/log/pods, /var/log/containers, this
# network's entries in /var/lib/cni, the bridge, empty /kubepods cgroups, unused cni-* netns.
# The daemons' logs are moved to $K8S_SAVED_LOGS (default /tmp/codex-tui-k8s-logs).
# The state folder $K8S_STATE is removed except the containerd image store ($K8S_STATE/containerd,
# so the next up.sh need not re-import unchanged images); --purge removes that too.
# Idempotent; safe to run when nothing runs. Exit 0 unless a daemon could not be stopped.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

PURGE=0
[[ "${1:-}" == --purge ]] && PURGE=1
[[ $(id -u) -eq 0 ]] || { echo "k8s down: must run as root" >&2; exit 1; }
T0=$(k8s_now)
CTR=(ctr --address "$K8S_CONTAINERD_SOCK" --namespace k8s.io)

# 1. Pods first, while the kubelet still runs, so it stops the sandboxes (CNI DEL, netns removed).
if k8s_pid_alive kube-apiserver && k8s_pid_alive kubelet && [[ -f "$K8S_KUBECONFIG" ]]; then
    k8s_kubectl delete pods --all --all-namespaces --grace-period=0 --force --wait=false \
        >/dev/null 2>&1 || true
    # Done when no task runs and every sandbox's network is torn down (containerd removes the
    # cni-* netns after the CNI DEL), at most 30 s.
    for ((i = 0; i < 150; i++)); do
        running=$("${CTR[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | wc -l)
        netns=$(ls -d /run/netns/cni-* 2>/dev/null | wc -l)
        [[ "$running" -eq 0 && "$netns" -eq 0 ]] && break
        sleep 0.2
    done
fi

# 2. The daemons, kubelet first, containerd last; the second node (add-node.sh) before all of them.
stuck=()
"$HERE/add-node.sh" --remove >/dev/null 2>&1 || stuck+=("$K8S_NODE2_NAME")
k8s_stop_pids kubelet
k8s_stop_pids kube-scheduler kube-controller-manager kube-apiserver
k8s_stop_pids etcd
for c in kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do
    k8s_pid_alive "$c" && stuck+=("$c")
done

# 3. Whatever the private containerd still holds (a crashed kubelet, a pod that would not stop).
if k8s_pid_alive containerd; then
    for id in $("${CTR[@]}" containers ls -q 2>/dev/null); do
        "${CTR[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
        for ((i = 0; i < 20; i++)); do
            "${CTR[@]}" tasks ls 2>/dev/null | awk -v id="$id" '$1 == id && $3 == "RUNNING"' | grep -q . || break
            sleep 0.1
        done
        "${CTR[@]}" tasks delete -f "$id" >/dev/null 2>&1
        "${CTR[@]}" containers delete "$id" >/dev/null 2>&1
    done
fi
K8S_STOP_WAIT=15 k8s_stop_pids containerd
k8s_pid_alive containerd && stuck+=(containerd)

# 4. Shims of our containerd that outlived it (found by our socket in their command line, by pid).
for f in $(grep -lsF -- "$K8S_CONTAINERD_SOCK" /proc/[0-9]*/cmdline); do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [[ "$pid" != "$$" && "$cmd" == *containerd-shim*"-address $K8S_CONTAINERD_SOCK"* ]] && kill -KILL "$pid" 2>/dev/null
done

# 5. Mounts under our folders and the kubelet's fixed ones, deepest first.
unmount_under() {
    local prefix
    for prefix in "$@"; do
        awk '{ print $5 }' /proc/self/mountinfo | grep -E "^${prefix}(/|$)" | sort -r | while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        done
    done
}
unmount_under "$K8S_STATE" "$K8S_RUN" /var/lib/kubelet

# cni-* network namespaces no process uses any more (those of our pods; docker uses its own dir).
for ns in /run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    [[ -z "$(ip netns pids "$(basename "$ns")" 2>/dev/null)" ]] || continue
    umount "$ns" 2>/dev/null; rm -f "$ns"
done

# 6. Files: the kubelet's fixed paths, this network's CNI state, the bridge, empty cgroups.
rm -rf /var/lib/kubelet /var/log/pods
if [[ -d /var/log/containers ]]; then
    find /var/log/containers -maxdepth 1 -xtype l -delete 2>/dev/null
    rmdir /var/log/containers 2>/dev/null
fi
rm -rf "/var/lib/cni/networks/$K8S_CNI_NAME"
rm -f /var/lib/cni/results/"$K8S_CNI_NAME"-* /var/lib/cni/results/cni-loopback-* 2>/dev/null
rmdir /var/lib/cni/results /var/lib/cni/networks /var/lib/cni 2>/dev/null
# Masquerade rules of this network the bridge plugin could not remove (a sandbox never torn down).
if command -v iptables >/dev/null 2>&1; then
    chains=$(iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -F "name: \\\"$K8S_CNI_NAME\\\"" \
        | sed -n -E 's/.* -j (CNI-[0-9a-f]+)$/\1/p' | sort -u)
    iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -F "name: \\\"$K8S_CNI_NAME\\\"" | sed 's/^-A /-D /' \
        | while read -r rule; do eval "iptables -w -t nat $rule" 2>/dev/null; done
    for c in $chains; do iptables -w -t nat -F "$c" 2>/dev/null; iptables -w -t nat -X "$c" 2>/dev/null; done
fi
# FORWARD rules up.sh added for K8S_POD_EGRESS=1 (marked with the comment codex-tui-k8s).
if command -v iptables >/dev/null 2>&1; then
    iptables -w -S FORWARD 2>/dev/null | grep -- '--comment codex-tui-k8s' | sed 's/^-A /-D /' \
        | while read -r rule; do eval "iptables -w $rule" 2>/dev/null; done
fi
ip link show "$K8S_CNI_BRIDGE" >/dev/null 2>&1 && ip link delete "$K8S_CNI_BRIDGE" 2>/dev/null
for ctl in /sys/fs/cgroup/*/; do
    [[ -d "${ctl}kubepods" ]] && find "${ctl}kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
done

rmdir /run/netns 2>/dev/null
rm -rf "$K8S_RUN"
if [[ -d "$K8S_LOGS" ]]; then
    rm -rf "$K8S_SAVED_LOGS" && mv "$K8S_LOGS" "$K8S_SAVED_LOGS" 2>/dev/null
fi
if [[ -d "$K8S_STATE" ]]; then
    if [[ $PURGE -eq 1 ]]; then
        rm -rf "$K8S_STATE"
    else
        # Keep only the image store: drop containerd's CRI bookkeeping of sandboxes and containers.
        rm -rf "$K8S_STATE/containerd/io.containerd.grpc.v1.cri/sandboxes" \
            "$K8S_STATE/containerd/io.containerd.grpc.v1.cri/containers" \
            "$K8S_NODE2_STORE/io.containerd.grpc.v1.cri/sandboxes" \
            "$K8S_NODE2_STORE/io.containerd.grpc.v1.cri/containers"
        find "$K8S_STATE" -mindepth 1 -maxdepth 1 ! -name containerd ! -name "${K8S_NODE2_STORE##*/}" -exec rm -rf {} +
    fi
fi

if [[ ${#stuck[@]} -gt 0 ]]; then
    echo "k8s down: could not stop ${stuck[*]}" >&2
    exit 1
fi
echo "k8s down: stopped and cleaned in $(k8s_since "$T0") s$([[ $PURGE -eq 1 ]] && echo ' (purged)')"
