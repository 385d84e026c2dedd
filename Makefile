# ganfit: `make demo` builds everything and serves the web app; `make test` runs every tier.
# Everything a fresh machine needs is installed by `make setup` (idempotent).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Build outputs live outside the clone so CI can cache them between runs.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/ganfit/target
# The wasm build gets its own target dir so it can run beside the native one (`make -j2 native
# wasm`): on two cores that fills the long single-crate stretches of either build.
WASM_TARGET_DIR ?= $(CARGO_TARGET_DIR)-wasm
export GANFIT_DATA ?= $(abspath ../shared/data)
export GANFIT_MODELS ?= $(abspath models)
# Lints: clippy runs as this crate's compiler in every build below (as `cargo clippy` itself runs
# it, through RUSTC_WORKSPACE_WRAPPER), so linting the native and the wasm builds costs no second
# compilation of the dependencies. Every warning, rustc's or clippy's, fails the build.
export RUSTC_WORKSPACE_WRAPPER ?= $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
export CLIPPY_ARGS ?= -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# Mesa's Vulkan drivers ask libwayland for a display whenever the tests enumerate GPU adapters,
# and it prints "XDG_RUNTIME_DIR is invalid or not set" each time the variable is unset (CI):
# point it at a private, empty directory (the CLI does the same for itself).
export XDG_RUNTIME_DIR ?= $(shell d="$${TMPDIR:-/tmp}/ganfit-runtime-$$(id -u)"; mkdir -p -m 700 "$$d" && echo "$$d")
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p}' Cargo.lock)
WASM := $(WASM_TARGET_DIR)/wasm32-unknown-unknown/release/ganfit.wasm
GANFIT := $(CARGO_TARGET_DIR)/release/ganfit
PORT ?= 8080
CHROMIUM ?= /usr/bin/chromium

.PHONY: help setup native wasm web models package demo serve test check test-native test-wasm test-web test-package test-memory fuzz clean

help:
	@echo "make demo   build everything, convert models, serve the web app on 127.0.0.1:$(PORT)"
	@echo "make test   native tests (CPU + wgpu/lavapipe), wasm tests (headless Chromium, WebGPU), Playwright"
	@echo "make package  the npm package in www/npm (npm pack ./www/npm makes the tarball)"
	@echo "make fuzz   fuzz the parsers (cargo-fuzz, nightly); make test-memory: 50 fits in one page"

setup:
	WASM_BINDGEN_VERSION=$(WASM_BINDGEN_VERSION) scripts/setup.sh

native: setup
	cargo build --release --locked --features cli

wasm: setup
	CARGO_TARGET_DIR=$(WASM_TARGET_DIR) cargo build --release --locked --lib --target wasm32-unknown-unknown
	wasm-bindgen --target web --out-dir www/src/pkg --out-name ganfit $(WASM)

models: native
	scripts/models.sh "$(GANFIT)"

web: wasm models
	npm --prefix www run build

package: wasm models
	scripts/package.sh

demo: web
	@echo "ganfit demo: http://127.0.0.1:$(PORT)/"
	npm --prefix www run preview -- --host 127.0.0.1 --port $(PORT) --strictPort

test: check test-native test-wasm test-web test-package

# Formatting and the layering of src/ (imports run down the pipeline, no import circles).
check:
	cargo fmt --check
	python3 scripts/check-layers.py

test-native: models
	cargo test --release --locked --features cli

test-wasm: setup
	CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=900 \
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CARGO_TARGET_DIR=$(WASM_TARGET_DIR) \
	cargo test --release --locked --target wasm32-unknown-unknown --test web -- --nocapture

test-web: web
	cd www && CHROMIUM=$(CHROMIUM) npx playwright test

# The packed tarball installed into a scratch Vite app that fits a photo with it.
test-package: package
	www/package-test/build-scratch.sh
	cd www && CHROMIUM=$(CHROMIUM) npx playwright test -c playwright.package.config.ts

# Not in `make test` (about an hour): 50 fits in a row in one page, memory measured after each.
test-memory: web
	cd www && GANFIT_MEMORY_FITS=$${GANFIT_MEMORY_FITS:-50} CHROMIUM=$(CHROMIUM) npx playwright test tests/memory.spec.ts

# Not in `make test`: each parser fuzzed for FUZZ_RUNS executions (default 1,000,000) with
# cargo-fuzz on nightly Rust (installed here if missing); see scripts/fuzz.sh. `make test`
# replays the committed corpus and the found crashes on stable (tests/fuzz_corpus.rs).
fuzz:
	scripts/fuzz.sh

clean:
	rm -rf www/dist www/src/pkg www/npm www/scratch www/ganfit-*.tgz
