// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The floor of passing a packet: hand everything to the stack, doing nothing else. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
