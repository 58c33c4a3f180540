# Developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
PLANE := hack/control-plane.sh
CRD_FILE := crds/upgradeworkflowwatches.cce.upgradewatch.io.yaml

.PHONY: test lint fmt-check clippy test-all unit crd build plane-up plane-down bench

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
	$(PLANE) build
	hack/python-sdk.sh
	$(CARGO) build --locked --all-targets
	export CCE_UW_PLANE_DIR="$$(mktemp -d /tmp/cce-uw-plane.XXXXXX)"; \
	trap '$(PLANE) down' EXIT; \
	$(PLANE) up; \
	eval "$$($(PLANE) env)"; \
	$(CARGO) test --locked --no-fail-fast

## Unit tests only (no control plane needed).
unit:
	$(CARGO) test --locked --lib

build:
	$(CARGO) build --locked --release

crd:
	$(CARGO) run --quiet --locked -- crd > $(CRD_FILE)

## The fleet benchmark (not a test): W watches over D workflows against a private control
## plane, the simulator and the release operator; prints a table, writes JSON to
## target/bench/. `make bench W=10000 D=2000` is the large run.
W ?= 1000
D ?= 200
bench:
	$(PLANE) build
	$(CARGO) build --locked --release
	$(CARGO) bench --locked --bench fleet -- --watches $(W) --workflows $(D)
