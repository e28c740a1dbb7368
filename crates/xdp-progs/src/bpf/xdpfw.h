/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Types shared by xdpfw.bpf.c and, by hand, the Rust API in src/lib.rs: keep
 * the two in step (a unit test there checks the sizes against the object's
 * BTF).
 */
#ifndef XDPFW_H
#define XDPFW_H

#include <linux/types.h>
#include <linux/in6.h>

#define XDPFW_BLOCKLIST_MAX 65536
#define XDPFW_CIDR_MAX 65536
#define XDPFW_PPS_MAX 1000000
#define XDPFW_PPS6_MAX 262144
#define XDPFW_PORTS_MAX 65536

/* VLAN tags parsed (802.1Q and 802.1ad); a frame with more is not parsed. */
#define XDPFW_MAX_VLAN 2
/* IPv6 extension headers walked before giving up on finding the L4 header. */
#define XDPFW_MAX_EXTHDR 6

/* Index into the `stats` map: what the firewall did with a packet. */
enum xdpfw_outcome {
	XDPFW_PASSED = 0,	  /* matched no rule */
	XDPFW_DROP_BLOCKLIST = 1, /* source in blocklist / blocklist6 */
	XDPFW_DROP_UDP_PORT = 2,  /* UDP destination port in udp_ports */
	XDPFW_DROP_ICMP = 3,	  /* ICMPv4 while config.drop_icmp */
	XDPFW_MALFORMED = 4,	  /* truncated or inconsistent headers: passed */
	XDPFW_DROP_CIDR = 5,	  /* source in cidr4 / cidr6 */
	XDPFW_DROP_TCP_PORT = 6,  /* TCP destination port in tcp_ports */
	XDPFW_DROP_ICMP6 = 7,	  /* ICMPv6 echo while config.drop_icmp6_echo */
	XDPFW_UNPARSED = 8,	  /* not IPv4/IPv6, or deeper than parsed: passed */
};

/* Slots reserved in `stats`, so later outcomes fit a map that is reused. */
#define XDPFW_OUTCOME_SLOTS 16

struct xdpfw_counter {
	__u64 packets;
	__u64 bytes;
};

/* Runtime switches: one entry in the `config` array. All off by default. */
struct xdpfw_config {
	__u8 drop_icmp;	      /* non-zero: drop ICMPv4, counted in `icmp_drops` */
	__u8 drop_icmp6_echo; /* non-zero: drop ICMPv6 echo request/reply (never ND) */
};

/* LPM trie keys: prefix length in bits, then the address. */
struct xdpfw_cidr4 {
	__u32 prefixlen;
	__be32 addr;
};

struct xdpfw_cidr6 {
	__u32 prefixlen;
	struct in6_addr addr;
};

#endif
