#!/usr/bin/env bash
# hack/python-sdk.sh: a virtualenv with Huawei's official Python SDK (huaweicloudsdkcore and
# huaweicloudsdkcce, pinned) for the simulator's conformance test (tests/e2e/sim_sdk.rs).
# Installs from PyPI with pip; nothing else is downloaded.
#
# Usage: hack/python-sdk.sh [setup|path]
#   setup   (default) create the venv if it is missing or incomplete; print its path last
#   path    print where the venv is (or would be)
#
# Environment (all optional):
#   CCE_UW_CACHE         cache root. Default: ${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch
#                        The venv is $CCE_UW_CACHE/py-sdk-<version>.
#   CCE_UW_PY_SDK_VENV   use this venv path instead (the test reads it too)
#   PYTHON               interpreter that creates the venv. Default: python3 (>= 3.8)
set -euo pipefail

VERSION=3.1.219
cache=${CCE_UW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch}
venv=${CCE_UW_PY_SDK_VENV:-$cache/py-sdk-$VERSION}
python=${PYTHON:-python3}

case "${1:-setup}" in
  path) echo "$venv"; exit 0 ;;
  setup) ;;
  *) echo "usage: $0 [setup|path]" >&2; exit 2 ;;
esac

# .complete is written last: a half-built venv (interrupted install) is rebuilt.
if [ -f "$venv/.complete" ] && [ "$(cat "$venv/.complete")" = "$VERSION" ]; then
  echo "$venv"
  exit 0
fi

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
if command -v flock >/dev/null 2>&1; then
  # Two test runs setting up at once would otherwise trample one venv.
  flock 9
  if [ -f "$venv/.complete" ] && [ "$(cat "$venv/.complete")" = "$VERSION" ]; then
    echo "$venv"
    exit 0
  fi
fi

echo "creating $venv with huaweicloudsdkcce==$VERSION" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
# pip keeps the real HOME: a pip.conf there may name the index (mirror) to use.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "huaweicloudsdkcore==$VERSION" "huaweicloudsdkcce==$VERSION" >&2
# Importing the SDK writes ~/.huaweicloud/application_id; check the import elsewhere.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
HOME="$scratch" "$venv/bin/python" -c 'import huaweicloudsdkcce.v3, huaweicloudsdkcore.auth.credentials' >&2
echo "$VERSION" > "$venv/.complete"
echo "$venv"
