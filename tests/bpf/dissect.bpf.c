// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A flow dissector that accepts everything: stands in for another tool's in
 * the net show test. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	return BPF_OK;
}

char _license[] SEC("license") = "Dual MIT/GPL";
