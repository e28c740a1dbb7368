//! Counters per rule (`stats --rules`, `save --hits`): random traffic over
//! 10,000 rules, judged by the reference model (tests/src/model.rs), must
//! leave every rule's packets and bytes where the model says; the counts
//! survive `load --replace` (maps shared, or moved into new ones); off
//! means off.

use std::{collections::HashMap, fmt::Write as _, path::Path};

use pcap_file::pcap::{PcapPacket, PcapWriter};
use serde_json::Value;
use xdpctl_tests::{
    Bpffs,
    model::{self, DropCache, Pool, Rng, Rules},
    require_privileges, xdpctl,
};

/// (map, rule as xdpctl names it) → (packets, bytes).
type Hits = HashMap<(String, String), (u64, u64)>;

/// A pool of sources and ports big enough for 10,000 rules, nested
/// prefixes among them (all sources in 10.0.0.0/12 and 2001:db8::/40, many
/// of them covered by no prefix).
fn pool(rng: &mut Rng) -> Pool {
    let v4 = (0..8000)
        .map(|_| {
            let b = rng.bits().to_be_bytes();
            [10, b[0] & 0x0f, b[1], b[2]]
        })
        .collect();
    let v6 = (0..3000)
        .map(|_| {
            let b = rng.bits().to_be_bytes();
            let mut a = [0u8; 16];
            a[..5].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, b[0] & 3]);
            a[5..12].copy_from_slice(&b[1..8]);
            a[15] = b[3];
            a
        })
        .collect();
    let ports = (0..1000)
        .map(|_| 1 + (rng.bits() % 65_535) as u16)
        .collect();
    Pool { v4, v6, ports }
}

/// About 10,000 rules over `pool`: blocklist entries (some of value 0: no
/// rule), nested CIDR prefixes with exceptions (value 0), ports.
fn rules(rng: &mut Rng, pool: &Pool) -> Rules {
    let mut r = Rules::default();
    let value = |rng: &mut Rng| u8::from(rng.chance(90));
    for a in &pool.v4 {
        if rng.chance(30) {
            r.blocklist.insert(*a, value(rng));
        }
    }
    for a in &pool.v6 {
        if rng.chance(30) {
            r.blocklist6.insert(*a, value(rng));
        }
    }
    while r.cidr4.len() < 5000 {
        let a = rng.pick(&pool.v4);
        let len = rng.pick(&[16u8, 18, 20, 22, 24, 26, 28, 30, 32]);
        r.cidr4
            .insert((model::mask(&a, len), len), u8::from(rng.chance(80)));
    }
    while r.cidr6.len() < 1500 {
        let a = rng.pick(&pool.v6);
        let len = rng.pick(&[40u8, 48, 56, 64, 96, 112, 120, 128]);
        r.cidr6
            .insert((model::mask(&a, len), len), u8::from(rng.chance(80)));
    }
    for p in &pool.ports {
        if rng.chance(40) {
            r.udp_ports.insert(*p, 1);
        }
        if rng.chance(40) {
            r.tcp_ports.insert(*p, 1);
        }
    }
    r
}

/// The rules as xdpctl lists them, each at zero hits: a blocklist or port
/// entry of value 0 is no rule; a prefix of value 0 is (an exception).
fn listed(r: &Rules) -> Hits {
    let mut out = Hits::new();
    let mut put = |map: &str, rule: String| {
        out.insert((map.to_owned(), rule), (0, 0));
    };
    for (a, v) in &r.blocklist {
        if *v != 0 {
            put("blocklist", std::net::Ipv4Addr::from(*a).to_string());
        }
    }
    for (a, v) in &r.blocklist6 {
        if *v != 0 {
            put("blocklist6", std::net::Ipv6Addr::from(*a).to_string());
        }
    }
    for (a, l) in r.cidr4.keys() {
        put("cidr4", format!("{}/{l}", std::net::Ipv4Addr::from(*a)));
    }
    for (a, l) in r.cidr6.keys() {
        put("cidr6", format!("{}/{l}", std::net::Ipv6Addr::from(*a)));
    }
    for p in r.udp_ports.keys() {
        put("udp_ports", p.to_string());
    }
    for p in r.tcp_ports.keys() {
        put("tcp_ports", p.to_string());
    }
    out
}

/// Writes `rules` into the load `fw` with `map update --from-file`.
fn write_rules(fs: &Bpffs, dir: &Path, r: &Rules) {
    let mut files: Vec<(&str, String)> = Vec::new();
    let mut text = String::new();
    for (a, v) in &r.blocklist {
        writeln!(text, "{} {v}", std::net::Ipv4Addr::from(*a)).unwrap();
    }
    files.push(("blocklist", std::mem::take(&mut text)));
    for (a, v) in &r.blocklist6 {
        writeln!(text, "{} {v}", std::net::Ipv6Addr::from(*a)).unwrap();
    }
    files.push(("blocklist6", std::mem::take(&mut text)));
    for ((a, l), v) in &r.cidr4 {
        writeln!(text, "{}/{l} {v}", std::net::Ipv4Addr::from(*a)).unwrap();
    }
    files.push(("cidr4", std::mem::take(&mut text)));
    for ((a, l), v) in &r.cidr6 {
        writeln!(text, "{}/{l} {v}", std::net::Ipv6Addr::from(*a)).unwrap();
    }
    files.push(("cidr6", std::mem::take(&mut text)));
    for (p, v) in &r.udp_ports {
        writeln!(text, "{p} {v}").unwrap();
    }
    files.push(("udp_ports", std::mem::take(&mut text)));
    for (p, v) in &r.tcp_ports {
        writeln!(text, "{p} {v}").unwrap();
    }
    files.push(("tcp_ports", text));
    for (map, text) in files {
        let file = dir.join(map);
        std::fs::write(&file, text).unwrap();
        xdpctl(
            fs,
            [
                "map",
                "update",
                &format!("fw/maps/{map}"),
                "--from-file",
                file.to_str().unwrap(),
            ],
        )
        .ok();
    }
}

/// The traffic of the test: random frames over the pool, judged by the
/// model against the rules.
struct Traffic<'a> {
    fs: &'a Bpffs,
    dir: &'a Path,
    rng: Rng,
    pool: Pool,
    rules: Rules,
}

impl Traffic<'_> {
    /// Runs `n` random frames through the firewall (`prog run --data`,
    /// each once), checks each verdict against the model, and adds what
    /// the model says each hits to `want` (if `counting`). The drop cache
    /// is made to start empty: a blocklist entry goes and comes back,
    /// which voids it.
    fn send(&mut self, n: usize, counting: bool, want: &mut Hits) {
        let (fs, r) = (self.fs, &self.rules);
        let (a, v) = r.blocklist.iter().find(|(_, v)| **v != 0).unwrap();
        let a = std::net::Ipv4Addr::from(*a).to_string();
        xdpctl(fs, ["map", "delete", "fw/maps/blocklist", &a]).ok();
        xdpctl(
            fs,
            ["map", "update", "fw/maps/blocklist", &a, &v.to_string()],
        )
        .ok();
        let mut cache = DropCache::default();
        let mut drops = Vec::with_capacity(n);
        let file = self.dir.join("frames.pcap");
        let mut w = PcapWriter::new(std::fs::File::create(&file).unwrap()).unwrap();
        for i in 0..n {
            let f = model::random_frame(&mut self.rng, &self.pool);
            let f = if self.rng.chance(20) {
                model::mutate(&mut self.rng, f)
            } else {
                f
            };
            let time = std::time::Duration::from_micros(i as u64);
            w.write_packet(&PcapPacket::new(time, f.len() as u32, &f))
                .unwrap();
            let j = model::judge_cached(r, &f, &mut cache);
            drops.push(j.outcome.drops());
            if let (Some((map, rule)), true) = (j.hit, counting) {
                let e = want.entry((map.to_owned(), rule)).or_default();
                e.0 += 1;
                e.1 += f.len() as u64;
            }
        }
        drop(w);
        let args = [
            "-j",
            "prog",
            "run",
            "fw/xdp_fw",
            "--data",
            file.to_str().unwrap(),
        ];
        let ran: Value = serde_json::from_str(&xdpctl(fs, args).ok().stdout).unwrap();
        let ran = ran.as_array().unwrap();
        assert_eq!(ran.len(), n);
        for (i, (run, drop)) in ran.iter().zip(drops).enumerate() {
            let want = if drop { "XDP_DROP" } else { "XDP_PASS" };
            assert_eq!(run["verdict"], want, "frame {i}: {run}");
        }
    }
}

/// What `stats --rules -j` says, and that every hit rule has a last hit.
fn counted(fs: &Bpffs, extra: &[&str]) -> Hits {
    let mut args = vec!["-j", "stats", "fw", "--rules"];
    args.extend(extra);
    let rows: Value = serde_json::from_str(&xdpctl(fs, args).ok().stdout).unwrap();
    let mut out = Hits::new();
    for r in rows.as_array().unwrap() {
        let packets = r["packets"].as_u64().unwrap();
        assert_eq!(r["present"], true, "{r}");
        assert_eq!(r["last_hit"].is_null(), packets == 0, "{r}");
        let key = (
            r["map"].as_str().unwrap().to_owned(),
            r["rule"].as_str().unwrap().to_owned(),
        );
        let prev = out.insert(key, (packets, r["bytes"].as_u64().unwrap()));
        assert!(prev.is_none(), "{r} listed twice");
    }
    out
}

/// The first few differences between two sets of counts.
fn diff(got: &Hits, want: &Hits) -> String {
    let mut d: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k:?}: got {:?}, model {v:?}", got.get(k)))
        .chain(
            got.keys()
                .filter(|k| !want.contains_key(*k))
                .map(|k| format!("{k:?}: not a rule of the model")),
        )
        .collect();
    d.sort();
    d.truncate(10);
    d.join("\n")
}

#[test]
fn counters_per_rule_match_the_reference_model_and_survive_replace() {
    require_privileges!();
    let seed = std::env::var("XDPFW_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xc0_47e5_u64);
    let mut rng = Rng::new(seed);
    let pool = pool(&mut rng);
    let r = rules(&mut rng, &pool);
    let fs = Bpffs::new();
    let tmp = tempfile::tempdir().unwrap();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    // Off after load: nothing counted until turned on.
    let off = xdpctl(&fs, ["stats", "fw", "--rules", "--top", "1"]).ok();
    assert!(off.stderr.contains("does not count per rule"), "{off:?}");
    xdpctl(&fs, ["stats", "fw", "--rule-counters", "on"]).ok();
    write_rules(&fs, tmp.path(), &r);
    let mut want = listed(&r);
    assert!(want.len() >= 10_000, "{} rules", want.len());
    let check = |want: &Hits, when: &str| {
        let got = counted(&fs, &[]);
        assert!(
            got == *want,
            "seed {seed:#x}, {when}: counts per rule differ from the model:\n{}",
            diff(&got, want)
        );
    };
    check(&want, "after load");

    let mut traffic = Traffic {
        fs: &fs,
        dir: tmp.path(),
        rng,
        pool,
        rules: r.clone(),
    };
    traffic.send(20_000, true, &mut want);
    check(&want, "after 20,000 frames");
    let hit = want.values().filter(|(p, _)| *p > 0).count();
    assert!(
        hit > 1500,
        "only {hit} rules hit: the cache of 1,024 slots is not exercised"
    );

    // Never hit: exactly the model's rules at zero.
    let unused = counted(&fs, &["--unused"]);
    let zero: Hits = want
        .iter()
        .filter(|(_, v)| v.0 == 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(unused, zero, "--unused");
    let top = counted(&fs, &["--top", "3"]);
    assert_eq!(top.len(), 3);
    let third = {
        let mut p: Vec<u64> = want.values().map(|v| v.0).collect();
        p.sort_unstable();
        p[p.len() - 3]
    };
    assert!(top.values().all(|v| v.0 >= third), "--top 3: {top:?}");

    // Counts carry over when the maps are new (another size) and when
    // they are shared.
    xdpctl(
        &fs,
        [
            "load",
            "--replace",
            "--pin",
            "fw",
            "--max-entries",
            "rule_hits=32768",
        ],
    )
    .ok();
    check(&want, "after load --replace into new maps");
    xdpctl(&fs, ["load", "--replace", "--pin", "fw"]).ok();
    check(&want, "after load --replace sharing the maps");
    traffic.send(5_000, true, &mut want);
    check(&want, "after 5,000 more frames");

    // Off: nothing counted; on again: counted again.
    xdpctl(&fs, ["stats", "fw", "--rule-counters", "off"]).ok();
    traffic.send(2_000, false, &mut want);
    check(&want, "with the counters off");
    let off = xdpctl(&fs, ["stats", "fw", "--rules", "--top", "1"]).ok();
    assert!(off.stderr.contains("does not count per rule"), "{off:?}");
    xdpctl(&fs, ["stats", "fw", "--rule-counters", "on"]).ok();
    traffic.send(2_000, true, &mut want);
    check(&want, "with the counters on again");
    assert_eq!(xdpctl_tests::fw_ctl(&fs, "fw", 14), 0, "hits lost");

    // Exceptions are said as such.
    let rows: Value =
        serde_json::from_str(&xdpctl(&fs, ["-j", "stats", "fw", "--rules"]).ok().stdout).unwrap();
    let exceptions = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["role"] == "exception")
        .count();
    let zero = r
        .cidr4
        .values()
        .chain(r.cidr6.values())
        .filter(|v| **v == 0)
        .count();
    assert_eq!(
        exceptions, zero,
        "CIDR prefixes of value 0 listed as exceptions"
    );

    // save --hits: each rule line carries its count, and applies back.
    let saved = xdpctl(&fs, ["save", "fw", "--hits"]).ok().stdout;
    let ((_, port), (packets, _)) = want
        .iter()
        .find(|((m, _), v)| m == "udp_ports" && v.0 > 1)
        .expect("a UDP port rule hit twice");
    let line = format!("- {port}  # {packets} packets, last hit 20");
    assert!(saved.contains(&line), "no `{line}` in\n{saved}");
    assert!(saved.contains("  # never hit\n"), "{saved}");
    let policy = tmp.path().join("policy.yaml");
    std::fs::write(&policy, &saved).unwrap();
    let plan = xdpctl(
        &fs,
        ["-j", "apply", "-f", policy.to_str().unwrap(), "--dry-run"],
    )
    .ok()
    .json();
    assert_eq!(plan["changes"], 0, "{plan}");

    // A reset: every rule at zero again.
    xdpctl(&fs, ["stats", "fw", "--rule-counters", "reset"]).ok();
    check(&listed(&r), "after a reset");
}
