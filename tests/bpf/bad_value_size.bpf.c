// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Deliberately invalid: reads 8 bytes from a 4-byte map value, after the
 * NULL check (what a program compiled for a bigger value does with a map of
 * a smaller one). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} small SEC(".maps");

SEC("xdp")
int value_overrun(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&small, &key);

	if (!v)
		return XDP_PASS;
	return *v ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
