#!/usr/bin/env bash
# The whole xdpctl workflow, in a sandbox this script creates and always
# removes: two network namespaces joined by a veth pair, and a private bpffs.
# It reproduces the ICMP firewall experiment (ping 0% -> 100% loss, the drop
# counter reads exactly 4), shows net show, drops a UDP flow from a
# blocklisted source while another source passes, and cleans up. It never
# touches the host's own devices or /sys/fs/bpf.
#
# Builds xdpctl first (installing build dependencies), unless XDPCTL_BIN
# names a binary to use.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${XDPCTL_BIN:-}" ]; then
    scripts/deps.sh
    cargo build --locked --release -p xdpctl
    XDPCTL_BIN=$PWD/target/release/xdpctl
fi

id=$$
ns_a=xdpctl-demo-a-$id
ns_b=xdpctl-demo-b-$id
dev_a=demo-a-$id
dev_b=demo-b-$id
sandbox=$(mktemp -d /tmp/xdpctl-demo.XXXXXX)

cleanup() {
    trap - EXIT INT TERM
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    umount -l "$sandbox" 2>/dev/null || true
    rmdir "$sandbox" 2>/dev/null || true
    echo "sandbox removed"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
trap 'echo "demo failed at line $LINENO" >&2' ERR

xdpctl() { XDPCTL_BPFFS=$sandbox "$XDPCTL_BIN" "$@"; }
step() {
    printf '\n\033[1m$ %s\033[0m\n' "$*"
    "$@"
}
in_a() { ip netns exec "$ns_a" "$@"; }
fail() {
    echo "demo failed: $*" >&2
    exit 1
}
# ping exits non-zero when replies are lost: that is what is measured here.
ping_loss() { { in_a ping -n -q -c "$1" -i 0.2 -W 1 ${2:+-I "$2"} 10.251.0.2 || true; } | grep -o '[0-9]*% packet loss'; }

echo "== sandbox: namespaces $ns_a and $ns_b, veth $dev_a <-> $dev_b, bpffs at $sandbox"
mount -t bpf bpf "$sandbox"
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$dev_a" netns "$ns_a" type veth peer name "$dev_b" netns "$ns_b"
ip -n "$ns_a" addr add 10.251.0.1/24 dev "$dev_a"
ip -n "$ns_a" addr add 10.251.0.3/24 dev "$dev_a"
ip -n "$ns_b" addr add 10.251.0.2/24 dev "$dev_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$dev_a" up
ip -n "$ns_b" link set "$dev_b" up

echo
echo "== before the firewall: ping $ns_b from $ns_a"
loss=$(ping_loss 2)
echo "$loss"
[ "$loss" = "0% packet loss" ] || fail "expected 0% loss before attaching, got $loss"

echo
echo "== load the built-in firewall, pin it, attach it to $dev_b (generic mode)"
step xdpctl load --pin xdpfw
step xdpctl attach xdpfw "$dev_b" --mode generic --netns "$ns_b"
step xdpctl net show "$dev_b" --netns "$ns_b"

echo
echo "== switch ICMP dropping on; the echo requests die at $dev_b's XDP hook"
step xdpctl map update config 0 '{"drop_icmp":1}'
loss=$(ping_loss 4)
echo "$loss"
[ "$loss" = "100% packet loss" ] || fail "expected 100% loss with the firewall, got $loss"
step xdpctl map lookup icmp_drops 0 --sum
drops=$(xdpctl map lookup icmp_drops 0 --sum)
[ "$drops" = 4 ] || fail "expected the ICMP counter to read 4, got $drops"
echo "icmp_drops = $drops: one per echo request of ping -c 4"

echo
echo "== ICMP back on; blocklist 10.251.0.3 and send UDP from it and from 10.251.0.1"
step xdpctl map update config 0 '{"drop_icmp":0}'
step xdpctl stats --rule-counters on
step xdpctl map update blocklist 10.251.0.3 1
# A capture of what the firewall drops, and why, while the UDP goes out.
captured=$(mktemp)
echo
printf '\033[1m$ %s\033[0m\n' "xdpctl capture $dev_b --netns $ns_b --verdict drop -c 3 &"
xdpctl capture "$dev_b" --netns "$ns_b" --verdict drop -c 3 >"$captured" 2>&1 &
capture_pid=$!
for _ in $(seq 100); do grep -q capturing "$captured" && break; sleep 0.05; done
for src in 10.251.0.3 10.251.0.1; do
    for _ in 1 2 3 4 5; do
        echo x | in_a nc -u -q0 -s "$src" 10.251.0.2 9000 || true
    done
done
wait "$capture_pid" || fail "the capture failed: $(cat "$captured")"
cat "$captured"
grep -q 'XDP_DROP blocklist 10.251.0.3' "$captured" || fail "the capture did not name the blocklist rule"
rm -f "$captured"
step xdpctl map dump pps
step xdpctl map lookup stats drop_blocklist
blocked=$(xdpctl map lookup stats drop_blocklist | sed -n 's/^{"packets":\([0-9]*\),.*/\1/p')
[ "$blocked" -ge 5 ] || fail "expected 5 UDP packets dropped by the blocklist, got $blocked"
step xdpctl stats --rules
hits=$(xdpctl -j stats --rules | tr '{' '\n' | grep '"rule":"10.251.0.3"' | sed -n 's/.*"packets":\([0-9]*\).*/\1/p')
[ "${hits:-0}" -ge 5 ] || fail "expected the blocklist entry 10.251.0.3 to have matched 5 packets, got ${hits:-none}"
loss=$(ping_loss 2 10.251.0.1)
echo "ping from 10.251.0.1: $loss"
[ "$loss" = "0% packet loss" ] || fail "traffic from an allowed source must pass, got $loss"

echo
echo "== detach: traffic flows again"
step xdpctl detach "$dev_b" --netns "$ns_b"
loss=$(ping_loss 2 10.251.0.3)
echo "ping from 10.251.0.3: $loss"
[ "$loss" = "0% packet loss" ] || fail "expected 0% loss after detaching, got $loss"

echo
echo "== unload: the pins go"
step xdpctl unload xdpfw
echo
echo "demo passed"
