// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The floor of answering a SYN with the kernel's own cookie from XDP: an
 * IPv4 SYN with an MSS option only (a spoofer's) is turned into its
 * SYN-ACK in place (the cookie from bpf_tcp_raw_gen_syncookie_ipv4,
 * addresses and ports swapped, both checksums right) and sent back with
 * XDP_TX. No rules, no other option, nothing counted: what any XDP
 * program answering SYN cookies pays on the device. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

SEC("xdp")
int xdp_cookie_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *th = (void *)(ip + 1);
	unsigned char mac[ETH_ALEN];

	if ((void *)th + 24 > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_TCP || ip->ihl != 5 || th->doff != 6 || !th->syn || th->ack)
		return XDP_PASS;
	__s64 value = bpf_tcp_raw_gen_syncookie_ipv4(ip, th, 24);

	if (value < 0)
		return XDP_PASS;
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	__be32 a = ip->saddr;

	ip->saddr = ip->daddr;
	ip->daddr = a;
	ip->ttl = 64;
	ip->check = 0;
	__u32 *w = (__u32 *)ip;

	ip->check = fold((__u64)w[0] + w[1] + w[2] + w[3] + w[4]);
	__be16 port = th->source;

	th->source = th->dest;
	th->dest = port;
	th->ack_seq = bpf_htonl(bpf_ntohl(th->seq) + 1);
	th->seq = bpf_htonl((__u32)value);
	th->ack = 1;
	th->window = bpf_htons(65535);
	th->check = 0;
	__u32 *t = (__u32 *)th;

	th->check = fold((__u64)ip->saddr + ip->daddr + bpf_htonl(IPPROTO_TCP << 16 | 24) + t[0] +
			 t[1] + t[2] + t[3] + t[4] + t[5]);
	return XDP_TX;
}

char _license[] SEC("license") = "Dual MIT/GPL";
