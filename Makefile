# Developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
PLANE := hack/control-plane.sh
CRD_FILE := crds/upgradeworkflowwatches.cce.upgradewatch.io.yaml
CHART_CRD_FILE := charts/cce-upgrade-watch/crds/upgradeworkflowwatches.cce.upgradewatch.io.yaml

.DEFAULT_GOAL := test
.PHONY: demo static test lint fmt-check clippy test-all unit crd build plane-up plane-down bench \
	image image-test image-push chart chart-push chart-docs

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

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

test-all:
	hack/test-deps.sh
	$(PLANE) build
	hack/python-sdk.sh
	hack/promql-check.sh
	$(CARGO) build --locked --all-targets
	export CCE_UW_PLANE_DIR="$$(mktemp -d /tmp/cce-uw-plane.XXXXXX)"; \
	trap '$(PLANE) down' EXIT; \
	$(PLANE) up; \
	eval "$$($(PLANE) env)"; \
	$(CARGO) test --locked --no-fail-fast

## Every test that needs no control plane: the unit tests, the property tests, the CCE client
## and `get` against in-process servers, the simulator's own tests, and the GitOps health
## checks (Lua from hack/test-deps.sh, Go). sim_sdk needs the Python SDK venv of
## hack/python-sdk.sh and runs with `make test`, like the end-to-end suites.
NO_PLANE_TESTS := properties cce_client get_command gitops_health sim_cli sim_auth sim_faults sim_scenarios
unit:
	hack/test-deps.sh
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
## REGISTRY/cce-upgrade-watch. PROJECT_URL sets home and sources (hack/project-url.sh).
chart:
	hack/chart.sh package $(REGISTRY)

## The chart pushed as an OCI artifact to oci://REGISTRY/charts (after `helm registry login`).
chart-push:
	@test -n "$(REGISTRY)" || { echo "make chart-push REGISTRY=host/namespace" >&2; exit 2; }
	hack/chart.sh push $(REGISTRY)

## The chart's README.md regenerated from values.yaml (helm-docs); chart_e2e fails when the
## committed one differs.
chart-docs:
	hack/chart.sh docs

## The CRD generated from src/crd.rs, written to crds/ and to the chart's crds/ (a test fails
## when either differs from the types).
crd:
	$(CARGO) run --quiet --locked -- crd > $(CRD_FILE).tmp
	cp $(CRD_FILE).tmp $(CHART_CRD_FILE)
	mv $(CRD_FILE).tmp $(CRD_FILE)

## The fleet benchmark (not a test): W watches over D workflows against a private control
## plane, the simulator and the release operator; prints a table, writes JSON to
## target/bench/. `make bench W=10000 D=2000` is the large run; GAP=seconds overrides the
## step gap (default max(10, W × 12 ms)).
W ?= 1000
D ?= 200
bench:
	$(PLANE) build
	$(CARGO) bench --locked --bench fleet -- --watches $(W) --workflows $(D) $(if $(GAP),--step-gap $(GAP))
