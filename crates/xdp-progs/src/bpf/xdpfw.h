/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Types shared by xdpfw.bpf.c and, by hand, the Rust API in src/lib.rs: keep
 * the two in step (a unit test there checks the sizes against the object's
 * BTF).
 */
#ifndef XDPFW_H
#define XDPFW_H

#include <linux/types.h>

#define XDPFW_BLOCKLIST_MAX 65536
#define XDPFW_PPS_MAX 1000000
#define XDPFW_UDP_PORTS_MAX 65536

/* Index into the `stats` map. */
enum xdpfw_outcome {
	XDPFW_PASSED = 0,
	XDPFW_DROP_BLOCKLIST = 1,
	XDPFW_DROP_UDP_PORT = 2,
	XDPFW_DROP_ICMP = 3,
	XDPFW_MALFORMED = 4,
};

/* Slots reserved in `stats`, so later outcomes fit a map that is reused. */
#define XDPFW_OUTCOME_SLOTS 16

struct xdpfw_counter {
	__u64 packets;
	__u64 bytes;
};

/* Runtime switches: one entry in the `config` array. All off by default. */
struct xdpfw_config {
	__u8 drop_icmp; /* non-zero: drop ICMPv4, counted in `icmp_drops` */
};

#endif
