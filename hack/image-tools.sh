#!/usr/bin/env bash
# hack/image-tools.sh: the tools that build, check and publish the image and the chart
# without a container engine, each built or installed once into the cache at a pinned
# version:
#   crane, registry  go-containerregistry (Go module proxy): assembles the OCI image index,
#                    and a registry on loopback for the registry test
#   helm-docs        the chart README from values.yaml (Go module proxy)
#   zig              the C cross compiler for aarch64-unknown-linux-musl (ring and jemalloc
#                    compile C), with cargo-zigbuild, both from PyPI into one venv
#
# Usage: hack/image-tools.sh build TOOL...   build (or reuse) TOOLs; print each binary's path
#        hack/image-tools.sh path TOOL       print where TOOL is (or would be)
# TOOL is crane, registry, helm-docs or zig (zig prints the venv's bin directory, which
# holds cargo-zigbuild and a python3 that has ziglang).
#
# Environment (all optional): CCE_UW_CACHE (cache root, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch); GOPROXY, GOMODCACHE, GOCACHE as usual.
# GOTOOLCHAIN=local and CGO_ENABLED=0 are set for the Go builds.
set -euo pipefail

GGCR_VERSION=v0.22.1      # github.com/google/go-containerregistry
HELM_DOCS_VERSION=v1.14.2 # github.com/norwoodj/helm-docs
ZIG_VERSION=0.15.2        # ziglang on PyPI
ZIGBUILD_VERSION=0.24.1   # cargo-zigbuild on PyPI

CACHE_ROOT=${CCE_UW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch}
export GOTOOLCHAIN=local CGO_ENABLED=0

log() { printf '[image-tools] %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# The cache dir of TOOL, and the Go package it is built from (none for zig).
tool_dir() {
	case $1 in
	crane | registry) echo "$CACHE_ROOT/$1-$GGCR_VERSION" ;;
	helm-docs) echo "$CACHE_ROOT/helm-docs-$HELM_DOCS_VERSION" ;;
	zig) echo "$CACHE_ROOT/zig-$ZIG_VERSION-zigbuild-$ZIGBUILD_VERSION" ;;
	*) die "unknown tool $1 (crane, registry, helm-docs, zig)" ;;
	esac
}
go_package() {
	case $1 in
	crane | registry) echo "github.com/google/go-containerregistry/cmd/$1@$GGCR_VERSION" ;;
	helm-docs) echo "github.com/norwoodj/helm-docs/cmd/helm-docs@$HELM_DOCS_VERSION" ;;
	esac
}
tool_path() {
	local dir
	dir=$(tool_dir "$1")
	if [[ $1 == zig ]]; then echo "$dir/bin"; else echo "$dir/bin/$1"; fi
}

install_tool() {
	local tool=$1 dir start=$SECONDS
	dir=$(tool_dir "$tool")
	if [[ $tool == zig ]]; then
		rm -rf "$dir"
		python3 -m venv "$dir"
		"$dir/bin/pip" install --quiet --disable-pip-version-check \
			"ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION" >&2
		"$dir/bin/python3" -m ziglang version >/dev/null
	else
		command -v go >/dev/null || die "go is not installed"
		mkdir -p "$dir/bin"
		GOBIN=$dir/bin go install -trimpath -ldflags "-s -w" "$(go_package "$tool")" >&2
	fi
	log "$tool: installed in $((SECONDS - start))s"
}

build_tool() {
	local tool=$1 dir
	dir=$(tool_dir "$tool")
	if [[ ! -f $dir/.built ]]; then
		mkdir -p "$(dirname "$dir")"
		exec 9>"$dir.lock"
		# Two test runs installing at once would otherwise race on one directory.
		flock 9
		if [[ ! -f $dir/.built ]]; then
			install_tool "$tool"
			date -u +%FT%TZ >"$dir/.built"
		fi
		exec 9>&-
	fi
	tool_path "$tool"
}

case "${1:-}" in
build)
	shift
	(($# > 0)) || die "usage: $0 build TOOL..."
	for tool; do build_tool "$tool"; done
	;;
path)
	(($# == 2)) || die "usage: $0 path TOOL"
	tool_path "$2"
	;;
*) die "usage: $0 build TOOL... | path TOOL" ;;
esac
