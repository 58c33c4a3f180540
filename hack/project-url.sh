#!/usr/bin/env bash
# hack/project-url.sh: the project's public source address, for the image's
# org.opencontainers.image.source label and the chart's home and sources. PROJECT_URL when
# set (what a release sets); otherwise the checkout's origin as an https address, or the
# checkout itself as a file:// address when origin is no forge (a local clone).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n ${PROJECT_URL:-} ]]; then
	echo "${PROJECT_URL%/}"
	exit 0
fi
origin=$(git remote get-url origin 2>/dev/null || true)
origin=${origin%.git}
case $origin in
https://*) echo "${origin%/}" ;;
git@*:*)
	hostpath=${origin#git@}
	echo "https://${hostpath%%:*}/${hostpath#*:}"
	;;
*) echo "file://$PWD" ;;
esac
