// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Global data in all three sections, of several types: .rodata is a
 * constant, .data starts set, .bss starts zero. xdpctl creates their maps
 * with the DATASEC as the value type, so they read back by name. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct limits {
	__u32 port;
	char name[8];
	union {
		__u64 packets;
		__u64 rx_packets;
	};
};

struct opts {
	__u32 verbose : 1, level : 3, queue : 12;
	__u32 rest;
};

volatile const int refcnt = 1;
volatile const struct limits conf = { .port = 53, .name = "dns", .packets = 9 };
volatile const __u8 mode = 2;
volatile const struct opts opts = { .verbose = 1, .level = 5, .queue = 300, .rest = 4 };
__u64 hits = 7;
__u16 ports[3] = { 80, 443, 8080 };
__u64 seen;

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	hits++;
	seen += refcnt + conf.port + mode + ports[0] + opts.level;
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
