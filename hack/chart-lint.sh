#!/usr/bin/env bash
# hack/chart-lint.sh: the checks chart-testing's `ct lint` makes, on the chart as it is
# published (hack/chart.sh package), with the same tools ct calls, pinned from PyPI:
#   - the packaged Chart.yaml validated by yamale against hack/chart-lint/chart-schema.yaml
#     (Helm's Chart.yaml fields; this project also requires what Artifact Hub shows);
#   - yamllint on the chart's Chart.yaml and values.yaml (hack/chart-lint/yamllint.yaml);
#   - maintainers: each names someone (ct's lookup of a maintainer on a forge needs the
#     network and is left out), and the artifacthub.io annotations parse as YAML lists;
#   - helm lint --strict (inside hack/chart.sh package).
# The version-bump rule of ct (against a git base) is left out: there is one chart version
# per release here.
#
# Usage: hack/chart-lint.sh [CHART_DIR]   default charts/cce-upgrade-watch; exits non-zero
#                                          with the failing check's message.
set -euo pipefail
cd "$(dirname "$0")/.."

YAMLLINT=1.38.0
YAMALE=6.0.0
cache=${CCE_UW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cce-upgrade-watch}
venv=$cache/chart-lint-yamllint$YAMLLINT-yamale$YAMALE
chart=${1:-charts/cce-upgrade-watch}

if [[ ! -f $venv/.complete ]]; then
	mkdir -p "$cache"
	exec 9>"$venv.lock"
	flock 9
	if [[ ! -f $venv/.complete ]]; then
		rm -rf "$venv"
		python3 -m venv "$venv"
		"$venv/bin/pip" install --quiet --disable-pip-version-check \
			"yamllint==$YAMLLINT" "yamale==$YAMALE" >&2
		touch "$venv/.complete"
	fi
	exec 9>&-
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tgz=$(CCE_UW_CHART_DIR=$chart CCE_UW_CHART_OUT=$work/out hack/chart.sh package)
tar -xzmf "$tgz" -C "$work"
packaged=$work/cce-upgrade-watch

"$venv/bin/yamale" --schema hack/chart-lint/chart-schema.yaml "$packaged/Chart.yaml" >&2
# As ct does, on the files as written (helm package rewrites Chart.yaml in its own layout).
"$venv/bin/yamllint" --strict --config-file hack/chart-lint/yamllint.yaml \
	"$chart/Chart.yaml" "$chart/values.yaml"
"$venv/bin/python" - "$packaged/Chart.yaml" <<'PY'
import sys, yaml
chart = yaml.safe_load(open(sys.argv[1]))
for m in chart["maintainers"]:
    if not str(m.get("name", "")).strip():
        sys.exit("chart-lint: a maintainer without a name")
for key in ("artifacthub.io/images", "artifacthub.io/crds", "artifacthub.io/changes"):
    value = yaml.safe_load(chart["annotations"][key])
    if not isinstance(value, list) or not value:
        sys.exit(f"chart-lint: annotation {key} is not a YAML list")
PY
echo "chart-lint: $chart passes"
