#!/usr/bin/env bash
# hack/test-deps.sh: the system packages the tests need besides the Rust toolchain, Go and
# Python, installed from Debian's archive when missing. `make test` runs it.
#
#   lua5.4, lua5.1  run docs/argocd/health.lua (Argo CD's Lua is 5.1; the check must run on
#                   both) in tests/gitops_health.rs
#
# Installing needs root (or sudo); `apt-get update` runs first only when a package is not
# in apt's lists yet. Nothing happens when everything is there.
set -euo pipefail

need=()
for pkg in lua5.4 lua5.1; do
	command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
((${#need[@]} == 0)) && exit 0

if ((EUID == 0)); then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "test-deps: ${need[*]} missing and not root: install them (Debian: apt-get install ${need[*]})" >&2
	exit 1
fi
echo "test-deps: installing ${need[*]} from Debian's archive" >&2
export DEBIAN_FRONTEND=noninteractive
for pkg in "${need[@]}"; do
	if [[ -z $(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)"') ]]; then
		"${sudo[@]}" apt-get update -qq
		break
	fi
done
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for pkg in "${need[@]}"; do
	command -v "$pkg" >/dev/null || { echo "test-deps: $pkg still missing after install" >&2; exit 1; }
done
