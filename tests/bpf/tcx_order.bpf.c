// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Three tcx programs that each append their digit to a packet's mark and
 * hand it on (TCX_NEXT), and one that records the mark of the last packet
 * it saw: the order a hook runs its programs in, told by the traffic. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef TCX_NEXT
#define TCX_NEXT -1
#define TCX_PASS 0
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} seen SEC(".maps");

SEC("classifier")
int tcx_one(struct __sk_buff *skb)
{
	skb->mark = skb->mark * 10 + 1;
	return TCX_NEXT;
}

SEC("classifier")
int tcx_two(struct __sk_buff *skb)
{
	skb->mark = skb->mark * 10 + 2;
	return TCX_NEXT;
}

SEC("classifier")
int tcx_three(struct __sk_buff *skb)
{
	skb->mark = skb->mark * 10 + 3;
	return TCX_NEXT;
}

SEC("classifier")
int tcx_record(struct __sk_buff *skb)
{
	__u32 zero = 0, mark = skb->mark;

	/* Only what went through the others: ARP and the like pass with 0. */
	if (mark)
		bpf_map_update_elem(&seen, &zero, &mark, BPF_ANY);
	return TCX_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
