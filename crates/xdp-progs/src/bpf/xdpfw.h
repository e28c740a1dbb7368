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

/*
 * The CIDR index (`cidr4_l1`, `cidr4_chunks`): cidr4's longest-prefix
 * matches expanded into a three-level table (16, 8 and 8 bits of the
 * address), so a lookup costs at most three array reads whatever the
 * number of prefixes. xdpctl derives it from `cidr4` on every change it
 * makes; the trie stays the rule store and the fallback.
 *
 * An entry: 0 = no prefix covers it; MATCH | len << 8 | value = the
 * longest prefix covering it has that length and value (the length names
 * the prefix for its counters); CHUNK | n = look in chunk n (256 entries
 * at n * 256 in `cidr4_chunks`), indexed by the next 8 bits.
 */
#define XDPFW_CIDR4_L1 65536
#define XDPFW_CIDR4_CHUNK_ENTRIES 256
#define XDPFW_CIDR4_CHUNKS 4096
/*
 * Chunks past the array's room spill into `cidr4_spill`, a hash that
 * allocates as it fills (chunk number → its 256 entries), so a default
 * load indexes every prefix cidr4 can hold (at most two chunks a prefix),
 * paying a hash lookup only for addresses under a spilled chunk.
 */
#define XDPFW_CIDR4_SPILL (2 * XDPFW_CIDR_MAX)
struct xdpfw_cidr4_chunk {
	__u32 entry[XDPFW_CIDR4_CHUNK_ENTRIES];
};
#define XDPFW_CIDR4_MATCH 0x80000000u
#define XDPFW_CIDR4_CHUNK 0x40000000u
#define XDPFW_CIDR4_CHUNK_MASK 0x00ffffffu
#define XDPFW_CIDR_LEN_SHIFT 8
/*
 * The IPv6 CIDR index (`cidr6_index`, `cidr6_lens`): a binary search on
 * the prefix lengths present in `cidr6` (Waldvogel, Varghese, Turner and
 * Plattner, "Scalable High Speed IP Routing Lookups", SIGCOMM 1997).
 * `cidr6_lens` holds the distinct lengths, sorted; `cidr6_index` is a hash
 * keyed like `cidr6` (length, address masked to it) holding each prefix and
 * a marker for it at each shorter length where the search turns towards
 * longer ones. Every entry carries the value of the longest prefix that
 * covers it (MATCH | its length << 8 | value), or 0 if none does. A hit means "look longer",
 * a miss "look shorter", and the last hit's value is the answer: at most
 * 8 hash lookups (129 possible lengths) whatever the number of prefixes,
 * one or two for the usual few lengths (/32, /48, /64). A filter in front
 * (`cidr6_filter`) answers most misses with an array read.
 */
#define XDPFW_CIDR6_LEN_SLOTS 256
/* `cidr6_filter`: one bit per hash of each `cidr6_index` key, so that a
 * probe that would miss (most of them, for a packet no prefix covers)
 * costs an array read, not a hash lookup. */
#define XDPFW_CIDR6_FILTER_BITS 20
#define XDPFW_CIDR6_PROBES 8
#define XDPFW_CIDR6_INDEX_MAX (XDPFW_CIDR_MAX * XDPFW_CIDR6_PROBES)
/* A key of this length in the filter: the address masked to the shortest
 * length in use, set for every prefix. A clear bit proves that no prefix
 * covers an address, in one array read. */
#define XDPFW_CIDR6_COVER_LEN 200
struct xdpfw_cidr6_lens {
	__u32 count;			   /* lengths in use, at most 129 */
	__u8 len[XDPFW_CIDR6_LEN_SLOTS]; /* ascending */
};

/* One packet in this many (a power of two) on each CPU is also judged by
 * the rule maps themselves, for every kind of rule it meets: a difference
 * from an index, or a rule in a map xdpctl marked empty (a rule written by
 * another tool), turns the index off (the rule map is used from then on)
 * and is counted in the kind's drift word. */
#define XDPFW_CHECK_EVERY 128
#define XDPFW_CHECK_KINDS 4
#define XDPFW_CHECK_KEEP_JIFFY 1
#define XDPFW_CHECK_KEEP_PORT 2

/* Words of the `ctl` array. */
enum xdpfw_ctl {
	XDPFW_CTL_CIDR4_MODE = 0,  /* XDPFW_INDEX_ON (the CIDR index) or XDPFW_INDEX_OFF (cidr4) */
	XDPFW_CTL_CIDR4_DRIFT = 1, /* mismatches the datapath found */
	XDPFW_CTL_ADMIT_CAP = 2,   /* 0, or the most packets per epoch before admission */
	XDPFW_CTL_PORTS_MODE = 3,  /* XDPFW_INDEX_ON (port_bits) or XDPFW_INDEX_OFF (the hashes) */
	XDPFW_CTL_PORTS_DRIFT = 4, /* mismatches the datapath found */
	XDPFW_CTL_BLOCK_GEN = 5,   /* changes when blocklist entries go: `drop_cache` is stale */
	XDPFW_CTL_BLOOM_MODE = 6,  /* XDPFW_INDEX_ON (bloom) or XDPFW_INDEX_OFF */
	XDPFW_CTL_BLOOM_DRIFT = 7, /* blocklisted sources the filter missed */
	XDPFW_CTL_CIDR6_MODE = 8,  /* XDPFW_INDEX_ON (the IPv6 CIDR index) or XDPFW_INDEX_OFF (cidr6) */
	XDPFW_CTL_CIDR6_DRIFT = 9, /* mismatches the datapath found */
	XDPFW_CTL_BLOCKLIST6_MODE = 10, /* XDPFW_INDEX_EMPTY, or look blocklist6 up */
	XDPFW_CTL_BLOCKLIST6_DRIFT = 11, /* rules found in a blocklist6 marked empty */
	XDPFW_CTL_CAPTURE = 12,	   /* 0, or until when (bpf_ktime_get_ns) a capture reads `capture_rb` */
	XDPFW_CTL_RULE_HITS_ON = 13, /* non-zero: rules' hits are counted (off after load) */
	XDPFW_CTL_RULE_HITS_LOST = 14, /* hits not counted: `rule_hits` was full */
	XDPFW_CTL_RATE_MODE = 15,  /* XDPFW_INDEX_EMPTY, or look rate4 / rate6 up */
};

/*
 * `bloom`: one bit per hash of an IPv4 source, set for every
 * source in `blocklist` (xdpctl sets them; removals leave them set until
 * the next rebuild). A clear bit proves the source is not blocklisted, so
 * a spoofed flood skips the hash lookup; one skipped lookup in
 * XDPFW_CHECK_EVERY per CPU is made anyway, and a blocklisted source the
 * filter missed (written by another tool) turns it off.
 */
#define XDPFW_BLOOM_BITS 20

/*
 * `drop_cache`: a direct-mapped cache of blocklisted IPv4 sources, so a flood
 * from them costs an array read, not a hash lookup. An entry is
 * (generation | BLOCKED_MARK) << 32 | source; xdpctl changes the
 * generation (ctl[XDPFW_CTL_BLOCK_GEN]) whenever it removes or clears a
 * blocklist entry, and one cache hit in XDPFW_CHECK_EVERY per CPU is
 * checked against the blocklist itself (an entry another tool removed
 * changes the generation there).
 */
#define XDPFW_BLOCKED_BITS 10
#define XDPFW_BLOCKED_MARK 0x80000000u
#define XDPFW_CTL_SLOTS 16

/*
 * The port index (`port_bits`): udp_ports' and tcp_ports' drop verdicts as
 * two bitmaps of 65,536 bits (entry 0 UDP, 1 TCP), kept by xdpctl like the
 * CIDR index, so a port rule costs a bit test instead of a hash lookup.
 */
struct xdpfw_port_bits {
	__u64 word[1024]; /* bit (port & 63) of word (port >> 6), host-order port */
};

/* A mode word: whether the datapath reads an index or the rule map, or
 * skips the kind because it holds no rule. xdpctl sets it at the end of
 * every change (the rule → index protocol); the datapath only ever sets
 * it to OFF (drift). A firewall is loaded with every word ON and empty
 * indexes, which is right too. */
enum xdpfw_index_mode {
	XDPFW_INDEX_ON = 0,    /* the index matches the rules (both empty after load) */
	XDPFW_INDEX_OFF = 1,   /* look up the rule map itself (during changes, after drift) */
	XDPFW_INDEX_EMPTY = 2, /* the rule maps hold no rule: the kind costs nothing */
};

/*
 * Per-source counting under a flood. Calm (fewer than XDPFW_SKETCH_FLOOR
 * packets from sources not in `pps` on this CPU in the last epoch of 2^30
 * ns, and so far in this one), every source is counted exactly in `pps`
 * from its first packet. Flooded, a packet probes `pps` only if its source
 * is remembered in `heavy` (a direct-mapped cache of the sources in `pps`);
 * the others go through a sketch (per CPU, XDPFW_SKETCH_WIDTH counters
 * reset each epoch, hash seed renewed each epoch so collisions cannot be
 * aimed), and a source enters `pps` once its counter reaches
 * 1/2^XDPFW_SKETCH_SHIFT of the flood (the last epoch's new-source packets
 * or this one's so far, whichever is more), and at most
 * ctl[XDPFW_CTL_ADMIT_CAP] when guard sets it. A spoofed packet then costs
 * two small array reads and a write, not a probe of (or an insert into)
 * the big LRU.
 */
#define XDPFW_EPOCH_SHIFT 30
#define XDPFW_SKETCH_FLOOR (1u << 12)
#define XDPFW_SKETCH_SHIFT 10
#define XDPFW_SKETCH_WIDTH_BITS 14
#define XDPFW_SKETCH_WIDTH (1u << XDPFW_SKETCH_WIDTH_BITS)
/* The sketch's counters come in slabs of 4,096 (one per-CPU value each),
 * not one per-CPU value a counter: a counter is then one read away from
 * the map's few slab pointers, not behind a pointer of its own (a second
 * cache miss per spoofed packet). */
#define XDPFW_SKETCH_SLAB_BITS 12
#define XDPFW_SKETCH_SLAB (1u << XDPFW_SKETCH_SLAB_BITS)

struct xdpfw_sketch_slab {
	__u32 cell[XDPFW_SKETCH_SLAB]; /* epoch << 24 | count, see below */
};
#define XDPFW_HEAVY_BITS 12

struct xdpfw_sketch_hdr {
	__u64 epoch;   /* ktime >> XDPFW_EPOCH_SHIFT */
	__u64 seen;    /* packets from sources not in pps, this epoch */
	__u64 prev;    /* ... in the epoch before, if it was the one before */
	__u32 seed;    /* the sketch's hash multiplier, odd */
	__u32 pad;
	/* checks[0]: packets on this CPU; every CHECK_EVERY-th is checked
	 * against the rule maps. checks[1], checks[2]: the jiffy and the
	 * port (+ 65536 for IPv6) the SYN keepalive last looked at the clock
	 * for on this CPU (see syn_keepalive). checks[3]: unused. */
	__u32 checks[XDPFW_CHECK_KINDS];
};

/* A sketch counter: the low 8 bits of its epoch, then a 24-bit count. */
#define XDPFW_CELL_COUNT 0x00ffffffu

/*
 * Capture (`xdpctl capture`): while ctl[XDPFW_CTL_CAPTURE] is non-zero,
 * the packets whose outcome is in `capture_cfg.outcomes` are sampled (one
 * in `every` on each CPU), and while `tokens` lasts each is copied with a
 * header into the ring buffer `capture_rb`. The word is a lease: xdpctl
 * renews it (and refills `tokens`, the per-second cap spread over its
 * refills) while it reads, and the datapath clears it once it lapses, so
 * a capture killed with SIGKILL stops by itself. Off, capture costs one
 * array read and a branch per packet. On, a packet not sampled costs one
 * per-CPU read (`capture_slot`'s head: xdpctl copies the outcomes, the
 * device and `every` to each CPU's, so `capture_cfg` is read only for the
 * sampled ones) and a countdown; the packets matched are counted per
 * sample (sampled * every - skip), not per packet.
 */
#define XDPFW_CAPTURE_SNAP_MAX 4096
/* Bytes copied whatever the snap length, so xdpctl can tell the rule
 * from the headers (it cuts the packet to the snap length it writes). */
#define XDPFW_CAPTURE_HEAD 192
#define XDPFW_CAPTURE_RING (4u << 20)
/* How often xdpctl reads the ring buffer without being woken (often
 * enough for a terminal; more often costs the datapath's CPU: measured). */
#define XDPFW_CAPTURE_POLL_MS 100

struct xdpfw_capture_cfg {
	__u32 outcomes; /* bit per enum xdpfw_outcome to capture */
	__u32 every;	/* capture one matching packet in this many, per CPU */
	__u32 snaplen;	/* bytes of each packet wanted (XDPFW_CAPTURE_HEAD at least) */
	__u32 owner;	/* the pid of the capturing xdpctl, for the next one */
	__u32 ifindex;	/* 0, or the only ingress device to capture */
	__u32 pad;
	__s64 tokens;	/* packets still to capture before the next refill */
};

/* A record in `capture_rb`: this header, then `caplen` bytes. */
struct xdpfw_capture_rec {
	__u64 ts_ns;	 /* bpf_ktime_get_ns */
	__u32 ifindex;	 /* ingress device */
	__u32 rx_queue;	 /* its RX queue */
	__u32 cpu;
	__u32 len;	 /* the frame's length */
	__u32 caplen;	 /* bytes that follow */
	__u32 outcome;	 /* enum xdpfw_outcome */
};

/* Per CPU: the capture's counts and the record being built. */
struct xdpfw_capture_slot {
	__u64 sampled;	/* matching packets that ended a countdown */
	__u64 capped;	/* sampled ones over the cap (no token) */
	__u64 lost;	/* sampled ones the ring buffer had no room for */
	__u32 skip;	/* matching packets to skip before the next sample */
	__u32 every;	/* capture_cfg's, copied to each CPU */
	__u32 outcomes; /* capture_cfg's, copied to each CPU */
	__u32 ifindex;	/* capture_cfg's, copied to each CPU */
	struct xdpfw_capture_rec rec;
	__u8 data[XDPFW_CAPTURE_SNAP_MAX];
};

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
	XDPFW_DROP_RATE = 9,	  /* over the rate of its source's prefix in rate4 / rate6 */
	XDPFW_SYN_COOKIE = 10,	  /* a SYN to a port of syn_ports, answered with a SYN cookie (XDP_TX) */
	XDPFW_DROP_COOKIE = 11,	  /* an ACK to a port of syn_ports, no connection's, a wrong cookie */
};

/* Not counted: an ACK to a port of syn_ports, to be checked (xdp_fw turns
 * it into XDPFW_PASSED or XDPFW_DROP_COOKIE). */
#define XDPFW_SYN_ACK_CHECK 15

/* Slots reserved in `stats`, so later outcomes fit a map that is reused. */
#define XDPFW_OUTCOME_SLOTS 16

struct xdpfw_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * Counters per rule: packets, bytes and the last hit of each rule that
 * matched (a blocklist entry, a CIDR prefix, exceptions included, a port).
 * On the hot path a hit goes to this CPU's slot of `hit_cache`, a
 * direct-mapped cache of rules (one array read, no hash, no atomics); a
 * rule that takes a slot another rule held moves that rule's counts into
 * `rule_hits` (a hash the CPUs share). A rule's counts are `rule_hits` plus the
 * slots holding it, summed over CPUs (xdpctl reads the hash first, so a
 * move in between can only hide counts until the next read, never count
 * them twice). `last_ns` is bpf_ktime_get_coarse_ns, read at most once a
 * jiffy per slot. On while ctl[XDPFW_CTL_RULE_HITS_ON] is non-zero (off
 * after load, so a firewall that does not count pays nothing for it).
 */
#define XDPFW_HIT_CACHE_BITS 10
#define XDPFW_RULE_HITS_MAX 65536

enum xdpfw_rule_kind {
	XDPFW_RULE_UDP_PORT = 1,   /* a port of udp_ports */
	XDPFW_RULE_TCP_PORT = 2,   /* a port of tcp_ports */
	XDPFW_RULE_BLOCKLIST = 3,  /* an address of blocklist */
	XDPFW_RULE_BLOCKLIST6 = 4, /* an address of blocklist6 */
	XDPFW_RULE_CIDR4 = 5,	   /* a prefix of cidr4 */
	XDPFW_RULE_CIDR6 = 6,	   /* a prefix of cidr6 */
	XDPFW_RULE_SYN_PORT = 7,   /* a port of syn_ports (its SYNs) */
};

/* The prefix length of a CIDR hit the trie decided (the index was off or
 * out of date): the prefix is not known. */
#define XDPFW_RULE_LEN_UNKNOWN 255

struct xdpfw_rule {
	__u8 kind;	/* enum xdpfw_rule_kind */
	__u8 prefixlen; /* CIDR: the prefix's length (or XDPFW_RULE_LEN_UNKNOWN) */
	__be16 port;	/* port rules: the port */
	__u8 addr[16];	/* source rules: the address or prefix (IPv4: the first 4 bytes) */
} __attribute__((aligned(4)));

struct xdpfw_hits {
	__u64 packets;
	__u64 bytes;
	__u64 last_ns; /* bpf_ktime_get_coarse_ns of the last hit */
};

struct xdpfw_hit_slot {
	struct xdpfw_rule rule; /* kind 0: free */
	__u32 jiffies;		/* low bits of jiffies when last_ns was read */
	struct xdpfw_hits hits; /* since the rule took the slot */
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

/*
 * Rate limits (`rate4`, `rate6`): a source prefix → a token bucket in
 * packets and in bytes per second, each with a burst, kept as a GCRA
 * (Turner's generic cell rate algorithm: one "theoretical arrival time"
 * per bucket, moved on by each packet's cost and compared with the clock,
 * updated with compare-and-swap, so CPUs share a bucket without a lock).
 * A packet passes while both of its buckets are within their burst; one
 * over either is dropped as XDPFW_DROP_RATE and costs neither bucket.
 *
 * Per source (`per_prefix` 0): every source under the prefix has buckets
 * of its own, in `rate_state` (an LRU hash: when it is full the source
 * used least recently loses its buckets, that is starts again with a full
 * burst; a steady source is never the least recent). Per prefix
 * (`per_prefix` 1): the prefix's sources share the buckets in the rule's
 * own value (`tat`, `tat_bytes`: the datapath's, written 0 with the rule).
 * A rule that limits neither (both rates 0) passes everything.
 */
#define XDPFW_RATE_MAX 65536
#define XDPFW_RATE_STATE_MAX 262144
/* Compare-and-swap attempts on a bucket before the packet counts as over
 * (only CPUs racing on one bucket retry). */
#define XDPFW_RATE_TRIES 4

struct xdpfw_rate {
	__u64 pps;	   /* packets per second, 0: no packet limit */
	__u64 burst;	   /* packets at once; 0: a tenth of a second of pps (at least 1) */
	__u64 bytes_per_sec; /* bytes per second (frames as received), 0: no byte limit */
	__u64 burst_bytes; /* bytes at once; 0: a tenth of a second (at least the frame) */
	__u32 per_prefix;  /* 0: a bucket per source; 1: one for the prefix */
	__u32 owner;	   /* 0: the operator's; 0x67: guard's, removed when it expires */
	__u64 tat;	   /* per prefix: the packet bucket (the datapath's) */
	__u64 tat_bytes;   /* per prefix: the byte bucket (the datapath's) */
};

/* A source's buckets in `rate_state`. */
struct xdpfw_rate_key {
	__u32 family; /* 4 or 6 */
	__u8 addr[16]; /* the source (IPv4: the first 4 bytes) */
};

struct xdpfw_rate_state {
	__u64 tat;
	__u64 tat_bytes;
	__u64 rule; /* the limit the buckets are for: another one starts them anew */
};

/*
 * SYN cookies (`syn_ports`, indexed in `syn_bits` like the port rules):
 * a SYN to a protected TCP port is answered from XDP with a SYN-ACK whose
 * sequence number is the kernel's own SYN cookie
 * (bpf_tcp_raw_gen_syncookie_ipv4/6: the listener's secret), and never
 * reaches the kernel, so a spoofed SYN flood leaves no state anywhere.
 * The client's ACK goes to the kernel, whose listener takes the cookie
 * (net.ipv4.tcp_syncookies=2) and makes the connection. An ACK to a
 * protected port that no connection has and whose cookie is wrong is
 * dropped (XDPFW_DROP_COOKIE), found with bpf_skc_lookup_tcp (a listener
 * is all there is) and bpf_tcp_raw_check_syncookie_ipv4/6.
 *
 * A listener takes cookie ACKs only while it has sent a cookie itself in
 * the last two minutes (tcp_synq_no_recent_overflow): one SYN a port and
 * family in XDPFW_SYN_KEEP_NS (a second: a SYN the kernel cannot answer,
 * to a source it has no route to, does not count, and the next one tries
 * again) is handed to the kernel, which answers it with its own cookie.
 * Timestamps, window scaling and SACK survive in the cookie the
 * kernel's way (the options in the timestamp's low bits) where the host
 * runs timestamps without random offsets (net.ipv4.tcp_timestamps=2):
 * `syn_cfg.ts`; otherwise the SYN-ACK carries the MSS only.
 */
#define XDPFW_SYN_KEEP_NS (1000000000ULL)

struct xdpfw_syn_cfg {
	__u16 mss4;   /* the MSS the SYN-ACK offers over IPv4 (0: 1460) */
	__u16 mss6;   /* over IPv6 (0: 1440) */
	__u8 wscale;  /* the window scale the listener will use (what the host's tcp_rmem gives) */
	__u8 ts;      /* non-zero: timestamps, window scale and SACK in the cookie (tcp_timestamps=2) */
	__u8 ttl;     /* of the SYN-ACK (0: 64) */
	__u8 check_ack; /* non-zero: drop ACKs with a wrong cookie that no connection has */
};

#endif
