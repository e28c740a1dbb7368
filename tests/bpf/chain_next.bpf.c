// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Programs to put behind the firewall (`xdpctl chain`): each counts the
 * IPv4 UDP packets that reach it, to port 7777 and to port 9, in its own
 * slots of `seen`, and passes everything.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* seen[0], [1]: next_a's packets to 7777 and to 9; [2], [3]: next_b's. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} seen SEC(".maps");

static __always_inline int count(struct xdp_md *ctx, __u32 base)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	__u32 slot = base;

	if (udp->dest == bpf_htons(9))
		slot = base + 1;
	else if (udp->dest != bpf_htons(7777))
		return XDP_PASS;
	__u64 *n = bpf_map_lookup_elem(&seen, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_PASS;
}

SEC("xdp")
int next_a(struct xdp_md *ctx)
{
	return count(ctx, 0);
}

SEC("xdp")
int next_b(struct xdp_md *ctx)
{
	return count(ctx, 2);
}

char _license[] SEC("license") = "Dual MIT/GPL";
