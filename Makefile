# handover — the two commands a new machine needs are `make run` and `make test`.
# Python tools live in a project-local virtualenv with pinned versions; nothing is installed
# globally.

SHELL := /bin/bash
VENV := .venv
PY ?= python3
TEST_TOOLS := moto[server]==5.2.5 cfn-lint==1.58.0 aws-sam-cli==1.170.0 schemathesis==4.32.5
BUILD_TOOLS := cargo-lambda==1.9.2 ziglang==0.17.1
# `make fuzz` only: libFuzzer through cargo-fuzz, built from source into .venv/bin.
CARGO_FUZZ := cargo-fuzz@0.13.1

export PATH := $(CURDIR)/$(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
# The template checks run offline; a region is all they need.
export AWS_DEFAULT_REGION ?= eu-west-1

.PHONY: run test functions lint check-template browser-test contract-test fuzz soak soak-broken sim sim-broken build tools build-tools fmt clippy bench clean

# Re-run when the pinned lists change, so an existing .venv picks up a new tool.
$(VENV)/.test-tools: Makefile
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(TEST_TOOLS)
	touch $@

tools: $(VENV)/.test-tools

$(VENV)/.build-tools: $(VENV)/.test-tools
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(BUILD_TOOLS)
	rustup target add aarch64-unknown-linux-gnu
	touch $@

build-tools: $(VENV)/.build-tools

## make run: the whole service locally (emulator, demo bot, handover serve with the playground at /)
run: tools
	cargo build -p handover-cli
	scripts/run-local.sh

## make test: every check and test
test: tools lint check-template functions
	cargo test --workspace --locked
	$(MAKE) --no-print-directory browser-test
	$(MAKE) --no-print-directory contract-test

## make browser-test: the playground page driven in headless Chromium. scripts/setup-browser.sh
## installs Debian's chromium (as root) and the pinned playwright-core, or fails saying how.
browser-test: tools
	cargo build -p handover-cli --locked
	scripts/browser-test.sh

# The function binaries the runtime-API tests start (tests/tests/it/lambda_runtime.rs).
functions:
	cargo build --locked -p bot-webhook -p provider-callback -p hours-evaluator

## make contract-test: schemathesis against docs/openapi.yaml on the local stack (~1 min)
contract-test: tools
	cargo build -p handover-cli --locked
	tests/schemathesis/run.sh

## make fuzz: every parser and verifier under libFuzzer, >= 1,000,000 inputs (~10 min + build)
$(VENV)/bin/cargo-fuzz: | $(VENV)/.test-tools
	cargo install --locked --root $(VENV) $(CARGO_FUZZ)

fuzz: $(VENV)/bin/cargo-fuzz
	fuzz/run.sh

## make soak: random lifecycles under injected faults, every invariant checked (docs/reliability.md).
## SEED and SESSIONS pick the run; the same seed gives the same schedule. The soak binary exits
## 0 (passed), 2 (bad argument), 3 (invariant violated), 4 (a minimum of what it must exercise
## not met) or 101 (panic); this target fails on anything but 0. Both targets write their
## tables into docs/reliability.md (between the soak and soak-broken markers).
SEED ?= 1
SESSIONS ?= 150
soak: tools
	cargo run --locked -p handover-tests --bin soak -- --seed $(SEED) --sessions $(SESSIONS) --write-doc soak

## make soak-broken: the same soak against a library with one fix deliberately reverted, once
## per variant (VARIANT=<name> runs one; default: all in turn). Each variant is a test-only
## feature of the library (shared/Cargo.toml): idempotency (callbacks applied twice),
## wrong-id-abandon, early-dropped, 4xx-one-sided, cancel-refused, no-intent. A variant passes
## only when the soak exits 3 (invariant violated); its "caught by" line names the invariants
## that caught it. A build error, a panic, a bad argument, a passing run or a run that only
## missed its minimums fails it. Each writes its table into docs/reliability.md
## (soak-broken-<variant> markers).
SOAK_BROKEN_VARIANTS := idempotency wrong-id-abandon early-dropped 4xx-one-sided cancel-refused no-intent
VARIANT ?= $(SOAK_BROKEN_VARIANTS)
soak-broken: tools
	@set -o pipefail; failed=""; \
	for v in $(VARIANT); do \
		out=$$(mktemp); \
		echo "== soak-broken: variant $$v"; \
		cargo run --locked -p handover-tests --features broken-$$v --bin soak -- --seed $(SEED) --sessions $(SESSIONS) --write-doc soak-broken-$$v | tee "$$out"; \
		rc=$${PIPESTATUS[0]}; \
		caught=$$(grep '^caught by:' "$$out" || true); rm -f "$$out"; \
		if [ "$$rc" -eq 3 ]; then \
			echo "soak-broken: variant $$v caught (exit 3), $$caught"; \
		else \
			echo "soak-broken: variant $$v NOT caught: the soak exited $$rc, not 3 (invariant violated)" >&2; \
			failed="$$failed $$v"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "soak-broken: FAILED for:$$failed" >&2; exit 1; fi; \
	echo "soak-broken: every variant caught: $(VARIANT)"

## make sim: the deterministic simulator (sim/, docs/reliability.md): the real handlers on virtual
## time against the in-memory store and a model of every provider behaviour, faults at every
## step, invariants after every run; 1,000,000 lifecycles or 10 minutes, on every core. A failing
## seed is printed with the command that replays it with its trace. Exits 0 (every invariant
## held), 3 (a run broke one) or 2; writes its table into docs/reliability.md (sim markers).
SIM_LIFECYCLES ?= 1000000
SIM_SECONDS ?= 600
sim:
	cargo build --locked --profile sim -p handover-sim
	$(TARGET_DIR)/sim/handover-sim --seed $(SEED) --lifecycles $(SIM_LIFECYCLES) --seconds $(SIM_SECONDS) --write-doc docs/reliability.md

## make sim-broken: the simulator's short run (the seeds of make test) against each round-3 seam
## fix reverted (the library's broken-* features, and --no-drain for the previous delivery);
## succeeds only when every variant breaks a promise that is not a known finding (exit 3).
SIM_BROKEN_VARIANTS := wrong-id-abandon early-dropped 4xx-one-sided cancel-refused no-intent no-drain
sim-broken:
	@failed=""; \
	for v in $(SIM_BROKEN_VARIANTS); do \
		if [ "$$v" = no-drain ]; then feat=""; flag="--no-drain"; else feat="--features broken-$$v"; flag=""; fi; \
		echo "== sim-broken: variant $$v"; \
		cargo build --locked --profile sim -p handover-sim $$feat || exit 2; \
		$(TARGET_DIR)/sim/handover-sim --short $$flag | tail -8; \
		rc=$${PIPESTATUS[0]}; \
		if [ "$$rc" -eq 3 ]; then echo "sim-broken: variant $$v caught"; else echo "sim-broken: variant $$v NOT caught (exit $$rc)" >&2; failed="$$failed $$v"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "sim-broken: FAILED for:$$failed" >&2; exit 1; fi; \
	echo "sim-broken: every variant caught"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

check-template: tools
	cfn-lint -t template.yaml
	sam validate --lint -t template.yaml --region eu-west-1
	$(PY) scripts/sign-events.py --check

## make build: the three arm64 Lambda artifacts through SAM + cargo-lambda + zig
build: build-tools
	sam build --region eu-west-1
	@for f in .aws-sam/build/*Function/bootstrap; do printf '%-60s %s bytes\n' "$$f" "$$(stat -c %s $$f)"; done

## make bench: the figures of docs/performance.md. The functions, a hello-world lambda_http
## binary and the CLI are built with the release profile; the Lambda bench drives them from
## outside (its own profile does not matter) and rewrites its part of docs/performance.md.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
RELEASE_BINARIES := -p bot-webhook -p provider-callback -p hours-evaluator -p hello-lambda -p init-probe -p handover-cli
bench: tools
	cargo build --release --locked $(RELEASE_BINARIES)
	HANDOVER_FUNCTIONS_DIR=$(TARGET_DIR)/release cargo bench --locked --profile dev -p handover-tests --bench lambda
	cargo bench --locked -p handover-tests --bench evaluator
	cargo bench --locked --profile dev -p handover-tests --bench relay

fmt:
	cargo fmt --all

clean:
	rm -rf target .aws-sam $(VENV) tests/browser/node_modules
