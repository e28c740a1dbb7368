//! The firewall's IPv6 CIDR index, through the built binary on a pinned
//! firewall: 100,000 prefixes of many lengths against an independent model
//! (a hash per prefix length), rules changed by xdpctl while packets run,
//! a rule written behind xdpctl's back by bpftool, a change killed at each
//! step, and an upgrade from a firewall without the index.

use std::{
    net::Ipv6Addr,
    sync::atomic::{AtomicBool, Ordering},
};

use aya::programs::Xdp;
use aya_obj::programs::XdpAttachType;
use xdp_progs::{
    cidr6_index::{Index, Rule, mask},
    xdpfw::{Ctl, INDEX_OFF, INDEX_ON},
};
use xdpctl_tests::{
    Bpffs,
    model::Rng,
    prefixes::{self, XDP_DROP, XDP_PASS, drops, rules_file, verdict},
    require_privileges, sh, xdpctl,
};

/// cidr6's rules: (masked address, length) → value.
type Rules = prefixes::Rules<u128>;

/// A UDP frame from `src` to port 53.
fn frame(src: u128) -> Vec<u8> {
    let mut f = vec![4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1).octets());
    f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
    f
}

fn run(prog: &Xdp, src: u128) -> u32 {
    xdpctl_tests::flood::verdict(prog, &frame(src))
}

fn prefix(a: u128, l: u8) -> String {
    format!("{}/{l}", Ipv6Addr::from(a))
}

/// Random prefixes that nest, under a few /24s: the lengths operators use
/// most (/32, /48, /56, /64, /128) and a spread of others.
fn random_rules(rng: &mut Rng, n: usize) -> Rules {
    let mut rules = Rules::new();
    while rules.len() < n {
        let base = [0x0020_010d_u128, 0x002a_0014, 0x00fd_1234][rng.below(3)] << 104;
        let addr =
            base | (u128::from(rng.bits()) << 40 | u128::from(rng.bits())) & ((1 << 104) - 1);
        let len = match rng.below(100) {
            // Short ones, /0 included, now and then: few distinct.
            0 if rng.below(4) == 0 => rng.below(24) as u8,
            0..=4 => 24 + rng.below(8) as u8,
            5..=14 => 32,
            15..=34 => 48,
            35..=44 => 56,
            45..=74 => 64,
            75..=89 => 128,
            _ => 33 + rng.below(95) as u8,
        };
        let value = u8::from(rng.below(10) != 0);
        rules.insert((addr & mask(len), len), value);
    }
    rules
}

/// Addresses to try: inside random rules (host bits random), next to them
/// (one bit flipped: what the markers steer), and anywhere under the /24s.
fn probes(rng: &mut Rng, rules: &Rules, n: usize) -> Vec<u128> {
    let keys: Vec<&(u128, u8)> = rules.keys().collect();
    (0..n)
        .map(|i| {
            let r = u128::from(rng.bits()) << 64 | u128::from(rng.bits());
            let (a, l) = keys[rng.below(keys.len())];
            match i % 3 {
                0 => a | (r & !mask(*l)),
                1 => a ^ (1 << (rng.below(128))),
                _ => (a & mask(24)) | (r & !mask(24)),
            }
        })
        .collect()
}

/// The firewall `fw`'s control word `word`.
fn ctl(fs: &Bpffs, word: Ctl) -> u64 {
    xdpctl_tests::fw_ctl(fs, "fw", word as u32)
}

fn prog(fs: &Bpffs) -> Xdp {
    Xdp::from_pin(fs.path().join("fw/xdp_fw"), XdpAttachType::Interface).unwrap()
}

#[test]
fn ipv6_index_matches_the_model_with_100k_prefixes_and_changes_under_traffic() {
    require_privileges!();
    let fs = Bpffs::new();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x0006_c1d4);
    let rules = random_rules(&mut rng, 100_000);
    let list: Vec<Rule> = rules.iter().map(|((a, l), v)| (*a, *l, *v)).collect();
    let index = Index::build(&list);
    assert!(index.lens.len() > 60, "many lengths: {}", index.lens.len());
    // Room for the rules, and for their markers in the index.
    let room = (index.entries.len() + 50_000).next_power_of_two();
    xdpctl(
        &fs,
        [
            "load",
            "--pin",
            "fw",
            "--max-entries",
            "cidr6=200000",
            "--max-entries",
            &format!("cidr6_index={room}"),
        ],
    )
    .ok();
    let file = rules_file(tmp.path(), "all.txt", &rules);
    xdpctl(&fs, ["map", "update", "cidr6", "--from-file", &file]).ok();
    assert_eq!(ctl(&fs, Ctl::Cidr6Mode), INDEX_ON, "the index is in use");

    let prog = prog(&fs);
    let addrs = probes(&mut rng, &rules, 20_000);
    let mismatches = addrs
        .iter()
        .filter(|a| run(&prog, **a) != verdict(drops(&rules, **a)))
        .count();
    assert_eq!(mismatches, 0, "of {} probes", addrs.len());

    // Changes while packets run: 1000 values flipped and about 1000 new
    // prefixes (of /64 and longer, nested in the old ones), then a few
    // deletions one by one. Only addresses that one change covers are
    // judged meanwhile: old verdict or new.
    let mut change = Rules::new();
    for (k, v) in rules.iter().filter(|((_, l), _)| *l >= 64).take(1000) {
        change.insert(*k, 1 - v);
    }
    change.extend(
        random_rules(&mut rng, 2000)
            .into_iter()
            .filter(|((_, l), _)| *l >= 64),
    );
    let deleted: Vec<(u128, u8)> = rules
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
    let covers = |a: u128, (p, l): (u128, u8)| a & mask(l) == p;
    let hot: Vec<(u128, bool, bool)> = probes(&mut rng, &change, 3000)
        .into_iter()
        .chain(deleted.iter().map(|(a, l)| a | (0x5a5a & !mask(*l))))
        .filter(|a| {
            change.keys().filter(|k| covers(*a, **k)).count()
                + deleted.iter().filter(|k| covers(*a, **k)).count()
                == 1
        })
        .map(|a| (a, drops(&rules, a), drops(&next, a)))
        .collect();
    assert!(hot.len() > 500, "judged meanwhile: {}", hot.len());
    let (started, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let (ran, bad) = std::thread::scope(|s| {
        let runner = s.spawn(|| {
            let prog = self::prog(&fs);
            let (mut ran, mut bad) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for (a, old, new) in &hot {
                    let v = run(&prog, *a);
                    ran += 1;
                    if v != verdict(*old) && v != verdict(*new) {
                        bad.push((*a, v));
                    }
                }
                started.store(true, Ordering::Relaxed);
            }
            (ran, bad)
        });
        // Packets run before the change starts, and on during it.
        while !started.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        let file = rules_file(tmp.path(), "change.txt", &change);
        xdpctl(&fs, ["map", "update", "cidr6", "--from-file", &file]).ok();
        for (a, l) in &deleted {
            xdpctl(&fs, ["map", "delete", "cidr6", &prefix(*a, *l)]).ok();
        }
        stop.store(true, Ordering::Relaxed);
        runner.join().unwrap()
    });
    assert!(
        ran > hot.len() as u64,
        "packets ran during the change: {ran}"
    );
    assert!(
        bad.is_empty(),
        "{} verdicts of neither rule set: {:x?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert_eq!(ctl(&fs, Ctl::Cidr6Mode), INDEX_ON, "in use again");
    assert_eq!(
        ctl(&fs, Ctl::Cidr6Drift),
        0,
        "xdpctl's changes are no drift"
    );
    let mismatches = addrs
        .iter()
        .chain(hot.iter().map(|(a, _, _)| a))
        .filter(|a| run(&prog, **a) != verdict(drops(&next, **a)))
        .count();
    assert_eq!(mismatches, 0, "after the change");
}

#[test]
fn an_ipv6_rule_written_behind_xdpctls_back_is_found_and_repaired() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "cidr6", "2001:db8:1::/48", "1"]).ok();
    assert_eq!(ctl(&fs, Ctl::Cidr6Mode), INDEX_ON);
    let prog = prog(&fs);
    let victim = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 9));
    assert_eq!(run(&prog, victim), XDP_PASS);

    // bpftool adds 2001:db8:2::/48: key = prefix length (u32, host order)
    // then the address.
    let pin = fs.path().join("fw/maps/cidr6");
    let mut args = vec!["map", "update", "pinned", pin.to_str().unwrap(), "key"];
    let len = 48u32.to_ne_bytes().map(|b| b.to_string());
    let addr = (victim & mask(48)).to_be_bytes().map(|b| b.to_string());
    args.extend(len.iter().chain(&addr).map(String::as_str));
    args.extend(["value", "1"]);
    sh("bpftool", &args);
    // One lookup in 128 is checked against the trie.
    let verdicts: Vec<u32> = (0..1000).map(|_| run(&prog, victim)).collect();
    let first = verdicts
        .iter()
        .position(|v| *v == XDP_DROP)
        .expect("the datapath found the rule bpftool wrote");
    // One check in 128 per CPU: the thread may move between CPUs.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(first <= 128 * cpus + 128, "found after {first} packets");
    assert!(
        verdicts[first..].iter().all(|v| *v == XDP_DROP),
        "and holds"
    );
    assert_eq!(ctl(&fs, Ctl::Cidr6Mode), INDEX_OFF, "the index is off");
    assert!(ctl(&fs, Ctl::Cidr6Drift) >= 1, "the drift is counted");
    let stats = xdpctl(&fs, ["stats"]).ok();
    assert!(
        stats.stderr.contains("cidr6 was changed outside xdpctl")
            && stats.stderr.contains("IPv6 CIDR index is off"),
        "stats says so: {}",
        stats.stderr
    );
    let doctor = xdpctl(&fs, ["doctor"]).ok();
    assert!(
        doctor.stdout.contains("rebuilt the index"),
        "doctor rebuilds the index: {}",
        doctor.stdout
    );
    assert_eq!(ctl(&fs, Ctl::Cidr6Mode), INDEX_ON, "on again");
    for a in [
        victim,
        u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7)),
    ] {
        assert_eq!(run(&prog, a), XDP_DROP, "{a:#x} through the index");
    }
}

#[test]
fn an_interrupted_ipv6_change_leaves_the_trie_in_charge_until_repaired() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "cidr6", "2001:db8:1::/48", "1"]).ok();
    let prog = prog(&fs);
    let new = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 9));
    let mut n = 1;
    loop {
        let mut cmd = xdpctl_tests::command(&fs);
        cmd.args(["map", "update", "cidr6", "2001:db8:2::/48", "1"])
            .env("XDPCTL_FAILPOINT", n.to_string());
        let killed = cmd.output().unwrap().status.code().is_none();
        let in_trie = xdpctl(&fs, ["-j", "map", "lookup", "cidr6", "2001:db8:2::/48"]).code == 0;
        for _ in 0..300 {
            assert_eq!(
                run(&prog, new),
                verdict(in_trie),
                "killed at step {n}: the verdict follows the trie"
            );
        }
        if !killed {
            break;
        }
        if ctl(&fs, Ctl::Cidr6Mode) == INDEX_OFF {
            let doctor = xdpctl(&fs, ["doctor"]).ok();
            assert!(
                doctor.stdout.contains("rebuilt the index"),
                "{}",
                doctor.stdout
            );
        }
        assert_eq!(ctl(&fs, Ctl::Cidr6Mode), INDEX_ON);
        if in_trie {
            xdpctl(&fs, ["map", "delete", "cidr6", "2001:db8:2::/48"]).ok();
        }
        n += 1;
        assert!(n < 50, "the change never finished");
    }
    assert!(n > 3, "the change has several steps: {n}");
}

#[test]
fn an_upgrade_from_a_firewall_without_the_ipv6_index_adds_it() {
    require_privileges!();
    let fs = Bpffs::new();
    // A firewall with the control words of the version before the IPv6
    // index (8 of them): it looks cidr6 up in the trie, and nothing says
    // an index is off.
    xdpctl(&fs, ["load", "--pin", "fw", "--max-entries", "ctl=8"]).ok();
    xdpctl(&fs, ["map", "update", "cidr6", "2001:db8:1::/48", "1"]).ok();
    let src = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5));
    assert_eq!(run(&prog(&fs), src), XDP_DROP, "through the trie");
    let stats = xdpctl(&fs, ["stats"]).ok();
    assert!(
        !stats.stderr.contains("index is off")
            && stats.stderr.contains("no IPv6 CIDR index")
            && stats.stderr.contains("`xdpctl load --replace` adds it"),
        "{}",
        stats.stderr
    );
    let doctor = xdpctl(&fs, ["doctor"]).ok();
    assert!(!doctor.stdout.contains("problem"), "{}", doctor.stdout);

    // Guard's admission cap (set as guard sets it) carries over.
    xdpctl(&fs, ["map", "update", "fw/maps/ctl", "2", "77"]).ok();
    // The upgrade needs no --reset-maps: the firewall's own maps start
    // anew and every index is rebuilt from the rules kept before the
    // switch.
    xdpctl(&fs, ["load", "--pin", "fw", "--replace"]).ok();
    assert_eq!(ctl(&fs, Ctl::Cidr6Mode), INDEX_ON);
    assert_eq!(
        run(&prog(&fs), src),
        XDP_DROP,
        "the first packet after the upgrade meets the kept rule"
    );
    assert!(
        !xdpctl(&fs, ["stats"])
            .ok()
            .stderr
            .contains("IPv6 CIDR index"),
        "nothing to say after the upgrade"
    );
    let map = xdpctl(&fs, ["-j", "map", "show", "fw/maps/ctl"])
        .ok()
        .json();
    assert_eq!(map[0]["max_entries"], 16, "{map}");
    assert_eq!(
        ctl(&fs, Ctl::AdmitCap),
        77,
        "the admission cap carried over"
    );
}

#[test]
fn a_firewall_given_rule_maps_with_rules_indexes_them_before_its_first_packet() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(&fs, ["map", "update", "cidr6", "2001:db8:1::/48", "1"]).ok();
    xdpctl(&fs, ["map", "update", "cidr4", "198.51.100.0/24", "1"]).ok();
    let maps = fs.path().join("fw/maps");
    let share = |name: &str| format!("{name}={}", maps.join(name).display());
    xdpctl(
        &fs,
        [
            "load",
            "--pin",
            "fw2",
            "--map",
            &share("cidr6"),
            "--map",
            &share("cidr4"),
        ],
    )
    .ok();
    let prog = Xdp::from_pin(fs.path().join("fw2/xdp_fw"), XdpAttachType::Interface).unwrap();
    let src = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5));
    assert_eq!(run(&prog, src), XDP_DROP, "the first packet meets the rule");
    let ctl2 = |w: Ctl| {
        xdpctl(
            &fs,
            [
                "-j",
                "map",
                "lookup",
                "fw2/maps/ctl",
                &(w as u32).to_string(),
            ],
        )
        .ok()
        .json()["value"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(ctl2(Ctl::Cidr6Mode), INDEX_ON);
    assert_eq!(ctl2(Ctl::Cidr4Mode), INDEX_ON);
    assert_eq!(ctl2(Ctl::Cidr6Drift), 0, "and no drift was needed");

    // The firewall's own maps are its own: never shared.
    let before = fs.snapshot();
    xdpctl(
        &fs,
        ["load", "--pin", "fw3", "--map", &share("cidr6_index")],
    )
    .fails_with(&["--map cidr6_index", "derives"]);
    assert_eq!(fs.snapshot(), before);
}
