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
flags='"-C", "target-feature=+crt-static", "-C", "relocation-model=static"'
# With lld, the functions that short commands run are laid out together
# (scripts/startup.order, from scripts/startup-order.sh): `net show`
# faults in fewer pages of code as it starts. Without lld, the same binary
# in the default layout.
if command -v ld.lld >/dev/null && [ -f scripts/startup.order ]; then
    flags="$flags, \"-C\", \"link-arg=-fuse-ld=lld\", \"-C\", \"link-arg=-Wl,--symbol-ordering-file=$PWD/scripts/startup.order\", \"-C\", \"link-arg=-Wl,--no-warn-symbol-ordering\""
fi
cargo build --locked --release -p xdpctl --target "$triple" \
    --config "target.$triple.rustflags = [$flags]" \
    "$@" >&2
bin="${CARGO_TARGET_DIR:-$PWD/target}/$triple/release/xdpctl"
# Put in place by a copy, as `make install` does: the linker writes its
# output in small pieces, which the page cache keeps as small folios, and
# a start then faults in less code per fault (80 page faults for `net
# show` against 73 from a copy: about a tenth of its time here).
cp "$bin" "$bin.copy"
mv -f "$bin.copy" "$bin"
echo "$bin"
