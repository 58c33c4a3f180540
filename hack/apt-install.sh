#!/usr/bin/env bash
# hack/apt-install.sh COMMAND PACKAGE: installs Debian's PACKAGE with apt-get unless COMMAND
# is on the PATH already (refreshing the package lists once when the install fails with the
# lists as they are). Needs root; says what to install otherwise.
set -euo pipefail
command=${1:?usage: $0 COMMAND PACKAGE} package=${2:?usage: $0 COMMAND PACKAGE}
command -v "$command" >/dev/null && exit 0
if ((EUID != 0)); then
	echo "$command is missing: install Debian's $package" >&2
	exit 1
fi
echo "installing $package from Debian's archive (for $command)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "$package" >/dev/null ||
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "$package" >/dev/null; }
command -v "$command" >/dev/null
