#!/usr/bin/env bash
# Start a real Kubernetes (v1.20, built by build.sh from Debian's source package; one node, or two
# with --nodes 2) on this machine and import Docker images into its containerd, for the Kubernetes
# sandbox tests.
#
#   scripts/k8s/up.sh [--nodes 1|2] [IMAGE ...]   default IMAGE: codex-tui-sandbox:latest ($K8S_IMAGES)
#
# --nodes 2 (or K8S_NODES=2) then adds a second node with add-node.sh (own network namespace).
#
# What runs (all as root, each with a pid file in $K8S_STATE/pids, logs in $K8S_STATE/logs):
#   containerd  a private instance (own config, root, state and socket $K8S_RUN/containerd.sock),
#               CRI enabled with restrict_oom_score_adj; dockerd's own containerd is not touched
#   etcd        Debian's etcd-server, 127.0.0.1:$K8S_ETCD_PORT
#   kube-apiserver (token auth file, Node+RBAC, https://127.0.0.1:$K8S_API_PORT),
#   kube-controller-manager, kube-scheduler, kubelet (containerd CRI, bridge CNI 10.244.0.0/24)
# All state lives under $K8S_STATE (default /var/lib/codex-tui-k8s). The admin kubeconfig is
# $K8S_KUBECONFIG (default /var/lib/codex-tui-k8s/kubeconfig); $K8S_STATE/cluster.env has the same
# facts as shell variables (KUBECONFIG, KUBECTL, K8S_NODE_NAME, ...).
#
# Waits until the node is Ready and the default service account exists ($K8S_UP_TIMEOUT s after
# the kubelet starts, default 120). Images: `docker save IMAGE | ctr -n k8s.io images import -`
# (needs a running Docker engine), skipped when containerd already holds the same image id (the
# image store survives down.sh unless --purge). Pods must use `imagePullPolicy: Never`.
# When the cluster is already up it only (re)imports the images. Builds the binaries first if they
# are not cached (build.sh). On failure: ONE line, exit 1, and what it started is stopped again
# (down.sh; logs kept in $K8S_SAVED_LOGS) unless K8S_KEEP_ON_FAILURE=1.
# Pods have no route out unless K8S_POD_EGRESS=1 (masquerade); NetworkPolicy is not enforced.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

UP_TIMEOUT=${K8S_UP_TIMEOUT:-120}
NODES=${K8S_NODES:-1}
if [[ "${1:-}" == --nodes ]]; then NODES=${2:-}; shift 2 || shift; fi
if [[ $# -gt 0 ]]; then IMAGES=("$@"); else read -r -a IMAGES <<<"${K8S_IMAGES:-codex-tui-sandbox:latest}"; fi

STARTED=0
# One line, exit 1. Once daemons were started, down.sh stops them (its copy of the logs in
# $K8S_SAVED_LOGS is what the message points to) unless K8S_KEEP_ON_FAILURE=1.
fail() {
    local msg="$*"
    if [[ $STARTED -eq 1 && "${K8S_KEEP_ON_FAILURE:-0}" != 1 ]]; then
        "$HERE/down.sh" >/dev/null 2>&1
        msg=${msg//$K8S_LOGS/$K8S_SAVED_LOGS}
    fi
    echo "k8s up: $msg" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || fail "must run as root"
[[ "$NODES" == 1 || "$NODES" == 2 ]] || fail "--nodes must be 1 or 2 (got '$NODES')"
# The second node (add-node.sh), after the first is Ready; it imports IMAGES into its own containerd.
add_node() {
    [[ "$NODES" == 2 ]] || return 0
    STARTED=1
    local out
    out=$("$HERE/add-node.sh" "${IMAGES[@]}" 2>&1) || fail "second node: ${out#k8s add-node: }"
    echo "$out"
}
T0=$(k8s_now)

# --- 0. binaries and packages ------------------------------------------------------------------
"$HERE/build.sh" || exit 1
k8s_apt_install etcd-server containernetworking-plugins containerd runc iproute2 openssl curl \
    || fail "apt-get install failed (see $K8S_APT_LOG: $(tail -n 1 "$K8S_APT_LOG"))"
for b in /usr/bin/etcd /usr/bin/containerd /usr/bin/ctr /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback; do
    [[ -x "$b" ]] || fail "$b missing after installing the packages"
done

CTR=(ctr --address "$K8S_CONTAINERD_SOCK" --namespace k8s.io)
ALL=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)

node_ready() {
    [[ "$(k8s_kubectl get node "$K8S_NODE_NAME" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

finish_images() {
    wait "$IMPORT_PID" 2>/dev/null
    local status
    status=$(cat "$K8S_LOGS/images.status" 2>/dev/null || echo "image import did not finish")
    [[ "$status" == ok ]] || fail "$status (log: $K8S_LOGS/images.log)"
}

# --- already up? only import ---------------------------------------------------------------------
running=0
for c in "${ALL[@]}"; do k8s_pid_alive "$c" && running=$((running + 1)); done
if [[ $running -eq ${#ALL[@]} ]] && node_ready; then
    import_images & IMPORT_PID=$!
    finish_images
    echo "k8s up: already running; images ready in $(k8s_since "$T0") s; KUBECONFIG=$K8S_KUBECONFIG"
    add_node
    exit 0
fi
if [[ $running -gt 0 || -d "$K8S_PIDS" ]]; then
    echo "k8s up: a partial cluster is left over, stopping it first"
    "$HERE/down.sh" >/dev/null || fail "down.sh could not clean the previous cluster"
fi

# --- 1. state folder, certificates, tokens, kubeconfigs ----------------------------------------
NODE_IP=${K8S_NODE_IP:-$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n -E 's/.* src ([0-9.]+).*/\1/p')}
[[ -n "$NODE_IP" ]] || NODE_IP=$(ip -4 -o addr show scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
[[ -n "$NODE_IP" ]] || fail "no non-loopback IPv4 address for the node"
API_BIND=${K8S_API_BIND:-127.0.0.1}
API_URL="https://127.0.0.1:$K8S_API_PORT"
for port in "$K8S_API_PORT" "$K8S_ETCD_PORT" "$K8S_ETCD_PEER_PORT" "$K8S_KUBELET_PORT" \
    "$K8S_KUBELET_HEALTHZ_PORT" "$K8S_CM_PORT" "$K8S_SCHED_PORT"; do
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && fail "TCP port $port is already in use (ss -ltnp)"
done

PKI=$K8S_STATE/pki
# The containerd image store is kept by down.sh; everything else starts fresh.
mkdir -p "$K8S_STATE" "$K8S_PIDS" "$K8S_LOGS" "$PKI" "$K8S_RUN" "$K8S_STATE/containerd" \
    "$K8S_STATE/cni/net.d" "$K8S_STATE/cni/ipam" "$K8S_STATE/kubelet" "$K8S_STATE/kubelet-plugins" \
    || fail "cannot create $K8S_STATE"
chmod 700 "$K8S_STATE" "$PKI"

(
    set -e
    cd "$PKI"
    key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
    key ca
    openssl req -x509 -new -key ca.key -subj "/CN=codex-tui-k8s-ca" -days 3650 -out ca.crt 2>/dev/null
    sign() { # name subject [san]
        key "$1"
        openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
        local ext="basicConstraints=CA:FALSE"
        [[ -n "${3:-}" ]] && ext="$ext
subjectAltName=$3
extendedKeyUsage=serverAuth"
        [[ -z "${3:-}" ]] && ext="$ext
extendedKeyUsage=clientAuth"
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile <(echo "$ext") -out "$1.crt" 2>/dev/null
        rm -f "$1.csr"
    }
    sign apiserver "/CN=kube-apiserver" "IP:127.0.0.1,IP:$NODE_IP,IP:${K8S_SERVICE_CIDR%.*/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    key sa
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
    tok() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
    ADMIN=$(tok); KCM=$(tok); SCHED=$(tok); KUBELET=$(tok)
    {
        echo "$ADMIN,admin,admin,\"system:masters\""
        echo "$KCM,system:kube-controller-manager,system:kube-controller-manager"
        echo "$SCHED,system:kube-scheduler,system:kube-scheduler"
        echo "$KUBELET,system:node:$K8S_NODE_NAME,system:node:$K8S_NODE_NAME,\"system:nodes\""
    } >tokens.csv
    CA_DATA=$(base64 -w0 ca.crt)
    kubeconfig() { # file user token
        cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: codex-tui-k8s
  cluster:
    server: $API_URL
    certificate-authority-data: $CA_DATA
users:
- name: $2
  user:
    token: $3
contexts:
- name: codex-tui-k8s
  context:
    cluster: codex-tui-k8s
    user: $2
    namespace: default
current-context: codex-tui-k8s
EOF
        chmod 600 "$1"
    }
    kubeconfig "$K8S_KUBECONFIG" admin "$ADMIN"
    kubeconfig "$PKI/controller-manager.kubeconfig" system:kube-controller-manager "$KCM"
    kubeconfig "$PKI/scheduler.kubeconfig" system:kube-scheduler "$SCHED"
    kubeconfig "$PKI/kubelet.kubeconfig" "system:node:$K8S_NODE_NAME" "$KUBELET"
) || fail "cannot create certificates and kubeconfigs in $PKI"

# --- 2. containerd (private instance) ------------------------------------------------------------
cat >"$K8S_STATE/containerd.toml" <<EOF
version = 2
root = "$K8S_STATE/containerd"
state = "$K8S_RUN/containerd"
oom_score = 0

[grpc]
  address = "$K8S_CONTAINERD_SOCK"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$K8S_STATE/containerd-opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$K8S_PAUSE_IMAGE"
    restrict_oom_score_adj = true
    disable_apparmor = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          Root = "$K8S_RUN/runc"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$K8S_STATE/cni/net.d"
      max_conf_num = 1
EOF
MASQ=false; [[ "$K8S_POD_EGRESS" == 1 ]] && MASQ=true
cat >"$K8S_STATE/cni/net.d/10-codex-tui-k8s.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$K8S_CNI_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$K8S_CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": $MASQ,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$K8S_POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$K8S_STATE/cni/ipam"
      }
    }
  ]
}
EOF

# Egress: besides the bridge plugin's masquerade, forwarding must be allowed (dockerd sets the
# FORWARD policy to DROP). The rules carry a comment so down.sh removes exactly them.
if [[ "$K8S_POD_EGRESS" == 1 ]]; then
    for rule in "-i $K8S_CNI_BRIDGE ! -o $K8S_CNI_BRIDGE -j ACCEPT" \
        "-o $K8S_CNI_BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"; do
        # shellcheck disable=SC2086
        iptables -w -I FORWARD 1 $rule -m comment --comment codex-tui-k8s \
            || fail "iptables: cannot allow forwarding for $K8S_CNI_BRIDGE"
    done
fi

# start NAME BINARY ARGS...: a daemon in its own session, stdout+stderr to logs/NAME.log.
start() {
    local name=$1; shift
    STARTED=1
    setsid "$@" </dev/null >"$K8S_LOGS/$name.log" 2>&1 &
    echo $! >"$K8S_PIDS/$name.pid"
}
# Whether the daemon NAME started here still runs (no executable check: right after `start` the
# child may not have exec'd its binary yet).
started_alive() { local pid; pid=$(cat "$K8S_PIDS/$1.pid" 2>/dev/null) && k8s_proc_alive "$pid"; }
# wait_for NAME SECONDS COMMAND...: poll COMMAND every 0.2 s while the daemon NAME lives.
wait_for() {
    local name=$1 secs=$2 i; shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        started_alive "$name" || fail "$name exited: $(tail -n 1 "$K8S_LOGS/$name.log" | cut -c1-300) (log: $K8S_LOGS/$name.log)"
        sleep 0.2
    done
    fail "$name not ready after $secs s: $(tail -n 1 "$K8S_LOGS/$name.log" | cut -c1-300) (log: $K8S_LOGS/$name.log)"
}

start containerd /usr/bin/containerd --config "$K8S_STATE/containerd.toml"
start etcd /usr/bin/etcd --name codex-tui-k8s --data-dir "$K8S_STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --initial-cluster "codex-tui-k8s=http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --listen-metrics-urls "" --logger zap --log-level warn
wait_for containerd 30 "${CTR[@]}" version
T_CTD=$(k8s_since "$T0")
# Images go in while the control plane starts.
import_images & IMPORT_PID=$!
wait_for etcd 30 curl -fsS "http://127.0.0.1:$K8S_ETCD_PORT/health"
T_ETCD=$(k8s_since "$T0")

# --- 3. control plane ------------------------------------------------------------------------------
start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$K8S_ETCD_PORT" \
    --bind-address "$API_BIND" --secure-port "$K8S_API_PORT" --advertise-address "$NODE_IP" \
    --cert-dir "$PKI/apiserver-generated" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$K8S_SERVICE_CIDR" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --profiling=false --v=1
wait_for kube-apiserver 60 k8s_kubectl get --raw /readyz
T_API=$(k8s_since "$T0")

start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$K8S_CM_PORT" --port 0 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials --leader-elect=false --kube-api-qps 100 --kube-api-burst 200 \
    --service-cluster-ip-range "$K8S_SERVICE_CIDR" --allocate-node-cidrs=false \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --cert-dir "$PKI/controller-manager-generated" --profiling=false --v=1
start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig "$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$K8S_SCHED_PORT" --port 0 \
    --leader-elect=false --cert-dir "$PKI/scheduler-generated" --profiling=false --v=1

# --- 4. kubelet --------------------------------------------------------------------------------------
cat >"$K8S_STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$NODE_IP"
port: $K8S_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $K8S_KUBELET_HEALTHZ_PORT
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: "$PKI/ca.crt"
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
failSwapOn: false
oomScoreAdj: 0
volumePluginDir: "$K8S_STATE/kubelet-plugins"
runtimeRequestTimeout: 15m
# Report Ready (and any change) within ~1 s instead of 10 s: halves the cold start.
nodeStatusUpdateFrequency: 1s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "2%"
  imagefs.available: "2%"
  nodefs.inodesFree: "2%"
EOF
start kubelet "$K8S_BIN/kubelet" \
    --config "$K8S_STATE/kubelet.yaml" --kubeconfig "$PKI/kubelet.kubeconfig" \
    --root-dir "$K8S_STATE/kubelet" --cert-dir "$K8S_STATE/kubelet/pki" \
    --hostname-override "$K8S_NODE_NAME" --node-ip "$NODE_IP" \
    --container-runtime remote --container-runtime-endpoint "unix://$K8S_CONTAINERD_SOCK" \
    --pod-infra-container-image "$K8S_PAUSE_IMAGE" --v=1

ready_and_sa() { node_ready && k8s_kubectl -n default get serviceaccount default; }
T_NODE=""
deadline=$((SECONDS + UP_TIMEOUT))
while ((SECONDS < deadline)); do
    [[ -z "$T_NODE" ]] && k8s_kubectl get node "$K8S_NODE_NAME" >/dev/null 2>&1 && T_NODE=$(k8s_since "$T0")
    ready_and_sa >/dev/null 2>&1 && break
    for c in "${ALL[@]}"; do
        started_alive "$c" || fail "$c exited: $(tail -n 1 "$K8S_LOGS/$c.log" | cut -c1-300) (log: $K8S_LOGS/$c.log)"
    done
    sleep 0.2
done
ready_and_sa >/dev/null 2>&1 \
    || fail "node $K8S_NODE_NAME not Ready after $UP_TIMEOUT s: $(tail -n 1 "$K8S_LOGS/kubelet.log" | cut -c1-300) (log: $K8S_LOGS/kubelet.log)"
# The daemons we started must be the binaries themselves (setsid did not fork): checked once.
for c in "${ALL[@]}"; do
    pid=$(cat "$K8S_PIDS/$c.pid")
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || fail "$c exited: $(tail -n 1 "$K8S_LOGS/$c.log" | cut -c1-300)"
    [[ "$(basename "$exe")" == "$c" ]] || fail "pid $pid of $c is $exe"
done

READY_S=$(k8s_since "$T0")
finish_images

cat >"$K8S_STATE/cluster.env" <<EOF
KUBECONFIG=$K8S_KUBECONFIG
KUBECTL=$K8S_BIN/kubectl
K8S_NODE_NAME=$K8S_NODE_NAME
K8S_NODE_IP=$NODE_IP
K8S_API_URL=$API_URL
K8S_CONTAINERD_SOCK=$K8S_CONTAINERD_SOCK
K8S_IMAGES="${IMAGES[*]}"
EOF
echo "k8s up: node $K8S_NODE_NAME Ready in $READY_S s (containerd $T_CTD s, etcd $T_ETCD s, apiserver $T_API s, node registered ${T_NODE:-?} s), images in $(k8s_since "$T0") s ($(grep -c ': imported' "$K8S_LOGS/images.log") imported)"
echo "k8s up: KUBECONFIG=$K8S_KUBECONFIG (kubectl: $K8S_BIN/kubectl; more in $K8S_STATE/cluster.env)"
add_node
