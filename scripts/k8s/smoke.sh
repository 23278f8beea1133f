#!/usr/bin/env bash
# Smoke check of the cluster started by up.sh, with kubectl (Debian's kubernetes-client, cached by
# build.sh): create a pod from the imported sandbox image (imagePullPolicy: Never, non-root, no
# service account token, all capabilities dropped, `sleep`), exec commands in it, delete it.
# Prints the timings; on failure ONE line and exit 1.
#
#   scripts/k8s/smoke.sh [IMAGE]        default: codex-tui-sandbox:latest
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

IMAGE=${1:-codex-tui-sandbox:latest}
POD=codex-tui-smoke-$$
NS=default
KUBECTL=${KUBECTL:-$K8S_BIN/kubectl}
k() { "$KUBECTL" --kubeconfig "$K8S_KUBECONFIG" -n "$NS" "$@"; }
fail() {
    echo "k8s smoke: $*" >&2
    k delete pod "$POD" --grace-period=0 --force --wait=false >/dev/null 2>&1
    exit 1
}
[[ -x "$KUBECTL" ]] || fail "no kubectl at $KUBECTL (run scripts/k8s/build.sh)"
[[ -f "$K8S_KUBECONFIG" ]] || fail "no kubeconfig at $K8S_KUBECONFIG (run scripts/k8s/up.sh)"

ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

T0=$(k8s_now)
k apply -f - >/dev/null 2>/tmp/codex-tui-k8s-smoke.err <<YAML || fail "create pod: $(tail -n 1 /tmp/codex-tui-k8s-smoke.err)"
apiVersion: v1
kind: Pod
metadata:
  name: $POD
  labels: {app: codex-tui-smoke}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 0
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
  containers:
  - name: sandbox
    image: $IMAGE
    imagePullPolicy: Never
    command: ["sleep", "infinity"]
    workingDir: /tmp
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: ["ALL"]}
    resources:
      limits: {cpu: "1", memory: 512Mi}
YAML
T1=$(k8s_now)
k wait --for=condition=Ready "pod/$POD" --timeout=60s >/dev/null 2>/tmp/codex-tui-k8s-smoke.err \
    || fail "pod not Ready in 60 s: $(k get pod "$POD" -o 'jsonpath={.status.containerStatuses[0].state}' 2>/dev/null)"
T2=$(k8s_now)

OUT=$(k exec "$POD" -- sh -c 'id -u; ls /var/run/secrets/kubernetes.io 2>&1 | head -n 1') \
    || fail "kubectl exec failed"
T3=$(k8s_now)
[[ "$(head -n 1 <<<"$OUT")" == 1000 ]] || fail "pod does not run as uid 1000: $OUT"
grep -q 'No such file' <<<"$OUT" || fail "a service account token is mounted: $OUT"
# stdin goes in, exit codes come back
[[ "$(echo hello | k exec -i "$POD" -- cat)" == hello ]] || fail "stdin through exec failed"
k exec "$POD" -- sh -c 'exit 7' >/dev/null 2>&1; rc=$?
[[ $rc -eq 7 ]] || fail "exit code through exec: $rc, expected 7"
EXECS=()
for i in 1 2 3 4 5; do
    a=$(k8s_now); k exec "$POD" -- true || fail "kubectl exec true failed"; b=$(k8s_now)
    EXECS+=("$(ms "$a" "$b")")
done
T4=$(k8s_now)
k delete pod "$POD" --grace-period=0 --force >/dev/null 2>&1 || fail "delete pod failed"
T5=$(k8s_now)
LEFT=$(k get pods -o name 2>/dev/null | grep -c "$POD")

echo "k8s smoke: ok — image $IMAGE, uid 1000, no service account token, stdin and exit codes through exec"
echo "  create (API) $(ms "$T0" "$T1") ms, create → Ready $(ms "$T1" "$T2") ms, total to Ready $(ms "$T0" "$T2") ms"
echo "  first kubectl exec $(ms "$T2" "$T3") ms; kubectl exec true ×5: ${EXECS[*]} ms (each includes kubectl's own start)"
echo "  delete $(ms "$T4" "$T5") ms; smoke pods left: $LEFT"
