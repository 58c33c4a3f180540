#!/usr/bin/env bash
# hack/musl-build.sh TARGET: builds the release cce-upgrade-watch as a static binary for
# TARGET, x86_64-unknown-linux-musl or aarch64-unknown-linux-musl, and prints its path last.
# hack/static-build.sh checks what it builds; hack/image.sh and the Dockerfile package it.
#
# ring (the TLS crypto) and jemalloc (the allocator) compile C for the target:
# - x86_64 with musl-gcc (Debian's musl-tools, installed with apt-get when missing);
# - aarch64 with zig as the cross C compiler and linker, through cargo-zigbuild (both from
#   PyPI, installed into the cache by hack/image-tools.sh). jemalloc is built for 64 KiB
#   pages there: arm64 kernels run with 4, 16 or 64 KiB pages, and a jemalloc built for
#   smaller pages than the kernel's refuses to start, while a larger setting works on all.
# The Rust target is installed with `rustup target add` when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${1:?usage: $0 x86_64-unknown-linux-musl|aarch64-unknown-linux-musl}
log() { printf '[musl-build] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx "$TARGET"; then
	log "adding the Rust target $TARGET"
	rustup target add "$TARGET"
fi

log "building the release binary for $TARGET (cold: 10-20 minutes on 2 cores)"
case $TARGET in
x86_64-unknown-linux-musl)
	hack/apt-install.sh musl-gcc musl-tools
	cargo build --locked --release --target "$TARGET" --bin cce-upgrade-watch
	;;
aarch64-unknown-linux-musl)
	zig_bin=$(hack/image-tools.sh build zig)
	# A target dir of its own: cargo-zigbuild's compiler environment differs from a plain
	# cargo build's, and the host build scripts both share in target/ would otherwise be
	# rebuilt, with all that depends on them, at every switch between the two.
	export CARGO_TARGET_DIR=target/cross
	PATH=$zig_bin:$PATH JEMALLOC_SYS_WITH_LG_PAGE=16 \
		cargo zigbuild --locked --release --target "$TARGET" --bin cce-upgrade-watch
	;;
*)
	log "ERROR: unsupported target $TARGET"
	exit 2
	;;
esac
echo "${CARGO_TARGET_DIR:-target}/$TARGET/release/cce-upgrade-watch"
