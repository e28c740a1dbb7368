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

/* A program that appends `digit` to the mark and hands the packet on. */
#define APPEND(name, digit)                               \
	SEC("classifier")                                 \
	int name(struct __sk_buff *skb)                   \
	{                                                 \
		skb->mark = skb->mark * 10 + (digit);     \
		return TCX_NEXT;                          \
	}

APPEND(tcx_one, 1)
APPEND(tcx_two, 2)
APPEND(tcx_three, 3)

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
