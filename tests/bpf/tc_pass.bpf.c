// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A tc program that passes everything: stands in for other tools' tc and
 * tcx programs (Cilium's, say) in the net show tests. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("classifier")
int tc_pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual MIT/GPL";
