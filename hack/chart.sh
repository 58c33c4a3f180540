#!/usr/bin/env bash
# hack/chart.sh: the chart as a release artifact.
#
# Usage: hack/chart.sh docs              regenerate charts/cce-upgrade-watch/README.md
#                                        from values.yaml (helm-docs)
#        hack/chart.sh docs-print        print what `docs` would write (the drift test)
#        hack/chart.sh package [REGISTRY]
#                                        package the chart into target/chart/ and print the
#                                        .tgz path. Chart.yaml gets home and sources (the
#                                        project's address, hack/project-url.sh); with a
#                                        REGISTRY, the default image becomes
#                                        REGISTRY/cce-upgrade-watch (values.yaml and the
#                                        artifacthub.io/images annotation)
#        hack/chart.sh push REGISTRY [HELM_FLAGS...]
#                                        package for REGISTRY, then `helm push` to
#                                        oci://REGISTRY/charts (for example --plain-http
#                                        for a registry on loopback)
#
# CCE_UW_CHART_OUT: where package writes the .tgz (default target/chart).
# helm: CCE_UW_HELM when set, else the helm on PATH if it is Helm 3, else the one
# hack/control-plane.sh build caches; which one is printed. helm-docs is
# hack/image-tools.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=${CCE_UW_CHART_DIR:-charts/cce-upgrade-watch}
NAME=cce-upgrade-watch

# Sets helm. Your own helm first, so that `make chart` needs no control plane build; any
# Helm 3 packages and pushes this chart the same way.
pick_helm() {
	local found version cached
	if [[ -n ${CCE_UW_HELM:-} ]]; then
		helm=$CCE_UW_HELM
		echo "chart.sh: helm $("$helm" version --short) from CCE_UW_HELM ($helm)" >&2
		return
	fi
	if found=$(command -v helm); then
		version=$("$found" version --template '{{.Version}}' 2>/dev/null || true)
		if [[ $version == v3.* ]]; then
			helm=$found
			echo "chart.sh: helm $version from PATH ($helm)" >&2
			return
		fi
		echo "chart.sh: $found is not Helm 3 (version: ${version:-unknown}); looking for the cached one" >&2
	fi
	cached=$(hack/control-plane.sh env 2>/dev/null | sed -n 's/^export CCE_UW_HELM=//p')
	cached=${cached//\'/}
	if [[ -n $cached && -x $cached ]]; then
		helm=$cached
		echo "chart.sh: helm $("$helm" version --short) cached by hack/control-plane.sh ($helm)" >&2
		return
	fi
	echo "chart.sh: no helm: install Helm 3 (https://helm.sh/docs/intro/install/) and put it on PATH, or build the cached one with hack/control-plane.sh build" >&2
	exit 1
}

helm_docs() {
	"$(hack/image-tools.sh build helm-docs | tail -n1)" --chart-search-root charts \
		--sort-values-order file --skip-version-footer --log-level warning "$@"
}

package() {
	# A directory of its own per caller (CCE_UW_CHART_OUT): tests package in parallel.
	local registry=${1:-} work out=${CCE_UW_CHART_OUT:-target/chart}
	work=$(mktemp -d)
	# shellcheck disable=SC2064 # the path is fixed now
	trap "rm -rf '$work'" RETURN
	cp -r "$CHART" "$work/$NAME"
	{
		echo "home: $(hack/project-url.sh)"
		echo "sources:"
		echo "  - $(hack/project-url.sh)"
	} >>"$work/$NAME/Chart.yaml"
	if [[ -n $registry ]]; then
		sed -i "s|^  repository: $NAME\$|  repository: $registry/$NAME|" "$work/$NAME/values.yaml"
		sed -i "s|^      image: $NAME:|      image: $registry/$NAME:|" "$work/$NAME/Chart.yaml"
		grep -q "^  repository: $registry/$NAME\$" "$work/$NAME/values.yaml" ||
			{ echo "chart.sh: values.yaml has no image.repository line to point at $registry" >&2; exit 1; }
	fi
	mkdir -p "$out"
	"$helm" lint --strict "$work/$NAME" >&2
	local saved
	saved=$("$helm" package "$work/$NAME" --destination "$out")
	echo "$saved" >&2
	# helm's own word for where it wrote the package: "... saved it to: PATH".
	echo "${saved##*: }"
}

case "${1:-}" in
docs) helm_docs ;;
docs-print) helm_docs --dry-run ;;
package)
	pick_helm
	package "${2:-}"
	;;
push)
	registry=${2:?usage: $0 push REGISTRY [HELM_FLAGS...]}
	pick_helm
	tgz=$(package "$registry")
	"$helm" push "$tgz" "oci://$registry/charts" "${@:3}"
	;;
*)
	echo "usage: $0 docs | docs-print | package [REGISTRY] | push REGISTRY [HELM_FLAGS...]" >&2
	exit 2
	;;
esac
