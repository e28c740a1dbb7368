// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Deliberately invalid: dereferences a hash map lookup without a NULL check
 * (array lookups with a constant in-range key need none on new kernels). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} counter SEC(".maps");

SEC("xdp")
int no_null_check(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&counter, &key);

	*n += 1; /* Missing: if (!n) return XDP_PASS; */
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
