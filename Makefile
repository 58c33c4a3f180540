# Developer entry points. `make test` is what CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
CRD_FILE := crds/upgradeworkflowwatches.cce.upgradewatch.io.yaml

.PHONY: test fmt-check clippy unit crd build

test: fmt-check clippy unit

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --locked

build:
	$(CARGO) build --locked --release

crd:
	$(CARGO) run --quiet --locked -- crd > $(CRD_FILE)
