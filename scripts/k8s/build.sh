#!/usr/bin/env bash
# Build the Kubernetes binaries the local test cluster needs, once per machine.
#
# From Debian bookworm's own `kubernetes` source package (upstream v1.20.2 with vendor/, built with
# Debian's golang-go and GOPROXY=off, so nothing but Debian packages is fetched) this builds
# kube-apiserver, kube-controller-manager, kube-scheduler and kubelet, and caches them outside the
# clone in $K8S_CACHE/bin (default /var/cache/codex-tui/k8s/<source version>/bin) together with
# kubectl (from the matching `kubernetes-client` .deb, unpacked there so an installed kubectl is left
# alone) and a static pause image (pause.tar, docker-archive format).
#
# Idempotent: when the cache is complete it prints one line and exits 0 at once, so a second run or
# a second clone skips the build (~20 min on 2 busy cores, run under `nice -n 19`).
# Root only (apt-get). Long output goes to $K8S_BUILD_LOG; on failure it prints ONE line and exits 1.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"

fail() { echo "k8s build: $* (log: $K8S_BUILD_LOG)" >&2; exit 1; }
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)

cache_complete() {
    [[ -f "$K8S_CACHE/complete" ]] || return 1
    local b
    for b in "${BINARIES[@]}" kubectl; do [[ -x "$K8S_BIN/$b" ]] || return 1; done
    [[ -s "$K8S_BIN/pause.tar" ]]
}

if cache_complete; then
    echo "k8s build: cached binaries in $K8S_BIN ($(cat "$K8S_CACHE/complete"))"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || { echo "k8s build: must run as root (apt-get, /var/cache)" >&2; exit 1; }

mkdir -p "$K8S_CACHE_ROOT" || fail "cannot create $K8S_CACHE_ROOT"
# One build at a time on this machine (two clones, or CI beside a developer).
exec 9>"$K8S_CACHE_ROOT/.build.lock"
if ! flock -n 9; then
    echo "k8s build: another build holds $K8S_CACHE_ROOT/.build.lock, waiting for it"
    flock 9
fi
if cache_complete; then
    echo "k8s build: cached binaries in $K8S_BIN ($(cat "$K8S_CACHE/complete"))"
    exit 0
fi

: >"$K8S_BUILD_LOG"
log() { echo "[$(k8s_log_stamp)] $*" >>"$K8S_BUILD_LOG"; }
T0=$(k8s_now)

# --- 1. packages: the Go toolchain and what the upstream Makefile needs -------------------------
# rsync: without it the code generators silently produce empty files. dpkg-dev: dpkg-source.
k8s_apt_install golang-go rsync dpkg-dev make gcc libc6-dev xz-utils ca-certificates \
    || fail "apt-get install failed: $(tail -n 1 "$K8S_APT_LOG")"
GO_VERSION=$(go version 2>/dev/null) || fail "go not found after installing golang-go"
log "go: $GO_VERSION"

# --- 2. the source package, through a private apt configuration ---------------------------------
# The system's apt lists are left untouched: a private sources list (deb + deb-src lines for the
# machine's own Debian mirror, read from its apt sources), private lists and cache.
WORK=${K8S_BUILD_DIR:-/var/tmp/codex-tui-k8s-build}
rm -rf "$WORK"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/apt/parts" "$WORK/src" \
    || fail "cannot create $WORK"
CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
SOURCE_CODENAME=${K8S_SOURCE_CODENAME:-bookworm}
{
    # deb822 files: one stanza per blank-line-separated block.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
        {
            uris = ""; suites = ""; comps = ""; key = ""; types = ""; enabled = "yes"
            for (i = 1; i <= NF; i++) {
                line = $i; sub(/^[ \t]+/, "", line)
                if (line ~ /^#/) continue
                split(line, kv, ":"); k = tolower(kv[1]); v = substr(line, length(kv[1]) + 2)
                gsub(/^[ \t]+|[ \t]+$/, "", v)
                if (k == "uris") uris = v; else if (k == "suites") suites = v
                else if (k == "components") comps = v; else if (k == "signed-by") key = v
                else if (k == "types") types = v; else if (k == "enabled") enabled = tolower(v)
            }
            if (enabled == "no" || types !~ /deb/) next
            n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
            for (a = 1; a <= n; a++) for (b = 1; b <= m; b++)
                print u[a], s[b], comps, key
        }' "$f"
    done
    # one-line format
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        sed -E -n 's/^[[:space:]]*deb(-src)?[[:space:]]+(\[([^]]*)\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]+(.*)$/\4 \5 \6 @\3/p' "$f" \
            | while read -r uri suite rest; do
                opts=${rest##*@}; comps=${rest%@*}
                key=$(sed -n -E 's/.*signed-by=([^ ]+).*/\1/p' <<<"$opts")
                echo "$uri $suite $comps $key"
            done
    done
} | while read -r uri suite comps key; do
    # Only the Debian archive's main suites of the machine's release (not its -security or
    # third-party repositories): their suite name is the codename itself.
    [[ "$suite" == "$CODENAME" && " $comps " == *" main "* ]] || continue
    [[ "$uri" == */debian || "$uri" == */debian/ ]] || continue
    opt=""; [[ -n "$key" && "$key" != *$'\n'* ]] && opt="[signed-by=$key] "
    echo "deb $opt$uri $SOURCE_CODENAME main"
    echo "deb-src $opt$uri $SOURCE_CODENAME main"
done | sort -u >"$WORK/apt/sources.list"
[[ -s "$WORK/apt/sources.list" ]] || fail "no Debian '$CODENAME main' entry found in /etc/apt/sources*"
log "private sources:"; cat "$WORK/apt/sources.list" >>"$K8S_BUILD_LOG"
APT_PRIVATE=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o "Dir::Etc::SourceParts=$WORK/apt/parts"
    -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache=$WORK/apt/cache" -o "APT::Sandbox::User=root")
log "apt-get update (private lists)"
apt-get "${APT_PRIVATE[@]}" update >>"$K8S_BUILD_LOG" 2>&1 || fail "apt-get update of the private source list failed"
log "apt-get source kubernetes=$K8S_SRC_VERSION"
(cd "$WORK/src" && apt-get "${APT_PRIVATE[@]}" source --download-only "kubernetes=$K8S_SRC_VERSION") \
    >>"$K8S_BUILD_LOG" 2>&1 || fail "apt-get source kubernetes=$K8S_SRC_VERSION failed"
(cd "$WORK/src" && apt-get "${APT_PRIVATE[@]}" download "kubernetes-client=$K8S_SRC_VERSION") \
    >>"$K8S_BUILD_LOG" 2>&1 || fail "apt-get download kubernetes-client=$K8S_SRC_VERSION failed"
DSC=$(ls "$WORK"/src/kubernetes_*.dsc 2>/dev/null | head -n 1)
[[ -n "$DSC" ]] || fail "no .dsc downloaded"
(cd "$WORK/src" && dpkg-source -x "$DSC" tree) >>"$K8S_BUILD_LOG" 2>&1 || fail "dpkg-source -x failed"
[[ -f "$WORK/src/tree/Makefile" && -d "$WORK/src/tree/vendor" ]] || fail "unpacked source has no Makefile or vendor/"
log "source ready after $(k8s_since "$T0") s"

# --- 3. build ----------------------------------------------------------------------------------
# KUBE_GIT_VERSION from the Debian version: 1.20.5+really1.20.2-1... -> v1.20.2
UPSTREAM=${K8S_SRC_VERSION#*really}; UPSTREAM=${UPSTREAM%%-*}; UPSTREAM=${UPSTREAM%%+*}
log "make WHAT=... (KUBE_GIT_VERSION=v$UPSTREAM) under nice -n 19"
TB=$(k8s_now)
(
    cd "$WORK/src/tree" &&
        env GOPROXY=off GOTOOLCHAIN=local GOCACHE="$WORK/gocache" HOME="$WORK" \
            KUBE_GIT_VERSION="v$UPSTREAM" KUBE_GIT_TREE_STATE=clean GOLDFLAGS="-s -w" \
            nice -n 19 make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet"
) >>"$K8S_BUILD_LOG" 2>&1 || fail "make failed: $(grep -v '^\s*$' "$K8S_BUILD_LOG" | tail -n 1 | cut -c1-200)"
BUILD_S=$(k8s_since "$TB")
log "make done in $BUILD_S s"

OUT="$WORK/src/tree/_output/bin"
STAGE="$K8S_CACHE/bin.new"
rm -rf "$STAGE" && mkdir -p "$STAGE" || fail "cannot create $STAGE"
for b in "${BINARIES[@]}"; do
    [[ -x "$OUT/$b" ]] || fail "make produced no $b"
    cp "$OUT/$b" "$STAGE/$b" || fail "cannot copy $b"
    "$STAGE/$b" --version >>"$K8S_BUILD_LOG" 2>&1 || fail "$b --version fails"
done

# --- 4. kubectl from the matching kubernetes-client .deb (unpacked, not installed) --------------
DEB=$(ls "$WORK"/src/kubernetes-client_*.deb 2>/dev/null | head -n 1)
[[ -n "$DEB" ]] || fail "kubernetes-client .deb not downloaded"
dpkg-deb -x "$DEB" "$WORK/kubectl" >>"$K8S_BUILD_LOG" 2>&1 || fail "dpkg-deb -x kubernetes-client failed"
cp "$WORK/kubectl/usr/bin/kubectl" "$STAGE/kubectl" || fail "kubernetes-client has no usr/bin/kubectl"
"$STAGE/kubectl" version --client >>"$K8S_BUILD_LOG" 2>&1 || fail "kubectl does not run"

# --- 5. the static pause image, as a docker-archive tar for `ctr images import` -----------------
P="$WORK/pause"
mkdir -p "$P/rootfs" && gcc -static -Os -o "$P/rootfs/pause" "$HERE/pause.c" >>"$K8S_BUILD_LOG" 2>&1 \
    && strip "$P/rootfs/pause" || fail "gcc -static pause.c failed"
tar -C "$P/rootfs" --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$P/layer.tar" pause \
    || fail "cannot tar the pause layer"
DIFF_ID=$(sha256sum "$P/layer.tar" | cut -d' ' -f1)
mkdir -p "$P/img/$DIFF_ID" && mv "$P/layer.tar" "$P/img/$DIFF_ID/layer.tar"
printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Entrypoint":["/pause"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"codex-tui scripts/k8s/build.sh"}]}' \
    "$DIFF_ID" >"$P/config.json"
CONFIG_ID=$(sha256sum "$P/config.json" | cut -d' ' -f1)
mv "$P/config.json" "$P/img/$CONFIG_ID.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
    "$CONFIG_ID" "${K8S_PAUSE_IMAGE#docker.io/}" "$DIFF_ID" >"$P/img/manifest.json"
tar -C "$P/img" --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$STAGE/pause.tar" \
    manifest.json "$CONFIG_ID.json" "$DIFF_ID/layer.tar" || fail "cannot write pause.tar"

# --- 6. publish atomically, clean up -----------------------------------------------------------
rm -rf "$K8S_BIN" && mv "$STAGE" "$K8S_BIN" || fail "cannot move the binaries to $K8S_BIN"
echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ), make ${BUILD_S} s, total $(k8s_since "$T0") s, $GO_VERSION" \
    >"$K8S_CACHE/complete"
cd / && rm -rf "$WORK"
log "done: $(cat "$K8S_CACHE/complete")"
echo "k8s build: built into $K8S_BIN in $(k8s_since "$T0") s (make $BUILD_S s)"
