//! The firewall's CIDR index, through the built binary on a pinned
//! firewall: 100,000 prefixes against an independent model (a hash per
//! prefix length), rules changed by xdpctl while packets run, and a rule
//! written behind xdpctl's back by bpftool.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use aya::programs::Xdp;
use aya_obj::programs::XdpAttachType;
use xdp_progs::{
    cidr4_index::Index,
    xdpfw::{Ctl, INDEX_OFF, INDEX_ON},
};
use xdpctl_tests::{
    Bpffs, flood,
    model::Rng,
    prefixes::{self, XDP_DROP, XDP_PASS, drops, rules_file, verdict},
    require_privileges, sh, xdpctl,
};

/// cidr4's rules: (masked address, length) → value.
type Rules = prefixes::Rules<u32>;

fn mask(len: u8) -> u32 {
    <u32 as prefixes::Addr>::mask(len)
}

fn frame(src: u32) -> Vec<u8> {
    flood::udp64([2; 6], [4; 6], src.to_be_bytes(), [192, 0, 2, 1], 53)
}

fn run(prog: &Xdp, f: &[u8]) -> u32 {
    flood::verdict(prog, f)
}

/// Runs `src`'s frame 1000 times: the verdict must turn to `to` within
/// the first 256 runs (the datapath's cross-check) and then hold.
fn turns_to(prog: &Xdp, src: u32, to: u32, what: &str) {
    let verdicts: Vec<u32> = (0..1000).map(|_| run(prog, &frame(src))).collect();
    let first = verdicts
        .iter()
        .position(|v| *v == to)
        .unwrap_or_else(|| panic!("{what}: never"));
    assert!(first <= 256, "{what}: after {first} packets");
    assert!(
        verdicts[first..].iter().all(|v| *v == to),
        "{what}: and holds"
    );
}

/// Random prefixes that nest: a few hundred /8s and /12s, many /16-/32.
fn random_rules(rng: &mut Rng, n: usize) -> Rules {
    let mut rules = Rules::new();
    while rules.len() < n {
        let addr = (rng.bits() as u32 & 0x3fff_ffff) | 0x4000_0000;
        let len = match rng.below(100) {
            0 => 8,
            1..=2 => 12,
            3..=20 => 16 + rng.below(8) as u8,
            21..=70 => 24,
            _ => 25 + rng.below(8) as u8,
        };
        let value = u8::from(rng.below(10) != 0);
        rules.insert((addr & mask(len), len), value);
    }
    rules
}

/// Addresses to try: inside random rules (host bits random) and anywhere.
fn probes(rng: &mut Rng, rules: &Rules, n: usize) -> Vec<u32> {
    let keys: Vec<&(u32, u8)> = rules.keys().collect();
    (0..n)
        .map(|i| {
            let r = rng.bits() as u32;
            if i % 2 == 0 {
                let (a, l) = keys[rng.below(keys.len())];
                a | (r & !mask(*l))
            } else {
                r
            }
        })
        .collect()
}

/// The firewall `fw`'s control word `word`.
fn ctl(fs: &Bpffs, word: Ctl) -> u64 {
    xdpctl_tests::fw_ctl(fs, "fw", word as u32)
}

#[test]
fn index_matches_the_model_with_100k_prefixes_and_changes_under_traffic() {
    require_privileges!();
    let fs = Bpffs::new();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x00c1_d4a5);
    let rules = random_rules(&mut rng, 100_000);
    let list: Vec<(u32, u8, u8)> = rules.iter().map(|((a, l), v)| (*a, *l, *v)).collect();
    let chunks = Index::build(&list).chunk_count();
    // Room for the rules after the change below, too.
    let room = (chunks + 4096).next_power_of_two() * 256;
    xdpctl(
        &fs,
        [
            "load",
            "--pin",
            "fw",
            "--max-entries",
            "cidr4=200000",
            "--max-entries",
            &format!("cidr4_chunks={room}"),
        ],
    )
    .ok();
    let file = rules_file(tmp.path(), "all.txt", &rules);
    xdpctl(&fs, ["map", "update", "cidr4", "--from-file", &file]).ok();
    assert_eq!(ctl(&fs, Ctl::Cidr4Mode), INDEX_ON, "the index is in use");

    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    let addrs = probes(&mut rng, &rules, 20_000);
    let mut mismatches = 0;
    for a in &addrs {
        if run(&prog, &frame(*a)) != verdict(drops(&rules, *a)) {
            mismatches += 1;
        }
    }
    assert_eq!(mismatches, 0, "of {} probes", addrs.len());

    // Changes while packets run: 2000 new prefixes (inside old ones and
    // not), 2000 values flipped, then a few deletions one by one. xdpctl
    // writes a trie entry at a time, so any subset of the changes covering
    // an address may be in place when a packet comes: its verdict must be
    // that of one such subset.
    let mut change = Rules::new();
    for (k, v) in rules.iter().take(2000) {
        change.insert(*k, 1 - v);
    }
    change.extend(random_rules(&mut rng, 2000));
    let deleted: Vec<(u32, u8)> = rules
        .keys()
        .filter(|k| !change.contains_key(k))
        .take(5)
        .copied()
        .collect();
    let mut next = rules.clone();
    next.extend(change.iter().map(|(k, v)| (*k, *v)));
    for k in &deleted {
        next.remove(k);
    }
    let mut hot = probes(&mut rng, &change, 2000);
    hot.extend(deleted.iter().map(|(a, l)| a | (0x5a5a_5a5a & !mask(*l))));
    let covers = |a: u32, (p, l): (u32, u8)| a & mask(l) == p;
    let allowed: Vec<(u32, bool, bool)> = hot
        .iter()
        .map(|a| {
            let edits: Vec<((u32, u8), Option<u8>)> = change
                .iter()
                .filter(|(k, _)| covers(*a, **k))
                .map(|(k, v)| (*k, Some(*v)))
                .chain(
                    deleted
                        .iter()
                        .filter(|k| covers(*a, **k))
                        .map(|k| (*k, None)),
                )
                .collect();
            assert!(edits.len() < 12, "{} changes cover {a:#x}", edits.len());
            let mut seen = (false, false);
            for subset in 0..1u32 << edits.len() {
                let applied: HashMap<(u32, u8), Option<u8>> = edits
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| subset & (1 << i) != 0)
                    .map(|(_, e)| *e)
                    .collect();
                let value = (0..=32u8).rev().find_map(|len| {
                    let k = (*a & mask(len), len);
                    match applied.get(&k) {
                        Some(v) => *v,
                        None => rules.get(&k).copied(),
                    }
                });
                if value.is_some_and(|v| v != 0) {
                    seen.0 = true;
                } else {
                    seen.1 = true;
                }
            }
            (*a, seen.0, seen.1)
        })
        .collect();
    let stop = AtomicBool::new(false);
    let (ran, bad) = std::thread::scope(|s| {
        let runner = s.spawn(|| {
            let prog =
                Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
            let (mut ran, mut bad) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for (a, may_drop, may_pass) in &allowed {
                    let v = run(&prog, &frame(*a));
                    ran += 1;
                    if (v == XDP_DROP && !may_drop) || (v == XDP_PASS && !may_pass) {
                        bad.push((*a, v));
                    }
                }
            }
            (ran, bad)
        });
        let file = rules_file(tmp.path(), "change.txt", &change);
        xdpctl(&fs, ["map", "update", "cidr4", "--from-file", &file]).ok();
        for (a, l) in &deleted {
            let key = format!("{}/{l}", std::net::Ipv4Addr::from(*a));
            xdpctl(&fs, ["map", "delete", "cidr4", &key]).ok();
        }
        stop.store(true, Ordering::Relaxed);
        runner.join().unwrap()
    });
    assert!(
        ran > allowed.len() as u64,
        "packets ran during the change: {ran}"
    );
    assert!(
        bad.is_empty(),
        "{} verdicts of no rule set: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert_eq!(
        ctl(&fs, Ctl::Cidr4Mode),
        INDEX_ON,
        "the index is in use again"
    );
    assert_eq!(
        ctl(&fs, Ctl::Cidr4Drift),
        0,
        "xdpctl's own changes are no drift"
    );
    let mut mismatches = 0;
    for a in addrs.iter().chain(&hot) {
        if run(&prog, &frame(*a)) != verdict(drops(&next, *a)) {
            mismatches += 1;
        }
    }
    assert_eq!(mismatches, 0, "after the change");
}

#[test]
fn a_rule_written_behind_xdpctls_back_is_found_and_repaired() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "cidr4", "198.51.100.0/24", "1"]).ok();
    assert_eq!(ctl(&fs, Ctl::Cidr4Mode), INDEX_ON);
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    let victim = u32::from(std::net::Ipv4Addr::new(203, 0, 113, 9));
    assert_eq!(run(&prog, &frame(victim)), XDP_PASS);

    // bpftool adds 203.0.113.0/24: key = prefix length (u32, host order)
    // then the address.
    let pin = fs.path().join("fw/maps/cidr4");
    sh(
        "bpftool",
        &[
            "map",
            "update",
            "pinned",
            pin.to_str().unwrap(),
            "key",
            "24",
            "0",
            "0",
            "0",
            "203",
            "0",
            "113",
            "0",
            "value",
            "1",
        ],
    );
    // The datapath cross-checks one packet in 128 against the trie: within
    // a few thousand packets it finds the difference and uses the trie.
    let verdicts: Vec<u32> = (0..5000).map(|_| run(&prog, &frame(victim))).collect();
    let first = verdicts
        .iter()
        .position(|v| *v == XDP_DROP)
        .expect("the datapath found the rule bpftool wrote");
    assert!(
        verdicts[first..].iter().all(|v| *v == XDP_DROP),
        "once found, the rule holds"
    );
    assert_eq!(ctl(&fs, Ctl::Cidr4Mode), INDEX_OFF, "the index is off");
    assert!(ctl(&fs, Ctl::Cidr4Drift) >= 1, "the drift is counted");
    let stats = xdpctl(&fs, ["stats"]).ok();
    assert!(
        stats.stderr.contains("cidr4 was changed outside xdpctl")
            && stats.stderr.contains("xdpctl doctor"),
        "stats says so: {}",
        stats.stderr
    );
    let doctor = xdpctl(&fs, ["doctor"]).ok();
    assert!(
        doctor.stdout.contains("repaired") && doctor.stdout.contains("rebuilt the index"),
        "doctor rebuilds the index: {}",
        doctor.stdout
    );
    assert_eq!(ctl(&fs, Ctl::Cidr4Mode), INDEX_ON, "the index is on again");
    for a in [victim, u32::from(std::net::Ipv4Addr::new(198, 51, 100, 7))] {
        assert_eq!(run(&prog, &frame(a)), XDP_DROP, "{a:#x} through the index");
    }
    assert!(
        !xdpctl(&fs, ["stats"])
            .ok()
            .stderr
            .contains("outside xdpctl")
    );
}

/// Kills `map update MAP KEY 1` before each of its state-changing steps:
/// every packet from `src` (to UDP port 53) must get the verdict of the
/// rule map as it is, and the index (`mode`) is on again after the next
/// `doctor` (or at once).
fn killed_changes_follow_the_rule_map(map: &str, key: &str, mode: Ctl, src: u32) {
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "cidr4", "198.51.100.0/24", "1"]).ok();
    xdpctl(&fs, ["map", "update", "blocklist", "198.51.100.77", "1"]).ok();
    xdpctl(&fs, ["map", "update", "udp_ports", "5353", "1"]).ok();
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    let mut n = 1;
    loop {
        let mut cmd = xdpctl_tests::command(&fs);
        cmd.args(["map", "update", map, key, "1"])
            .env("XDPCTL_FAILPOINT", n.to_string());
        let out = cmd.output().unwrap();
        let killed = out.status.code().is_none();
        let in_map = xdpctl(&fs, ["-j", "map", "lookup", map, key]).code == 0;
        for _ in 0..300 {
            assert_eq!(
                run(&prog, &frame(src)),
                verdict(in_map),
                "{map}: killed at step {n}: the verdict follows the rule map"
            );
        }
        if !killed {
            break;
        }
        if ctl(&fs, mode) == INDEX_OFF {
            let doctor = xdpctl(&fs, ["doctor"]).ok();
            assert!(
                doctor.stdout.contains("rebuilt the index"),
                "{}",
                doctor.stdout
            );
        }
        assert_eq!(ctl(&fs, mode), INDEX_ON, "{map}: step {n}");
        if in_map {
            xdpctl(&fs, ["map", "delete", map, key]).ok();
        }
        n += 1;
        assert!(n < 50, "{map}: the change never finished");
    }
    assert!(n > 3, "{map}: the change has several steps: {n}");
}

#[test]
fn an_interrupted_change_leaves_the_trie_in_charge_until_repaired() {
    require_privileges!();
    let src = u32::from(std::net::Ipv4Addr::new(203, 0, 113, 9));
    killed_changes_follow_the_rule_map("cidr4", "203.0.113.0/24", Ctl::Cidr4Mode, src);
}

#[test]
fn an_interrupted_port_or_blocklist_change_leaves_the_rule_map_in_charge() {
    require_privileges!();
    let src = u32::from(std::net::Ipv4Addr::new(203, 0, 113, 9));
    killed_changes_follow_the_rule_map("udp_ports", "53", Ctl::PortsMode, src);
    killed_changes_follow_the_rule_map("blocklist", "203.0.113.9", Ctl::BloomMode, src);
}

#[test]
fn a_blocklist_entry_removed_behind_xdpctls_back_stops_dropping() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    let src = u32::from(std::net::Ipv4Addr::new(203, 0, 113, 5));
    xdpctl(&fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    for _ in 0..10 {
        assert_eq!(
            run(&prog, &frame(src)),
            XDP_DROP,
            "blocklisted (and cached)"
        );
    }
    // Removed by xdpctl: the cache forgets it at once.
    xdpctl(&fs, ["map", "delete", "blocklist", "203.0.113.5"]).ok();
    assert_eq!(run(&prog, &frame(src)), XDP_PASS, "removed by xdpctl");
    // Cached again, then removed by bpftool: the datapath's cross-check
    // (one cache hit in 128) finds out within a few hundred packets.
    xdpctl(&fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    assert_eq!(run(&prog, &frame(src)), XDP_DROP);
    let pin = fs.path().join("fw/maps/blocklist");
    sh(
        "bpftool",
        &[
            "map",
            "delete",
            "pinned",
            pin.to_str().unwrap(),
            "key",
            "203",
            "0",
            "113",
            "5",
        ],
    );
    turns_to(&prog, src, XDP_PASS, "the datapath noticed the removal");
}

#[test]
fn a_blocklist_entry_added_behind_xdpctls_back_is_found_and_repaired() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    let src = u32::from(std::net::Ipv4Addr::new(203, 0, 113, 7));
    assert_eq!(run(&prog, &frame(src)), XDP_PASS);
    // bpftool adds it: the filter's bit is clear, so the datapath skips
    // the lookup, except one in 128 per CPU, which finds it.
    let pin = fs.path().join("fw/maps/blocklist");
    sh(
        "bpftool",
        &[
            "map",
            "update",
            "pinned",
            pin.to_str().unwrap(),
            "key",
            "203",
            "0",
            "113",
            "7",
            "value",
            "1",
        ],
    );
    turns_to(
        &prog,
        src,
        XDP_DROP,
        "the datapath found the entry bpftool added",
    );
    assert_eq!(ctl(&fs, Ctl::BloomMode), INDEX_OFF, "the filter is off");
    let stats = xdpctl(&fs, ["stats"]).ok();
    assert!(
        stats.stderr.contains("blocklist filter is off"),
        "{}",
        stats.stderr
    );
    let doctor = xdpctl(&fs, ["doctor"]).ok();
    assert!(
        doctor.stdout.contains("rebuilt the index"),
        "{}",
        doctor.stdout
    );
    assert_eq!(ctl(&fs, Ctl::BloomMode), INDEX_ON, "rebuilt and on");
    assert_eq!(run(&prog, &frame(src)), XDP_DROP);
}

#[test]
fn an_upgrade_with_fresh_index_maps_enforces_the_kept_rules_from_its_first_packet() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "cidr4", "198.51.100.128/25", "1"]).ok();
    // A new size for the chunks: the upgrade starts them empty while the
    // first level it keeps still points into them.
    xdpctl(
        &fs,
        [
            "load",
            "--pin",
            "fw",
            "--replace",
            "--reset-maps",
            "--max-entries",
            "cidr4_chunks=2097152",
        ],
    )
    .ok();
    let prog = Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap();
    let src = u32::from(std::net::Ipv4Addr::new(198, 51, 100, 200));
    assert_eq!(
        run(&prog, &frame(src)),
        XDP_DROP,
        "the first packet after the upgrade meets the kept rule"
    );
    assert_eq!(ctl(&fs, Ctl::Cidr4Mode), INDEX_ON);
}
