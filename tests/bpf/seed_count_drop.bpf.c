// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The bench's peer for per-source counting: the seed article's
 * count-then-drop program, written here from its description. A source
 * in `blocklist` is dropped; every other packet is counted per source in
 * a 1M-entry LRU hash (atomically, inserting a new source) and passed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1000000);
} pps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, 65536);
} blocklist SEC(".maps");

SEC("xdp")
int seed_count_drop(struct xdp_md *ctx)
{
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u32 src = ip->saddr;
	__u8 *hit = bpf_map_lookup_elem(&blocklist, &src);

	if (hit && *hit)
		return XDP_DROP;
	__u64 *n = bpf_map_lookup_elem(&pps, &src);

	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;

		bpf_map_update_elem(&pps, &src, &one, BPF_ANY);
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
