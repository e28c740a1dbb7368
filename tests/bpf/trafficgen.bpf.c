// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The benchmark's traffic generators, two programs sharing one `config`:
 *
 * - `trafficgen`, run with BPF_PROG_TEST_RUN and
 *   BPF_F_TEST_XDP_LIVE_FRAMES: every frame it returns XDP_TX for is sent
 *   out of the device named in the run's context (where the kernel allows
 *   live frames; a locked-down kernel refuses them to root too);
 * - `floodrun`, run with plain BPF_PROG_TEST_RUN and `repeat`: it rewrites
 *   the source the same way, then tail-calls the program under test in
 *   slot 0 of `target` and returns that program's verdict, so each repeat
 *   is one packet judged by it, and the kernel's time per repeat is the
 *   generator's (a few ns, the same for every program compared) plus the
 *   program's own. Returns XDP_ABORTED if the slot is empty.
 *
 * The frame (Ethernet + IPv4, from userspace) is sent as given, except for
 * its IPv4 source, which `config` can vary per packet: round-robin over
 * `count` addresses from `base`, or `base | (random & mask)`. Userspace
 * sets `config` between runs, without reloading.
 *
 * NB: live frames are recycled from a page pool without being copied
 * again, so a frame may hold the source this program wrote last time. The
 * checksum is therefore computed from `sum` (the header without source and
 * checksum, given by userspace) and the new source, never from what is in
 * the frame.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

enum trafficgen_mode {
	TRAFFICGEN_AS_IS = 0,	    /* the frame's own source */
	TRAFFICGEN_ROUND_ROBIN = 1, /* base + seq % count */
	TRAFFICGEN_RANDOM = 2,	    /* base | (random & mask) */
};

/* Keep in step with `Config` in tests/src/flood.rs. */
struct trafficgen_config {
	__u32 mode;
	__u32 base;  /* host order */
	__u32 count; /* ROUND_ROBIN: addresses, at least 1 */
	__u32 mask;  /* RANDOM: the random bits */
	__u32 sum;   /* one's-complement sum of the header's other 16-bit words */
	__u32 seq;   /* ROUND_ROBIN: next index; the run is on one CPU */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct trafficgen_config);
	__uint(max_entries, 1);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} target SEC(".maps");

/* Rewrites the frame's IPv4 source as `config` says. */
static __always_inline void rewrite_source(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 zero = 0;
	struct trafficgen_config *cfg = bpf_map_lookup_elem(&config, &zero);
	__u32 src;

	if (!cfg || (void *)(ip + 1) > data_end)
		return;
	if (cfg->mode == TRAFFICGEN_ROUND_ROBIN) {
		src = cfg->base + (cfg->count ? cfg->seq % cfg->count : 0);
		cfg->seq += 1;
	} else if (cfg->mode == TRAFFICGEN_RANDOM) {
		src = cfg->base | (bpf_get_prandom_u32() & cfg->mask);
	} else {
		return;
	}

	__be32 saddr = bpf_htonl(src);
	/* Sum the address as the two 16-bit words it is in memory. */
	__u32 sum = cfg->sum + (saddr & 0xffff) + (saddr >> 16);

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->saddr = saddr;
	ip->check = (__sum16)~sum;
}

SEC("xdp")
int trafficgen(struct xdp_md *ctx)
{
	rewrite_source(ctx);
	return XDP_TX;
}

SEC("xdp")
int floodrun(struct xdp_md *ctx)
{
	rewrite_source(ctx);
	bpf_tail_call(ctx, &target, 0);
	return XDP_ABORTED;
}

/* A frame `synrun` restores before every packet (a program under test
 * may rewrite it in place, as a SYN answered with a SYN-ACK is). */
struct trafficgen_frame {
	__u32 len; /* 14..128 */
	__u8 bytes[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct trafficgen_frame);
	__uint(max_entries, 1);
} frame SEC(".maps");

SEC("xdp")
int synrun(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct trafficgen_frame *f = bpf_map_lookup_elem(&frame, &zero);

	if (!f)
		return XDP_ABORTED;
	__u32 len = f->len;

	if (len < 14 || len > 128)
		return XDP_ABORTED;
	__u32 cur = ctx->data_end - ctx->data;

	asm volatile("" : "+r"(cur));

	if (bpf_xdp_adjust_tail(ctx, (int)len - (int)cur))
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, f->bytes, len))
		return XDP_ABORTED;
	rewrite_source(ctx);
	bpf_tail_call(ctx, &target, 0);
	return XDP_ABORTED;
}

char _license[] SEC("license") = "Dual MIT/GPL";
