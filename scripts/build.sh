#!/usr/bin/env bash
# Builds the release binary, static and not position-independent: no
# dynamic loader, no relocations to apply at start, so a short command
# (`net show`) starts about a third sooner than the default dynamic build.
# Prints the binary's path on stdout; cargo's output goes to stderr.
# Extra arguments go to cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

triple=$(rustc -vV | sed -n 's/^host: //p')
# NB: --target keeps these flags off the build scripts and proc macros,
# which cannot be static.
cargo build --locked --release -p xdpctl --target "$triple" \
    --config "target.$triple.rustflags = [\"-C\", \"target-feature=+crt-static\", \"-C\", \"relocation-model=static\"]" \
    "$@" >&2
echo "$PWD/target/$triple/release/xdpctl"
