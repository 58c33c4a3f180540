#!/usr/bin/env bash
# hack/static-build.sh [TARGET]: builds cce-upgrade-watch as a static binary for TARGET
# (x86_64-unknown-linux-musl by default, or aarch64-unknown-linux-musl) in release mode with
# hack/musl-build.sh, the build the image ships, then checks that it is statically linked,
# carries jemalloc and none of the simulator, and runs with an empty environment
# (hack/binary-check.sh; an arm64 binary under Debian's qemu-user-static, installed with
# apt-get when missing). `make static` runs it.
#
# Prints the binary's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${1:-x86_64-unknown-linux-musl}
log() { printf '[static-build] %s\n' "$*" >&2; }

bin=$(hack/musl-build.sh "$TARGET" | tail -n1)

kind=$(file -b "$bin")
log "file: $kind"
case $kind in
*"statically linked"* | *"static-pie linked"*) ;;
*)
	log "ERROR: $bin is not statically linked"
	exit 1
	;;
esac
# ldd exits non-zero for a static binary (or one of another architecture) and says so.
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

runner=()
if [[ $TARGET == aarch64-* ]]; then
	hack/apt-install.sh qemu-aarch64-static qemu-user-static
	runner=(qemu-aarch64-static)
fi
hack/binary-check.sh "$bin" "${runner[@]}"
log "ok: $(du -h "$bin" | cut -f1) static binary"
echo "$bin"
