# Developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
PLANE := hack/control-plane.sh
CRD_FILE := crds/upgradeworkflowwatches.cce.upgradewatch.io.yaml
CHART_CRD_FILE := charts/cce-upgrade-watch/crds/upgradeworkflowwatches.cce.upgradewatch.io.yaml

.DEFAULT_GOAL := test
.PHONY: demo static test lint fmt-check clippy test-all unit crd build plane-up plane-down bench

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

## The release binary as a static x86_64-unknown-linux-musl executable, as the Dockerfile
## builds it, checked to be statically linked (file, ldd).
static:
	hack/static-build.sh

## The CRD generated from src/crd.rs, written to crds/ and to the chart's crds/ (a test fails
## when either differs from the types).
crd:
	$(CARGO) run --quiet --locked -- crd > $(CRD_FILE).tmp
	cp $(CRD_FILE).tmp $(CHART_CRD_FILE)
	mv $(CRD_FILE).tmp $(CRD_FILE)

## The fleet benchmark (not a test): W watches over D workflows against a private control
## plane, the simulator and the release operator; prints a table, writes JSON to
## target/bench/. `make bench W=10000 D=2000` is the large run; GAP=seconds overrides the
## step gap (default max(10, W × 12 ms)). BINARY picks the operator binary: release (this
## build's), static (the musl binary of hack/static-build.sh, built first) or a path;
## BINARY="release static" runs both, one after the other, and prints them side by side.
W ?= 1000
D ?= 200
BINARY ?= release
bench:
	$(PLANE) build
	$(if $(filter static,$(BINARY)),hack/static-build.sh >/dev/null)
	$(CARGO) bench --locked --bench fleet -- --watches $(W) --workflows $(D) $(if $(GAP),--step-gap $(GAP)) $(addprefix --operator-binary ,$(BINARY))
