#!/usr/bin/env bash
# hack/promql-check.sh: builds hack/promql-check (Prometheus's own rule-file loader, PromQL
# parser, rule manager and PromQL engine, github.com/prometheus/prometheus v0.316.0 from the
# Go module proxy) into the cache, for the monitoring end-to-end tests (tests/e2e/day2.rs,
# tests/e2e/chart.rs).
#
# Usage: hack/promql-check.sh [build|path]
#   build  (default) build the checker unless the cache has it for these sources; print
#          the binary's path last
#   path   print where the binary is (or would be) for the current sources
#
# The cache entry is named after a hash of hack/promql-check/{go.mod,go.sum,*.go}, so
# editing the checker rebuilds it. A cold build takes ~1 min on 2 cores (~25 s more when
# the Go module cache is empty).
#
# Environment (all optional):
#   CCE_UW_CACHE   cache root. Default: ${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch
#   GOPROXY, GOMODCACHE, GOCACHE are respected as usual. GOTOOLCHAIN=local, GOFLAGS=-mod=mod
#   and CGO_ENABLED=0 are set for the build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$here/promql-check
cache=${CCE_UW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch}
hash=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-12)
dir=$cache/promql-check-$hash
bin=$dir/bin/promql-check

case "${1:-build}" in
path)
	echo "$bin"
	exit 0
	;;
build) ;;
*)
	echo "usage: $0 [build|path]" >&2
	exit 2
	;;
esac

if [[ -x $bin && -f $dir/.built ]]; then
	echo "$bin"
	exit 0
fi
command -v go >/dev/null || {
	echo "promql-check.sh: go is not installed" >&2
	exit 1
}
mkdir -p "$dir/bin"
exec 9>"$dir.lock"
if command -v flock >/dev/null; then
	# Two test runs building at once would otherwise race on one binary.
	flock 9
	if [[ -x $bin && -f $dir/.built ]]; then
		echo "$bin"
		exit 0
	fi
fi
echo "promql-check.sh: building $bin" >&2
start=$SECONDS
(
	cd "$src"
	export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
	go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .
)
mv "$bin.tmp" "$bin"
date -u +%FT%TZ >"$dir/.built"
echo "promql-check.sh: built in $((SECONDS - start))s" >&2
echo "$bin"
