# Developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
PLANE := hack/control-plane.sh
CRD_PLURALS := upgradeworkflowwatches cceaccounts clustercceaccounts upgradewatchsets

.DEFAULT_GOAL := test
.PHONY: demo static test lint fmt-check clippy test-all test-oldest unit crd build plane-up plane-down bench bench-writes bench-discovery \
	image image-test image-push chart chart-push chart-docs chart-lint test-node reference

## The whole job on one machine in a few minutes: a local control plane, the CRD, the CCE
## simulator, the operator and a watch followed to the end of its upgrade. SCENARIO picks the
## simulator's scenario (cluster-fails-then-retry shows the failure path); USE_EXISTING_CLUSTER=1
## uses the cluster of the current kubeconfig instead. See hack/demo.sh.
SCENARIO ?= success
demo:
	SCENARIO="$(SCENARIO)" hack/demo.sh

## Everything CI checks: formatting, clippy, and every test (unit and end-to-end) against a
## freshly started local control plane, which is stopped again however the tests end.
test: lint
	$(MAKE) --no-print-directory test-all
	$(MAKE) --no-print-directory test-oldest

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

## The integration tests are two binaries: tests/offline (no plane needed) and tests/e2e (the
## plane, the simulator and the operator as child processes, a module per suite). The e2e
## tests mostly wait on servers, so every test binary runs with E2E_THREADS test threads, more
## than the cores (6 on 2 cores: 340 s for the e2e binary, 23 binaries one after another took
## 12-15 min). E2E_SERIAL (module::name) runs afterwards, one test at a time, against the same
## plane: the two Event-burst tests, 40 watches each (80 with two operators), which count
## every Event exactly; on a loaded machine a CCE connection the simulator has just closed
## gives them a true but unwanted SyncFailed/SyncRecovered pair (seen once at 6 threads with
## a load average near 18), so they do not share the machine with the other suites.
E2E_THREADS ?= 6
E2E_SERIAL := \
	events::two_operators_without_leader_election_publish_each_event_once \
	events::killing_the_operator_during_a_burst_loses_and_repeats_no_event
test-all:
	$(PLANE) build
	hack/python-sdk.sh
	hack/promql-check.sh
	$(CARGO) build --locked --all-targets
	export CCE_UW_PLANE_DIR="$$(mktemp -d /tmp/cce-uw-plane.XXXXXX)"; \
	trap '$(PLANE) down' EXIT; \
	$(PLANE) up; \
	eval "$$($(PLANE) env)"; \
	status=0; \
	$(CARGO) test --locked --no-fail-fast -- --test-threads=$(E2E_THREADS) \
		$(addprefix --skip ,$(E2E_SERIAL)) || status=$$?; \
	$(if $(E2E_SERIAL),$(CARGO) test --locked --test e2e -- --exact --test-threads=1 \
		$(E2E_SERIAL) || status=$$?;) \
	exit $$status

## The oldest Kubernetes version of the tested range (README: Compatibility), on a plane of
## its own: the CRD suite, the chart install and the success, failure and restart cases of
## the controller, kubectl's `wait` recipes included (module::name in tests/e2e). test-all
## runs everything on the newest (hack/control-plane.sh's default). The count check fails the run when a renamed test
## would silently drop out of the selection.
OLDEST_K8S := v1.29.15
OLDEST_TESTS := \
	crd::committed_crd_applies_and_becomes_established \
	crd::kubectl_get_prints_the_designed_columns \
	crd::the_api_server_rejects_bad_specs_naming_the_field \
	crd::kubectl_explain_shows_user_facing_docs \
	crd::a_new_watch_has_no_status_and_only_the_documented_flux_recipe_waits_for_one \
	crd::the_plane_runs_the_kubernetes_version_the_run_asked_for \
	chart::helm_install_creates_the_operator_objects_and_the_crd_upgrade_path_works \
	chart::in_namespaced_mode_the_operator_with_the_chart_service_account_reaches_ready_and_can_do_no_more \
	chart::cluster_wide_the_operator_with_the_chart_service_account_reports_a_failed_task_as_stalled \
	controller::success_scenario_reaches_ready_with_exactly_one_event_per_transition \
	controller::a_failed_cluster_task_stalls_with_one_warning_then_the_retry_succeeds \
	controller::an_operator_restart_mid_upgrade_repeats_no_event
test-oldest:
	CCE_UW_K8S_VERSION=$(OLDEST_K8S) $(PLANE) build
	export CCE_UW_K8S_VERSION=$(OLDEST_K8S); \
	export CCE_UW_PLANE_DIR="$$(mktemp -d /tmp/cce-uw-plane.XXXXXX)"; \
	log="$$CCE_UW_PLANE_DIR/tests.log"; \
	trap '$(PLANE) down' EXIT; \
	$(PLANE) up; \
	eval "$$($(PLANE) env)"; \
	$(CARGO) test --locked --no-fail-fast --test e2e \
		-- --exact --test-threads=$(E2E_THREADS) $(OLDEST_TESTS) 2>&1 | tee "$$log"; \
	passed=$$(grep -c -E '^test [a-z0-9_:]+ \.\.\. ok$$' "$$log" || true); \
	if [[ $$passed != $(words $(OLDEST_TESTS)) ]]; then \
		echo "test-oldest: $$passed of $(words $(OLDEST_TESTS)) selected tests passed on $(OLDEST_K8S)" >&2; \
		exit 1; \
	fi

## The chart's Pods on a real node (tests/node_e2e.rs): a private plane with a node
## (CCE_UW_NODE=1 hack/control-plane.sh: kube-controller-manager, kube-scheduler, a kubelet
## with containerd, runc and CNI; root only), the image of `make image` imported into
## containerd and the chart installed from a registry on loopback. Needs `make image` first
## (CI runs it after `make image-test`). The node is taken down at the end, and the run fails
## when anything of it is left behind.
test-node:
	@test -f target/image/oci/index.json || { echo "test-node: target/image/oci is missing: run make image first" >&2; exit 1; }
	CCE_UW_NODE=1 $(PLANE) build
	$(CARGO) build --locked --test node_e2e
	export CCE_UW_NODE=1; \
	export CCE_UW_PLANE_DIR="$$(mktemp -d /tmp/cce-uw-node.XXXXXX)"; \
	trap '$(PLANE) down || exit 1' EXIT; \
	$(PLANE) up; \
	eval "$$($(PLANE) env)"; \
	$(CARGO) test --locked --test node_e2e -- --test-threads=1

## Every test that needs no control plane: the unit tests and tests/offline (the property
## tests, the CCE client and `get` against in-process servers, the simulator's own tests, and
## the GitOps health checks: Flux's and Argo CD's own Go packages, built with Go). Everything
## in tests/e2e runs with `make test`: the end-to-end suites, and sim_sdk and iam_sdk, which
## need the Python SDK venv of hack/python-sdk.sh (iam, iam_sdk and identity also use the
## plane's own keys).
NO_PLANE_TESTS := offline
unit:
	$(CARGO) test --locked --lib $(addprefix --test ,$(NO_PLANE_TESTS))

build:
	$(CARGO) build --locked --release

## The release binary as a static musl executable, as the image ships it, checked to be
## statically linked, with jemalloc and without the simulator, and run (hack/static-build.sh).
## TARGET=aarch64-unknown-linux-musl builds the arm64 one (zig as its C cross compiler).
TARGET ?= x86_64-unknown-linux-musl
static:
	hack/static-build.sh $(TARGET)

## The operator image for linux/amd64 and linux/arm64 as an OCI image index, built without a
## container engine (hack/image.sh): target/image/oci/ (an OCI layout) and
## target/image/cce-upgrade-watch-VERSION.oci.tar. Cold: two static release builds.
image:
	hack/image.sh

## The registry test: pushes target/image/oci to a registry on loopback, pulls it back and
## checks platforms, config, labels, layer contents, and runs each platform's binary as
## user 65532 (arm64 under qemu-user-static). CI runs it after `make test`.
image-test: image
	hack/image-test.sh

## Pushes the image index to REGISTRY (for example swr.<region>.myhuaweicloud.com/ORG, after
## `docker login` or `crane auth login`) as REGISTRY/cce-upgrade-watch:VERSION.
image-push: image
	@test -n "$(REGISTRY)" || { echo "make image-push REGISTRY=host/namespace" >&2; exit 2; }
	"$$(hack/image-tools.sh build crane | tail -n1)" push target/image/oci \
		"$(REGISTRY)/cce-upgrade-watch:$$(sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n1)"

## The chart packaged into target/chart/; with REGISTRY its default image is
## REGISTRY/cce-upgrade-watch. PROJECT_URL sets home and sources (hack/project-url.sh). Uses
## the helm on PATH when it is Helm 3, else the one hack/control-plane.sh build caches, and
## says which (hack/chart.sh).
chart:
	hack/chart.sh package $(REGISTRY)

## The chart pushed as an OCI artifact to oci://REGISTRY/charts (after `helm registry login`).
chart-push:
	@test -n "$(REGISTRY)" || { echo "make chart-push REGISTRY=host/namespace" >&2; exit 2; }
	hack/chart.sh push $(REGISTRY)

## The checks of chart-testing's `ct lint` (yamale, yamllint, maintainers, helm lint) on the
## chart as published; the e2e suite's chart module runs them too.
chart-lint:
	hack/chart-lint.sh

## The chart's README.md regenerated from values.yaml (helm-docs); tests/e2e/chart.rs fails
## when the committed one differs.
chart-docs:
	hack/chart.sh docs

## The CRDs generated from src/crd/, written to crds/ (for kubectl apply) and to the chart's
## files/crds/ (a test fails when either differs from the types). The chart keeps them out of
## its crds/ directory: with crds.enabled its templates render them (templates/crds.yaml), and
## Helm would otherwise install them a second time from crds/.
CHART_CRDS := charts/cce-upgrade-watch/files/crds
crd:
	mkdir -p $(CHART_CRDS)
	for plural in $(CRD_PLURALS); do \
	  $(CARGO) run --quiet --locked -- crd $$plural > crds/$$plural.cce.upgradewatch.io.yaml.tmp && \
	  cp crds/$$plural.cce.upgradewatch.io.yaml.tmp $(CHART_CRDS)/$$plural.cce.upgradewatch.io.yaml && \
	  mv crds/$$plural.cce.upgradewatch.io.yaml.tmp crds/$$plural.cce.upgradewatch.io.yaml || exit 1; \
	done

## The API reference (docs/reference.md) generated from the CRDs and the reason enums; a
## unit test fails when the committed one differs.
reference:
	$(CARGO) run --quiet --locked -- reference > docs/reference.md.tmp && \
	  mv docs/reference.md.tmp docs/reference.md

## The fleet benchmark (not a test): W watches over D workflows against a private control
## plane, the simulator and the release operator; prints a table, writes JSON to
## target/bench/. `make bench W=10000 D=2000` is the large run; GAP=seconds overrides the
## step gap (default max(10, W × 12 ms)). BINARY picks the operator binary: release (this
## build's), static (the musl binary of hack/static-build.sh, built first) or a path;
## BINARY="release static" runs both, one after the other, and prints them side by side.
## bench-writes: what one status write and one Event cost kube-apiserver and etcd, and how
## many per second the plane takes (benches/writes.rs), against a private control plane.
bench-writes:
	$(PLANE) build
	$(CARGO) bench --locked --bench writes

## bench-discovery: one UpgradeWatchSet over CLUSTERS clusters of one project (most steady,
## some joining, leaving, upgrading with and without a workflow, from a scenario generated
## into target/bench/) against a private control plane, the simulator and the release
## operator listing every LIST_EVERY seconds (its hidden --set-list-interval): ListClusters
## per interval, watch writes and Events per cluster joined or left, the set's status writes,
## join and leave latency, the operator's RSS and CPU and its watches' CCE reads
## (benches/discovery.rs). About 8 minutes once built; `make bench-discovery CLUSTERS=50` is
## the small run.
CLUSTERS ?= 500
LIST_EVERY ?= 5
bench-discovery:
	$(PLANE) build
	$(CARGO) bench --locked --bench discovery -- --clusters $(CLUSTERS) --list-interval $(LIST_EVERY)

W ?= 1000
D ?= 200
BINARY ?= release
bench:
	$(PLANE) build
	$(if $(filter static,$(BINARY)),hack/static-build.sh >/dev/null)
	$(CARGO) bench --locked --bench fleet -- --watches $(W) --workflows $(D) $(if $(GAP),--step-gap $(GAP)) $(addprefix --operator-binary ,$(BINARY))
