// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The bench's floor for a port rule: the seed article's single-purpose
 * program (drop UDP to one port, pass the rest), written here from its
 * description. The port is the bench's blocked port, 9.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define BLOCKED_PORT 9

SEC("xdp")
int seed_drop_udp(struct xdp_md *ctx)
{
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;

	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	return udp->dest == bpf_htons(BLOCKED_PORT) ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
