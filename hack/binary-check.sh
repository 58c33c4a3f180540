#!/usr/bin/env bash
# hack/binary-check.sh BINARY [RUNNER...]: runs a release cce-upgrade-watch binary the way
# an image runs it, with an empty environment and no library path, through RUNNER when
# given (setpriv to drop to a non-root user, qemu-aarch64-static for an arm64 binary), and
# checks that it prints the CRD and completes a signed CCE call over TLS (ring and rustls)
# to the simulator. hack/static-build.sh and hack/image-test.sh run it.
#
# The simulator is the debug `cce-sim` (built here when missing); it runs as the caller.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(realpath "${1:?usage: $0 BINARY [RUNNER...]}")
shift
log() { printf '[binary-check] %s\n' "$*" >&2; }

version=$(env -i "$@" "$bin" --version)
log "$version"
# Read to the end before searching: a reader that stops at the first match would close the
# pipe on a binary still writing.
crds=$(env -i "$@" "$bin" crd)
grep -q 'kind: CustomResourceDefinition' <<<"$crds" ||
	{ log "ERROR: $bin crd printed no CustomResourceDefinition"; exit 1; }

cargo build --locked --quiet --features sim --bin cce-sim
tmp=$(mktemp -d)
# The runner may be another user: it reads the simulator's CA certificate from here.
chmod 755 "$tmp"
env -i "$PWD/target/debug/cce-sim" --listen 127.0.0.1:0 --tls-self-signed --tls-cert-out "$tmp/ca.pem" \
	--scenario seed-example >"$tmp/sim.out" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do
	[[ -s $tmp/ca.pem && -s $tmp/sim.out ]] && break
	sleep 0.1
done
chmod 644 "$tmp/ca.pem"
env -i CLOUD_SDK_AK=SIMAK0000000000000001 CLOUD_SDK_SK=simSK0000000000000000000000000000000000001 \
	"$@" "$bin" get --endpoint "$(head -n1 "$tmp/sim.out")" --allowed-cce-endpoint "127.0.0.1:*" \
	--ca-bundle "$tmp/ca.pem" --project-id 0aa1c0de5e1f4c0e8a5d5a5e00000001 \
	--cluster-id b4b9e60f-8aa2-11ee-af09-0255ac10004f --workflow-id c271e39e-1a6e-4d3d-8fa8-2a36329c68d1 \
	-o json >"$tmp/get.json"
grep -q '"phase": *"Pending"' "$tmp/get.json" ||
	{ log "ERROR: the workflow fetched over TLS is not the simulator's"; exit 1; }
log "ok: ${*:+$* }$bin printed the CRD and fetched a workflow over TLS"
