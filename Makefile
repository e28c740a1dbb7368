# Shortcuts for the scripts in scripts/ (which work without make, too).
.PHONY: demo test lint fmt build deps docs install bench

PREFIX ?= /usr/local
# The release binary scripts/build.sh makes: static, for the host.
BIN = target/$(shell rustc -vV | sed -n 's/^host: //p')/release/xdpctl

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
	scripts/build.sh >/dev/null

deps:
	scripts/deps.sh

# Regenerate man/ and completions/ from the clap definition.
docs:
	XDPCTL_BLESS=1 cargo test --locked -p xdpctl docs

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/xdpctl
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -D -m 0644 completions/xdpctl.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/xdpctl
	install -D -m 0644 completions/_xdpctl $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_xdpctl
	install -D -m 0644 completions/xdpctl.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/xdpctl.fish

# Benchmarks side by side with bpftool, nftables and a bare XDP_DROP (as
# root); refreshes BENCHMARKS.md.
bench: deps build
	cargo build --locked --release -p xdpctl-tests --bin xdpctl-bench
	XDPCTL_BIN=$(CURDIR)/$(BIN) target/release/xdpctl-bench --out BENCHMARKS.md
