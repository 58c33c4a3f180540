#!/usr/bin/env bash
# hack/static-build.sh: builds cce-upgrade-watch as a static binary for
# x86_64-unknown-linux-musl in release mode (the same build as the Dockerfile's), then checks
# that it is statically linked, carries jemalloc and none of the simulator, and runs with an
# empty environment. `make static` runs it.
#
# Needs the Rust target (installed with `rustup target add` when missing) and musl-gcc
# (Debian's musl-tools, installed with apt-get when missing and running as root): ring,
# the TLS crypto library, compiles C and assembly for the target.
#
# Prints the binary's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
log() { printf '[static-build] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx "$TARGET"; then
	log "adding the Rust target $TARGET"
	rustup target add "$TARGET"
fi
if ! command -v musl-gcc >/dev/null; then
	if ((EUID != 0)); then
		log "musl-gcc is missing: install Debian's musl-tools"
		exit 1
	fi
	log "installing musl-tools from Debian's archive"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends musl-tools >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends musl-tools >/dev/null; }
fi

log "cargo build --release --target $TARGET (cold: 10-20 minutes on 2 cores)"
cargo build --locked --release --target "$TARGET" --bin cce-upgrade-watch
bin=target/$TARGET/release/cce-upgrade-watch

kind=$(file -b "$bin")
log "file: $kind"
case $kind in
*"statically linked"* | *"static-pie linked"*) ;;
*)
	log "ERROR: $bin is not statically linked"
	exit 1
	;;
esac
# ldd exits non-zero for a static binary and says so.
deps=$(ldd "$bin" 2>&1 || true)
log "ldd: $deps"
if [[ $deps != *"not a dynamic executable"* && $deps != *"statically linked"* ]]; then
	log "ERROR: ldd lists shared libraries"
	exit 1
fi
# The simulator, its built-in keys and its certificate generator stay out of what ships.
for mark in 'cce-upgrade-watch simulator CA' simSK0000000000000000000000000000000000001 cce_upgrade_watch::sim; do
	if grep -qaF "$mark" "$bin"; then
		log "ERROR: the shipped binary contains simulator code ($mark)"
		exit 1
	fi
done
# jemalloc is its allocator on musl as on glibc (Cargo.toml says why); its messages carry
# this prefix, which stays in a stripped binary.
if ! grep -qaF '<jemalloc>' "$bin"; then
	log "ERROR: $bin does not contain jemalloc"
	exit 1
fi
# It runs without any environment or library path (as in a scratch image): prints the CRD,
# and completes a signed CCE call over TLS (ring and rustls on musl) to the simulator.
env -i "$PWD/$bin" --version >&2
env -i "$PWD/$bin" crd | grep -q 'kind: CustomResourceDefinition'
cargo build --locked --features sim --bin cce-sim
tmp=$(mktemp -d)
env -i "$PWD/target/debug/cce-sim" --listen 127.0.0.1:0 --tls-self-signed --tls-cert-out "$tmp/ca.pem" \
	--scenario seed-example >"$tmp/sim.out" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do
	[[ -s $tmp/ca.pem && -s $tmp/sim.out ]] && break
	sleep 0.1
done
env -i CLOUD_SDK_AK=SIMAK0000000000000001 CLOUD_SDK_SK=simSK0000000000000000000000000000000000001 \
	"$PWD/$bin" get --endpoint "$(head -n1 "$tmp/sim.out")" --allowed-endpoint-suffix 127.0.0.1 \
	--ca-bundle "$tmp/ca.pem" --project-id 0aa1c0de5e1f4c0e8a5d5a5e00000001 \
	--cluster-id b4b9e60f-8aa2-11ee-af09-0255ac10004f --workflow-id c271e39e-1a6e-4d3d-8fa8-2a36329c68d1 \
	-o json | grep -q '"phase": *"Pending"'
log "the static binary fetched a workflow over TLS"
log "ok: $(du -h "$bin" | cut -f1) static binary"
echo "$bin"
