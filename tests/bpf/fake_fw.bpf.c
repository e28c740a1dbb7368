// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Not the firewall: an object whose maps have the built-in firewall's
 * names but other shapes. Commands that read a firewall load must refuse
 * a load of it, naming the map and the field.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u64);
	__type(value, __u8);
} blocklist6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u8);
} pps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u8);
} pps6 SEC(".maps");

SEC("xdp")
int xdp_fw(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 k6 = 0;
	__u64 *v = bpf_map_lookup_elem(&blocklist, &k);
	__u8 *b = bpf_map_lookup_elem(&blocklist6, &k6);
	__u32 *s = bpf_map_lookup_elem(&stats, &k);
	__u8 *p = bpf_map_lookup_elem(&pps, &k);
	__u8 *q = bpf_map_lookup_elem(&pps6, &k);

	return (v || b || s || p || q) ? XDP_PASS : XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
