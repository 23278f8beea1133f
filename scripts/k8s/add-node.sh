#!/usr/bin/env bash
# Add a second node to the cluster started by up.sh: a kubelet and its own containerd in their own
# network namespace, for the two-node tests (issue 11: tasks spread over nodes).
#
#   scripts/k8s/add-node.sh [IMAGE ...]   default IMAGE: the images up.sh imported ($K8S_IMAGES)
#   scripts/k8s/add-node.sh --remove      stop the second node and clean what it leaves (down.sh calls it)
#
# The node ($K8S_NODE2_NAME, default codex-tui-node2):
#   network     namespace $K8S_NODE2_NETNS, joined to the host by a veth pair ($K8S_NODE2_HOST_IP on
#               the host, $K8S_NODE2_IP in the namespace: the node's InternalIP, kubelet on :10250 there);
#               the host routes the node's pod CIDR ($K8S_NODE2_POD_CIDR, bridge $K8S_NODE2_BRIDGE
#               inside the namespace) through it, so the API server reaches the kubelet and the pods.
#               The namespace routes only the host's node IP back (no default route: pods have no way
#               out, as on the first node).
#               The kubelet reaches the API server (bound to 127.0.0.1) at the host's node IP: a DNAT
#               rule for the veth only (route_localnet on that interface), marked codex-tui-k8s-node2.
#   mounts      containerd and kubelet share one private mount namespace (slave of the host's) in which
#               /var/lib/kubelet, /var/log/pods, /var/lib/cni (and /run/netns) are the node's own: kubelets
#               write there whatever their root dir, and one kubelet's GC would delete the other's pod
#               logs. Their mounts (pod volumes, pod netns) vanish with the namespace.
#   cgroups     --cgroup-root /$K8S_NODE2_CGROUP (created under every controller first), or the two
#               kubelets kill each other's pods.
#   containerd  own config, root, state, socket ($K8S_NODE2_SOCK) and image store ($K8S_NODE2_STORE,
#               kept by down.sh unless --purge); the images are imported into it as by up.sh.
#   identity    an x509 client certificate system:node:$K8S_NODE2_NAME (group system:nodes) signed by
#               the cluster CA, so the API server needs no restart.
# Idempotent: when the node is already Ready it only (re)imports the images. On failure: ONE line,
# exit 1, and the node is removed again (its logs kept in $K8S_NODE2_SAVED_LOGS, default
# /tmp/codex-tui-k8s-logs-node2) unless K8S_KEEP_ON_FAILURE=1.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

N2=$K8S_NODE2_STATE
LOGS=$N2/logs
PIDS=$N2/pids
CTR=(ctr --address "$K8S_NODE2_SOCK" --namespace k8s.io)
MARK=codex-tui-k8s-node2
in_ns() { ip netns exec "$K8S_NODE2_NETNS" "$@"; }
pid_of() { K8S_PIDS=$PIDS k8s_daemon_pid "$1"; }
node2_ready() {
    [[ "$(k8s_kubectl get node "$K8S_NODE2_NAME" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
# The cgroup v1 controller folders (each real mount once; cpu and cpuacct may be links to one).
cgroup_dirs() {
    local d
    for d in /sys/fs/cgroup/*/; do [[ -L "${d%/}" ]] || echo "${d}$K8S_NODE2_CGROUP"; done
}

# --- removal ----------------------------------------------------------------------------------------
remove_node() {
    local stuck=0 i running rule
    # Pods of this node first, while its kubelet runs, so it tears their sandboxes down.
    if pid_of kubelet >/dev/null && k8s_pid_alive kube-apiserver && [[ -f "$K8S_KUBECONFIG" ]]; then
        k8s_kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$K8S_NODE2_NAME" \
            --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
        for ((i = 0; i < 150; i++)); do
            running=$("${CTR[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | wc -l)
            [[ "$running" -eq 0 ]] && break
            sleep 0.2
        done
    fi
    K8S_PIDS=$PIDS k8s_stop_pids kubelet
    pid_of kubelet >/dev/null && stuck=1
    if pid_of containerd >/dev/null; then
        for id in $("${CTR[@]}" containers ls -q 2>/dev/null); do
            "${CTR[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
            "${CTR[@]}" tasks delete -f "$id" >/dev/null 2>&1
            "${CTR[@]}" containers delete "$id" >/dev/null 2>&1
        done
    fi
    K8S_STOP_WAIT=15 K8S_PIDS=$PIDS k8s_stop_pids containerd
    pid_of containerd >/dev/null && stuck=1
    # Shims of this node's containerd that outlived it (their command line names our socket).
    for f in $(grep -lsF -- "$K8S_NODE2_SOCK" /proc/[0-9]*/cmdline); do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        pid=${f#/proc/}; pid=${pid%/cmdline}
        [[ "$pid" != "$$" && "$cmd" == *containerd-shim*"-address $K8S_NODE2_SOCK"* ]] && kill -KILL "$pid" 2>/dev/null
    done
    if k8s_pid_alive kube-apiserver && [[ -f "$K8S_KUBECONFIG" ]]; then
        k8s_kubectl delete node "$K8S_NODE2_NAME" --wait=false >/dev/null 2>&1 || true
    fi
    # Network: DNAT rule, route, veth (deleting one end deletes both), namespace.
    iptables -w -t nat -S PREROUTING 2>/dev/null | grep -F -- "--comment $MARK" | sed 's/^-A /-D /' \
        | while read -r rule; do eval "iptables -w -t nat $rule" 2>/dev/null; done
    ip route del "$K8S_NODE2_POD_CIDR" 2>/dev/null
    ip link show "$K8S_NODE2_VETH_HOST" >/dev/null 2>&1 && ip link delete "$K8S_NODE2_VETH_HOST" 2>/dev/null
    ip netns list 2>/dev/null | grep -qw "^$K8S_NODE2_NETNS" && ip netns delete "$K8S_NODE2_NETNS" 2>/dev/null
    # cgroups (empty once the pods are gone), then files: state but not the image store.
    for d in $(cgroup_dirs); do
        [[ -d "$d" ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$K8S_NODE2_RUN"
    if [[ -d "$LOGS" ]]; then
        rm -rf "$K8S_NODE2_SAVED_LOGS" && mv "$LOGS" "$K8S_NODE2_SAVED_LOGS" 2>/dev/null
    fi
    rm -rf "$N2"
    return $stuck
}

if [[ "${1:-}" == --remove ]]; then
    [[ $(id -u) -eq 0 ]] || { echo "k8s add-node: must run as root" >&2; exit 1; }
    remove_node || { echo "k8s add-node: could not stop the daemons of $K8S_NODE2_NAME" >&2; exit 1; }
    exit 0
fi

STARTED=0
fail() {
    local msg="$*"
    if [[ $STARTED -eq 1 && "${K8S_KEEP_ON_FAILURE:-0}" != 1 ]]; then
        remove_node >/dev/null 2>&1
        msg=${msg//$LOGS/$K8S_NODE2_SAVED_LOGS}
    fi
    echo "k8s add-node: $msg" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || fail "must run as root"
T0=$(k8s_now)
[[ -f "$K8S_STATE/cluster.env" ]] && k8s_pid_alive kube-apiserver \
    || fail "no cluster runs (start it first: scripts/k8s/up.sh, or up.sh --nodes 2)"
# shellcheck disable=SC1091
NODE_IP=$(. "$K8S_STATE/cluster.env" && echo "$K8S_NODE_IP")
UP_IMAGES=$(. "$K8S_STATE/cluster.env" && echo "${K8S_IMAGES:-}")
if [[ $# -gt 0 ]]; then IMAGES=("$@"); else read -r -a IMAGES <<<"${K8S_IMAGES:-$UP_IMAGES}"; fi
[[ -n "$NODE_IP" ]] || fail "no K8S_NODE_IP in $K8S_STATE/cluster.env"

finish_images() {
    wait "$IMPORT_PID" 2>/dev/null
    local status
    status=$(cat "$LOGS/images.status" 2>/dev/null || echo "image import did not finish")
    [[ "$status" == ok ]] || fail "$status (log: $LOGS/images.log)"
}

# --- already up? only import -------------------------------------------------------------------------
if pid_of containerd >/dev/null && pid_of kubelet >/dev/null && node2_ready; then
    import_images "$LOGS" & IMPORT_PID=$!
    finish_images
    echo "k8s add-node: $K8S_NODE2_NAME already running; images ready in $(k8s_since "$T0") s"
    exit 0
fi
if [[ -d "$N2" ]] || ip netns list 2>/dev/null | grep -qw "^$K8S_NODE2_NETNS"; then
    remove_node >/dev/null 2>&1 || fail "could not remove the previous $K8S_NODE2_NAME"
fi

# --- 1. folders, certificate, kubeconfig ---------------------------------------------------------------
PKI=$K8S_STATE/pki
[[ -f "$PKI/ca.key" ]] || fail "no cluster CA in $PKI"
mkdir -p "$LOGS" "$PIDS" "$N2/pki" "$N2/kubelet" "$N2/kubelet-plugins" "$N2/cni/net.d" "$N2/cni/ipam" \
    "$N2/var-lib-kubelet" "$N2/var-log-pods" "$N2/var-lib-cni" "$K8S_NODE2_STORE" "$K8S_NODE2_RUN" \
    /var/lib/kubelet /var/log/pods /var/lib/cni || fail "cannot create $N2"
chmod 700 "$N2"
STARTED=1
(
    set -e
    cd "$N2/pki"
    openssl ecparam -name prime256v1 -genkey -noout -out kubelet.key 2>/dev/null
    openssl req -new -key kubelet.key -subj "/O=system:nodes/CN=system:node:$K8S_NODE2_NAME" -out kubelet.csr 2>/dev/null
    openssl x509 -req -in kubelet.csr -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
        -extfile <(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n') -out kubelet.crt 2>/dev/null
    rm -f kubelet.csr
    cat >kubelet.kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters:
- name: codex-tui-k8s
  cluster:
    server: https://$NODE_IP:$K8S_API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: system:node:$K8S_NODE2_NAME
  user:
    client-certificate-data: $(base64 -w0 kubelet.crt)
    client-key-data: $(base64 -w0 kubelet.key)
contexts:
- name: codex-tui-k8s
  context:
    cluster: codex-tui-k8s
    user: system:node:$K8S_NODE2_NAME
current-context: codex-tui-k8s
EOF
    chmod 600 kubelet.kubeconfig kubelet.key
) || fail "cannot create the certificate of $K8S_NODE2_NAME in $N2/pki"

# --- 2. network: namespace, veth, routes, DNAT to the API server -------------------------------------------
(
    set -e
    ip netns add "$K8S_NODE2_NETNS"
    ip link add "$K8S_NODE2_VETH_HOST" type veth peer name "$K8S_NODE2_VETH_NODE" netns "$K8S_NODE2_NETNS"
    ip addr add "$K8S_NODE2_HOST_IP/30" dev "$K8S_NODE2_VETH_HOST"
    ip link set "$K8S_NODE2_VETH_HOST" up
    ip -n "$K8S_NODE2_NETNS" link set lo up
    ip -n "$K8S_NODE2_NETNS" addr add "$K8S_NODE2_IP/30" dev "$K8S_NODE2_VETH_NODE"
    ip -n "$K8S_NODE2_NETNS" link set "$K8S_NODE2_VETH_NODE" up
    # Only the API server's address is routed out: no default route, so what probes elsewhere (the
    # kubelet's cloud credential providers ask 169.254.169.254) fails at once instead of timing out.
    ip -n "$K8S_NODE2_NETNS" route add "$NODE_IP/32" via "$K8S_NODE2_HOST_IP"
    in_ns sysctl -qw net.ipv4.ip_forward=1
    ip route add "$K8S_NODE2_POD_CIDR" via "$K8S_NODE2_IP" dev "$K8S_NODE2_VETH_HOST"
    sysctl -qw "net.ipv4.conf.$K8S_NODE2_VETH_HOST.route_localnet=1"
    iptables -w -t nat -I PREROUTING 1 -i "$K8S_NODE2_VETH_HOST" -p tcp -d "$NODE_IP" --dport "$K8S_API_PORT" \
        -j DNAT --to-destination "127.0.0.1:$K8S_API_PORT" -m comment --comment "$MARK"
) >"$LOGS/network.log" 2>&1 || fail "network setup failed: $(tail -n 1 "$LOGS/network.log")"

# --- 3. containerd in its own mount namespace ---------------------------------------------------------------
sed -e "s|^root = .*|root = \"$K8S_NODE2_STORE\"|" \
    -e "s|^state = .*|state = \"$K8S_NODE2_RUN/containerd\"|" \
    -e "s|address = \"$K8S_CONTAINERD_SOCK\"|address = \"$K8S_NODE2_SOCK\"|" \
    -e "s|path = \"$K8S_STATE/containerd-opt\"|path = \"$N2/containerd-opt\"|" \
    -e "s|Root = \"$K8S_RUN/runc\"|Root = \"$K8S_NODE2_RUN/runc\"|" \
    -e "s|conf_dir = .*|conf_dir = \"$N2/cni/net.d\"|" \
    "$K8S_STATE/containerd.toml" >"$N2/containerd.toml" || fail "no $K8S_STATE/containerd.toml"
grep -q "$K8S_NODE2_SOCK" "$N2/containerd.toml" || fail "cannot derive $N2/containerd.toml"
sed -e "s|\"bridge\": \"$K8S_CNI_BRIDGE\"|\"bridge\": \"$K8S_NODE2_BRIDGE\"|" \
    -e "s|\"subnet\": \"$K8S_POD_CIDR\"|\"subnet\": \"$K8S_NODE2_POD_CIDR\"|" \
    -e "s|\"dataDir\": \".*\"|\"dataDir\": \"$N2/cni/ipam\"|" \
    "$K8S_STATE/cni/net.d/10-codex-tui-k8s.conflist" >"$N2/cni/net.d/10-codex-tui-k8s.conflist" \
    || fail "no CNI config in $K8S_STATE/cni/net.d"

for d in $(cgroup_dirs); do mkdir -p "$d" || fail "cannot create the cgroup $d"; done

MOUNTS="mount --bind '$N2/var-lib-kubelet' /var/lib/kubelet && mount --bind '$N2/var-log-pods' /var/log/pods"
MOUNTS="$MOUNTS && mount --bind '$N2/var-lib-cni' /var/lib/cni"
# Its pods' network namespaces (files in /run/netns) stay in the namespace too, not on the host.
MOUNTS="$MOUNTS && mount -t tmpfs -o mode=0755,size=1m codex-tui-node2-netns /run/netns"
setsid nsenter --net="/run/netns/$K8S_NODE2_NETNS" unshare --mount --propagation slave -- \
    bash -c "$MOUNTS && exec /usr/bin/containerd --config '$N2/containerd.toml'" \
    </dev/null >"$LOGS/containerd.log" 2>&1 &
echo $! >"$PIDS/containerd.pid"
for ((i = 0; i < 150; i++)); do
    "${CTR[@]}" version >/dev/null 2>&1 && break
    k8s_proc_alive "$(cat "$PIDS/containerd.pid")" \
        || fail "containerd of $K8S_NODE2_NAME exited: $(tail -n 1 "$LOGS/containerd.log" | cut -c1-300)"
    sleep 0.2
done
CPID=$(pid_of containerd) && "${CTR[@]}" version >/dev/null 2>&1 \
    || fail "containerd of $K8S_NODE2_NAME not ready: $(tail -n 1 "$LOGS/containerd.log" | cut -c1-300)"
import_images "$LOGS" & IMPORT_PID=$!

# --- 4. kubelet, in the same network and mount namespaces ----------------------------------------------------
sed -e "s|^address: .*|address: \"$K8S_NODE2_IP\"|" \
    -e "s|^volumePluginDir: .*|volumePluginDir: \"$N2/kubelet-plugins\"|" \
    "$K8S_STATE/kubelet.yaml" >"$N2/kubelet.yaml" || fail "no $K8S_STATE/kubelet.yaml"
echo "cgroupRoot: /$K8S_NODE2_CGROUP" >>"$N2/kubelet.yaml"
setsid nsenter --net="/run/netns/$K8S_NODE2_NETNS" --mount="/proc/$CPID/ns/mnt" -- \
    "$K8S_BIN/kubelet" \
    --config "$N2/kubelet.yaml" --kubeconfig "$N2/pki/kubelet.kubeconfig" \
    --root-dir "$N2/kubelet" --cert-dir "$N2/kubelet/pki" \
    --hostname-override "$K8S_NODE2_NAME" --node-ip "$K8S_NODE2_IP" \
    --container-runtime remote --container-runtime-endpoint "unix://$K8S_NODE2_SOCK" \
    --pod-infra-container-image "$K8S_PAUSE_IMAGE" --v=1 \
    </dev/null >"$LOGS/kubelet.log" 2>&1 &
echo $! >"$PIDS/kubelet.pid"

deadline=$((SECONDS + ${K8S_UP_TIMEOUT:-120}))
while ((SECONDS < deadline)); do
    node2_ready && break
    for c in containerd kubelet; do
        k8s_proc_alive "$(cat "$PIDS/$c.pid")" \
            || fail "$c of $K8S_NODE2_NAME exited: $(tail -n 1 "$LOGS/$c.log" | cut -c1-300) (log: $LOGS/$c.log)"
    done
    sleep 0.2
done
node2_ready || fail "node $K8S_NODE2_NAME not Ready: $(tail -n 1 "$LOGS/kubelet.log" | cut -c1-300) (log: $LOGS/kubelet.log)"
pid_of kubelet >/dev/null || fail "pid $(cat "$PIDS/kubelet.pid") of the kubelet of $K8S_NODE2_NAME is not the kubelet"
READY_S=$(k8s_since "$T0")
finish_images
echo "k8s add-node: node $K8S_NODE2_NAME ($K8S_NODE2_IP, pods $K8S_NODE2_POD_CIDR) Ready in $READY_S s, images in $(k8s_since "$T0") s ($(grep -c ': imported' "$LOGS/images.log") imported)"
