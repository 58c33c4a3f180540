#!/usr/bin/env bash
# hack/demo.sh: the whole job on one machine (`make demo`). It builds the operator, starts a
# local Kubernetes control plane (hack/control-plane.sh), installs the CRDs (crds/: the watch
# and both account kinds), starts the CCE simulator over TLS at a fast clock, runs the
# operator, creates a labelled credentials Secret, a CCEAccount naming it and an
# UpgradeWorkflowWatch naming the account, shows `kubectl get uww -w` until the upgrade ends,
# then the watch's conditions and events. Ctrl-C, an error or the end stops and removes
# everything it started.
#
# Environment (all optional):
#   SCENARIO              success (default), cluster-fails-then-retry, cancel,
#                         precheck-expires, precheck-fails (the pre-check's findings in
#                         status and events) or cluster-pauses: a built-in simulator scenario
#   DEMO_SPEED            simulator clock factor (default 10: the success upgrade's
#                         5 minutes take 30 s, cluster-fails-then-retry 45 s)
#   USE_EXISTING_CLUSTER  1: use the cluster of the current kubeconfig instead of a local
#                         control plane (as envtest does). The demo then works in a fresh
#                         namespace that it deletes at the end, and installs each CRD only
#                         if it is missing (and then removes it again)
#   CCE_UW_PLANE_DIR      state dir of the local control plane (default: a new temp dir)
set -euo pipefail

cd "$(dirname "$0")/.."
SCENARIO=${SCENARIO:-success}
SPEED=${DEMO_SPEED:-10}
EXISTING=${USE_EXISTING_CLUSTER:-}
[[ $EXISTING == 0 || $EXISTING == false ]] && EXISTING=

PROJECT=0aa1c0de5e1f4c0e8a5d5a5e00000001
ACCESS_KEY=SIMAK0000000000000001
SECRET_KEY=simSK0000000000000000000000000000000000001
case $SCENARIO in
success) n=1 ;;
cluster-fails-then-retry) n=2 ;;
cancel) n=3 ;;
precheck-expires) n=4 ;;
precheck-fails) n=7 ;;
cluster-pauses) n=8 ;;
*)
	echo "demo: unknown SCENARIO=$SCENARIO (success, cluster-fails-then-retry, cancel, precheck-expires, precheck-fails, cluster-pauses)" >&2
	exit 2
	;;
esac
CLUSTER=c${n}000000-0000-4000-8000-000000000000
WORKFLOW=f${n}000000-0000-4000-8000-000000000000
WATCH=demo-upgrade
ACCOUNT=demo-account

if [[ -t 1 ]]; then
	bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'
else
	bold='' dim='' reset=''
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
note() { printf '%s    %s%s\n' "$dim" "$*" "$reset"; }

work=$(mktemp -d /tmp/cce-uw-demo.XXXXXX)
pids=()
plane_started=
namespace_created=
crds_created=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	printf '\n%s==> Cleaning up%s\n' "$bold" "$reset"
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $EXISTING ]]; then
		if [[ -n $namespace_created ]]; then
			note "deleting namespace $NS"
			"$KUBECTL" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
		fi
		local crd
		for crd in "${crds_created[@]}"; do
			note "deleting the CRD the demo installed: $crd"
			"$KUBECTL" delete crd "$crd" --wait=false >/dev/null 2>&1 || true
		done
	elif [[ -n $plane_started ]]; then
		note "stopping the local control plane"
		hack/control-plane.sh down 2>/dev/null || true
		rm -rf "$CCE_UW_PLANE_DIR"
	fi
	if ((rc != 0 && rc != 130 && rc != 143)) && [[ -f $work/operator.log ]]; then
		note "last lines of the operator log:"
		tail -n 20 "$work/operator.log" | sed 's/^/    /'
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Building cce-upgrade-watch and the CCE simulator"
cargo build --locked --bin cce-upgrade-watch --features sim --bin cce-sim
BIN=$PWD/target/debug/cce-upgrade-watch
SIM=$PWD/target/debug/cce-sim

if [[ -n $EXISTING ]]; then
	step "Using the cluster of the current kubeconfig"
	KUBECTL=${CCE_UW_KUBECTL:-kubectl}
	command -v "$KUBECTL" >/dev/null || { echo "demo: kubectl not found" >&2; exit 1; }
	note "context: $("$KUBECTL" config current-context)"
	NS=cce-uw-demo-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
else
	step "Starting a local control plane (etcd + kube-apiserver)"
	export CCE_UW_PLANE_DIR=${CCE_UW_PLANE_DIR:-$work/plane}
	plane_started=1
	hack/control-plane.sh up >/dev/null
	eval "$(hack/control-plane.sh env 2>/dev/null)"
	KUBECTL=$CCE_UW_KUBECTL
	NS=demo
fi
export KUBECTL

step "Installing the CRDs: UpgradeWorkflowWatch, CCEAccount, ClusterCCEAccount"
for file in crds/*.yaml; do
	crd=$(basename "$file" .yaml)
	if [[ -n $EXISTING ]] && "$KUBECTL" get crd "$crd" >/dev/null 2>&1; then
		note "$crd: already installed in this cluster, left as it is"
		continue
	fi
	crds_created+=("$crd")
	"$KUBECTL" apply --server-side -f "$file"
	"$KUBECTL" wait --for=condition=Established "crd/$crd" --timeout=30s >/dev/null
done
"$KUBECTL" create namespace "$NS" >/dev/null
namespace_created=1
note "namespace $NS"

step "Starting the CCE simulator over TLS (scenario $SCENARIO, clock x$SPEED)"
"$SIM" --listen 127.0.0.1:0 --tls-self-signed --tls-cert-out "$work/sim-ca.pem" \
	--admin-listen 127.0.0.1:0 --speed "$SPEED" --scenario "$SCENARIO" >"$work/sim.out" 2>"$work/sim.log" &
pids+=($!)
for _ in $(seq 100); do
	[[ -s $work/sim-ca.pem && $(grep -c . "$work/sim.out" 2>/dev/null) -ge 2 ]] && break
	sleep 0.1
done
SIM_URL=$(sed -n 1p "$work/sim.out")
SIM_ADMIN=$(sed -n 2p "$work/sim.out" | sed 's/^admin //')
[[ $SIM_URL == https://* ]] || { echo "demo: the simulator did not start:" >&2; cat "$work/sim.log" >&2; exit 1; }
sed 's/^/    /' "$work/sim.out"

step "Starting the operator"
"$BIN" run --namespaces "$NS" --ca-bundle "$work/sim-ca.pem" --allowed-cce-endpoint "127.0.0.1:*" \
	--leader-elect=false --admin-listen 127.0.0.1:0 --terminal-resync 1m >"$work/operator.log" 2>&1 &
pids+=($!)
admin=
for _ in $(seq 100); do
	admin=$(sed -n 's/.*admin server listening.*addr=\([0-9.:]*\).*/\1/p' "$work/operator.log" | head -n1)
	[[ -n $admin ]] && curl -fsS "http://$admin/readyz" >/dev/null 2>&1 && break
	kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/operator.log" >&2; exit 1; }
	sleep 0.1
done
note "ready; /healthz, /readyz and /metrics on http://$admin; log in $work/operator.log"

step "Creating a labelled credentials Secret and a CCEAccount"
# The keys are the simulator's published ones; still, they reach the API server through a
# file of the demo's own, not a command line others can read in the process list.
printf 'accessKey=%s\nsecretKey=%s\n' "$ACCESS_KEY" "$SECRET_KEY" >"$work/keys.env"
"$KUBECTL" -n "$NS" create secret generic cce-credentials --from-env-file="$work/keys.env" \
	--dry-run=client -o yaml |
	"$KUBECTL" label --local -f - -o yaml cce.upgradewatch.io/credentials=true |
	"$KUBECTL" -n "$NS" apply -f - >/dev/null
rm -f "$work/keys.env"
note "secret/cce-credentials created, labelled cce.upgradewatch.io/credentials=true: the"
note "operator reads no Secret without that label"
cat >"$work/account.yaml" <<EOF
apiVersion: cce.upgradewatch.io/v1alpha1
kind: CCEAccount
metadata:
  name: $ACCOUNT
spec:
  endpoint: $SIM_URL
  projectID: $PROJECT
  credentials:
    secretRef: {name: cce-credentials}
EOF
sed 's/^/    /' "$work/account.yaml"
"$KUBECTL" -n "$NS" apply -f "$work/account.yaml"
if ! "$KUBECTL" -n "$NS" wait "cceaccount/$ACCOUNT" --for=condition=Ready --timeout=60s >/dev/null; then
	"$KUBECTL" -n "$NS" get cceaccount "$ACCOUNT" \
		-o jsonpath='{range .status.conditions[*]}{.type}{"\t"}{.status}{"\t"}{.reason}{"\t"}{.message}{"\n"}{end}' >&2
	echo "demo: the account did not become Ready" >&2
	exit 1
fi
"$KUBECTL" -n "$NS" get cceaccount "$ACCOUNT" -o wide

step "Creating an UpgradeWorkflowWatch that names the account"
cat >"$work/watch.yaml" <<EOF
apiVersion: cce.upgradewatch.io/v1alpha1
kind: UpgradeWorkflowWatch
metadata:
  name: $WATCH
spec:
  accountRef: {name: $ACCOUNT}
  clusterID: $CLUSTER
  upgradeWorkflowID: $WORKFLOW
  pollInterval: 5s
EOF
sed 's/^/    /' "$work/watch.yaml"
"$KUBECTL" -n "$NS" apply -f "$work/watch.yaml"

step "kubectl get uww -w (until the upgrade ends)"
"$KUBECTL" -n "$NS" get uww "$WATCH" -w &
watch_pid=$!
pids+=("$watch_pid")
stalled=
told_stalled=
deadline=$((SECONDS + 300))
while ((SECONDS < deadline)); do
	sleep 1
	phase=$("$KUBECTL" -n "$NS" get uww "$WATCH" -o jsonpath='{.status.phase}' 2>/dev/null || true)
	[[ $phase == Success || $phase == Cancel ]] && break
	# A stalled upgrade the scenario will not move on any more (precheck-expires) ends too.
	stalled=$("$KUBECTL" -n "$NS" get uww "$WATCH" -o jsonpath='{.status.conditions[?(@.type=="Stalled")].status}' 2>/dev/null || true)
	if [[ $stalled == True && -z $told_stalled ]]; then
		told_stalled=1
		reason=$("$KUBECTL" -n "$NS" get uww "$WATCH" -o jsonpath='{.status.conditions[?(@.type=="Stalled")].reason}')
		message=$("$KUBECTL" -n "$NS" get uww "$WATCH" -o jsonpath='{.status.conditions[?(@.type=="Stalled")].message}')
		note "-- Stalled=True ($reason): $message"
		note "   the upgrade needs a person; a gate on"
		note "   \`kubectl wait --for=condition=Stalled\` returns now, Argo CD shows Degraded"
	fi
	if [[ $stalled == True ]]; then
		left=$(curl -fsS "$SIM_ADMIN/_sim/workflows/$WORKFLOW" | sed -n 's/.*"stepsLeft":\([0-9]*\).*/\1/p')
		[[ $left == 0 ]] && break
	fi
done
sleep 1 # let the last line of the watch arrive
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
((SECONDS < deadline)) || { echo "demo: the upgrade did not end within 5 minutes" >&2; exit 1; }

step "The watch's conditions"
"$KUBECTL" -n "$NS" get uww "$WATCH" \
	-o jsonpath='{range .status.conditions[*]}{.type}{"\t"}{.status}{"\t"}{.reason}{"\t"}{.message}{"\n"}{end}' |
	column -t -s $'\t' | sed 's/^/    /'

step "Its events"
"$KUBECTL" -n "$NS" events --for "uww/$WATCH"

step "What a GitOps gate sees"
if "$KUBECTL" -n "$NS" wait "uww/$WATCH" --for=condition=Ready --timeout=0s >/dev/null 2>&1; then
	note "kubectl wait --for=condition=Ready uww/$WATCH: succeeded (Argo CD: Healthy)"
else
	note "kubectl wait --for=condition=Ready uww/$WATCH: not ready; Stalled=$stalled (Argo CD: Degraded)"
fi
note "guide: docs/gitops.md"

step "The account: how many watches name it, and whether its credentials work"
note "(the operator recounts an account's watches once a minute)"
"$KUBECTL" -n "$NS" wait "cceaccount/$ACCOUNT" --for=jsonpath='{.status.watches}'=1 --timeout=70s >/dev/null || true
"$KUBECTL" -n "$NS" get cceaccount "$ACCOUNT" -o wide
