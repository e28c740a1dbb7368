//! What user space can read of each map type, and how `map dump` shows
//! it. Most maps are keys and values; some hold kernel objects whose ids
//! the kernel returns (program arrays, maps of maps), some can only be
//! peeked (queues, stacks) or measured (ring buffers), and some cannot be
//! read at all — those are refused with the reason, not an errno.

use aya_obj::generated::bpf_map_type::{self, *};

/// How a map type is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Keys and values, formatted by type.
    Entries,
    /// Keys and the ids of the programs in them (program arrays).
    ProgIds,
    /// Keys and the ids of the inner maps (maps of maps).
    MapIds,
    /// Keys and devices: `ifindex` and, in 8-byte values, a program id
    /// (devmaps; `struct bpf_devmap_val`).
    Devices,
    /// Keys (CPU numbers) and queue sizes and, in 8-byte values, a program
    /// id (cpumaps; `struct bpf_cpumap_val`).
    Cpus,
    /// Only the next element, peeked without taking it (queues, stacks).
    Peek,
    /// Only how much is waiting: reading a record consumes it.
    Ring,
    /// No entries to list; a value can be tested (a Bloom filter).
    Membership,
    /// Not readable from user space; the reason, a full sentence.
    Refused(String),
}

fn is(t: u32, types: &[bpf_map_type]) -> bool {
    types.iter().any(|x| *x as u32 == t)
}

/// How the map `name` of type `t`, with values of `value_size` bytes, is
/// read.
pub fn reading(t: u32, name: &str, value_size: u32) -> Reading {
    let refuse = |what: &str, why: &str| Reading::Refused(format!("{name}: {what} {why}"));
    if is(t, &[BPF_MAP_TYPE_PROG_ARRAY]) {
        Reading::ProgIds
    } else if is(t, &[BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS]) {
        Reading::MapIds
    } else if is(t, &[BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_DEVMAP_HASH]) {
        Reading::Devices
    } else if is(t, &[BPF_MAP_TYPE_CPUMAP]) {
        Reading::Cpus
    } else if is(t, &[BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK]) {
        Reading::Peek
    } else if is(t, &[BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_USER_RINGBUF]) {
        Reading::Ring
    } else if is(t, &[BPF_MAP_TYPE_XSKMAP]) {
        refuse(
            "an XSKMAP",
            "cannot be read from user space (the kernel returns EOPNOTSUPP); its keys are \
             queue ids and its values AF_XDP sockets",
        )
    } else if is(t, &[BPF_MAP_TYPE_PERF_EVENT_ARRAY]) {
        refuse(
            "a perf event array",
            "cannot be read from user space (the kernel returns ENOTSUPP); its keys are CPU \
             numbers and its values perf event fds, which the program's own reader holds",
        )
    } else if is(t, &[BPF_MAP_TYPE_CGROUP_ARRAY]) {
        refuse(
            "a cgroup array",
            "cannot be read from user space (the kernel returns ENOTSUPP); its values are \
             cgroup fds",
        )
    } else if is(t, &[BPF_MAP_TYPE_BLOOM_FILTER]) {
        Reading::Membership
    } else if is(t, &[BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_SOCKHASH]) && value_size != 8 {
        refuse(
            "a socket map",
            "with 4-byte values cannot be read from user space: the kernel shows its sockets' \
             cookies only in 8-byte values",
        )
    } else if is(
        t,
        &[
            BPF_MAP_TYPE_SK_STORAGE,
            BPF_MAP_TYPE_INODE_STORAGE,
            BPF_MAP_TYPE_TASK_STORAGE,
            BPF_MAP_TYPE_CGRP_STORAGE,
        ],
    ) {
        refuse(
            "a local storage map",
            "cannot be listed: its keys are sockets, inodes, tasks or cgroups, each looked up \
             by an fd of its own",
        )
    } else if is(t, &[BPF_MAP_TYPE_ARENA]) {
        refuse(
            "an arena",
            "holds memory its programs map, not entries to list",
        )
    } else {
        Reading::Entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_types_are_described_or_refused_by_name() {
        let t = |x: bpf_map_type| x as u32;
        assert_eq!(reading(t(BPF_MAP_TYPE_HASH), "m", 4), Reading::Entries);
        assert_eq!(
            reading(t(BPF_MAP_TYPE_PROG_ARRAY), "m", 4),
            Reading::ProgIds
        );
        assert_eq!(
            reading(t(BPF_MAP_TYPE_HASH_OF_MAPS), "m", 4),
            Reading::MapIds
        );
        assert_eq!(
            reading(t(BPF_MAP_TYPE_DEVMAP_HASH), "m", 4),
            Reading::Devices
        );
        assert_eq!(reading(t(BPF_MAP_TYPE_STACK), "m", 4), Reading::Peek);
        assert_eq!(reading(t(BPF_MAP_TYPE_RINGBUF), "m", 4), Reading::Ring);
        let Reading::Refused(why) = reading(t(BPF_MAP_TYPE_XSKMAP), "xsks_map", 4) else {
            panic!("an XSKMAP cannot be read");
        };
        assert_eq!(
            why,
            "xsks_map: an XSKMAP cannot be read from user space (the kernel returns \
             EOPNOTSUPP); its keys are queue ids and its values AF_XDP sockets"
        );
        assert_eq!(
            reading(t(BPF_MAP_TYPE_BLOOM_FILTER), "m", 4),
            Reading::Membership
        );
        assert_eq!(reading(t(BPF_MAP_TYPE_SOCKHASH), "m", 8), Reading::Entries);
        for x in [
            BPF_MAP_TYPE_PERF_EVENT_ARRAY,
            BPF_MAP_TYPE_SOCKMAP,
            BPF_MAP_TYPE_SK_STORAGE,
            BPF_MAP_TYPE_ARENA,
        ] {
            let Reading::Refused(why) = reading(t(x), "events", 4) else {
                panic!("{x:?} is refused");
            };
            assert!(why.starts_with("events: ") && !why.contains('\n'), "{why}");
        }
    }
}
