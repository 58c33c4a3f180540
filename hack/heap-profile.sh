#!/usr/bin/env bash
# hack/heap-profile.sh: where the operator's memory goes at its peak in the fleet benchmark.
#
# Builds the release binary with jemalloc's heap profiler (cargo feature heap-profile, into
# target/heap-profile so the release binary stays as it is), runs `make bench` with it, and
# prints jeprof's account of the live heap at the operator's peak: bytes by function,
# with what they call (cumulative). jemalloc samples
# one allocation per 2^LG_SAMPLE bytes on average and writes a profile each time the process
# maps more memory than ever before (prof_gdump); the last one is the peak. jeprof is the one
# jemalloc's own build generates (a perl script).
#
# Usage: hack/heap-profile.sh [W [D]]   watches and workflows, as `make bench W= D=`
#                                       (default 1000 200). Profiles and the summary are
#                                       left in target/heap-profile/run/.
# Environment: LG_SAMPLE (default 16), TOP (lines of the table, default 80).
set -euo pipefail
cd "$(dirname "$0")/.."

watches=${1:-1000}
workflows=${2:-200}
top=${TOP:-80}
dir=target/heap-profile
run=$dir/run

# Without whole-program optimisation, which takes most of a release build's time and moves
# no allocation; the symbols jeprof names functions by stay.
CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	cargo build --release --locked --features heap-profile --target-dir "$dir" >&2
binary=$PWD/$dir/release/cce-upgrade-watch
jeprof=$(find "$dir/release/build" -path '*tikv-jemalloc-sys-*/out/build/bin/jeprof' | head -n1)
[[ -f $jeprof ]] || { echo "heap-profile: jemalloc's build made no jeprof" >&2; exit 1; }

rm -rf "$run"
mkdir -p "$run"
# tikv-jemallocator's jemalloc reads its options from _RJEM_MALLOC_CONF (prefixed symbols).
_RJEM_MALLOC_CONF="prof:true,prof_active:true,lg_prof_sample:${LG_SAMPLE:-16},prof_gdump:true,prof_prefix:$PWD/$run/heap" \
	make bench W="$watches" D="$workflows" BINARY="$binary" >&2

# The profiles of the operator (the simulator's jemalloc has no profiler and writes none),
# numbered in the order written: the last is the peak, the others are dropped.
mapfile -t profiles < <(find "$run" -name 'heap.*.heap' | sort -t. -k3,3n)
((${#profiles[@]} > 0)) || { echo "heap-profile: the operator wrote no profile" >&2; exit 1; }
last=${profiles[-1]}
for p in "${profiles[@]:0:${#profiles[@]}-1}"; do rm -f "$p"; done
# Cumulative: the flat column names jemalloc's own backtrace function for every sample.
{
	echo "# live heap at the peak: $(basename "$last") ($watches watches, $workflows workflows)"
	perl "$jeprof" --text --show_bytes --cum --nodecount="$top" "$binary" "$last" 2>/dev/null
} | tee "$run/summary.txt"
