// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * xdpfw: the built-in XDP firewall of xdpctl.
 *
 * Parsing: Ethernet with up to two VLAN tags (802.1Q, 802.1ad), then IPv4
 * (options skipped) or IPv6 (hop-by-hop, routing, destination options and
 * fragment headers walked, at most XDPFW_MAX_EXTHDR of them).
 *
 * Per packet, in this order, the cheapest rules first and every drop rule
 * before any per-source state (so a flood that a rule drops costs a few
 * array reads and no writes), each IPv4 rule through an index, a filter or
 * a cache xdpctl keeps next to its map (see xdpfw.h), so that none costs a
 * hash lookup in the common case, and cidr6 through an index whose cost
 * does not grow with its prefixes (blocklist6 is one hash lookup already).
 * A kind of rule whose maps xdpctl found empty is skipped (its mode word
 * says XDPFW_INDEX_EMPTY), so a packet pays only for the rules in use:
 *   1. ICMPv4 is dropped when `config.drop_icmp` is set (counted in
 *      `icmp_drops`); ICMPv6 echo request and reply when
 *      `config.drop_icmp6_echo` is set (never neighbour discovery);
 *   2. UDP to a port in `udp_ports` and TCP to a port in `tcp_ports` are
 *      dropped;
 *   3. a source in `blocklist` / `blocklist6` is dropped, then a source in
 *      `cidr4` / `cidr6`, then a source over its limit in `rate4` /
 *      `rate6`;
 *   4. a SYN to a port in `syn_ports` is answered with a SYN cookie
 *      (XDP_TX; see xdpfw.h), its source counted as below, but for one
 *      new to a CPU flooded by new sources (see count());
 *   5. everything else is passed, and its source counted in `pps` / `pps6`
 *      (per-CPU, so RX queues on different CPUs never contend on a hot
 *      counter; under a flood, new sources first go through a sketch: see
 *      xdpfw.h).
 * A packet two rules would drop is counted under the first.
 *
 * Fragments: only the first fragment carries the L4 header, so port rules
 * and the ICMPv6 echo rule see only first fragments; later fragments are
 * never parsed for ports (their payload would be misread as a header) and
 * pass unless a source rule or the ICMPv4 rule (by IP protocol) drops them.
 * A flow whose first fragment is dropped cannot be reassembled, so its
 * later fragments are harmless to the receiver.
 *
 * Every outcome is counted in `stats` (packets and bytes, per CPU). Headers
 * that are truncated or inconsistent (IPv4 ihl below 5 or beyond the total
 * length, lengths beyond the frame, a wrong IP version) are counted as
 * malformed and passed; frames that are not IPv4/IPv6 or go deeper than the
 * parser does as unparsed and passed. The firewall never drops what it does
 * not understand. Right after load every rule map is empty and every switch
 * off, so it drops nothing until an operator configures it.
 *
 * The map names, key and value types are xdpctl's user interface: keys are
 * declared with their wire types (__be32 address, struct in6_addr, __be16
 * port, LPM keys) so that BTF tells userspace how to print and parse them.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdpfw.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

struct icmp_head {
	__u8 type;
	__u8 code;
	__sum16 checksum;
};

/* The indexes `doctor --check` reads whole are mmapable: xdpctl reads them
 * through their mapping (kernel/mapview.rs). XDPFW_NO_MMAPABLE: the tests'
 * firewall as an older xdpctl made it. */
#ifndef XDPFW_NO_MMAPABLE
#define XDPFW_MMAPABLE __uint(map_flags, BPF_F_MMAPABLE);
#else
#define XDPFW_MMAPABLE
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);  /* IPv4 source address, network order */
	__type(value, __u8);  /* non-zero: drop */
	__uint(max_entries, XDPFW_BLOCKLIST_MAX);
} blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct in6_addr); /* IPv6 source address */
	__type(value, __u8);	      /* non-zero: drop */
	__uint(max_entries, XDPFW_BLOCKLIST_MAX);
} blocklist6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct xdpfw_cidr4); /* IPv4 source prefix */
	__type(value, __u8);		 /* non-zero: drop */
	__uint(max_entries, XDPFW_CIDR_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cidr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct xdpfw_cidr6); /* IPv6 source prefix */
	__type(value, __u8);		 /* non-zero: drop */
	__uint(max_entries, XDPFW_CIDR_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cidr6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* the address's top 16 bits */
	__type(value, __u32); /* 0, MATCH | value or CHUNK | chunk: see xdpfw.h */
	__uint(max_entries, XDPFW_CIDR4_L1);
	XDPFW_MMAPABLE
} cidr4_l1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* chunk * 256 + the address's next 8 bits */
	__type(value, __u32); /* as in cidr4_l1 */
	__uint(max_entries, XDPFW_CIDR4_CHUNKS * XDPFW_CIDR4_CHUNK_ENTRIES);
} cidr4_chunks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);			/* chunk number, past cidr4_chunks' room */
	__type(value, struct xdpfw_cidr4_chunk); /* as a chunk of cidr4_chunks */
	__uint(max_entries, XDPFW_CIDR4_SPILL);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cidr4_spill SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be16);  /* TCP destination port, network order */
	__type(value, __u8);  /* non-zero: SYNs answered with SYN cookies */
	__uint(max_entries, XDPFW_PORTS_MAX);
} syn_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_port_bits); /* syn_ports as a bitmap */
	__uint(max_entries, 1);
} syn_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_syn_cfg);
	__uint(max_entries, 1);
} syn_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* TCP port, host order; + 65536 for IPv6 */
	__type(value, __u64); /* when a SYN to it was last handed to the kernel */
	__uint(max_entries, 2 * 65536);
} syn_keep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct xdpfw_cidr4);     /* IPv4 source prefix */
	__type(value, struct xdpfw_rate);    /* its rate limit */
	__uint(max_entries, XDPFW_RATE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} rate4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct xdpfw_cidr6);     /* IPv6 source prefix */
	__type(value, struct xdpfw_rate);    /* its rate limit */
	__uint(max_entries, XDPFW_RATE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} rate6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xdpfw_rate_key);    /* a source under a per-source limit */
	__type(value, struct xdpfw_rate_state); /* its buckets */
	__uint(max_entries, XDPFW_RATE_STATE_MAX);
	/* An LRU list per CPU: new sources flooding one CPU evict that CPU's
	 * least recent, never a steady source another CPU keeps using. */
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} rate_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_cidr6_lens);
	__uint(max_entries, 1);
} cidr6_lens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xdpfw_cidr6); /* a prefix or marker, address masked */
	__type(value, __u32);		 /* 0 or MATCH | value: see xdpfw.h */
	__uint(max_entries, XDPFW_CIDR6_INDEX_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} cidr6_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* word of the filter */
	__type(value, __u64); /* 64 of its bits */
	__uint(max_entries, (1 << XDPFW_CIDR6_FILTER_BITS) / 64);
	XDPFW_MMAPABLE
} cidr6_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* enum xdpfw_ctl */
	__type(value, __u64);
	__uint(max_entries, XDPFW_CTL_SLOTS);
} ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_sketch_hdr);
	__uint(max_entries, 1);
} sketch_hdr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32); /* the top bits of the source's hash */
	__type(value, struct xdpfw_sketch_slab);
	__uint(max_entries, XDPFW_SKETCH_WIDTH / XDPFW_SKETCH_SLAB);
} sketch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* hash of the source */
	__type(value, __u32); /* a source in pps/pps6 (folded to 32 bits) */
	__uint(max_entries, 1 << XDPFW_HEAVY_BITS);
} heavy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* hash of the source */
	__type(value, __u64); /* (generation | MARK) << 32 | source: see xdpfw.h */
	__uint(max_entries, 1 << XDPFW_BLOCKED_BITS);
} drop_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);   /* word of the filter */
	__type(value, __u64); /* 64 of its bits */
	__uint(max_entries, (1 << XDPFW_BLOOM_BITS) / 64);
	XDPFW_MMAPABLE
} bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32); /* 0: UDP, 1: TCP */
	__type(value, struct xdpfw_port_bits);
	__uint(max_entries, 2);
} port_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, __be32);  /* IPv4 source address, network order */
	__type(value, __u64); /* packets seen from that source */
	__uint(max_entries, XDPFW_PPS_MAX);
} pps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct in6_addr); /* IPv6 source address */
	__type(value, __u64);	      /* packets seen from that source */
	__uint(max_entries, XDPFW_PPS6_MAX);
} pps6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be16);  /* UDP destination port, network order */
	__type(value, __u8);  /* non-zero: drop */
	__uint(max_entries, XDPFW_PORTS_MAX);
} udp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be16);  /* TCP destination port, network order */
	__type(value, __u8);  /* non-zero: drop */
	__uint(max_entries, XDPFW_PORTS_MAX);
} tcp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64); /* ICMPv4 packets dropped */
	__uint(max_entries, 1);
} icmp_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_config);
	__uint(max_entries, 1);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32); /* enum xdpfw_outcome */
	__type(value, struct xdpfw_counter);
	__uint(max_entries, XDPFW_OUTCOME_SLOTS);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_capture_cfg);
	__uint(max_entries, 1);
} capture_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpfw_capture_slot);
	__uint(max_entries, 1);
} capture_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, XDPFW_CAPTURE_RING);
} capture_rb SEC(".maps");

/* The next XDP program (slot 0), set by `xdpctl chain`: what the firewall
 * passes goes on to it, through a tail call. An empty slot: XDP_PASS. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} chain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32); /* hash of the rule */
	__type(value, struct xdpfw_hit_slot);
	__uint(max_entries, 1 << XDPFW_HIT_CACHE_BITS);
} hit_cache SEC(".maps");

/* Shared by the CPUs (written only when a rule leaves a cache slot, so
 * atomics cost nothing), and preallocated: an insert from the datapath
 * never fails for want of memory, only when the map is full. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xdpfw_rule);
	__type(value, struct xdpfw_hits); /* moved out of hit_cache */
	__uint(max_entries, XDPFW_RULE_HITS_MAX);
} rule_hits SEC(".maps");

/* What every rule check of one packet shares. */
struct pkt {
	struct xdpfw_sketch_hdr *h; /* this CPU's sketch header, or NULL */
	int tick;		    /* also judge this packet by the rule maps */
	__u32 len;		    /* the frame's bytes, for the rules' counters */
	__be16 syn_port;	    /* the protected port of a SYN (XDPFW_SYN_COOKIE) */
};

/* Counts a packet of `len` bytes under `outcome`, in one place for every
 * verdict (one copy of this code, not one per return). */
static __always_inline void account(__u32 outcome, __u32 len)
{
	struct xdpfw_counter *c = bpf_map_lookup_elem(&stats, &outcome);

	if (c) {
		/* Per-CPU value: no other CPU writes it, no atomics needed. */
		c->packets += 1;
		c->bytes += len;
	}
}

/* The judging functions return an outcome; xdp_fw counts it and turns it
 * into the verdict. */
#define PASS(outcome) (outcome)
#define DROP(outcome) (outcome)

static __always_inline __u64 *ctl_word(__u32 word)
{
	return bpf_map_lookup_elem(&ctl, &word);
}

/* A mode word's value; a firewall whose `ctl` lacks the word (loaded by
 * an older xdpctl) looks the rule map up. */
static __always_inline __u64 mode_of(__u64 *mode)
{
	return mode ? *mode : XDPFW_INDEX_OFF;
}

/* The rule maps of `mode`'s kind differ from what xdpctl derived from
 * them (another tool wrote them): the rule maps decide from now on, and
 * the drift is counted for `xdpctl stats` and `doctor`. */
static __always_inline void drifted(__u64 *mode, __u32 drift_word)
{
	__u64 *drift = ctl_word(drift_word);

	if (drift)
		__sync_fetch_and_add(drift, 1);
	*mode = XDPFW_INDEX_OFF;
}

/* Adds a slot's counts to the rule's entry of `rule_hits`. */
static __always_inline void hits_add(struct xdpfw_hits *t, const struct xdpfw_hit_slot *s)
{
	__sync_fetch_and_add(&t->packets, s->hits.packets);
	__sync_fetch_and_add(&t->bytes, s->hits.bytes);
	/* Not atomic: two CPUs moving the same rule at once may keep the
	 * older of their two times, off by less than their moves' gap. */
	if (s->hits.last_ns > t->last_ns)
		t->last_ns = s->hits.last_ns;
}

/* Moves a slot's counts into `rule_hits` (its rule leaves the slot). */
static __always_inline void hits_flush(struct xdpfw_hit_slot *s)
{
	struct xdpfw_hits *t = bpf_map_lookup_elem(&rule_hits, &s->rule);

	if (t) {
		hits_add(t, s);
		return;
	}
	if (!bpf_map_update_elem(&rule_hits, &s->rule, &s->hits, BPF_NOEXIST))
		return;
	/* Another CPU inserted it meanwhile, or the map is full. */
	t = bpf_map_lookup_elem(&rule_hits, &s->rule);
	if (t) {
		hits_add(t, s);
		return;
	}
	__u64 *lost = ctl_word(XDPFW_CTL_RULE_HITS_LOST);

	if (lost)
		__sync_fetch_and_add(lost, s->hits.packets);
}

/*
 * Counts a hit of rule `r` on a packet of `len` bytes (see xdpfw.h): a
 * function of its own (a BPF global function), verified once for every
 * rule that calls it; called only while the counters are on.
 */
static __always_inline int rule_hit(const struct xdpfw_rule *r, __u32 len)
{
	if (!r)
		return 0;
	const __u32 *w = (const __u32 *)r;
	__u32 h = (w[0] * 0x9e3779b1u) ^ (w[1] * 0x85ebca6bu) ^ (w[2] * 0xc2b2ae35u) ^
		  (w[3] * 0x27d4eb2fu) ^ (w[4] * 0x165667b1u);
	__u32 slot = (h * 2654435761u) >> (32 - XDPFW_HIT_CACHE_BITS);
	struct xdpfw_hit_slot *s = bpf_map_lookup_elem(&hit_cache, &slot);

	if (!s)
		return 0;
	const __u32 *have = (const __u32 *)&s->rule;

	if (have[0] != w[0] || have[1] != w[1] || have[2] != w[2] || have[3] != w[3] ||
	    have[4] != w[4]) {
		if (s->hits.packets)
			hits_flush(s);
		s->rule = *r;
		s->hits.packets = 0;
		s->hits.bytes = 0;
		s->hits.last_ns = 0;
	}
	s->hits.packets += 1;
	s->hits.bytes += len;
	/* The clock once a jiffy per slot (bpf_jiffies64 is a memory read). */
	__u32 j = (__u32)bpf_jiffies64();

	if (s->jiffies != j || !s->hits.last_ns) {
		s->jiffies = j;
		s->hits.last_ns = bpf_ktime_get_coarse_ns();
	}
	return 0;
}

/* Whether the rules' counters are on. */
static __always_inline int hits_on(void)
{
	__u64 *on = ctl_word(XDPFW_CTL_RULE_HITS_ON);

	return on && *on;
}

/* A hit of a port rule (`port` network order). */
static __always_inline void port_hit(struct pkt *pk, __u8 kind, __be16 port)
{
	if (!hits_on())
		return;
	struct xdpfw_rule r = { .kind = kind, .port = port };

	rule_hit(&r, pk->len);
}

/* A hit of an IPv4 source rule: the address, or a prefix of `len` bits. */
static __always_inline void src4_hit(struct pkt *pk, __u8 kind, __be32 src, __u32 len)
{
	if (!hits_on())
		return;
	struct xdpfw_rule r = { .kind = kind, .prefixlen = len };
	__u32 mask = len == 0 || len > 32 ? 0 : 0xffffffffu << (32 - len);

	*(__be32 *)r.addr = src & bpf_htonl(mask);
	rule_hit(&r, pk->len);
}

/* The slot of a (folded) source in `heavy`. */
static __always_inline __u32 heavy_slot(__u32 folded)
{
	return (folded * 2654435761u) >> (32 - XDPFW_HEAVY_BITS);
}

/* Counts a packet from a source in `map` if it is there, and remembers it
 * in `heavy` (slot `c`) so that a flood need not look it up. */
static __always_inline int bump(void *map, void *src, __u32 *c, __u32 folded)
{
	__u64 *n = bpf_map_lookup_elem(map, src);

	if (!n)
		return 0;
	*n += 1;
	if (c && *c != folded)
		*c = folded;
	return 1;
}

/*
 * Counts a passed packet from a source (key of `map`, folded to 32 bits):
 * exactly, in `map`, unless the CPU is flooded by new sources and this one
 * is not heavy enough yet (see xdpfw.h). A packet that proves nothing of
 * its source (`admit` 0: a SYN answered with a cookie) adds to the flood's
 * size but, flooded, counts only for a source already in `map`: a spoofed
 * SYN flood neither fills the sketch nor costs its cache misses.
 */
static __always_inline void count(struct xdpfw_sketch_hdr *h, void *map, void *src, __u32 folded,
				  int admit)
{
	__u32 slot = heavy_slot(folded);
	__u32 *c = bpf_map_lookup_elem(&heavy, &slot);
	__u64 one = 1;
	int flood = h->prev >= XDPFW_SKETCH_FLOOR || h->seen >= XDPFW_SKETCH_FLOOR;

	/* Calm: look every source up. Flooded: only those `heavy` knows, so a
	 * spoofed packet never probes the big LRU. */
	if ((!flood || (c && *c == folded)) && bump(map, src, c, folded))
		return;

	/* Flooded, the clock is read every 64th packet: an epoch starts at
	 * most 64 packets late. */
	if (!flood || (h->seen & 63) == 0) {
		__u64 epoch = bpf_ktime_get_coarse_ns() >> XDPFW_EPOCH_SHIFT;

		if (h->epoch != epoch) {
			h->prev = h->epoch + 1 == epoch ? h->seen : 0;
			h->seen = 0;
			h->epoch = epoch;
			/* An odd multiplier, new every epoch: collisions cannot be aimed. */
			h->seed = bpf_get_prandom_u32() | 1;
		}
	}
	__u64 epoch = h->epoch;

	h->seen += 1;
	if (flood && !admit)
		return;

	/* The flood's size: the last epoch's, or this one's so far if more (a
	 * flood that just started must not insert for a whole epoch). */
	__u64 volume = h->prev > h->seen ? h->prev : h->seen;

	if (volume >= XDPFW_SKETCH_FLOOR) {
		__u64 *cap = ctl_word(XDPFW_CTL_ADMIT_CAP);
		__u64 need = volume >> XDPFW_SKETCH_SHIFT;

		if (cap && *cap && need > *cap)
			need = *cap;
		__u32 key = (folded * h->seed) >> (32 - XDPFW_SKETCH_WIDTH_BITS);
		__u32 slab_no = key >> XDPFW_SKETCH_SLAB_BITS;
		struct xdpfw_sketch_slab *slab = bpf_map_lookup_elem(&sketch, &slab_no);

		if (!slab)
			return;
		__u32 *cell = &slab->cell[key & (XDPFW_SKETCH_SLAB - 1)];
		__u32 tag = (__u32)epoch << 24;

		if ((*cell & ~XDPFW_CELL_COUNT) != tag)
			*cell = tag;
		if ((*cell & XDPFW_CELL_COUNT) != XDPFW_CELL_COUNT)
			*cell += 1;
		if ((*cell & XDPFW_CELL_COUNT) < need)
			return;
		/* Heavy, and maybe in `map` already (`heavy` lost it). */
		if (bump(map, src, c, folded))
			return;
	}
	/* BPF_NOEXIST: a concurrent first packet on another CPU wins, fine. */
	bpf_map_update_elem(map, src, &one, BPF_NOEXIST);
	if (c)
		*c = folded;
}

static __always_inline __u32 fold6(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] ^ a->in6_u.u6_addr32[1] ^ a->in6_u.u6_addr32[2] ^
	       a->in6_u.u6_addr32[3];
}

static __always_inline int blocked(void *map, void *key)
{
	__u8 *v = bpf_map_lookup_elem(map, key);

	return v && *v;
}

static __always_inline struct xdpfw_config *get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&config, &zero);
}

/*
 * cidr4's verdict for `src` from the index: -1 if no prefix covers it, the
 * longest covering prefix's value otherwise, -2 if the index is damaged.
 */
/* Entry `idx` of chunk `n` into `*v`: from `cidr4_chunks` while it has
 * room, else from `cidr4_spill`; -1 if neither has it (a damaged index). */
static __always_inline int cidr4_chunk_entry(__u32 n, __u32 idx, __u32 *v)
{
	__u32 key = (n << 8) | idx;
	__u32 *e = bpf_map_lookup_elem(&cidr4_chunks, &key);

	if (e) {
		*v = *e;
		return 0;
	}
	struct xdpfw_cidr4_chunk *c = bpf_map_lookup_elem(&cidr4_spill, &n);

	if (!c)
		return -1;
	/* NB: the index is computed after the NULL check, or clang moves the
	 * pointer arithmetic before it and the verifier refuses. */
	idx &= XDPFW_CIDR4_CHUNK_ENTRIES - 1;
	asm volatile("" : "+r"(idx));
	*v = c->entry[idx];
	return 0;
}

static __always_inline int cidr4_index(__be32 src)
{
	__u32 a = bpf_ntohl(src);
	__u32 key = a >> 16;
	__u32 *e = bpf_map_lookup_elem(&cidr4_l1, &key);

	if (!e)
		return -2;
	__u32 v = *e;

	if (v & XDPFW_CIDR4_CHUNK) {
		if (cidr4_chunk_entry(v & XDPFW_CIDR4_CHUNK_MASK, (a >> 8) & 0xff, &v))
			return -2;
		if (v & XDPFW_CIDR4_CHUNK) {
			if (cidr4_chunk_entry(v & XDPFW_CIDR4_CHUNK_MASK, a & 0xff, &v))
				return -2;
			if (v & XDPFW_CIDR4_CHUNK)
				return -2;
		}
	}
	return v & XDPFW_CIDR4_MATCH ? (int)(v & 0xffff) : -1;
}

/* Whether cidr4 drops `src`: through the index when xdpctl built it. */
/* Whether cidr4 drops `src`: through the index when xdpctl built it, not
 * at all when xdpctl found cidr4 empty. */
static __always_inline int cidr4_blocked(struct pkt *pk, __be32 src)
{
	struct xdpfw_cidr4 prefix = { .prefixlen = 32, .addr = src };
	__u64 *mode = ctl_word(XDPFW_CTL_CIDR4_MODE);
	__u64 m = mode_of(mode);

	if (m == XDPFW_INDEX_EMPTY) {
		if (!pk->tick || !blocked(&cidr4, &prefix))
			return 0;
		/* Written behind xdpctl's back: the trie is the truth. */
		drifted(mode, XDPFW_CTL_CIDR4_DRIFT);
		src4_hit(pk, XDPFW_RULE_CIDR4, src, XDPFW_RULE_LEN_UNKNOWN);
		return 1;
	}
	if (m == XDPFW_INDEX_ON) {
		int v = cidr4_index(src);

		if (v != -2) {
			int drop = v >= 0 && (v & 0xff) > 0;

			if (pk->tick) {
				int trie = blocked(&cidr4, &prefix);

				if (trie != drop) {
					drifted(mode, XDPFW_CTL_CIDR4_DRIFT);
					if (trie)
						src4_hit(pk, XDPFW_RULE_CIDR4, src, XDPFW_RULE_LEN_UNKNOWN);
					return trie;
				}
			}
			/* A prefix matched (an exception too: value 0). */
			if (v >= 0)
				src4_hit(pk, XDPFW_RULE_CIDR4, src, (__u32)v >> XDPFW_CIDR_LEN_SHIFT);
			return drop;
		}
	}
	if (!blocked(&cidr4, &prefix))
		return 0;
	src4_hit(pk, XDPFW_RULE_CIDR4, src, XDPFW_RULE_LEN_UNKNOWN);
	return 1;
}

/* `src` masked to its first `len` bits. */
static __always_inline void mask6(struct in6_addr *out, const struct in6_addr *src, __u32 len)
{
	for (int i = 0; i < 4; i++) {
		__u32 start = i * 32;
		__u32 w = src->in6_u.u6_addr32[i];

		if (len <= start)
			w = 0;
		else if (len < start + 32)
			w &= bpf_htonl(~0u << (start + 32 - len));
		out->in6_u.u6_addr32[i] = w;
	}
}

/* A hit of an IPv6 source rule: the address, or a prefix of `len` bits. */
static __always_inline void src6_hit(struct pkt *pk, __u8 kind, const struct in6_addr *src,
				     __u32 len)
{
	if (!hits_on())
		return;
	struct xdpfw_rule r = { .kind = kind, .prefixlen = len };

	if (len <= 128)
		mask6((struct in6_addr *)r.addr, src, len);
	rule_hit(&r, pk->len);
}

/* The bit of `cidr6_filter` for an index key (xdpctl computes the same). */
static __always_inline __u32 cidr6_filter_bit(const struct xdpfw_cidr6 *k)
{
	__u32 h = k->prefixlen * 0x165667b1u;

	h += k->addr.in6_u.u6_addr32[0] * 0x9e3779b1u;
	h += k->addr.in6_u.u6_addr32[1] * 0x85ebca6bu;
	h += k->addr.in6_u.u6_addr32[2] * 0xc2b2ae35u;
	h += k->addr.in6_u.u6_addr32[3] * 0x27d4eb2fu;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	return h >> (32 - XDPFW_CIDR6_FILTER_BITS);
}

/* Whether the index may hold `k`: a clear filter bit says it does not. */
static __always_inline __u32 *cidr6_probe(const struct xdpfw_cidr6 *k)
{
	__u32 bit = cidr6_filter_bit(k);
	__u32 word = bit >> 6;
	__u64 *w = bpf_map_lookup_elem(&cidr6_filter, &word);

	if (w && !((*w >> (bit & 63)) & 1))
		return 0;
	return bpf_map_lookup_elem(&cidr6_index, k);
}

/*
 * Whether a prefix of `cidr6` may cover `src`: false proves none does. No
 * prefix covers an address whose first L bits (L the shortest length in
 * use, at most 64) are no prefix's, and the filter holds a cover bit for
 * each prefix's: one array read answers most passed packets, before any
 * probe (the key {XDPFW_CIDR6_COVER_LEN, the address masked to L}).
 */
static __always_inline int cidr6_may_cover(const struct xdpfw_cidr6_lens *lens,
					   const struct in6_addr *src)
{
	__u32 len = lens->len[0];
	/* The key masked to L, in line: only its first two words can be
	 * non-zero (L is at most 64), so cidr6_filter_bit's sum is theirs. */
	__u32 w0 = src->in6_u.u6_addr32[0], w1 = src->in6_u.u6_addr32[1];

	if (len > 64)
		len = 64;
	if (len <= 32) {
		w1 = 0;
		if (len == 0)
			w0 = 0;
		else if (len < 32)
			w0 &= bpf_htonl(~0u << (32 - len));
	} else if (len < 64) {
		w1 &= bpf_htonl(~0u << (64 - len));
	}
	__u32 h = XDPFW_CIDR6_COVER_LEN * 0x165667b1u;

	h += w0 * 0x9e3779b1u;
	h += w1 * 0x85ebca6bu;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	__u32 bit = h >> (32 - XDPFW_CIDR6_FILTER_BITS);
	__u32 word = bit >> 6;
	__u64 *w = bpf_map_lookup_elem(&cidr6_filter, &word);

	return !w || ((*w >> (bit & 63)) & 1);
}

/*
 * cidr6's verdict for `src` from the index: -1 if no prefix covers it, the
 * longest covering prefix's value otherwise, -2 if the index is damaged.
 */
/* A function of its own (a BPF global function): its probes are many
 * paths, which the verifier then checks once. */
__noinline int cidr6_index_lookup(const struct in6_addr *src)
{
	if (!src)
		return -2;
	__u32 zero = 0;
	struct xdpfw_cidr6_lens *lens = bpf_map_lookup_elem(&cidr6_lens, &zero);
	struct xdpfw_cidr6 key;
	int best = -1;

	if (!lens || lens->count > 129)
		return -2;
	if (lens->count == 0 || !cidr6_may_cover(lens, src))
		return -1;
	int lo = 0, hi = (int)lens->count - 1;

	for (int i = 0; i < XDPFW_CIDR6_PROBES; i++) {
		if (lo > hi)
			return best;
		int mid = (lo + hi) >> 1;
		__u32 len = lens->len[mid & (XDPFW_CIDR6_LEN_SLOTS - 1)];

		key.prefixlen = len;
		mask6(&key.addr, src, len);
		__u32 *e = cidr6_probe(&key);

		if (e) {
			if (*e & XDPFW_CIDR4_MATCH)
				best = *e & 0xffff;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return lo > hi ? best : -2;
}

/* Whether cidr6 drops `src`: through the index when xdpctl built it. */
/* Whether the trie `cidr6` drops `src` (its longest covering prefix). */
static __always_inline int cidr6_trie(const struct in6_addr *src)
{
	struct xdpfw_cidr6 prefix = { .prefixlen = 128, .addr = *src };

	return blocked(&cidr6, &prefix);
}

static __always_inline int cidr6_blocked(struct pkt *pk, const struct in6_addr *src)
{
	__u64 *mode = ctl_word(XDPFW_CTL_CIDR6_MODE);
	__u64 m = mode_of(mode);

	if (m == XDPFW_INDEX_EMPTY) {
		if (!pk->tick || !cidr6_trie(src))
			return 0;
		drifted(mode, XDPFW_CTL_CIDR6_DRIFT);
		src6_hit(pk, XDPFW_RULE_CIDR6, src, XDPFW_RULE_LEN_UNKNOWN);
		return 1;
	}
	if (m == XDPFW_INDEX_ON) {
		__u32 zero = 0;
		struct xdpfw_cidr6_lens *lens = bpf_map_lookup_elem(&cidr6_lens, &zero);

		/* Most passed packets end here, in line, without the search (a
		 * sampled one too: the cover bit is the index's own answer). */
		int v;

		if (lens && lens->count <= 129 && (lens->count == 0 || !cidr6_may_cover(lens, src))) {
			if (!pk->tick)
				return 0;
			v = -1;
		} else {
			v = cidr6_index_lookup(src);
		}

		if (v != -2) {
			int drop = v >= 0 && (v & 0xff) > 0;

			if (pk->tick) {
				int trie = cidr6_trie(src);

				if (trie != drop) {
					drifted(mode, XDPFW_CTL_CIDR6_DRIFT);
					if (trie)
						src6_hit(pk, XDPFW_RULE_CIDR6, src, XDPFW_RULE_LEN_UNKNOWN);
					return trie;
				}
			}
			if (v >= 0)
				src6_hit(pk, XDPFW_RULE_CIDR6, src, (__u32)v >> XDPFW_CIDR_LEN_SHIFT);
			return drop;
		}
	}
	if (!cidr6_trie(src))
		return 0;
	src6_hit(pk, XDPFW_RULE_CIDR6, src, XDPFW_RULE_LEN_UNKNOWN);
	return 1;
}

/* Whether blocklist6 drops `src` (one hash lookup, none when xdpctl found
 * it empty). */
static __always_inline int blocklist6_blocked(struct pkt *pk, struct in6_addr *src)
{
	__u64 *mode = ctl_word(XDPFW_CTL_BLOCKLIST6_MODE);

	if (mode_of(mode) == XDPFW_INDEX_EMPTY) {
		if (!pk->tick || !blocked(&blocklist6, src))
			return 0;
		drifted(mode, XDPFW_CTL_BLOCKLIST6_DRIFT);
	} else if (!blocked(&blocklist6, src)) {
		return 0;
	}
	src6_hit(pk, XDPFW_RULE_BLOCKLIST6, src, 128);
	return 1;
}

/*
 * Whether `blocklist` drops `src`: the cache says yes (a flood from blocked
 * sources stops there), a clear bit in the filter says no (a spoofed flood
 * stops there), and only the rest is looked up in the hash; nothing at all
 * while xdpctl found the blocklist empty.
 */
static __always_inline __u32 drop_cache_slot(__be32 src)
{
	return ((__u32)src * 2654435761u) >> (32 - XDPFW_BLOCKED_BITS);
}

/* The drop cache's entry for `src` while the blocklist drops it. */
static __always_inline __u64 drop_cache_want(__u64 gen, __be32 src)
{
	return ((__u64)((__u32)gen | XDPFW_BLOCKED_MARK) << 32) | (__u32)src;
}

/* Whether the drop cache says the blocklist drops `src` (checked with
 * the hash on a tick: an entry removed behind xdpctl's back voids the
 * cache). */
static __always_inline int blocklist4_cached(struct pkt *pk, __be32 src)
{
	__u32 slot = drop_cache_slot(src);
	__u64 *e = bpf_map_lookup_elem(&drop_cache, &slot);
	__u64 *gen = ctl_word(XDPFW_CTL_BLOCK_GEN);

	if (!e || !gen || *e != drop_cache_want(*gen, src))
		return 0;
	if (pk->tick && !blocked(&blocklist, &src)) {
		/* Removed behind xdpctl's back: every cached entry is suspect. */
		__sync_fetch_and_add(gen, 1);
		return 0;
	}
	src4_hit(pk, XDPFW_RULE_BLOCKLIST, src, 32);
	return 1;
}

/*
 * Whether `blocklist` drops `src` (the drop cache missed): a clear bit in
 * the filter says no (a spoofed flood stops there), and only the rest is
 * looked up in the hash; nothing at all while xdpctl found the blocklist
 * empty.
 */
static __always_inline int blocklist4(struct pkt *pk, __u64 *bloom_on, __be32 src)
{
	__u64 m = mode_of(bloom_on);
	int filtered = 0;

	if (m == XDPFW_INDEX_EMPTY) {
		if (!pk->tick || !blocked(&blocklist, &src))
			return 0;
		drifted(bloom_on, XDPFW_CTL_BLOOM_DRIFT);
		src4_hit(pk, XDPFW_RULE_BLOCKLIST, src, 32);
		return 1;
	}
	/* The filter: a spoofed flood stops at a clear bit. */
	if (m == XDPFW_INDEX_ON) {
		__u32 bit = ((__u32)src * 0x9e3779b1u) >> (32 - XDPFW_BLOOM_BITS);
		__u32 word = bit >> 6;
		__u64 *w = bpf_map_lookup_elem(&bloom, &word);

		if (w && !((*w >> (bit & 63)) & 1)) {
			if (!pk->tick)
				return 0;
			filtered = 1;
		}
	}
	if (!blocked(&blocklist, &src))
		return 0;
	if (filtered && bloom_on)
		/* Written behind xdpctl's back: the filter is not to be trusted. */
		drifted(bloom_on, XDPFW_CTL_BLOOM_DRIFT);
	__u32 slot = drop_cache_slot(src);
	__u64 *e = bpf_map_lookup_elem(&drop_cache, &slot);
	__u64 *gen = ctl_word(XDPFW_CTL_BLOCK_GEN);

	if (e && gen)
		*e = drop_cache_want(*gen, src);
	src4_hit(pk, XDPFW_RULE_BLOCKLIST, src, 32);
	return 1;
}

/*
 * Whether the port rules in `hash` (which: 0 UDP, 1 TCP) drop `port`:
 * through the port index when xdpctl built it, cross-checked like cidr4's.
 */
static __always_inline int port_blocked(struct pkt *pk, __u64 *mode, void *hash, __u32 which,
					__be16 port)
{
	__u64 m = mode_of(mode);

	if (m == XDPFW_INDEX_EMPTY) {
		if (!pk->tick || !blocked(hash, &port))
			return 0;
		drifted(mode, XDPFW_CTL_PORTS_DRIFT);
		return 1;
	}
	if (m == XDPFW_INDEX_ON) {
		struct xdpfw_port_bits *bits = bpf_map_lookup_elem(&port_bits, &which);

		if (bits) {
			__u32 p = bpf_ntohs(port);
			int drop = (bits->word[(p >> 6) & 1023] >> (p & 63)) & 1;

			if (pk->tick && blocked(hash, &port) != drop) {
				drifted(mode, XDPFW_CTL_PORTS_DRIFT);
				return !drop;
			}
			return drop;
		}
	}
	return blocked(hash, &port);
}

/* The TCP flags (byte 13 of the header). */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/*
 * Whether SYNs to TCP `port` are answered with SYN cookies (`syn_ports`):
 * through its bitmap when xdpctl built it, cross-checked like the port
 * rules' (the port rules' mode word covers both).
 */
static __always_inline int syn_protected(struct pkt *pk, __u64 *mode, __be16 port)
{
	__u64 m = mode_of(mode);

	if (m == XDPFW_INDEX_EMPTY) {
		if (!pk->tick || !blocked(&syn_ports, &port))
			return 0;
		drifted(mode, XDPFW_CTL_PORTS_DRIFT);
		return 1;
	}
	if (m == XDPFW_INDEX_ON) {
		__u32 zero = 0;
		struct xdpfw_port_bits *bits = bpf_map_lookup_elem(&syn_bits, &zero);

		if (bits) {
			__u32 p = bpf_ntohs(port);
			int on = (bits->word[(p >> 6) & 1023] >> (p & 63)) & 1;

			if (pk->tick && blocked(&syn_ports, &port) != on) {
				drifted(mode, XDPFW_CTL_PORTS_DRIFT);
				return !on;
			}
			return on;
		}
	}
	return blocked(&syn_ports, &port);
}

/*
 * UDP/TCP port rules: the outcome for the L4 header at `l4`, `room` the
 * bytes the IP header says follow it.
 */
static __always_inline int ports(struct pkt *pk, void *l4, void *data_end, __u8 proto, __u32 room)
{
	if (proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end || room < sizeof(*udp))
			return XDPFW_MALFORMED;
		__u64 *mode = ctl_word(XDPFW_CTL_PORTS_MODE);

		if (port_blocked(pk, mode, &udp_ports, 0, udp->dest)) {
			port_hit(pk, XDPFW_RULE_UDP_PORT, udp->dest);
			return XDPFW_DROP_UDP_PORT;
		}
	} else if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end || room < sizeof(*tcp))
			return XDPFW_MALFORMED;
		__u64 *mode = ctl_word(XDPFW_CTL_PORTS_MODE);

		if (port_blocked(pk, mode, &tcp_ports, 1, tcp->dest)) {
			port_hit(pk, XDPFW_RULE_TCP_PORT, tcp->dest);
			return XDPFW_DROP_TCP_PORT;
		}
		/* SYN cookies: a SYN answered, an ACK checked (in xdp_fw). */
		__u8 flags = ((__u8 *)tcp)[13] & (TH_FIN | TH_SYN | TH_RST | TH_ACK);

		if ((flags == TH_SYN || flags == TH_ACK) && syn_protected(pk, mode, tcp->dest)) {
			if (flags == TH_ACK)
				return XDPFW_SYN_ACK_CHECK;
			/* Its hit is counted once no source rule drops it. */
			pk->syn_port = tcp->dest;
			return XDPFW_SYN_COOKIE;
		}
	}
	return XDPFW_PASSED;
}

/*
 * One GCRA bucket (see xdpfw.h): whether a packet costing `cost` ns of
 * the rate fits within `limit` ns of burst at `now`; if it does, the
 * bucket is moved on (compare-and-swap: CPUs racing on one bucket retry).
 */
static __always_inline int rate_take(__u64 *tat, __u64 now, __u64 cost, __u64 limit)
{
	for (int i = 0; i < XDPFW_RATE_TRIES; i++) {
		__u64 old = *(volatile __u64 *)tat;
		__u64 next = (old > now ? old : now) + cost;

		if (next - now > limit)
			return 0;
		if (__sync_val_compare_and_swap(tat, old, next) == old)
			return 1;
	}
	return 0;
}

/* Whether a packet of `len` bytes fits the rate `r` with buckets at
 * `tat`/`tat_bytes`. */
static __always_inline int rate_fits(const struct xdpfw_rate *r, __u64 *tat, __u64 *tat_bytes,
				     __u32 len)
{
	__u64 now = bpf_ktime_get_ns();

	if (r->bytes_per_sec) {
		__u64 bps = r->bytes_per_sec;
		/* 0: a tenth of a second of the rate. At least one frame: a
		 * burst smaller than the packet would drop it for ever.
		 * Bounded so that burst * 1e9 fits. */
		__u64 burst = r->burst_bytes ? r->burst_bytes : bps / 10;

		if (burst < len)
			burst = len;

		if (burst > (1ULL << 32))
			burst = 1ULL << 32;
		if (!rate_take(tat_bytes, now, (__u64)len * 1000000000ULL / bps,
			       burst * 1000000000ULL / bps))
			return 0;
	}
	if (r->pps) {
		__u64 cost = 1000000000ULL / r->pps;
		/* 0: a tenth of a second of the rate, at least one packet. */
		__u64 burst = r->burst ? r->burst : r->pps / 10;

		if (burst < 1)
			burst = 1;
		if (burst > (1ULL << 32))
			burst = 1ULL << 32;
		if (!rate_take(tat, now, cost, burst * cost))
			return 0;
	}
	return 1;
}

/*
 * Whether the rate limit of the source's prefix (a `rate4`/`rate6` entry,
 * `key` its LPM key) drops this packet: nothing at all while xdpctl found
 * both maps empty. `family` 4 or 6, `src` the source's bytes.
 */
static __always_inline int rate_limited(struct pkt *pk, void *rates, void *key, __u32 family,
					const void *src)
{
	__u64 *mode = ctl_word(XDPFW_CTL_RATE_MODE);

	if (mode_of(mode) == XDPFW_INDEX_EMPTY && !pk->tick)
		return 0;
	struct xdpfw_rate *r = bpf_map_lookup_elem(rates, key);

	if (!r)
		return 0;
	if (mode && *mode == XDPFW_INDEX_EMPTY)
		/* A rule written behind xdpctl's back: look them up from now on. */
		*mode = XDPFW_INDEX_OFF;
	if (!r->pps && !r->bytes_per_sec)
		return 0;
	if (r->per_prefix)
		return !rate_fits(r, &r->tat, &r->tat_bytes, pk->len);

	struct xdpfw_rate_key k = { .family = family };

	if (family == 4)
		__builtin_memcpy(k.addr, src, 4);
	else
		__builtin_memcpy(k.addr, src, 16);
	struct xdpfw_rate_state *st = bpf_map_lookup_elem(&rate_state, &k);

	/* Which limit the buckets are for: a limit changed (raised, lowered)
	 * starts them anew, as a written per-prefix limit does. */
	__u64 rule = (r->pps * 0x9e3779b97f4a7c15ULL) ^ (r->burst * 0xc2b2ae3d27d4eb4fULL) ^
		     (r->bytes_per_sec * 0x165667b19e3779f9ULL) ^ (r->burst_bytes * 0x27d4eb2f165667c5ULL) ^
		     r->per_prefix ^ ((__u64)r->owner << 32) ^ 1;

	if (!st) {
		struct xdpfw_rate_state fresh = { .rule = rule };

		/* BPF_NOEXIST: a concurrent first packet on another CPU wins. */
		bpf_map_update_elem(&rate_state, &k, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&rate_state, &k);
		if (!st)
			return 0;
	}
	if (st->rule != rule) {
		st->tat = 0;
		st->tat_bytes = 0;
		st->rule = rule;
	}
	return !rate_fits(r, &st->tat, &st->tat_bytes, pk->len);
}

/* Whether an outcome of the stateless rules drops. */
#define XDPFW_DROPS                                                                            \
	(1u << XDPFW_DROP_UDP_PORT | 1u << XDPFW_DROP_TCP_PORT | 1u << XDPFW_DROP_ICMP |           \
	 1u << XDPFW_DROP_ICMP6 | 1u << XDPFW_DROP_BLOCKLIST | 1u << XDPFW_DROP_CIDR |          \
	 1u << XDPFW_DROP_RATE | 1u << XDPFW_DROP_COOKIE)

static __always_inline int is_drop(int outcome)
{
	return (XDPFW_DROPS >> (outcome & 31)) & 1;
}

/* The stateless rules after the source's: ICMPv4, fragments, ports. */
static __always_inline int outcome4(struct pkt *pk, struct iphdr *ip, void *data_end, __u32 hdr_len,
				    __u32 tot_len)
{
	if (ip->protocol == IPPROTO_ICMP) {
		struct xdpfw_config *cfg = get_config();

		if (cfg && cfg->drop_icmp) {
			__u32 zero = 0;
			__u64 *n = bpf_map_lookup_elem(&icmp_drops, &zero);

			if (n)
				*n += 1;
			return XDPFW_DROP_ICMP;
		}
		return XDPFW_PASSED;
	}
	/* A later fragment has no L4 header: never read its payload as one. */
	if (bpf_ntohs(ip->frag_off) & 0x1fff)
		return XDPFW_PASSED;
	return ports(pk, (void *)ip + hdr_len, data_end, ip->protocol, tot_len - hdr_len);
}

/* This CPU's sketch header, and whether this packet is the one in
 * XDPFW_CHECK_EVERY that the rule maps judge too. */
static __always_inline struct pkt packet(void)
{
	__u32 zero = 0;
	struct pkt pk = {
		.h = bpf_map_lookup_elem(&sketch_hdr, &zero), .tick = 0, .len = 0, .syn_port = 0
	};

	if (pk.h)
		pk.tick = (++pk.h->checks[0] & (XDPFW_CHECK_EVERY - 1)) == 0;
	return pk;
}

static __always_inline int fw_ipv4(struct xdp_md *ctx, void *cur, void *data_end, __u32 off, __u32 frame_len)
{
	struct iphdr *ip = cur;

	if ((void *)(ip + 1) > data_end)
		return PASS(XDPFW_MALFORMED);
	if (ip->version != 4 || ip->ihl < 5)
		return PASS(XDPFW_MALFORMED);

	__u32 hdr_len = ip->ihl * 4;
	__u32 tot_len = bpf_ntohs(ip->tot_len);

	if (tot_len < hdr_len || off + tot_len > frame_len)
		return PASS(XDPFW_MALFORMED);

	__be32 src = ip->saddr;
	struct pkt pk = packet();

	pk.len = frame_len;
	__u64 *bloom_on = ctl_word(XDPFW_CTL_BLOOM_MODE);

	/* A source the blocklist dropped before: one read drops its flood. */
	if (mode_of(bloom_on) != XDPFW_INDEX_EMPTY && blocklist4_cached(&pk, src))
		return DROP(XDPFW_DROP_BLOCKLIST);
	/* The cheap stateless rules next (a bit test each): a flood they drop
	 * never pays for the other source rules. */
	int outcome = outcome4(&pk, ip, data_end, hdr_len, tot_len);

	if (is_drop(outcome))
		return DROP(outcome);
	if (blocklist4(&pk, bloom_on, src))
		return DROP(XDPFW_DROP_BLOCKLIST);
	if (cidr4_blocked(&pk, src))
		return DROP(XDPFW_DROP_CIDR);
	struct xdpfw_cidr4 rk = { .prefixlen = 32, .addr = src };

	if (rate_limited(&pk, &rate4, &rk, 4, &src))
		return DROP(XDPFW_DROP_RATE);
	if (outcome == XDPFW_SYN_COOKIE)
		port_hit(&pk, XDPFW_RULE_SYN_PORT, pk.syn_port);
	if (pk.h)
		count(pk.h, &pps, &src, src, outcome != XDPFW_SYN_COOKIE);
	return PASS(outcome);
}

/*
 * The stateless rules after the source's for IPv6: extension headers
 * walked, then ICMPv6 echo and ports.
 */
static __always_inline int outcome6(struct pkt *pk, struct ipv6hdr *ip6, void *data_end, __u32 payload)
{
	__u8 nexthdr = ip6->nexthdr;
	void *p = ip6 + 1;
	__u32 used = 0; /* bytes of extension headers, within `payload` */
	int first_fragment = 1;
	int done = 0;

	for (int i = 0; i < XDPFW_MAX_EXTHDR; i++) {
		if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS) {
			struct ipv6_opt_hdr *h = p;

			if ((void *)(h + 1) > data_end)
				return XDPFW_MALFORMED;
			__u32 len = (h->hdrlen + 1) * 8;

			used += len;
			if (used > payload)
				return XDPFW_MALFORMED;
			nexthdr = h->nexthdr;
			p += len;
		} else if (nexthdr == IPPROTO_FRAGMENT) {
			struct ipv6_frag_hdr *f = p;

			if ((void *)(f + 1) > data_end)
				return XDPFW_MALFORMED;
			used += sizeof(*f);
			if (used > payload)
				return XDPFW_MALFORMED;
			nexthdr = f->nexthdr;
			p += sizeof(*f);
			if (bpf_ntohs(f->frag_off) & 0xfff8) {
				/* A later fragment: what follows is payload. */
				first_fragment = 0;
				done = 1;
				break;
			}
		} else {
			done = 1;
			break;
		}
	}
	if (!done)
		return XDPFW_UNPARSED;
	if (!first_fragment)
		return XDPFW_PASSED;

	if (nexthdr == IPPROTO_ICMPV6) {
		struct icmp_head *icmp = p;

		if ((void *)(icmp + 1) > data_end || payload - used < sizeof(*icmp))
			return XDPFW_MALFORMED;
		/* 128/129: echo request and reply. Neighbour discovery (133-137) never matches. */
		if (icmp->type == 128 || icmp->type == 129) {
			struct xdpfw_config *cfg = get_config();

			if (cfg && cfg->drop_icmp6_echo)
				return XDPFW_DROP_ICMP6;
		}
		return XDPFW_PASSED;
	}

	return ports(pk, p, data_end, nexthdr, payload - used);
}

/*
 * The IPv6 path, a function of its own (a BPF global function): the
 * verifier checks it once, not once per path that leads to it, which
 * halves the firewall's load time; the call costs about a nanosecond.
 * `off` is where the IPv6 header starts (at most 22: two VLAN tags).
 */
__noinline int fw_ipv6(struct xdp_md *ctx, __u32 off)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 frame_len = data_end - data;

	if (off > sizeof(struct ethhdr) + XDPFW_MAX_VLAN * sizeof(struct vlan_hdr))
		return XDPFW_MALFORMED;
	struct ipv6hdr *ip6 = data + off;

	if ((void *)(ip6 + 1) > data_end)
		return PASS(XDPFW_MALFORMED);
	if (ip6->version != 6)
		return PASS(XDPFW_MALFORMED);

	__u32 payload = bpf_ntohs(ip6->payload_len);

	if (off + sizeof(*ip6) + payload > frame_len)
		return PASS(XDPFW_MALFORMED);

	struct in6_addr src = ip6->saddr;
	struct pkt pk = packet();

	pk.len = frame_len;
	int outcome = outcome6(&pk, ip6, data_end, payload);

	if (is_drop(outcome))
		return DROP(outcome);
	if (blocklist6_blocked(&pk, &src))
		return DROP(XDPFW_DROP_BLOCKLIST);
	if (cidr6_blocked(&pk, &src))
		return DROP(XDPFW_DROP_CIDR);
	struct xdpfw_cidr6 rk = { .prefixlen = 128, .addr = src };

	if (rate_limited(&pk, &rate6, &rk, 6, &src))
		return DROP(XDPFW_DROP_RATE);
	if (outcome == XDPFW_SYN_COOKIE)
		port_hit(&pk, XDPFW_RULE_SYN_PORT, pk.syn_port);
	if (pk.h)
		count(pk.h, &pps6, &src, fold6(&src), outcome != XDPFW_SYN_COOKIE);
	return PASS(outcome);
}

static __always_inline int judge(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 frame_len = ctx->data_end - ctx->data;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return PASS(XDPFW_MALFORMED);

	__be16 proto = eth->h_proto;
	void *cur = eth + 1;
	__u32 off = sizeof(*eth);

	for (int i = 0; i < XDPFW_MAX_VLAN; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr *vh = cur;

		if ((void *)(vh + 1) > data_end)
			return PASS(XDPFW_MALFORMED);
		proto = vh->proto;
		cur = vh + 1;
		off += sizeof(*vh);
	}

	if (proto == bpf_htons(ETH_P_IP))
		return fw_ipv4(ctx, cur, data_end, off, frame_len);
	if (proto == bpf_htons(ETH_P_IPV6))
		return fw_ipv6(ctx, off);
	/* Not IP, or a third VLAN tag: not ours to judge. */
	return PASS(XDPFW_UNPARSED);
}

/* Copies the packet into `capture_rb` if a capture wants it (see xdpfw.h);
 * `lease` is ctl[XDPFW_CTL_CAPTURE], non-zero. */
static __always_inline void capture(struct xdp_md *ctx, __u32 outcome, __u64 *lease)
{
	__u32 zero = 0;
	struct xdpfw_capture_slot *s = bpf_map_lookup_elem(&capture_slot, &zero);

	if (!s || !((s->outcomes >> (outcome & 31)) & 1))
		return;
	if (s->ifindex && s->ifindex != ctx->ingress_ifindex)
		return;
	/* A countdown, not a modulo: a division costs more than the rest. */
	if (s->skip) {
		s->skip -= 1;
		return;
	}
	s->skip = s->every ? s->every - 1 : 0;
	s->sampled += 1;
	struct xdpfw_capture_cfg *cfg = bpf_map_lookup_elem(&capture_cfg, &zero);

	if (!cfg)
		return;
	__u64 now = bpf_ktime_get_ns();

	if (now > *lease) {
		/* The capturing xdpctl is gone: stop paying for it. */
		*lease = 0;
		return;
	}
	if (cfg->tokens <= 0) {
		s->capped += 1;
		return;
	}
	__sync_fetch_and_add(&cfg->tokens, -1);

	__u32 len = bpf_xdp_get_buff_len(ctx);
	__u32 want = cfg->snaplen > XDPFW_CAPTURE_HEAD ? cfg->snaplen : XDPFW_CAPTURE_HEAD;
	__u32 caplen = len < want ? len : want;

	if (caplen > XDPFW_CAPTURE_SNAP_MAX)
		caplen = XDPFW_CAPTURE_SNAP_MAX;
	if (caplen < 1)
		return;
	/* A no-op here (1 <= caplen <= SNAP_MAX, a power of two), in a form
	 * whose bounds the verifier keeps. */
	caplen = ((caplen - 1) & (XDPFW_CAPTURE_SNAP_MAX - 1)) + 1;
	if (bpf_xdp_load_bytes(ctx, 0, s->data, caplen))
		return;
	s->rec.ts_ns = now;
	s->rec.ifindex = ctx->ingress_ifindex;
	s->rec.rx_queue = ctx->rx_queue_index;
	s->rec.cpu = bpf_get_smp_processor_id();
	s->rec.len = len;
	s->rec.caplen = caplen;
	s->rec.outcome = outcome;
	/* No wakeup per record (it costs the datapath more than the record):
	 * xdpctl polls every XDPFW_CAPTURE_POLL_MS, and is woken when the ring
	 * is half full. */
	__u64 wake = bpf_ringbuf_query(&capture_rb, BPF_RB_AVAIL_DATA) > XDPFW_CAPTURE_RING / 2
			     ? BPF_RB_FORCE_WAKEUP
			     : BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_output(&capture_rb, &s->rec, sizeof(s->rec) + caplen, wake))
		s->lost += 1;
}

/* What a client's SYN asked for, from its TCP options. */
struct syn_opts {
	__u32 tsval; /* its timestamp, if `ts` */
	__u8 ts;     /* it sent a timestamp */
	__u8 ws;     /* it sent a window scale... */
	__u8 wscale; /* ...of this */
	__u8 sack;   /* it permits SACK */
};

/* Byte `i` of the 64-byte buffer `b` (the mask after a barrier keeps the
 * verifier's bound, which the compiler would otherwise prove away). */
static __always_inline __u8 byte_at(const __u8 *b, __u32 i)
{
	asm volatile("" : "+r"(i));
	return b[i & 63];
}

/* A SYN's TCP header and options (`len` bytes, at most 60), read option
 * by option from `i` on into `o`. */
struct syn_parse {
	__u8 tcp[64];
	__u32 len;
	__u32 i;
	struct syn_opts o;
};

/* One TCP option of the SYN in `ctx` (a bpf_loop callback: verified
 * once, whatever the number of options); 1 at the end. */
static int syn_option(__u32 n, void *ctx)
{
	struct syn_parse *p = ctx;
	__u32 i = p->i;

	if (i >= p->len || i > 58)
		return 1;
	__u8 kind = byte_at(p->tcp, i);

	if (kind == 0)
		return 1;
	if (kind == 1) {
		p->i = i + 1;
		return 0;
	}
	__u8 olen = byte_at(p->tcp, i + 1);

	if (olen < 2 || i + olen > p->len)
		return 1;
	if (kind == 3 && olen == 3) {
		p->o.ws = 1;
		p->o.wscale = byte_at(p->tcp, i + 2);
	} else if (kind == 4 && olen == 2) {
		p->o.sack = 1;
	} else if (kind == 8 && olen == 10) {
		p->o.ts = 1;
		p->o.tsval = (__u32)byte_at(p->tcp, i + 2) << 24 | (__u32)byte_at(p->tcp, i + 3) << 16 |
			     (__u32)byte_at(p->tcp, i + 4) << 8 | byte_at(p->tcp, i + 5);
	}
	p->i = i + olen;
	return 0;
}

/* A checksum's 32-bit sum folded to 16 bits, complemented. */
static __always_inline __u16 csum_fold32(__s64 sum)
{
	__u32 c = (__u32)sum;

	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* The reply to a SYN: its TCP header and options (24 bytes, or 40 with
 * timestamps). */
struct syn_reply {
	struct tcphdr h;
	__u8 opt[20];
};

/*
 * Fills `r`, the SYN-ACK to the SYN `syn` (its fixed header) with the
 * cookie `value` (bpf_tcp_raw_gen_syncookie_*'s) and the client's options
 * `o`; returns the reply's TCP length (24 or 40).
 */
static __always_inline __u32 syn_ack(struct syn_reply *r, const struct tcphdr *syn, __s64 value,
				     const struct syn_opts *o, const struct xdpfw_syn_cfg *cfg,
				     __u16 mss)
{
	__u32 cookie = (__u32)value;

	r->h.source = syn->dest;
	r->h.dest = syn->source;
	r->h.seq = bpf_htonl(cookie);
	r->h.ack_seq = bpf_htonl(bpf_ntohl(syn->seq) + 1);
	((__u8 *)&r->h)[13] = TH_SYN | TH_ACK;
	r->h.window = bpf_htons(65535);
	r->opt[0] = 2; /* MSS */
	r->opt[1] = 4;
	r->opt[2] = mss >> 8;
	r->opt[3] = mss & 0xff;
	if (!(cfg->ts && o->ts)) {
		r->h.doff = 6;
		return 24;
	}
	/* The options the connection keeps, in the timestamp's low 6 bits as
	 * the kernel encodes them (cookie_init_timestamp): the client's
	 * window scale (0xf: none), SACK. */
	__u32 now_ms = bpf_ktime_get_ns() / 1000000;
	__u32 bits = (o->ws ? (o->wscale & 0xf) : 0xf) | (o->sack ? 0x10 : 0);
	__u32 tsval = (now_ms & ~0x3fu) | bits;

	if ((__s32)(tsval - now_ms) > 0)
		tsval -= 64;
	r->opt[4] = o->sack ? 4 : 1; /* SACK permitted, or two NOPs */
	r->opt[5] = o->sack ? 2 : 1;
	r->opt[6] = 8; /* timestamps */
	r->opt[7] = 10;
	*(__be32 *)&r->opt[8] = bpf_htonl(tsval);
	*(__be32 *)&r->opt[12] = bpf_htonl(o->tsval);
	r->opt[16] = 1; /* NOP, then the window scale, or NOPs */
	r->opt[17] = o->ws ? 3 : 1;
	r->opt[18] = o->ws ? 3 : 1;
	r->opt[19] = o->ws ? cfg->wscale : 1;
	r->h.doff = 10;
	return 40;
}

/* One SYN a port and family every XDPFW_SYN_KEEP_NS goes to the kernel
 * (see xdpfw.h; IPv4 and IPv6 listeners are apart): whether this one does.
 * The clock (a helper call, tens of ns here) is read once a jiffy for a
 * port on a CPU: the first SYN of a jiffy, or to another port than the
 * CPU's last, looks; the others of the jiffy know the answer is no. */
static __always_inline int syn_keepalive(__be16 port, int v6)
{
	__u32 p = bpf_ntohs(port) + (v6 ? 65536 : 0);
	__u32 zero = 0;
	struct xdpfw_sketch_hdr *h = bpf_map_lookup_elem(&sketch_hdr, &zero);
	__u32 j = (__u32)bpf_jiffies64(); /* a memory read */

	if (h) {
		if (h->checks[XDPFW_CHECK_KEEP_JIFFY] == j && h->checks[XDPFW_CHECK_KEEP_PORT] == p)
			return 0;
		h->checks[XDPFW_CHECK_KEEP_JIFFY] = j;
		h->checks[XDPFW_CHECK_KEEP_PORT] = p;
	}
	__u64 *last = bpf_map_lookup_elem(&syn_keep, &p);

	if (!last)
		return 0;
	__u64 now = bpf_ktime_get_coarse_ns(); /* a second's precision is plenty */
	__u64 old = *(volatile __u64 *)last;

	return now - old > XDPFW_SYN_KEEP_NS && __sync_val_compare_and_swap(last, old, now) == old;
}

/* Whether the listener of the ACK `th` (to `dst`, from `src`) is all
 * there is: no connection, no request (so the ACK must carry a cookie). */
static __always_inline int syn_listener_only(struct xdp_md *ctx, struct bpf_sock_tuple *t,
					     __u32 size)
{
	struct bpf_sock *sk = bpf_skc_lookup_tcp(ctx, t, size, BPF_F_CURRENT_NETNS, 0);

	if (!sk)
		return 0; /* no listener: the kernel resets it */
	int listener = sk->state == BPF_TCP_LISTEN;

	bpf_sk_release(sk);
	return listener;
}

/* A 64-bit sum of 32-bit words (memory order) folded to a checksum,
 * complemented: what bpf_csum_diff would give, without a helper call. */
static __always_inline __u16 csum_fold64(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return csum_fold32((__s64)s);
}

/* The sum of the `n` 32-bit words at `p` (`n` a constant), read after
 * every write before it (the barrier: the words are written as fields of
 * other types, which strict aliasing would let the compiler read first). */
static __always_inline __u64 sum32(const void *p, int n)
{
	const __u32 *w = p;
	__u64 s = 0;

	asm volatile("" ::: "memory");

#pragma unroll
	for (int i = 0; i < n; i++)
		s += w[i];
	return s;
}

/*
 * A spoofer's SYN (IPv4 on untagged Ethernet, no IP options, TCP with an
 * MSS option alone: 58 bytes, what SYN floods send) answered in its own
 * frame, field by field, with nothing copied out and back: the usual SYN
 * of a flood costs the cookie, the writes and the checksums (against a
 * minimal cookie answerer: BENCHMARKS.md). -1: not such a SYN
 * (syn_answer's general path answers it).
 */
static __always_inline int syn_answer_bare4(struct xdp_md *ctx, const struct xdpfw_syn_cfg *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *th = (void *)(ip + 1);
	__u8 *opt = (__u8 *)(th + 1);

	if ((void *)th + 24 > end || eth->h_proto != bpf_htons(ETH_P_IP) || *(__u8 *)ip != 0x45 ||
	    ip->tot_len != bpf_htons(44) || ((__u8 *)th)[12] != 6 << 4 || opt[0] != 2 || opt[1] != 4)
		return -1;
	if (syn_keepalive(th->dest, 0))
		return XDPFW_PASSED;
	__s64 value = bpf_tcp_raw_gen_syncookie_ipv4(ip, th, 24);

	if (value < 0)
		return XDPFW_PASSED;
	__u8 mac[ETH_ALEN];

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	__be32 a = ip->saddr;

	/* The IP header as syn_answer's general path writes it. */
	ip->saddr = ip->daddr;
	ip->daddr = a;
	ip->tos = 0;
	ip->id = 0;
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = cfg->ttl ? cfg->ttl : 64;
	ip->check = 0;
	ip->check = csum_fold64(sum32(ip, 5));
	/* The TCP header as syn_ack() makes it for a SYN with an MSS alone. */
	__be16 port = th->source;
	__u16 mss = cfg->mss4 ? cfg->mss4 : 1460;

	th->source = th->dest;
	th->dest = port;
	th->ack_seq = bpf_htonl(bpf_ntohl(th->seq) + 1);
	th->seq = bpf_htonl((__u32)value);
	((__u8 *)th)[13] = TH_SYN | TH_ACK;
	th->window = bpf_htons(65535);
	th->check = 0;
	th->urg_ptr = 0;
	opt[2] = mss >> 8;
	opt[3] = mss & 0xff;
	th->check = csum_fold64(sum32(th, 6) + (__u64)ip->saddr + ip->daddr +
				bpf_htonl(IPPROTO_TCP << 16 | 24));
	return XDPFW_SYN_COOKIE;
}

/*
 * The SYN-cookie side of a packet judge() found to be a SYN
 * (XDPFW_SYN_COOKIE) or an ACK (XDPFW_SYN_ACK_CHECK) to a protected port,
 * a function of its own (a BPF global function, verified once): the SYN
 * turned into its SYN-ACK in place (XDPFW_SYN_COOKIE: the caller sends it
 * back with XDP_TX), or the ACK's verdict. Whatever it cannot answer
 * (IPv4 options, IPv6 extension headers) goes to the kernel, which
 * answers with a cookie of its own (tcp_syncookies=2).
 *
 * The headers are read and rewritten in place (direct packet access); the
 * TCP header and options alone are copied, for the cookie helper and the
 * option walk. A reply of the SYN's own length (the usual case: 24 bytes
 * for a SYN with an MSS only, 40 with timestamps) needs no tail change.
 */
__noinline int syn_answer(struct xdp_md *ctx, int outcome)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 frame = ctx->data_end - ctx->data;
	__u32 zero = 0;
	struct xdpfw_syn_cfg *cfg = bpf_map_lookup_elem(&syn_cfg, &zero);
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);

	if (!cfg || (void *)(eth + 1) > end)
		return XDPFW_PASSED;
	if (outcome == XDPFW_SYN_COOKIE) {
		int bare = syn_answer_bare4(ctx, cfg);

		if (bare >= 0)
			return bare;
	}
	__be16 proto = eth->h_proto;

	for (int i = 0; i < XDPFW_MAX_VLAN; i++) {
		struct vlan_hdr *vh = data + off;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			return XDPFW_PASSED;
		proto = vh->proto;
		off += sizeof(*vh);
	}
	int v6 = proto == bpf_htons(ETH_P_IPV6);
	struct iphdr *ip4 = data + off;
	struct ipv6hdr *ip6 = data + off;
	__u32 ip_len = v6 ? sizeof(*ip6) : sizeof(*ip4);
	struct tcphdr *th;

	if (v6) {
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return XDPFW_PASSED;
		th = (void *)(ip6 + 1);
	} else {
		if (proto != bpf_htons(ETH_P_IP) || (void *)(ip4 + 1) > end || *(__u8 *)ip4 != 0x45)
			return XDPFW_PASSED;
		th = (void *)(ip4 + 1);
	}
	if ((void *)(th + 1) > end)
		return XDPFW_PASSED;
	__u32 th_len = th->doff * 4;

	if (th_len < sizeof(*th) || th_len > 60 || off + ip_len + th_len > frame)
		return XDPFW_PASSED;

	if (outcome == XDPFW_SYN_ACK_CHECK) {
		struct bpf_sock_tuple t = {};
		long bad;

		if (!cfg->check_ack)
			return XDPFW_PASSED;
		if (v6) {
			__builtin_memcpy(t.ipv6.saddr, &ip6->saddr, 16);
			__builtin_memcpy(t.ipv6.daddr, &ip6->daddr, 16);
			t.ipv6.sport = th->source;
			t.ipv6.dport = th->dest;
			if (!syn_listener_only(ctx, &t, sizeof(t.ipv6)))
				return XDPFW_PASSED;
			bad = bpf_tcp_raw_check_syncookie_ipv6(ip6, th);
		} else {
			t.ipv4.saddr = ip4->saddr;
			t.ipv4.daddr = ip4->daddr;
			t.ipv4.sport = th->source;
			t.ipv4.dport = th->dest;
			if (!syn_listener_only(ctx, &t, sizeof(t.ipv4)))
				return XDPFW_PASSED;
			bad = bpf_tcp_raw_check_syncookie_ipv4(ip4, th);
		}
		return bad ? XDPFW_DROP_COOKIE : XDPFW_PASSED;
	}

	if (syn_keepalive(th->dest, v6))
		return XDPFW_PASSED;
	struct syn_parse p = {};
	__u8 *t = p.tcp;

	/* The usual lengths copied directly, any other by the helper. */
	if (th_len == 24 && (void *)th + 24 <= end)
		__builtin_memcpy(t, th, 24);
	else if (th_len == 40 && (void *)th + 40 <= end)
		__builtin_memcpy(t, th, 40);
	else if (bpf_xdp_load_bytes(ctx, off + ip_len, t, th_len))
		return XDPFW_PASSED;
	__s64 value = v6 ? bpf_tcp_raw_gen_syncookie_ipv6(ip6, (struct tcphdr *)t, th_len)
			 : bpf_tcp_raw_gen_syncookie_ipv4(ip4, (struct tcphdr *)t, th_len);

	if (value < 0)
		return XDPFW_PASSED;
	p.len = th_len;
	p.i = sizeof(struct tcphdr);
	/* The options of a Linux client (MSS, SACK permitted, timestamps,
	 * NOP, window scale) read in place; an MSS alone needs nothing (the
	 * helper read it); any other layout walked option by option. */
	if (th_len == 40 && t[20] == 2 && t[21] == 4 && t[24] == 4 && t[25] == 2 && t[26] == 8 &&
	    t[27] == 10 && t[36] == 1 && t[37] == 3 && t[38] == 3) {
		p.o.sack = 1;
		p.o.ts = 1;
		p.o.tsval = bpf_ntohl(*(__be32 *)&t[28]);
		p.o.ws = 1;
		p.o.wscale = t[39];
	} else if (!(th_len == 24 && t[20] == 2 && t[21] == 4) && th_len > sizeof(struct tcphdr)) {
		bpf_loop(20, syn_option, &p, 0);
	}
	struct syn_opts o = p.o;
	struct syn_reply r = {};
	__u16 mss = v6 ? (cfg->mss6 ? cfg->mss6 : 1440) : (cfg->mss4 ? cfg->mss4 : 1460);
	__u32 tcp_len = syn_ack(&r, (struct tcphdr *)t, value, &o, cfg, mss);
	__u8 ttl = cfg->ttl ? cfg->ttl : 64;
	int delta = (int)(off + ip_len + tcp_len) - (int)frame;

	/* The headers stay where they are: only the tail moves, if at all. */
	if (delta && bpf_xdp_adjust_tail(ctx, delta))
		return XDPFW_PASSED;
	/* (Past this point the frame is the reply's length: a write that
	 * cannot be made leaves it half made, dropped.) */
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	__u64 sum;

	if (v6) {
		ip6 = data + off;
		if ((void *)(ip6 + 1) > end)
			return XDPFW_DROP_COOKIE;
		__u32 *a = (__u32 *)&ip6->saddr;

#pragma unroll
		for (int i = 0; i < 4; i++) {
			__u32 w = a[i];

			a[i] = a[i + 4];
			a[i + 4] = w;
		}
		*(__be32 *)ip6 = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(tcp_len);
		ip6->hop_limit = ttl;
		/* Pseudo-header: addresses, length, next header. */
		sum = sum32(a, 8) + bpf_htonl(tcp_len) + bpf_htonl(IPPROTO_TCP);
	} else {
		ip4 = data + off;
		if ((void *)(ip4 + 1) > end)
			return XDPFW_DROP_COOKIE;
		__be32 a = ip4->saddr;

		ip4->saddr = ip4->daddr;
		ip4->daddr = a;
		ip4->tos = 0;
		ip4->tot_len = bpf_htons(sizeof(*ip4) + tcp_len);
		ip4->id = 0;
		ip4->frag_off = bpf_htons(0x4000); /* DF */
		ip4->ttl = ttl;
		ip4->check = 0;
		ip4->check = csum_fold64(sum32(ip4, 5));
		sum = (__u64)ip4->saddr + ip4->daddr + bpf_htonl(IPPROTO_TCP << 16 | tcp_len);
	}
	void *l4 = data + off + ip_len;

	if (tcp_len == 40) {
		r.h.check = csum_fold64(sum + sum32(&r, 10));
		if (l4 + 40 > end)
			return XDPFW_DROP_COOKIE;
		__builtin_memcpy(l4, &r, 40);
	} else {
		r.h.check = csum_fold64(sum + sum32(&r, 6));
		if (l4 + 24 > end)
			return XDPFW_DROP_COOKIE;
		__builtin_memcpy(l4, &r, 24);
	}
	/* Ethernet addresses swapped; the VLAN tags stay. */
	if ((void *)(eth + 1) > end)
		return XDPFW_DROP_COOKIE;
	__u8 mac[ETH_ALEN];

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	return XDPFW_SYN_COOKIE;
}

SEC("xdp")
int xdp_fw(struct xdp_md *ctx)
{
	int outcome = judge(ctx);

	if (outcome == XDPFW_SYN_COOKIE || outcome == XDPFW_SYN_ACK_CHECK)
		outcome = syn_answer(ctx, outcome);
	__u64 *lease = ctl_word(XDPFW_CTL_CAPTURE);

	account(outcome, ctx->data_end - ctx->data);
#ifndef XDPFW_NO_CAPTURE /* the bench's build without capture */
	if (lease && *lease)
		capture(ctx, outcome, lease);
#else
	(void)lease;
	(void)capture;
#endif
	if (is_drop(outcome))
		return XDP_DROP;
	if (outcome == XDPFW_SYN_COOKIE)
		return XDP_TX;
	/* Counted as passed; the next program, if one is chained, decides
	 * (a constant slot: the JIT patches the jump in, and an empty slot
	 * falls through to XDP_PASS). */
	bpf_tail_call(ctx, &chain, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
