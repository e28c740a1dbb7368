#!/usr/bin/env bash
# The main job, in a sandbox: builds xdpctl (installing its build
# dependencies), then loads and pins the built-in XDP firewall in a private
# bpffs, shows what was pinned, and removes it again. Touches nothing of the
# host's: not its devices, not /sys/fs/bpf. Cleans up even on failure or
# Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cargo build --locked --release -p xdpctl
xdpctl=$PWD/target/release/xdpctl

sandbox=$(mktemp -d /tmp/xdpctl-demo.XXXXXX)
cleanup() {
    umount -l "$sandbox" 2>/dev/null || true
    rmdir "$sandbox" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
mount -t bpf bpf "$sandbox"
export XDPCTL_BPFFS=$sandbox

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "A private bpffs is mounted at $sandbox; relative pin paths are below it."
step "$xdpctl" load --pin xdpfw
step "$xdpctl" prog show xdpfw/xdp_fw
step "$xdpctl" map show xdpfw/maps/blocklist
step "$xdpctl" -p map show xdpfw/maps/pps
echo
echo "Loading into the same directory again is refused, and changes nothing:"
step "$xdpctl" load --pin xdpfw || true
step "$xdpctl" unload xdpfw
echo
echo "Done: the sandbox is removed on exit."
