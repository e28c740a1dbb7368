# Shortcuts for the scripts in scripts/ (which work without make, too).
.PHONY: demo test lint fmt build deps

demo:
	scripts/demo.sh

test:
	scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

build:
	cargo build --locked --release -p xdpctl

deps:
	scripts/deps.sh
