// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A user's own XDP object: counts packets per EtherType, passes all. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be16);
	__type(value, __u64);
	__uint(max_entries, 64);
} ethertypes SEC(".maps");

/* Same definition as xdpfw's blocklist, to test --map reuse. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u8);
	__uint(max_entries, 65536);
} blocklist SEC(".maps");

SEC("xdp")
int count_types(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 one = 1, *n;
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = eth->h_proto;
	n = bpf_map_lookup_elem(&ethertypes, &proto);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&ethertypes, &proto, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
