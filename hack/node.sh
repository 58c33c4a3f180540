#!/usr/bin/env bash
# hack/node.sh: one real Kubernetes node beside the local control plane: kube-controller-manager,
# kube-scheduler, and a kubelet with containerd, runc and CNI, so the chart's Pods really run.
# hack/control-plane.sh calls it (CCE_UW_NODE=1 hack/control-plane.sh up|down|build|env);
# it is not meant to be run by hand, as it reads the plane's state and paths from the
# variables that script exports (CCE_UW_PLANE_DIR, CCE_UW_CACHE, CCE_UW_NODE_K8S_BIN,
# CCE_UW_NODE_GATEWAY, CCE_UW_NODE_SUBNET).
#
# Usage: hack/node.sh build | up | down | status | env | cgroup CONTAINER-ID
#   build   containerd, its runc shim and ctr (Go module proxy), the sandbox image (pause,
#           hack/node/pause), and Debian's runc, CNI plugins and socat (apt), cached like the
#           plane's binaries. The kubelet, kube-controller-manager and kube-scheduler are built
#           by hack/control-plane.sh from the same k8s.io/kubernetes module as kube-apiserver.
#   up      starts the node and waits until it is Ready (the plane must be up)
#   down    stops and removes everything `up` made, then checks that no process, mount,
#           network namespace, network interface or cgroup of the node is left (fails if so)
#   env     the node's `export` lines (CCE_UW_NODE_*)
#   cgroup  the memory cgroup directory of a container (by its CRI id), for tests that read
#           a container's peak memory
#
# What runs, and where:
# - containerd v2 with its own root, state and socket under $CCE_UW_PLANE_DIR/node, the CRI
#   plugin's network namespaces mounted under its state dir, NRI off, runc (Debian's) as the
#   runtime, `restrict_oom_score_adj` (no CAP_SYS_RESOURCE here: the CRI's negative
#   oom_score_adj for sandboxes would fail). The sandbox image is this repo's pause program,
#   imported, never pulled (no registry is reachable).
# - Pod network: Debian's CNI bridge and host-local plugins on the bridge cce-uw0, subnet
#   $CCE_UW_NODE_SUBNET, the host's address on it $CCE_UW_NODE_GATEWAY. Pods get no default
#   route and the host does not forward (ip_forward is left as it is, off here): a Pod reaches
#   the other Pods and the host's address on the bridge, nothing else.
# - The API server, for Pods: kube-apiserver listens on 127.0.0.1 only; socat forwards
#   $CCE_UW_NODE_GATEWAY:<apiserver port> to it, and its serving certificate names the
#   gateway address. There is no kube-proxy, so the `kubernetes` Service's ClusterIP that
#   the kubelet injects (KUBERNETES_SERVICE_HOST) routes nowhere: Pods are given
#   KUBERNETES_SERVICE_HOST/PORT explicitly (CCE_UW_NODE_API_HOST/PORT; the chart's
#   extraEnv), which the kubelet lets win over the injected ones.
# - The kubelet (cgroupfs driver, cgroup root /cce-uw-node, `failCgroupV1: false` on cgroup
#   v1) serves on the gateway address with client certificates only; kube-apiserver uses
#   the admin certificate for logs and exec. It authenticates as system:node:cce-uw-node
#   (Node authorizer); kube-controller-manager and kube-scheduler as their bootstrap users.
# - All node processes (containerd, shims, containers) live in the cgroup /cce-uw-node, so
#   `down` finds and ends every one of them by pid, even when containerd is gone.
# - The kubelet sets kernel tunables it wants (vm.overcommit_memory, kernel.panic,
#   kernel.panic_on_oops, vm.panic_on_oom); `up` records them and `down` puts them back.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---------------------------------------------------------------- pinned versions
CONTAINERD_VERSION=v2.2.10 # github.com/containerd/containerd/v2 (cgroup v1 kept until 2029)
PAUSE_IMAGE=cce-upgrade-watch.local/pause:v1
# Debian's packages (bookworm: runc 1.1.5, containernetworking-plugins 1.1.1, socat 1.7.4).
APT_PACKAGES=("runc:runc" "/usr/lib/cni/bridge:containernetworking-plugins" "socat:socat")

# ---------------------------------------------------------------- settings
PLANE_DIR=${CCE_UW_PLANE_DIR:?hack/node.sh is run by hack/control-plane.sh}
CACHE_ROOT=${CCE_UW_CACHE:?hack/node.sh is run by hack/control-plane.sh}
K8S_BIN=${CCE_UW_NODE_K8S_BIN:?hack/node.sh is run by hack/control-plane.sh}
GATEWAY=${CCE_UW_NODE_GATEWAY:?hack/node.sh is run by hack/control-plane.sh}
SUBNET=${CCE_UW_NODE_SUBNET:?hack/node.sh is run by hack/control-plane.sh}
READY_TIMEOUT=${CCE_UW_READY_TIMEOUT:-60}

NODE_NAME=cce-uw-node
BRIDGE=cce-uw0
CGROUP=cce-uw-node
CONTAINERD_DIR=$CACHE_ROOT/containerd-$CONTAINERD_VERSION
CONTAINERD=$CONTAINERD_DIR/bin/containerd
CTR=$CONTAINERD_DIR/bin/ctr
PAUSE_DIR=$CACHE_ROOT/pause-$(cat hack/node/pause/go.mod hack/node/pause/main.go hack/node/oci-archive.py | sha256sum | cut -c1-12)
PAUSE_TAR=$PAUSE_DIR/pause.oci.tar
KUBELET=$K8S_BIN/kubelet
KCM=$K8S_BIN/kube-controller-manager
SCHEDULER=$K8S_BIN/kube-scheduler
KUBECTL=$K8S_BIN/kubectl

NODE_DIR=$PLANE_DIR/node
PKI=$PLANE_DIR/pki
SOCK=$NODE_DIR/containerd/containerd.sock
KUBELET_ROOT=$NODE_DIR/kubelet
ADMIN_KUBECONFIG=$PLANE_DIR/kubeconfig
COMPONENTS=(kubelet kube-scheduler kube-controller-manager containerd socat)

export GOTOOLCHAIN=local CGO_ENABLED=0

log() { printf '[node] %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# ---------------------------------------------------------------- build

build_containerd() {
	local stamp=$CONTAINERD_DIR/.built
	if [[ -f $stamp && -x $CONTAINERD && -x $CTR && -x $CONTAINERD_DIR/bin/containerd-shim-runc-v2 ]]; then
		log "containerd $CONTAINERD_VERSION: cached in $CONTAINERD_DIR/bin"
		return 0
	fi
	local start=$SECONDS mod=github.com/containerd/containerd/v2
	mkdir -p "$CONTAINERD_DIR/bin"
	log "containerd $CONTAINERD_VERSION: building (cold: about 5 min on 2 cores)"
	# No cgo: the snapshotters that need it (btrfs, devmapper, zfs) are left out; overlayfs
	# is what the node uses.
	GOBIN=$CONTAINERD_DIR/bin go install -trimpath -tags no_btrfs,no_devmapper,no_zfs \
		-ldflags "-s -w -X $mod/version.Version=$CONTAINERD_VERSION" \
		"$mod/cmd/containerd@$CONTAINERD_VERSION" "$mod/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
		"$mod/cmd/ctr@$CONTAINERD_VERSION" >"$CONTAINERD_DIR/build.log" 2>&1 ||
		{
			tail -n 30 "$CONTAINERD_DIR/build.log" >&2
			die "containerd build failed"
		}
	"$CONTAINERD" --version >&2
	date -u +%FT%TZ >"$stamp"
	log "containerd $CONTAINERD_VERSION: built in $((SECONDS - start))s"
}

build_pause() {
	if [[ -s $PAUSE_TAR ]]; then
		log "pause image: cached in $PAUSE_TAR"
		return 0
	fi
	local rootfs=$PAUSE_DIR/rootfs
	rm -rf "$PAUSE_DIR"
	mkdir -p "$rootfs"
	(cd hack/node/pause && go build -trimpath -ldflags "-s -w" -o "$rootfs/pause" .)
	python3 hack/node/oci-archive.py "$PAUSE_IMAGE" "$(go env GOARCH)" "$rootfs" "$PAUSE_TAR.tmp"
	mv "$PAUSE_TAR.tmp" "$PAUSE_TAR"
	log "pause image: $PAUSE_IMAGE built into $PAUSE_TAR"
}

# cached: whether build has nothing to do (the packages installed, the binaries built).
cmd_cached() {
	local p
	for p in "${APT_PACKAGES[@]}"; do
		command -v "${p%%:*}" >/dev/null || return 1
	done
	[[ -f $CONTAINERD_DIR/.built && -x $CONTAINERD && -x $CTR && -s $PAUSE_TAR ]]
}

cmd_build() {
	local p
	for p in "${APT_PACKAGES[@]}"; do
		hack/apt-install.sh "${p%%:*}" "${p#*:}"
	done
	command -v findmnt >/dev/null || die "findmnt (util-linux) is missing"
	command -v ip >/dev/null || hack/apt-install.sh ip iproute2
	build_containerd
	build_pause
}

# ---------------------------------------------------------------- state helpers

pid_file() { printf '%s/%s.pid\n' "$NODE_DIR" "$1"; }

# pid_of NAME: the recorded pid, if that process is alive and still the program we started
# (the pid file's second line; a zombie's empty command line counts as gone).
pid_of() {
	local file pid program argv0
	file=$(pid_file "$1")
	[[ -f $file ]] || return 1
	{ read -r pid && read -r program; } <"$file" || return 1
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	argv0=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n1) || return 1
	[[ -n $argv0 && ${argv0##*/} == "${program##*/}" ]] || return 1
	printf '%s\n' "$pid"
}

# spawn NAME CGROUP|- PROGRAM ARGS...: starts PROGRAM in its own session, logging to
# NAME.log, recording its pid and name; with a cgroup, the process moves into it (every v1
# hierarchy, or v2) before exec.
spawn() {
	local name=$1 cg=$2 i pidfile logfile
	shift 2
	pidfile=$(pid_file "$name")
	logfile=$NODE_DIR/$name.log
	printf '\n==== %s starting: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$logfile"
	rm -f "$pidfile"
	local procs=""
	if [[ $cg != - ]]; then
		procs=$(cgroup_dirs "$cg" | sed 's|$|/cgroup.procs|' | tr '\n' ' ')
	fi
	# shellcheck disable=SC2016 # expanded by the child shell
	setsid sh -c 'pidfile=$1 procs=$2; shift 2; printf "%s\n%s\n" "$$" "$1" >"$pidfile"; for p in $procs; do echo "$$" >"$p"; done; exec "$@"' \
		sh "$pidfile" "$procs" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
	for ((i = 0; i < 100; i++)); do
		pid_of "$name" >/dev/null && return 0
		sleep 0.05
	done
	die "$name did not start (see $logfile)"
}

stop_component() {
	local name=$1 pid i
	pid=$(pid_of "$name") || {
		rm -f "$(pid_file "$name")"
		return 0
	}
	log "$name: stopping pid $pid"
	# socat forks a child per connection in its own process group: end the group.
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		pid_of "$name" >/dev/null || break
		sleep 0.1
	done
	if pid_of "$name" >/dev/null; then
		log "$name: still alive after 15s, sending SIGKILL"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$(pid_file "$name")"
}

# cgroup_dirs REL: the directory REL (under the node's cgroup) in every cgroup hierarchy
# mounted here (the v1 controllers and, on a hybrid host, the unified one), or in the v2 tree.
cgroup_dirs() {
	local rel=$1 mnt
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		printf '/sys/fs/cgroup/%s\n' "$rel"
		return 0
	fi
	findmnt -rn -t cgroup,cgroup2 -o TARGET | while read -r mnt; do
		printf '%s/%s\n' "$mnt" "$rel"
	done
}

make_cgroups() {
	local dir parent rel
	for rel in "$CGROUP" "$CGROUP/runtime"; do
		while read -r dir; do
			mkdir -p "$dir"
			# A new cpuset has no CPUs or memory nodes until given its parent's.
			if [[ -f $dir/cpuset.cpus && -z $(<"$dir/cpuset.cpus") ]]; then
				parent=$(dirname "$dir")
				cat "$parent/cpuset.cpus" >"$dir/cpuset.cpus"
				cat "$parent/cpuset.mems" >"$dir/cpuset.mems"
			fi
		done < <(cgroup_dirs "$rel")
	done
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		sed 's/\([a-z_]*\)/+\1/g' /sys/fs/cgroup/cgroup.controllers >"/sys/fs/cgroup/$CGROUP/cgroup.subtree_control" || true
	fi
}

# node_pids: every process in the node's cgroups.
node_pids() {
	local dir
	while read -r dir; do
		[[ -d $dir ]] || continue
		find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
	done < <(cgroup_dirs "$CGROUP") | sort -un
}

remove_cgroups() {
	local dir
	while read -r dir; do
		[[ -d $dir ]] || continue
		find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done < <(cgroup_dirs "$CGROUP")
}

node_mounts() { findmnt -rn -o TARGET | awk -v p="$NODE_DIR/" 'index($0, p) == 1' | sort -r; }

load_ports() {
	# shellcheck source=/dev/null
	source "$PLANE_DIR/ports.env"
	# shellcheck source=/dev/null
	[[ -f $NODE_DIR/ports.env ]] && source "$NODE_DIR/ports.env"
	return 0
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

# cert NAME SUBJECT [SAN]: a client (and, with SAN, server) certificate from the plane's CA.
cert() {
	local name=$1 subject=$2 san=${3:-}
	(
		cd "$NODE_DIR/pki"
		umask 077
		{
			echo "basicConstraints=CA:FALSE"
			echo "keyUsage=critical,digitalSignature,keyEncipherment"
			if [[ -n $san ]]; then
				echo "extendedKeyUsage=clientAuth,serverAuth"
				echo "subjectAltName=$san"
			else
				echo "extendedKeyUsage=clientAuth"
			fi
		} >"$name.ext"
		openssl req -new -nodes -newkey rsa:2048 -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
		openssl x509 -req -in "$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
			-CAserial "$NODE_DIR/pki/ca.srl" -sha256 -days 3650 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
		rm -f "$name.csr" "$name.ext"
	)
}

kubeconfig() {
	local name=$1
	cat >"$NODE_DIR/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cce-uw-plane
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $name
  user:
    client-certificate: $NODE_DIR/pki/$name.crt
    client-key: $NODE_DIR/pki/$name.key
contexts:
- name: $name
  context: {cluster: cce-uw-plane, user: $name}
current-context: $name
EOF
	chmod 600 "$NODE_DIR/$name.kubeconfig"
}

kubectl_admin() { "$KUBECTL" --kubeconfig="$ADMIN_KUBECONFIG" --request-timeout=10s "$@"; }

write_containerd_config() {
	local dir=$NODE_DIR/containerd
	mkdir -p "$dir/root" "$dir/state" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
	cat >"$dir/config.toml" <<EOF
# Written by hack/node.sh.
version = 3
root = '$dir/root'
state = '$dir/state'
# NRI would make a socket under /var/run; nothing here uses it.
disabled_plugins = ['io.containerd.nri.v1.nri']

[grpc]
  address = '$SOCK'

[ttrpc]
  address = '$SOCK.ttrpc'

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '$dir/opt'

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$PAUSE_IMAGE'

  [plugins.'io.containerd.cri.v1.runtime']
    # No CAP_SYS_RESOURCE here: a sandbox's negative oom_score_adj is raised to ours.
    restrict_oom_score_adj = true
    # The pods' network namespaces under the state dir, not /var/run/netns.
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '$(command -v runc)'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '$NODE_DIR/cni/net.d'
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
EOF
	# The bridge exists already with the host's address; no default route, no masquerade.
	cat >"$NODE_DIR/cni/net.d/10-cce-uw.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "cce-uw",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$SUBNET", "rangeStart": "${SUBNET%.*}.10", "gateway": "$GATEWAY"}]],
        "routes": []
      }
    },
    {"type": "loopback"}
  ]
}
EOF
}

write_kubelet_config() {
	mkdir -p "$KUBELET_ROOT" "$NODE_DIR/pod-logs"
	cat >"$NODE_DIR/kubelet.yaml" <<EOF
# Written by hack/node.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $GATEWAY
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP
failCgroupV1: false
failSwapOn: false
podLogsDir: $NODE_DIR/pod-logs
resolvConf: ""
staticPodPath: ""
registerNode: true
maxPods: 40
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
# Imported images are never collected, and a busy disk evicts nothing.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
nodeStatusUpdateFrequency: 5s
EOF
}

write_scheduler_config() {
	cat >"$NODE_DIR/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $NODE_DIR/kube-scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
}

KERNEL_TUNABLES=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops)

wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 4; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	log "$what not reached after ${secs}s"
	return 1
}

node_ready() {
	[[ $(kubectl_admin get node "$NODE_NAME" \
		-o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

dump_logs() {
	local c
	for c in "${COMPONENTS[@]}"; do
		[[ -f $NODE_DIR/$c.log ]] || continue
		log "---- last 30 lines of $NODE_DIR/$c.log"
		tail -n 30 "$NODE_DIR/$c.log" >&2
	done
}

# ---------------------------------------------------------------- up

cmd_up() {
	((EUID == 0)) || die "the node needs root (containers, mounts, a bridge)"
	[[ -f $PLANE_DIR/ports.env ]] || die "the plane in $PLANE_DIR is not up"
	if pid_of kubelet >/dev/null && node_ready; then
		log "already up in $NODE_DIR"
		return 0
	fi
	local start=$SECONDS
	cmd_build
	[[ -x $KUBELET && -x $KCM && -x $SCHEDULER ]] || die "kubelet, kube-controller-manager or kube-scheduler missing in $K8S_BIN"
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		die "the bridge $BRIDGE exists: another node runs on this machine (or one was not taken down: hack/control-plane.sh down)"
	fi
	mkdir -p "$NODE_DIR/pki"
	chmod 700 "$NODE_DIR"
	local ports t
	read -r -a ports <<<"$(free_ports 2)"
	printf 'KUBELET_PORT=%s\nKUBELET_HEALTHZ_PORT=%s\n' "${ports[0]}" "${ports[1]}" >"$NODE_DIR/ports.env"
	load_ports
	for t in "${KERNEL_TUNABLES[@]}"; do
		printf '%s=%s\n' "$t" "$(sysctl -n "$t")"
	done >"$NODE_DIR/sysctl.saved"

	log "certificates for the kubelet, kube-controller-manager and kube-scheduler"
	cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$GATEWAY,DNS:$NODE_NAME"
	cert kube-controller-manager "/CN=system:kube-controller-manager"
	cert kube-scheduler "/CN=system:kube-scheduler"
	kubeconfig kubelet
	kubeconfig kube-controller-manager
	kubeconfig kube-scheduler

	log "bridge $BRIDGE with $GATEWAY (${SUBNET})"
	ip link add "$BRIDGE" type bridge
	ip addr add "$GATEWAY/${SUBNET#*/}" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	log "socat: $GATEWAY:$APISERVER_PORT -> 127.0.0.1:$APISERVER_PORT (the API server, for Pods)"
	spawn socat - socat "TCP-LISTEN:$APISERVER_PORT,bind=$GATEWAY,reuseaddr,fork" \
		"TCP:127.0.0.1:$APISERVER_PORT,connect-timeout=5"

	make_cgroups
	write_containerd_config
	log "containerd $CONTAINERD_VERSION: starting, socket $SOCK"
	PATH="$CONTAINERD_DIR/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		spawn containerd "$CGROUP/runtime" "$CONTAINERD" --config "$NODE_DIR/containerd/config.toml"
	wait_for "containerd socket" 30 "$CTR" --address "$SOCK" version || {
		dump_logs
		die "containerd did not start"
	}
	"$CTR" --address "$SOCK" -n k8s.io images import "$PAUSE_TAR" >/dev/null
	"$CTR" --address "$SOCK" -n k8s.io images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null

	log "kube-controller-manager, kube-scheduler: starting"
	spawn kube-controller-manager - "$KCM" \
		--kubeconfig="$NODE_DIR/kube-controller-manager.kubeconfig" \
		--authentication-kubeconfig="$NODE_DIR/kube-controller-manager.kubeconfig" \
		--authorization-kubeconfig="$NODE_DIR/kube-controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port=0 \
		--leader-elect=false \
		--use-service-account-credentials=true \
		--service-account-private-key-file="$PKI/sa.key" \
		--root-ca-file="$PKI/ca.crt" \
		--cluster-name=cce-uw-plane \
		--cert-dir="$NODE_DIR/kube-controller-manager-certs"
	write_scheduler_config
	spawn kube-scheduler - "$SCHEDULER" --config="$NODE_DIR/kube-scheduler.yaml" \
		--authentication-kubeconfig="$NODE_DIR/kube-scheduler.kubeconfig" \
		--authorization-kubeconfig="$NODE_DIR/kube-scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port=0 \
		--cert-dir="$NODE_DIR/kube-scheduler-certs"

	write_kubelet_config
	log "kubelet: starting as node $NODE_NAME on $GATEWAY:$KUBELET_PORT"
	spawn kubelet - "$KUBELET" \
		--config="$NODE_DIR/kubelet.yaml" \
		--kubeconfig="$NODE_DIR/kubelet.kubeconfig" \
		--root-dir="$KUBELET_ROOT" \
		--cert-dir="$KUBELET_ROOT/pki" \
		--hostname-override="$NODE_NAME" \
		--node-ip="$GATEWAY"
	local ok=1 c
	for ((t = 0; t < READY_TIMEOUT * 2; t++)); do
		for c in "${COMPONENTS[@]}"; do
			pid_of "$c" >/dev/null || {
				log "$c exited during startup"
				ok=0
				break 2
			}
		done
		node_ready && break
		sleep 0.5
	done
	if ((ok == 0)) || ! node_ready; then
		dump_logs
		die "node $NODE_NAME not Ready after ${READY_TIMEOUT}s (logs in $NODE_DIR)"
	fi
	# The `default` ServiceAccount of `default` shows the controller-manager at work.
	wait_for "ServiceAccount default/default" 30 kubectl_admin get serviceaccount default -n default ||
		{
			dump_logs
			die "kube-controller-manager made no ServiceAccount"
		}
	log "node $NODE_NAME Ready in $((SECONDS - start))s: kubelet $("$KUBELET" --version | cut -d' ' -f2), containerd $CONTAINERD_VERSION, runc $(runc --version | sed -n 's/^runc version //p')"
}

# ---------------------------------------------------------------- down

cmd_down() {
	[[ -d $NODE_DIR ]] || return 0
	local pid pids i mnt t left=()
	stop_component kubelet
	stop_component kube-scheduler
	stop_component kube-controller-manager
	# The Pods' processes first, then containerd, then whatever is left (shims).
	mapfile -t pids < <(node_pids)
	for pid in "${pids[@]}"; do
		[[ $pid == "$(pid_of containerd 2>/dev/null)" ]] && continue
		grep -q containerd-shim "/proc/$pid/cmdline" 2>/dev/null && continue
		kill -KILL "$pid" 2>/dev/null || true
	done
	stop_component containerd
	for ((i = 0; i < 50; i++)); do
		mapfile -t pids < <(node_pids)
		((${#pids[@]} == 0)) && break
		kill -KILL "${pids[@]}" 2>/dev/null || true
		sleep 0.1
	done
	stop_component socat
	# Mounts: the kubelet's volumes, the sandboxes' shm, overlay rootfs, netns bind mounts.
	for ((i = 0; i < 5; i++)); do
		mapfile -t left < <(node_mounts)
		((${#left[@]} == 0)) && break
		for mnt in "${left[@]}"; do
			umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
		done
	done
	# The network namespaces' mount points: with the mounts and processes gone, the
	# namespaces themselves are (and with them each Pod's veth pair).
	find "$NODE_DIR/containerd/state" -path '*/netns/*' -type f -delete 2>/dev/null || true
	ip link delete "$BRIDGE" 2>/dev/null || true
	remove_cgroups
	# The kubelet's symlinks in /var/log/containers to this node's logs.
	find /var/log/containers -maxdepth 1 -type l -lname "$NODE_DIR/*" -delete 2>/dev/null || true
	if [[ -f $NODE_DIR/sysctl.saved ]]; then
		while IFS== read -r t pid; do
			sysctl -q -w "$t=$pid" || true
		done <"$NODE_DIR/sysctl.saved"
	fi
	verify_down
	find "$NODE_DIR" -mindepth 1 -maxdepth 1 ! -name '*.log' -exec rm -rf {} +
	log "down: node removed, nothing left (logs kept in $NODE_DIR)"
}

# Fails when anything of the node is still there.
verify_down() {
	local problems=() c pids mounts links netns
	for c in "${COMPONENTS[@]}"; do
		pid_of "$c" >/dev/null && problems+=("$c still runs")
	done
	pids=$(node_pids | tr '\n' ' ')
	[[ -n $pids ]] && problems+=("processes left in cgroup $CGROUP: $pids")
	pids=""
	for c in /proc/[0-9]*/cmdline; do
		[[ $(tr '\0' ' ' 2>/dev/null <"$c") == *"$NODE_DIR"* ]] && pids+="${c//[^0-9]/} "
	done
	[[ -n $pids ]] && problems+=("processes naming $NODE_DIR: $pids")
	mounts=$(node_mounts | tr '\n' ' ')
	[[ -n $mounts ]] && problems+=("mounts left: $mounts")
	netns=$(find "$NODE_DIR/containerd/state" -path '*netns*' -type f 2>/dev/null | tr '\n' ' ' || true)
	[[ -n $netns ]] && problems+=("network namespace files left: $netns")
	ip link show "$BRIDGE" >/dev/null 2>&1 && problems+=("bridge $BRIDGE left")
	links=$(ip -o link show type veth 2>/dev/null | grep -c "master $BRIDGE" || true)
	((links > 0)) && problems+=("$links veth interfaces left on $BRIDGE")
	while read -r c; do
		[[ -d $c ]] && problems+=("cgroup $c left")
	done < <(cgroup_dirs "$CGROUP")
	if ((${#problems[@]})); then
		printf '[node] left behind: %s\n' "${problems[@]}" >&2
		die "down did not clean up"
	fi
}

# ---------------------------------------------------------------- status, env, cgroup

cmd_status() {
	local c pid
	[[ -d $NODE_DIR ]] || {
		echo "node:           none"
		return 1
	}
	for c in "${COMPONENTS[@]}"; do
		pid=$(pid_of "$c") || pid=-
		printf '%-15s pid %s\n' "$c:" "$pid"
	done
	if node_ready; then
		echo "node:           $NODE_NAME Ready"
	else
		echo "node:           $NODE_NAME not ready"
		return 1
	fi
}

cmd_env() {
	load_ports
	printf 'export CCE_UW_NODE_NAME=%q\n' "$NODE_NAME"
	printf 'export CCE_UW_NODE_DIR=%q\n' "$NODE_DIR"
	printf 'export CCE_UW_NODE_HOST_IP=%q\n' "$GATEWAY"
	printf 'export CCE_UW_NODE_API_HOST=%q\n' "$GATEWAY"
	printf 'export CCE_UW_NODE_API_PORT=%q\n' "$APISERVER_PORT"
	printf 'export CCE_UW_NODE_CTR=%q\n' "$CTR"
	printf 'export CCE_UW_NODE_CONTAINERD_SOCKET=%q\n' "$SOCK"
	printf 'export CCE_UW_NODE_CGROUP=%q\n' "/$CGROUP"
}

cmd_cgroup() {
	local id=${1:?usage: $0 cgroup CONTAINER-ID} dir
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		dir=$(find "/sys/fs/cgroup/$CGROUP" -type d -name "*$id*" -print -quit)
	else
		dir=$(find "$(findmnt -rn -t cgroup -O memory -o TARGET | head -n1)/$CGROUP" -type d -name "*$id*" -print -quit)
	fi
	[[ -n $dir ]] || die "no cgroup for container $id"
	echo "$dir"
}

case ${1:-} in
build) cmd_build ;;
cached) cmd_cached ;;
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
cgroup) cmd_cgroup "${2:-}" ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
