// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * A multi-program XDP dispatcher speaking libxdp's protocol, version 2
 * (xdp-tools, lib/libxdp/protocol.org), written from that document so
 * that xdpctl can put a program into the dispatcher libxdp users
 * (xdp-loader, xdp-filter) share, or make one they can add to.
 *
 * The entry point, `xdp_dispatcher`, calls the stubs prog0..prog9 in turn;
 * each is replaced by a component program (`freplace`). After slot i, the
 * packet goes on to slot i+1 only if the action slot i returned is set in
 * conf.chain_call_actions[i]; a stub left in place returns
 * XDP_DISPATCHER_RETVAL, which every slot's actions include, so a slot
 * whose program went is passed over. conf is `.rodata`, filled in before
 * the load and frozen, so the verifier drops the calls past
 * num_progs_enabled.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define XDP_DISPATCHER_VERSION 2
#define XDP_DISPATCHER_RETVAL 31
#define MAX_DISPATCHER_ACTIONS 10

struct xdp_dispatcher_config {
	__u8 magic;		/* 236 */
	__u8 dispatcher_version; /* 2 */
	__u8 num_progs_enabled;
	__u8 is_xdp_frags;
	__u32 chain_call_actions[MAX_DISPATCHER_ACTIONS];
	__u32 run_prios[MAX_DISPATCHER_ACTIONS];
	__u32 program_flags[MAX_DISPATCHER_ACTIONS];
};

/* Filled in by xdpctl before the load (the `conf` global). */
volatile const struct xdp_dispatcher_config conf = {};

/* A slot: replaced by a component program. The volatile return keeps
 * the compiler from folding the call away. */
#define SLOT(n)                                         \
	__attribute__((noinline)) int prog##n(struct xdp_md *ctx) \
	{                                               \
		volatile int ret = XDP_DISPATCHER_RETVAL;   \
		if (!ctx)                               \
			return XDP_ABORTED;             \
		return ret;                             \
	}

SLOT(0)
SLOT(1)
SLOT(2)
SLOT(3)
SLOT(4)
SLOT(5)
SLOT(6)
SLOT(7)
SLOT(8)
SLOT(9)

/* Runs slot n; returns from the dispatcher unless its action chains on. */
#define RUN(n)                                                  \
	if (num > n) {                                          \
		ret = prog##n(ctx);                             \
		if (!((1U << ret) & conf.chain_call_actions[n])) \
			return ret;                             \
	}

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	__u8 num = conf.num_progs_enabled;
	int ret;

	RUN(0)
	RUN(1)
	RUN(2)
	RUN(3)
	RUN(4)
	RUN(5)
	RUN(6)
	RUN(7)
	RUN(8)
	RUN(9)
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
/* The protocol version, as libxdp reads it from the object's BTF (a
 * DATASEC `xdp_metadata`, its var's type a pointer to an array of that
 * many elements: bpf_helpers.h's __uint). */
__uint(dispatcher_version, XDP_DISPATCHER_VERSION) SEC("xdp_metadata");
