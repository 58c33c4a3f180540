#!/usr/bin/env bash
# hack/loopback-registry.sh start|stop DIR: go-containerregistry's `registry` (in memory,
# built by hack/image-tools.sh) on a free localhost port, for hack/image.sh to assemble the
# image in and for the registry test. `start` records its pid and log in DIR and prints its
# address (localhost:PORT); `stop` ends that process only.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-} dir=${2:-}
[[ -n $dir ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

case $cmd in
start)
	registry=$(hack/image-tools.sh build registry)
	mkdir -p "$dir"
	"$registry" -port 0 >"$dir/registry.log" 2>&1 &
	echo $! >"$dir/registry.pid"
	for _ in $(seq 100); do
		port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$dir/registry.log")
		[[ -n $port ]] && { echo "localhost:$port"; exit 0; }
		kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "loopback-registry.sh: the registry did not start:" >&2
	cat "$dir/registry.log" >&2
	exit 1
	;;
stop)
	[[ -f $dir/registry.pid ]] || exit 0
	pid=$(cat "$dir/registry.pid")
	kill "$pid" 2>/dev/null || true
	rm -f "$dir/registry.pid"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
