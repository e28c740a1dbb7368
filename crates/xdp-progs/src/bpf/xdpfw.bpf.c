// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * xdpfw: the built-in XDP firewall of xdpctl.
 *
 * Per packet, in this order:
 *   1. parse Ethernet and IPv4 (anything else is passed and counted);
 *   2. a source in `blocklist` is dropped before any other work, so a
 *      flood from a blocked source costs one hash lookup per packet;
 *   3. the source's packet count in `pps` is bumped (per-CPU, so RX queues
 *      on different CPUs never contend on a hot counter);
 *   4. ICMP is dropped when `config.drop_icmp` is set, counted in
 *      `icmp_drops`;
 *   5. UDP to a destination port in `udp_ports` is dropped;
 *   6. everything else is passed.
 *
 * Every outcome is counted in `stats` (packets and bytes, per CPU). A frame
 * whose headers are truncated or whose IPv4 `ihl` is below 5 is counted as
 * malformed and passed: the firewall never drops what it does not
 * understand. Right after load, every rule map is empty and every switch
 * off, so the program drops nothing until an operator configures it.
 *
 * The map names, key and value types are xdpctl's user interface: keys are
 * declared with their wire types (__be32 address, __be16 port) so that BTF
 * tells userspace how to print and parse them.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdpfw.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);  /* IPv4 source address, network order */
	__type(value, __u8);  /* non-zero: drop */
	__uint(max_entries, XDPFW_BLOCKLIST_MAX);
} blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, __be32);  /* IPv4 source address, network order */
	__type(value, __u64); /* packets seen from that source */
	__uint(max_entries, XDPFW_PPS_MAX);
} pps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be16);  /* UDP destination port, network order */
	__type(value, __u8);  /* non-zero: drop */
	__uint(max_entries, XDPFW_UDP_PORTS_MAX);
} udp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64); /* ICMP packets dropped */
	__uint(max_entries, 1);
} icmp_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_config);
	__uint(max_entries, 1);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32); /* enum xdpfw_outcome */
	__type(value, struct xdpfw_counter);
	__uint(max_entries, XDPFW_OUTCOME_SLOTS);
} stats SEC(".maps");

static __always_inline int account(struct xdp_md *ctx, enum xdpfw_outcome outcome, int verdict)
{
	__u32 key = outcome;
	struct xdpfw_counter *c = bpf_map_lookup_elem(&stats, &key);

	if (c) {
		/* Per-CPU value: no other CPU writes it, no atomics needed. */
		c->packets += 1;
		c->bytes += (__u64)(ctx->data_end - ctx->data);
	}
	return verdict;
}

static __always_inline void count_source(__be32 src)
{
	__u64 one = 1;
	__u64 *n = bpf_map_lookup_elem(&pps, &src);

	if (n)
		*n += 1;
	else
		/* BPF_NOEXIST: a concurrent first packet on another CPU wins, fine. */
		bpf_map_update_elem(&pps, &src, &one, BPF_NOEXIST);
}

SEC("xdp")
int xdp_fw(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 zero = 0;

	if ((void *)(eth + 1) > data_end)
		return account(ctx, XDPFW_MALFORMED, XDP_PASS);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return account(ctx, XDPFW_PASSED, XDP_PASS);

	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return account(ctx, XDPFW_MALFORMED, XDP_PASS);
	if (ip->ihl < 5)
		return account(ctx, XDPFW_MALFORMED, XDP_PASS);

	__be32 src = ip->saddr;
	__u8 *blocked = bpf_map_lookup_elem(&blocklist, &src);

	if (blocked && *blocked)
		return account(ctx, XDPFW_DROP_BLOCKLIST, XDP_DROP);

	count_source(src);

	/* Options are skipped: the L4 header starts at ihl * 4. */
	void *l4 = (void *)ip + ip->ihl * 4;

	if (ip->protocol == IPPROTO_ICMP) {
		struct xdpfw_config *cfg = bpf_map_lookup_elem(&config, &zero);

		if (cfg && cfg->drop_icmp) {
			__u64 *n = bpf_map_lookup_elem(&icmp_drops, &zero);

			if (n)
				*n += 1;
			return account(ctx, XDPFW_DROP_ICMP, XDP_DROP);
		}
		return account(ctx, XDPFW_PASSED, XDP_PASS);
	}

	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return account(ctx, XDPFW_MALFORMED, XDP_PASS);

		__be16 dport = udp->dest;
		__u8 *drop = bpf_map_lookup_elem(&udp_ports, &dport);

		if (drop && *drop)
			return account(ctx, XDPFW_DROP_UDP_PORT, XDP_DROP);
	}

	return account(ctx, XDPFW_PASSED, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";
