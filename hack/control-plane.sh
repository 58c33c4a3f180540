#!/usr/bin/env bash
# hack/control-plane.sh: a real, local Kubernetes control plane (etcd and
# kube-apiserver) for the integration tests, plus kubectl and helm. Everything
# is built from source fetched through the Go module proxy, so no container
# runtime, image registry or release download is needed.
#
# Usage: hack/control-plane.sh <command>
#   build              build (or reuse) the pinned binaries in the cache
#   up                 build if needed, then start etcd and kube-apiserver on
#                      free 127.0.0.1 ports. Progress goes to stderr. The last
#                      line on stdout is `export KUBECONFIG=...`. If this state
#                      dir is already up, up only prints that line.
#   down               stop the processes that `up` started (only those, by
#                      recorded pid) and delete the state dir's data (etcd
#                      data, certs, kubeconfig); the logs stay
#   status             report up/down, versions, ports and pids; exits 1 if down
#   env                print the `export ...` lines for the test environment
#                      (see "Exported variables" below)
#   restart-apiserver  stop and start kube-apiserver again (same ports and data)
#   restart-etcd       stop and start etcd again (same ports and data), then
#                      wait until kube-apiserver is ready again
#   stop-apiserver | start-apiserver | stop-etcd | start-etcd
#                      the two halves of a restart, for fault tests
#
# Environment (all optional):
#   CCE_UW_K8S_VERSION    the Kubernetes version of kube-apiserver and kubectl,
#                         e.g. v1.29.15 (default: the version the state dir's
#                         plane was started with, else the newest tested, see
#                         "pinned versions" below). Each version is built
#                         and cached on its own, side by side.
#   CCE_UW_CACHE          build cache root. Default:
#                         ${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch
#                         Binaries go to $CCE_UW_CACHE/<component>-<version>/bin/
#   CCE_UW_PLANE_DIR      state dir for one control plane: pids, ports, certs,
#                         etcd data, logs and kubeconfig. Default:
#                         /tmp/cce-uw-plane. Use different dirs to run more
#                         than one control plane at a time.
#   CCE_UW_READY_TIMEOUT  seconds to wait for /readyz (default 60)
#   CCE_UW_NODE           1: `build` and `up` add a node (hack/node.sh): kube-controller-
#                         manager, kube-scheduler and a kubelet with containerd, runc and CNI,
#                         so Pods run (root only; one node per machine). The plane is then
#                         started with the ServiceAccount admission plugin, the Node
#                         authorizer, kubelet client credentials, and the node's address
#                         on the bridge in its serving certificate. A plane started so
#                         keeps its node through restarts; `down` takes the node down
#                         first and fails when it leaves anything behind.
#   GOPROXY, GOFLAGS, GOMODCACHE, GOCACHE are respected as usual. The script
#   sets GOTOOLCHAIN=local and CGO_ENABLED=0 for its builds.
#
# Exported variables (printed by `env`):
#   KUBECONFIG             $CCE_UW_PLANE_DIR/kubeconfig (admin, system:masters)
#   PATH                   the cache's bin dirs, ahead of the old $PATH
#   CCE_UW_KUBECTL         absolute path of the cached kubectl
#   CCE_UW_HELM            absolute path of the cached helm
#   CCE_UW_ETCD            absolute path of the cached etcd
#   CCE_UW_KUBE_APISERVER  absolute path of the cached kube-apiserver
#   CCE_UW_PLANE_DIR       the state dir
#   CCE_UW_K8S_VERSION     the Kubernetes version of kube-apiserver and kubectl
#   CCE_UW_NODE_*          with a node: its name, dir, the address Pods reach the host
#                          and the API server at, ctr and containerd's socket (hack/node.sh)
#
# Notes:
# - Without CCE_UW_NODE=1 there is no kube-controller-manager, scheduler or
#   kubelet. Pods never run, namespaces never finish deleting, and no `default`
#   ServiceAccount is created in new namespaces. This is expected. The
#   ServiceAccount admission plugin is disabled so pods can still be created,
#   as envtest does. With CCE_UW_NODE=1 all of that is there (hack/node.sh).
# - The TokenRequest API works (`kubectl create token SA`): a service-account
#   issuer and signing key are configured.
# - k8s.io/kubernetes can't be `go install`ed at a version because its go.mod
#   replaces the staging modules with ./staging/... paths. It is built from a
#   generated wrapper module that requires k8s.io/kubernetes and replaces every
#   staging module with the published v0.<minor>.<patch> version. The replace
#   list is read from the downloaded go.mod, not hard-coded. etcd's server
#   module has local replaces too, so it is built the same way.
# - Cost: a cold build (empty Go module and build caches) took about 18 min
#   on 2 cores shared with a Rust build (etcd 2 min, kube-apiserver+kubectl
#   11 min, helm 5.5 min) and fills ~1.2 GB of Go module cache and ~3 GB of Go
#   build cache. With the Go caches warm but no binaries it takes ~35 s;
#   with the binaries cached, nothing is built. `up` takes 5-7 s.
#   Another Kubernetes version (CCE_UW_K8S_VERSION) costs its own
#   kube-apiserver+kubectl build: v1.29.15 took about 15 min with the Go
#   module cache warm for what it shares with v1.36.5, 45 s with the Go build
#   cache warm as well.
# - Range: the oldest tested is v1.29.15, the first minor with CEL validation
#   GA (the CRD's rules need it); it builds with Go 1.26 from the module proxy
#   and runs with the same etcd v3.6.16. Older minors were not tried.
# - Versions: the proxy's version list (`go list -m -versions`) lagged behind
#   for k8s.io/kubernetes (it stopped at v1.36.3 while v1.36.5 was served), so
#   newer patches were checked with .../@v/<version>.info as well.
set -euo pipefail

# ---------------------------------------------------------------- pinned versions
# The newest patches the Go module proxy served when this was written.
# CCE_UW_K8S_VERSION picks another Kubernetes version (README's Compatibility lists the tested
# range; `make test-oldest` runs the oldest).
DEFAULT_K8S_VERSION=v1.36.5 # k8s.io/kubernetes: kube-apiserver, kubectl
ETCD_VERSION=v3.6.16  # go.etcd.io/etcd/server/v3
HELM_VERSION=v3.22.0  # helm.sh/helm/v3

# ---------------------------------------------------------------- settings
CACHE_ROOT=${CCE_UW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch}
PLANE_DIR=${CCE_UW_PLANE_DIR:-/tmp/cce-uw-plane}
READY_TIMEOUT=${CCE_UW_READY_TIMEOUT:-60}
# A plane that is up keeps the version it was started with, so later commands
# (env, restarts) find its binaries without being told again.
K8S_VERSION_FILE=$PLANE_DIR/k8s-version
if [[ -n ${CCE_UW_K8S_VERSION:-} ]]; then
	K8S_VERSION=$CCE_UW_K8S_VERSION
elif [[ -s $K8S_VERSION_FILE ]]; then
	K8S_VERSION=$(<"$K8S_VERSION_FILE")
else
	K8S_VERSION=$DEFAULT_K8S_VERSION
fi

K8S_DIR=$CACHE_ROOT/kubernetes-$K8S_VERSION
ETCD_DIR=$CACHE_ROOT/etcd-$ETCD_VERSION
HELM_DIR=$CACHE_ROOT/helm-$HELM_VERSION
KUBE_APISERVER=$K8S_DIR/bin/kube-apiserver
KUBECTL=$K8S_DIR/bin/kubectl
ETCD=$ETCD_DIR/bin/etcd
HELM=$HELM_DIR/bin/helm
KUBELET=$K8S_DIR/bin/kubelet
KCM=$K8S_DIR/bin/kube-controller-manager
SCHEDULER=$K8S_DIR/bin/kube-scheduler

# The node (hack/node.sh): wanted by CCE_UW_NODE=1, or by the plane that is up here.
NODE_MODE_FILE=$PLANE_DIR/node-mode
if [[ ${CCE_UW_NODE:-} == 1 || -s $NODE_MODE_FILE ]]; then
	NODE_MODE=1
else
	NODE_MODE=0
fi
# The Pod network's bridge: the host's address on it is where Pods reach the host.
NODE_SUBNET=10.213.0.0/24
NODE_GATEWAY=10.213.0.1
node_sh() {
	CCE_UW_PLANE_DIR=$PLANE_DIR CCE_UW_CACHE=$CACHE_ROOT CCE_UW_NODE_K8S_BIN=$K8S_DIR/bin \
		CCE_UW_NODE_GATEWAY=$NODE_GATEWAY CCE_UW_NODE_SUBNET=$NODE_SUBNET \
		"$(dirname "${BASH_SOURCE[0]}")/node.sh" "$@"
}

export GOTOOLCHAIN=local
export CGO_ENABLED=0

[[ $K8S_VERSION =~ ^v1\.[0-9]+\.[0-9]+$ ]] ||
	{ printf '[control-plane] ERROR: CCE_UW_K8S_VERSION=%s is not v1.<minor>.<patch>\n' "$K8S_VERSION" >&2; exit 2; }

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- build helpers

# go_build_progress LOGFILE LABEL -- go build|install args...
# Runs the go command with -v, keeps its full output in LOGFILE, and prints
# the number of compiled packages, or at least a heartbeat every 30s (module
# downloads print nothing). No helper process outlives it: a leftover would
# keep the caller's stderr (and the build lock) open.
go_build_progress() {
	local logfile=$1 label=$2
	shift 3
	local start=$SECONDS rc=0 n=0 last=0 said=$SECONDS gopid
	# "$1 $2" is "go build" or "go install": -v goes right after it.
	"$1" "$2" -v "${@:3}" >"$logfile" 2>&1 9>&- &
	gopid=$!
	while kill -0 "$gopid" 2>/dev/null; do
		sleep 2
		n=$(grep -c -v -e '^go: ' "$logfile" || true)
		if ((n - last >= 100)); then
			log "  $label: $n packages compiled ($((SECONDS - start))s)"
			last=$n said=$SECONDS
		elif ((SECONDS - said >= 30)); then
			log "  $label: still working ($n packages compiled, $((SECONDS - start))s)"
			said=$SECONDS
		fi
	done
	wait "$gopid" || rc=$?
	if ((rc != 0)); then
		log "$label: build failed (exit $rc); last lines of $logfile:"
		tail -n 40 "$logfile" >&2
		return "$rc"
	fi
}

# Writes the wrapper module for k8s.io/kubernetes into $1.
write_k8s_wrapper() {
	local dir=$1 gomod staging_version
	mkdir -p "$dir"
	log "kubernetes $K8S_VERSION: downloading module k8s.io/kubernetes (large, takes a while when cold)"
	gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
		python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["GoMod"])')
	# Staging modules are published as v0.<minor>.<patch> for v1.<minor>.<patch>.
	staging_version=v0.${K8S_VERSION#v1.}
	python3 - "$gomod" "$K8S_VERSION" "$staging_version" >"$dir/go.mod.new" <<'EOF'
import re, sys

gomod_path, k8s_version, staging_version = sys.argv[1:4]
text = open(gomod_path).read()
go_line = re.search(r"^go (\S+)$", text, re.M).group(1)
# Keep the GODEBUG defaults the kubernetes build uses.
godebug = re.findall(r"^godebug .*$", text, re.M)

# Collect the replace directives (block and single-line forms).
replaces = []
for block in re.findall(r"^replace \((.*?)^\)", text, re.M | re.S):
    replaces += [l.strip() for l in block.splitlines()]
replaces += re.findall(r"^replace ([^(].*)$", text, re.M)
# The modules k8s.io/kubernetes requires; replacing anything else is moot.
required = set()
for block in re.findall(r"^require \((.*?)^\)", text, re.M | re.S):
    for l in block.splitlines():
        f = l.split()
        if len(f) >= 2 and not f[0].startswith("//"):
            required.add(f[0])
required.update(m for m in re.findall(r"^require (\S+) \S+", text, re.M))

out = []
for r in replaces:
    r = r.split("//")[0].strip()
    if not r:
        continue
    left, right = [s.strip() for s in r.split("=>")]
    target = right.split()
    if target[0].startswith("./staging/") or target[0].startswith("../"):
        mod = left.split()[0]
        if mod in required:
            out.append(f"\t{mod} => {mod} {staging_version}")
    elif len(target) == 2:
        # A replace by a published version: keep it as it is.
        out.append(f"\t{left} => {right}")
if not out:
    sys.exit("no staging replaces found in " + gomod_path)

print("// Generated by hack/control-plane.sh: builds k8s.io/kubernetes commands")
print("// with the staging modules taken from their published versions.")
print("module cce-upgrade-watch.local/k8s-build")
print()
print(f"go {go_line}")
print()
for g in godebug:
    print(g)
    print()
print(f"require k8s.io/kubernetes {k8s_version}")
print()
print("replace (")
print("\n".join(out))
print(")")
EOF
	mv "$dir/go.mod.new" "$dir/go.mod"
	log "kubernetes $K8S_VERSION: wrapper module with $(grep -c ' => ' "$dir/go.mod") staging replaces at $staging_version"
}

build_kubernetes() {
	local stamp=$K8S_DIR/.built
	if [[ -f $stamp && -x $KUBE_APISERVER && -x $KUBECTL ]]; then
		log "kubernetes $K8S_VERSION: cached in $K8S_DIR/bin"
		return 0
	fi
	local start=$SECONDS src=$K8S_DIR/src build_date ldflags="-s -w" pkg minor
	mkdir -p "$K8S_DIR/bin"
	write_k8s_wrapper "$src"
	# The version the binaries report (/version, kubectl version).
	build_date=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
		python3 -c 'import json,sys; print(json.load(open(json.load(sys.stdin)["Info"]))["Time"])')
	minor=${K8S_VERSION#v1.}
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$build_date"
	done
	log "kubernetes $K8S_VERSION: building kube-apiserver and kubectl (cold: 10-25 min on 2 cores)"
	(
		cd "$src"
		go_build_progress "$K8S_DIR/build.log" "kubernetes $K8S_VERSION" -- \
			go build -mod=mod -trimpath -ldflags "$ldflags" -o "$K8S_DIR/bin/" \
			k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
	)
	"$KUBE_APISERVER" --version >&2
	"$KUBECTL" version --client >&2
	date -u +%FT%TZ >"$stamp"
	log "kubernetes $K8S_VERSION: built in $((SECONDS - start))s"
}

# The node's kubelet, kube-controller-manager and kube-scheduler, from the same wrapper
# module as kube-apiserver (so mostly from the same Go build cache).
build_kubernetes_node() {
	local stamp=$K8S_DIR/.built-node
	if [[ -f $stamp && -x $KUBELET && -x $KCM && -x $SCHEDULER ]]; then
		log "kubernetes $K8S_VERSION node: cached in $K8S_DIR/bin"
		return 0
	fi
	local start=$SECONDS src=$K8S_DIR/src build_date ldflags="-s -w" pkg minor
	[[ -f $src/go.mod ]] || write_k8s_wrapper "$src"
	build_date=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
		python3 -c 'import json,sys; print(json.load(open(json.load(sys.stdin)["Info"]))["Time"])')
	minor=${K8S_VERSION#v1.}
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$build_date"
	done
	log "kubernetes $K8S_VERSION: building kubelet, kube-controller-manager and kube-scheduler"
	(
		cd "$src"
		go_build_progress "$K8S_DIR/build-node.log" "kubernetes $K8S_VERSION node" -- \
			go build -mod=mod -trimpath -ldflags "$ldflags" -o "$K8S_DIR/bin/" \
			k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
			k8s.io/kubernetes/cmd/kube-scheduler
	)
	"$KUBELET" --version >&2
	date -u +%FT%TZ >"$stamp"
	log "kubernetes $K8S_VERSION node: built in $((SECONDS - start))s"
}

build_etcd() {
	local stamp=$ETCD_DIR/.built
	if [[ -f $stamp && -x $ETCD ]]; then
		log "etcd $ETCD_VERSION: cached in $ETCD_DIR/bin"
		return 0
	fi
	local start=$SECONDS src=$ETCD_DIR/src
	mkdir -p "$ETCD_DIR/bin" "$src"
	# The server module's own go.mod has ../ replaces that only work inside
	# the etcd repo; from a wrapper module it uses the published versions.
	cat >"$src/go.mod" <<EOF
// Generated by hack/control-plane.sh: builds the etcd server.
module cce-upgrade-watch.local/etcd-build

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
	log "etcd $ETCD_VERSION: building"
	(
		cd "$src"
		go_build_progress "$ETCD_DIR/build.log" "etcd $ETCD_VERSION" -- \
			go build -mod=mod -trimpath -ldflags "-s -w" -o "$ETCD" go.etcd.io/etcd/server/v3
	)
	"$ETCD" --version >&2
	date -u +%FT%TZ >"$stamp"
	log "etcd $ETCD_VERSION: built in $((SECONDS - start))s"
}

build_helm() {
	local stamp=$HELM_DIR/.built
	if [[ -f $stamp && -x $HELM ]]; then
		log "helm $HELM_VERSION: cached in $HELM_DIR/bin"
		return 0
	fi
	local start=$SECONDS ldflags kube_minor pkg
	mkdir -p "$HELM_DIR/bin"
	log "helm $HELM_VERSION: building"
	# The same version ldflags as helm's Makefile: its own version, and the
	# default .Capabilities.KubeVersion from the client-go it is built with.
	kube_minor=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | python3 -c '
import json, re, sys
d = json.load(sys.stdin)
m = re.search(r"^\s*k8s.io/client-go v0\.(\d+)\.", open(d["GoMod"]).read(), re.M)
print(m.group(1))')
	ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
	ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
	for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
	done
	(
		export GOBIN=$HELM_DIR/bin
		go_build_progress "$HELM_DIR/build.log" "helm $HELM_VERSION" -- \
			go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	)
	"$HELM" version >&2
	date -u +%FT%TZ >"$stamp"
	log "helm $HELM_VERSION: built in $((SECONDS - start))s"
}

# all_cached: every binary this command needs is built (the stamps each build writes last).
all_cached() {
	[[ -f $ETCD_DIR/.built && -x $ETCD && -f $K8S_DIR/.built && -x $KUBE_APISERVER && -x $KUBECTL &&
		-f $HELM_DIR/.built && -x $HELM ]] || return 1
	if ((NODE_MODE)); then
		[[ -f $K8S_DIR/.built-node && -x $KUBELET && -x $KCM && -x $SCHEDULER ]] || return 1
		node_sh cached || return 1
	fi
}

cmd_build() {
	command -v go >/dev/null || die "go is not installed"
	command -v python3 >/dev/null || die "python3 is not installed"
	mkdir -p "$CACHE_ROOT"
	local start=$SECONDS
	# Nothing to build: no need to wait for another build (of another version) to finish.
	if all_cached; then
		log "build: all binaries cached"
		return 0
	fi
	# One build at a time per cache, e.g. when two test runs start together.
	exec 9>"$CACHE_ROOT/.build.lock"
	if command -v flock >/dev/null; then
		flock 9
	fi
	build_etcd
	build_kubernetes
	build_helm
	if ((NODE_MODE)); then
		build_kubernetes_node
		node_sh build
	fi
	exec 9>&-
	log "build: all binaries ready in $((SECONDS - start))s"
}

# ---------------------------------------------------------------- state helpers

ETCD_PID_FILE=$PLANE_DIR/etcd.pid
APISERVER_PID_FILE=$PLANE_DIR/kube-apiserver.pid
PORTS_FILE=$PLANE_DIR/ports.env
PKI=$PLANE_DIR/pki
KUBECONFIG_FILE=$PLANE_DIR/kubeconfig
ETCD_DATA=$PLANE_DIR/etcd-data
ETCD_LOG=$PLANE_DIR/etcd.log
APISERVER_LOG=$PLANE_DIR/kube-apiserver.log

# pid_of NAME: prints the recorded pid if that process is alive and is still
# the one we started (binary and state dir on its command line).
pid_of() {
	local name=$1 file bin pid cmdline
	case $name in
	etcd) file=$ETCD_PID_FILE bin=$ETCD ;;
	kube-apiserver) file=$APISERVER_PID_FILE bin=$KUBE_APISERVER ;;
	*) die "unknown component $name" ;;
	esac
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	# A zombie has an empty cmdline and counts as gone.
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == "$bin "* && $cmdline == *"$PLANE_DIR"* ]] || return 1
	printf '%s\n' "$pid"
}

# stop NAME: SIGTERM the recorded process, wait for it, SIGKILL after 30s.
stop_component() {
	local name=$1 pid file i
	file=$PLANE_DIR/$name.pid
	if ! pid=$(pid_of "$name"); then
		[[ -f $file ]] && log "$name: not running (stale pid file removed)"
		rm -f "$file"
		return 0
	fi
	log "$name: stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		pid_of "$name" >/dev/null || break
		sleep 0.1
	done
	if pid_of "$name" >/dev/null; then
		log "$name: still alive after 30s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			pid_of "$name" >/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$file"
}

free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

gen_pki() {
	[[ -f $PKI/admin.crt ]] && return 0
	command -v openssl >/dev/null || die "openssl is not installed"
	log "generating CA, serving, admin and service-account keys in $PKI"
	rm -rf "$PKI"
	mkdir -p "$PKI"
	(
		cd "$PKI"
		umask 077
		openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
			-keyout ca.key -out ca.crt -subj "/CN=cce-uw-plane-ca" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
		cat >serving.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
		# Pods reach the API server at the node's address on their bridge (hack/node.sh).
		if ((NODE_MODE)); then
			sed -i "s/^subjectAltName=.*/&,IP:$NODE_GATEWAY/" serving.ext
		fi
		cat >client.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
		openssl req -new -nodes -newkey rsa:2048 -keyout apiserver.key -out apiserver.csr \
			-subj "/CN=kube-apiserver" 2>/dev/null
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-sha256 -days 3650 -extfile serving.ext -out apiserver.crt 2>/dev/null
		openssl req -new -nodes -newkey rsa:2048 -keyout admin.key -out admin.csr \
			-subj "/O=system:masters/CN=admin" 2>/dev/null
		openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-sha256 -days 3650 -extfile client.ext -out admin.crt 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		rm -f ./*.csr ./*.ext ca.srl
	)
}

write_kubeconfig() {
	local port=$1 tmp
	tmp=$KUBECONFIG_FILE.tmp
	cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cce-uw-plane
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/admin.crt")
    client-key-data: $(base64 -w0 <"$PKI/admin.key")
contexts:
- name: cce-uw-plane
  context:
    cluster: cce-uw-plane
    user: admin
    namespace: default
current-context: cce-uw-plane
EOF
	chmod 600 "$tmp"
	mv "$tmp" "$KUBECONFIG_FILE"
}

load_ports() {
	[[ -f $PORTS_FILE ]] || die "$PLANE_DIR has no ports.env: run \`$0 up\` first"
	# shellcheck source=/dev/null
	source "$PORTS_FILE"
}

# Start a daemon in its own session, detached from our stdout/stderr so that
# callers capturing our output aren't held open by it.
spawn() {
	local logfile=$1 pidfile=$2 i
	shift 2
	printf '\n==== %s starting: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$logfile"
	rm -f "$pidfile"
	# The child records its own pid and then execs the binary, so the pid is right even
	# when setsid has to fork (as it does when started as a process-group leader).
	# shellcheck disable=SC2016 # expanded by the child shell
	setsid sh -c 'echo "$$" >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
	for ((i = 0; i < 100; i++)); do
		if [[ -s $pidfile ]] && [[ $(tr '\0' ' ' <"/proc/$(<"$pidfile")/cmdline" 2>/dev/null) == "$1 "* ]]; then
			return 0
		fi
		sleep 0.05
	done
	log "warning: $1 did not start within 5s"
}

start_etcd() {
	load_ports
	pid_of etcd >/dev/null && { log "etcd: already running"; return 0; }
	mkdir -p "$ETCD_DATA"
	chmod 700 "$ETCD_DATA"
	log "etcd: starting on 127.0.0.1:$ETCD_PORT (peer $ETCD_PEER_PORT)"
	spawn "$ETCD_LOG" "$ETCD_PID_FILE" "$ETCD" \
		--name=default \
		--data-dir="$ETCD_DATA" \
		--listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster="default=http://127.0.0.1:$ETCD_PEER_PORT" \
		--unsafe-no-fsync=true
}

start_apiserver() {
	load_ports
	pid_of kube-apiserver >/dev/null && { log "kube-apiserver: already running"; return 0; }
	mkdir -p "$PLANE_DIR/apiserver-certs"
	log "kube-apiserver: starting on https://127.0.0.1:$APISERVER_PORT"
	# Without a node no ServiceAccount is ever made, so the admission plugin that requires
	# one is off; with a node, Pods get their projected token from it, the kubelet is
	# authorized as a node, and logs and exec reach the kubelet with the admin certificate.
	local node_flags=(--authorization-mode=RBAC --disable-admission-plugins=ServiceAccount)
	if ((NODE_MODE)); then
		node_flags=(--authorization-mode=Node,RBAC --kubelet-preferred-address-types=InternalIP
			--kubelet-client-certificate="$PKI/admin.crt" --kubelet-client-key="$PKI/admin.key")
	fi
	spawn "$APISERVER_LOG" "$APISERVER_PID_FILE" "$KUBE_APISERVER" \
		--advertise-address=127.0.0.1 \
		--bind-address=127.0.0.1 \
		--secure-port="$APISERVER_PORT" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--cert-dir="$PLANE_DIR/apiserver-certs" \
		--tls-cert-file="$PKI/apiserver.crt" \
		--tls-private-key-file="$PKI/apiserver.key" \
		--client-ca-file="$PKI/ca.crt" \
		"${node_flags[@]}" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" \
		--service-account-signing-key-file="$PKI/sa.key" \
		--service-cluster-ip-range=10.0.0.0/24 \
		--allow-privileged=true \
		--endpoint-reconciler-type=none \
		--profiling=false
}

# wait_etcd: etcd's /health answers ok (so kube-apiserver starts cleanly).
wait_etcd() {
	load_ports
	local deadline=$((SECONDS + READY_TIMEOUT))
	while ((SECONDS < deadline)); do
		pid_of etcd >/dev/null || { log "etcd exited during startup"; return 1; }
		if python3 - "$ETCD_PORT" 2>/dev/null <<'EOF'
import json, sys, urllib.request
url = "http://127.0.0.1:%s/health" % sys.argv[1]
sys.exit(0 if json.load(urllib.request.urlopen(url, timeout=2)).get("health") == "true" else 1)
EOF
		then
			return 0
		fi
		sleep 0.2
	done
	log "etcd not healthy after ${READY_TIMEOUT}s"
	return 1
}

# is_ready: /readyz answers ok with the admin credentials.
is_ready() {
	[[ -f $KUBECONFIG_FILE ]] || return 1
	"$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

wait_ready() {
	local deadline=$((SECONDS + READY_TIMEOUT)) name
	while ((SECONDS < deadline)); do
		for name in etcd kube-apiserver; do
			if ! pid_of "$name" >/dev/null; then
				log "$name exited during startup"
				return 1
			fi
		done
		is_ready && return 0
		sleep 0.5
	done
	log "kube-apiserver not ready after ${READY_TIMEOUT}s"
	return 1
}

dump_logs() {
	local f
	for f in "$ETCD_LOG" "$APISERVER_LOG"; do
		[[ -f $f ]] || continue
		log "---- last 40 lines of $f"
		tail -n 40 "$f" >&2
	done
}

print_export() { printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"; }

cmd_up() {
	if [[ -s $K8S_VERSION_FILE && $(<"$K8S_VERSION_FILE") != "$K8S_VERSION" ]]; then
		die "$PLANE_DIR holds a Kubernetes $(<"$K8S_VERSION_FILE") plane: run \`$0 down\` first, or use another CCE_UW_PLANE_DIR"
	fi
	if pid_of etcd >/dev/null && pid_of kube-apiserver >/dev/null && is_ready; then
		log "already up in $PLANE_DIR"
		print_export
		return 0
	fi
	cmd_build
	local start=$SECONDS
	# A half-started or dead plane in this dir: clean it up first.
	stop_component kube-apiserver
	stop_component etcd
	rm -rf "$ETCD_DATA" "$PLANE_DIR/apiserver-certs" "$PKI" "$KUBECONFIG_FILE"
	mkdir -p "$PLANE_DIR"
	chmod 700 "$PLANE_DIR"
	local ports
	read -r -a ports <<<"$(free_ports 3)"
	printf '%s\n' "$K8S_VERSION" >"$K8S_VERSION_FILE"
	if ((NODE_MODE)); then echo 1 >"$NODE_MODE_FILE"; else rm -f "$NODE_MODE_FILE"; fi
	cat >"$PORTS_FILE" <<EOF
ETCD_PORT=${ports[0]}
ETCD_PEER_PORT=${ports[1]}
APISERVER_PORT=${ports[2]}
EOF
	load_ports
	gen_pki
	write_kubeconfig "$APISERVER_PORT"
	start_etcd
	if wait_etcd; then
		start_apiserver
	fi
	if ! wait_ready; then
		dump_logs
		stop_component kube-apiserver
		stop_component etcd
		die "control plane in $PLANE_DIR failed to start (logs kept in $PLANE_DIR)"
	fi
	log "up in $((SECONDS - start))s: kube-apiserver https://127.0.0.1:$APISERVER_PORT, etcd http://127.0.0.1:$ETCD_PORT, state in $PLANE_DIR"
	if ((NODE_MODE)) && ! node_sh up; then
		node_sh down || true
		stop_component kube-apiserver
		stop_component etcd
		die "the node in $PLANE_DIR failed to start (logs kept in $PLANE_DIR/node)"
	fi
	print_export
}

cmd_down() {
	# The node first (it fails when it leaves anything behind), then the plane regardless.
	local node_rc=0
	if [[ -d $PLANE_DIR/node ]]; then
		node_sh down || node_rc=$?
	fi
	stop_component kube-apiserver
	stop_component etcd
	rm -rf "$ETCD_DATA" "$PLANE_DIR/apiserver-certs" "$PKI" "$KUBECONFIG_FILE" "$PORTS_FILE" "$K8S_VERSION_FILE" "$NODE_MODE_FILE"
	log "down: $PLANE_DIR cleaned (logs kept)"
	return "$node_rc"
}

cmd_status() {
	local etcd_pid api_pid up=1
	etcd_pid=$(pid_of etcd) || etcd_pid="-"
	api_pid=$(pid_of kube-apiserver) || api_pid="-"
	if [[ -f $PORTS_FILE ]]; then
		load_ports
	else
		ETCD_PORT="-" APISERVER_PORT="-"
	fi
	echo "state dir:      $PLANE_DIR"
	echo "etcd:           pid $etcd_pid, http://127.0.0.1:$ETCD_PORT ($ETCD_VERSION)"
	echo "kube-apiserver: pid $api_pid, https://127.0.0.1:$APISERVER_PORT ($K8S_VERSION)"
	echo "helm:           $HELM_VERSION"
	if [[ $etcd_pid != - && $api_pid != - ]] && is_ready; then
		local ver
		ver=$("$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" get --raw /version |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')
		echo "status:         up (readyz ok, server $ver)"
		echo "kubeconfig:     $KUBECONFIG_FILE"
		up=0
	else
		echo "status:         down"
	fi
	if ((NODE_MODE)) && ! node_sh status; then
		up=1
	fi
	return "$up"
}

cmd_env() {
	local b
	for b in "$KUBECTL" "$HELM" "$ETCD" "$KUBE_APISERVER"; do
		[[ -x $b ]] || log "warning: $b is not built yet (run \`$0 build\`)"
	done
	[[ -f $KUBECONFIG_FILE ]] || log "warning: $PLANE_DIR is not up (run \`$0 up\`)"
	printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
	# shellcheck disable=SC2016 # $PATH is for the caller to expand
	printf 'export PATH=%q:"$PATH"\n' "$K8S_DIR/bin:$ETCD_DIR/bin:$HELM_DIR/bin"
	printf 'export CCE_UW_KUBECTL=%q\n' "$KUBECTL"
	printf 'export CCE_UW_HELM=%q\n' "$HELM"
	printf 'export CCE_UW_ETCD=%q\n' "$ETCD"
	printf 'export CCE_UW_KUBE_APISERVER=%q\n' "$KUBE_APISERVER"
	printf 'export CCE_UW_PLANE_DIR=%q\n' "$PLANE_DIR"
	printf 'export CCE_UW_K8S_VERSION=%q\n' "$K8S_VERSION"
	if ((NODE_MODE)) && [[ -f $PORTS_FILE ]]; then
		node_sh env
	fi
}

restart_wait() {
	if ! wait_ready; then
		dump_logs
		die "control plane in $PLANE_DIR not ready after restart"
	fi
	log "ready again"
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

main() {
	local cmd=${1:-}
	case $cmd in
	build) cmd_build ;;
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	env) cmd_env ;;
	restart-apiserver)
		stop_component kube-apiserver
		start_apiserver
		restart_wait
		;;
	restart-etcd)
		stop_component etcd
		start_etcd
		wait_etcd || { dump_logs; die "etcd did not come back"; }
		restart_wait
		;;
	stop-apiserver) stop_component kube-apiserver ;;
	stop-etcd) stop_component etcd ;;
	start-apiserver)
		start_apiserver
		restart_wait
		;;
	start-etcd)
		start_etcd
		wait_etcd || { dump_logs; die "etcd did not come back"; }
		if pid_of kube-apiserver >/dev/null; then restart_wait; fi
		;;
	-h | --help | help) usage ;;
	*)
		log "unknown command: ${cmd:-<none>}"
		usage
		;;
	esac
}

# On one line, so that editing this file while it runs cannot derail it.
main "$@"; exit
