// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Maps of every key and value shape xdpctl formats, for the map tests. */
#include <linux/bpf.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>

struct lpm_v4 {
	__u32 prefixlen;
	__be32 addr;
};

struct lpm_v6 {
	__u32 prefixlen;
	struct in6_addr addr;
};

enum verdict { VERDICT_PASS = 2, VERDICT_DROP = 1 };

struct rule {
	enum verdict verdict;
	__u16 weight;
	__s32 offset;
	char label[8];
	__u32 ports[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v4);
	__type(value, __u8);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cidr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v6);
	__type(value, __u8);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cidr6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct in6_addr);
	__type(value, __u64);
	__uint(max_entries, 1024);
} addr6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct rule);
	__uint(max_entries, 16);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u8);
	__uint(max_entries, 4);
} tiny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __be16);
	__type(value, __u64);
	__uint(max_entries, 64);
} percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u64);
	__uint(max_entries, 1000000);
} big SEC(".maps");

SEC("xdp")
int typed(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
