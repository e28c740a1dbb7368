#!/usr/bin/env bash
# Regenerates scripts/startup.order, the order in which scripts/build.sh
# has the linker (lld) lay out the functions that short commands run:
# together, in a few pages, so that starting `xdpctl net show` faults in
# few pages of code (a page fault is what a short command's start spends
# most on; see BENCHMARKS.md). A stale list costs only speed: a function
# it does not name is laid out as before.
#
# Needs valgrind, lld and iproute2; as root (it makes a namespace with a veth
# pair and a private bpffs, and removes them).
set -euo pipefail
cd "$(dirname "$0")/.."

# The release binary itself (it keeps its symbol table: Cargo.toml), so
# that the names are the ones its link orders.
bin=$(scripts/build.sh)

tmp=$(mktemp -d)
ns=xdpctl-order-$$
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# The commands as on a host: a device with a program attached by a load,
# in a namespace and on a bpffs of their own (a private mount).
ip netns add "$ns"
ip -n "$ns" link add v0 type veth peer name v1
ip -n "$ns" link set v0 up
ip -n "$ns" link set v1 up
unshare -m bash -s "$bin" "$tmp" "$ns" <<'SANDBOX'
set -eu
bin=$1 tmp=$2 ns=$3
mkdir -p "$tmp/fs"
mount -t bpf bpf "$tmp/fs"
export XDPCTL_BPFFS=$tmp/fs
"$bin" load --pin fw >/dev/null 2>&1
"$bin" load --pin other >/dev/null 2>&1
nsenter --net="/run/netns/$ns" "$bin" attach "$tmp/fs/fw/xdp_fw" v0 --mode generic >/dev/null 2>&1
n=0
while read -r line; do
    n=$((n + 1))
    # shellcheck disable=SC2086 # the words of a command line
    nsenter --net="/run/netns/$ns" valgrind --tool=callgrind --demangle=no \
        --callgrind-out-file="$tmp/$n.out" "$bin" $line >/dev/null 2>&1 || true
done <<'COMMANDS'
net show v0
-j net show v0
net show
net explain v0
--version
prog show
map show
COMMANDS
umount "$tmp/fs"
SANDBOX

# Every function the commands ran, by its symbol: Rust's (each in a
# section of its own, which the linker can place) and the C library's
# (which it cannot, named for nothing).
{
    echo "# Written by scripts/startup-order.sh; see there."
    cat "$tmp"/*.out |
        sed -n -E 's/^c?fn=\([0-9]+\) (_[ZR].*)$/\1/p' |
        sort -u
} >scripts/startup.order
# The next build links with the new order (cargo does not watch the file).
touch crates/xdpctl/src/main.rs
echo "scripts/startup.order: $(grep -c '^_' scripts/startup.order) functions" >&2
