// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The benchmark's traffic generator: run with BPF_PROG_TEST_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES, every frame it returns XDP_TX for is sent
 * out of the device named in the run's context.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int trafficgen(struct xdp_md *ctx)
{
	return XDP_TX;
}

char _license[] SEC("license") = "Dual MIT/GPL";
