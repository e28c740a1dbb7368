//! The built-in firewall's datapath, run with `BPF_PROG_TEST_RUN`: a
//! differential test against the reference model over 100,000 random and
//! mutated frames under random rule sets, and targeted cases.

use std::{collections::HashMap as StdHashMap, fmt::Write as _};

use aya::{
    Ebpf,
    maps::{
        Array, HashMap, MapData, PerCpuArray, PerCpuHashMap,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{TestRun, TestRunOptions, Xdp},
};
use xdp_progs::{
    cidr4_index::Index,
    cidr6_index,
    xdpfw::{self, Config, Counter, Ctl, Outcome},
};
use xdpctl_tests::{
    model::{self, Judgement, Pool, Rng, Rules, Source},
    require_privileges,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// The mode words of the indexes.
const MODES: [Ctl; 4] = [
    Ctl::Cidr4Mode,
    Ctl::Cidr6Mode,
    Ctl::PortsMode,
    Ctl::BloomMode,
];

/// One `struct xdpfw_port_bits`.
#[derive(Clone, Copy)]
#[repr(C)]
struct PortBits([u64; 1024]);

// SAFETY: plain old data, no padding.
unsafe impl aya::Pod for PortBits {}

struct Fw {
    ebpf: Ebpf,
    /// The CIDR index last written (all zero after load).
    index: Index,
    /// Whether the blocklist filter has bits set.
    bloom_dirty: bool,
}

fn map<'a>(ebpf: &'a mut Ebpf, name: &str) -> &'a mut aya::maps::Map {
    ebpf.map_mut(name)
        .unwrap_or_else(|| panic!("no map {name}"))
}

fn clear<K: aya::Pod, V: aya::Pod>(m: &mut HashMap<&mut MapData, K, V>) {
    let keys: Vec<K> = m.keys().map(Result::unwrap).collect();
    for k in keys {
        m.remove(&k).unwrap();
    }
}

fn clear_lpm<K: aya::Pod, V: aya::Pod>(m: &mut LpmTrie<&mut MapData, K, V>) {
    let keys: Vec<Key<K>> = m.keys().map(Result::unwrap).collect();
    for k in keys {
        m.remove(&k).unwrap();
    }
}

impl Fw {
    fn load() -> Self {
        let mut ebpf = Ebpf::load(xdpfw::OBJECT).expect("loading xdpfw");
        let prog: &mut Xdp = ebpf
            .program_mut(xdpfw::PROGRAM)
            .unwrap()
            .try_into()
            .unwrap();
        prog.load().expect("the verifier accepts xdp_fw");
        Fw {
            ebpf,
            index: Index::build(&[]),
            bloom_dirty: false,
        }
    }

    fn run(&self, data: &[u8]) -> u32 {
        let prog: &Xdp = self
            .ebpf
            .program(xdpfw::PROGRAM)
            .unwrap()
            .try_into()
            .unwrap();
        let opts = TestRunOptions {
            data_in: Some(data),
            ..Default::default()
        };
        prog.test_run(opts).expect("BPF_PROG_TEST_RUN").return_value
    }

    /// Packets and bytes per outcome, summed over CPUs.
    fn stats(&self) -> Vec<(Outcome, Counter)> {
        let map: PerCpuArray<_, Counter> =
            PerCpuArray::try_from(self.ebpf.map(xdpfw::maps::STATS).unwrap()).unwrap();
        Outcome::ALL
            .iter()
            .map(|o| {
                let values = map.get(&o.index(), 0).unwrap();
                let sum = values.iter().fold(Counter::default(), |a, c| Counter {
                    packets: a.packets + c.packets,
                    bytes: a.bytes + c.bytes,
                });
                (*o, sum)
            })
            .collect()
    }

    fn icmp_drops(&self) -> u64 {
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(xdpfw::maps::ICMP_DROPS).unwrap()).unwrap();
        map.get(&0, 0).unwrap().iter().sum()
    }

    /// Every source counted in pps and pps6, with its count.
    fn counted(&self) -> StdHashMap<Source, u64> {
        let mut out = StdHashMap::new();
        let v4: PerCpuHashMap<_, [u8; 4], u64> =
            PerCpuHashMap::try_from(self.ebpf.map(xdpfw::maps::PPS).unwrap()).unwrap();
        for entry in v4.iter() {
            let (k, v) = entry.unwrap();
            out.insert(Source::V4(k), v.iter().sum());
        }
        let v6: PerCpuHashMap<_, [u8; 16], u64> =
            PerCpuHashMap::try_from(self.ebpf.map(xdpfw::maps::PPS6).unwrap()).unwrap();
        for entry in v6.iter() {
            let (k, v) = entry.unwrap();
            out.insert(Source::V6(k), v.iter().sum());
        }
        out
    }

    /// Writes the CIDR indexes, the port index and the blocklist filter of `rules` (of the CIDR
    /// index only what changed since the last one) and turns them on, as
    /// xdpctl does; or turns them off.
    fn set_index(&mut self, rules: &Rules, on: bool) {
        let mut ctl: Array<_, u64> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::CTL)).unwrap();
        for word in MODES {
            ctl.set(word as u32, xdpfw::INDEX_OFF, 0).unwrap();
        }
        if !on {
            return;
        }
        let mut bloom: Array<_, u64> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::BLOOM)).unwrap();
        let mut words = vec![0u64; (xdpfw::BLOOM_BITS / 64) as usize];
        for src in rules.blocklist.keys() {
            let bit = xdpfw::bloom_bit(*src) as usize;
            words[bit / 64] |= 1 << (bit % 64);
        }
        for (i, w) in words.iter().enumerate() {
            if *w != 0 || self.bloom_dirty {
                bloom.set(i as u32, *w, 0).unwrap();
            }
        }
        self.bloom_dirty = words.iter().any(|w| *w != 0);
        let list: Vec<(u32, u8, u8)> = rules
            .cidr4
            .iter()
            .map(|((p, l), v)| (u32::from_be_bytes(*p), *l, *v))
            .collect();
        let new = Index::build(&list);
        let mut l1: Array<_, u32> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::CIDR4_L1)).unwrap();
        for (i, (a, b)) in self.index.l1.iter().zip(&new.l1).enumerate() {
            if a != b {
                l1.set(i as u32, *b, 0).unwrap();
            }
        }
        let mut chunks: Array<_, u32> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::CIDR4_CHUNKS)).unwrap();
        for (i, b) in new.chunks.iter().enumerate() {
            if self.index.chunks.get(i) != Some(b) {
                chunks.set(i as u32, *b, 0).unwrap();
            }
        }
        self.index = new;
        // The IPv6 index: emptied, then written whole.
        let six: Vec<cidr6_index::Rule> = rules
            .cidr6
            .iter()
            .map(|((p, l), v)| (u128::from_be_bytes(*p), *l, *v))
            .collect();
        let six = cidr6_index::Index::build(&six);
        let mut hash: HashMap<_, [u8; 20], u32> =
            HashMap::try_from(map(&mut self.ebpf, xdpfw::maps::CIDR6_INDEX)).unwrap();
        clear(&mut hash);
        for (&(len, addr), v) in &six.entries {
            hash.insert(cidr6_index::key(len, addr), v, 0).unwrap();
        }
        let mut filter: Array<_, u64> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::CIDR6_FILTER)).unwrap();
        for (i, w) in cidr6_index::filter_words(&six).into_iter().enumerate() {
            filter.set(i as u32, w, 0).unwrap();
        }
        let mut lens: Array<_, [u8; cidr6_index::LENS_VALUE]> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::CIDR6_LENS)).unwrap();
        lens.set(0, six.lens_value(), 0).unwrap();
        let mut bits: Array<_, PortBits> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::PORT_BITS)).unwrap();
        for (slot, ports) in [&rules.udp_ports, &rules.tcp_ports].into_iter().enumerate() {
            let mut b = PortBits([0; 1024]);
            for (p, v) in ports {
                if *v != 0 {
                    b.0[usize::from(*p) / 64] |= 1 << (p % 64);
                }
            }
            bits.set(slot as u32, b, 0).unwrap();
        }
        let mut ctl: Array<_, u64> =
            Array::try_from(map(&mut self.ebpf, xdpfw::maps::CTL)).unwrap();
        for word in MODES {
            ctl.set(word as u32, xdpfw::INDEX_ON, 0).unwrap();
        }
    }

    /// Makes the maps hold exactly `rules`, and empties the counters of
    /// sources.
    fn set(&mut self, rules: &Rules) {
        let e = &mut self.ebpf;
        let mut m: HashMap<_, [u8; 4], u8> =
            HashMap::try_from(map(e, xdpfw::maps::BLOCKLIST)).unwrap();
        clear(&mut m);
        for (k, v) in &rules.blocklist {
            m.insert(k, v, 0).unwrap();
        }
        // Entries went: the datapath's cache of blocked sources is stale.
        let mut ctl: Array<_, u64> = Array::try_from(map(e, xdpfw::maps::CTL)).unwrap();
        let generation = ctl.get(&(Ctl::BlockGen as u32), 0).unwrap();
        ctl.set(Ctl::BlockGen as u32, generation + 1, 0).unwrap();
        let mut m: HashMap<_, [u8; 16], u8> =
            HashMap::try_from(map(e, xdpfw::maps::BLOCKLIST6)).unwrap();
        clear(&mut m);
        for (k, v) in &rules.blocklist6 {
            m.insert(k, v, 0).unwrap();
        }
        let mut m: LpmTrie<_, [u8; 4], u8> = LpmTrie::try_from(map(e, xdpfw::maps::CIDR4)).unwrap();
        clear_lpm(&mut m);
        for ((p, l), v) in &rules.cidr4 {
            m.insert(&Key::new(u32::from(*l), *p), v, 0).unwrap();
        }
        let mut m: LpmTrie<_, [u8; 16], u8> =
            LpmTrie::try_from(map(e, xdpfw::maps::CIDR6)).unwrap();
        clear_lpm(&mut m);
        for ((p, l), v) in &rules.cidr6 {
            m.insert(&Key::new(u32::from(*l), *p), v, 0).unwrap();
        }
        for (name, ports) in [
            (xdpfw::maps::UDP_PORTS, &rules.udp_ports),
            (xdpfw::maps::TCP_PORTS, &rules.tcp_ports),
        ] {
            let mut m: HashMap<_, [u8; 2], u8> = HashMap::try_from(map(e, name)).unwrap();
            clear(&mut m);
            for (p, v) in ports {
                m.insert(p.to_be_bytes(), v, 0).unwrap();
            }
        }
        let mut m: Array<_, Config> = Array::try_from(map(e, xdpfw::maps::CONFIG)).unwrap();
        let config = Config {
            drop_icmp: u8::from(rules.drop_icmp),
            drop_icmp6_echo: u8::from(rules.drop_icmp6_echo),
        };
        m.set(0, config, 0).unwrap();
        let mut m: PerCpuHashMap<_, [u8; 4], u64> =
            PerCpuHashMap::try_from(map(e, xdpfw::maps::PPS)).unwrap();
        let keys: Vec<[u8; 4]> = m.keys().map(Result::unwrap).collect();
        for k in keys {
            m.remove(&k).unwrap();
        }
        let mut m: PerCpuHashMap<_, [u8; 16], u64> =
            PerCpuHashMap::try_from(map(e, xdpfw::maps::PPS6)).unwrap();
        let keys: Vec<[u8; 16]> = m.keys().map(Result::unwrap).collect();
        for k in keys {
            m.remove(&k).unwrap();
        }
    }
}

fn hex(f: &[u8]) -> String {
    let mut s = String::new();
    for b in f {
        write!(s, "{b:02x}").unwrap();
    }
    s
}

fn delta(before: &[(Outcome, Counter)], after: &[(Outcome, Counter)]) -> Vec<(Outcome, u64, u64)> {
    before
        .iter()
        .zip(after)
        .map(|((o, b), (_, a))| (*o, a.packets - b.packets, a.bytes - b.bytes))
        .collect()
}

/// The proof: random rule sets, random valid frames and mutations of them
/// (truncations at every kind of boundary, ihl, lengths, versions, single
/// bytes), each run through the real program and judged by the model.
#[test]
fn differential_against_the_reference_model() {
    require_privileges!();
    const RULE_SETS: usize = 100;
    const FRAMES: usize = 1000;
    let seed = std::env::var("XDPFW_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d_u64);
    let mut rng = Rng::new(seed);
    let pool = Pool::new();
    let mut fw = Fw::load();
    let mut seen = StdHashMap::new();
    for set in 0..RULE_SETS {
        let rules = model::random_rules(&mut rng, &pool);
        fw.set(&rules);
        // Every other rule set through the CIDR index, as xdpctl sets it.
        fw.set_index(&rules, set % 2 == 1);
        let frames: Vec<Vec<u8>> = (0..FRAMES)
            .map(|_| {
                let f = model::random_frame(&mut rng, &pool);
                if rng.chance(50) {
                    model::mutate(&mut rng, f)
                } else {
                    f
                }
            })
            .collect();
        let before = fw.stats();
        let mut judged: Vec<Judgement> = Vec::with_capacity(FRAMES);
        // `set` changed the blocklist's generation: the cache starts empty.
        let mut cache = model::DropCache::default();
        for f in &frames {
            let want = model::judge_cached(&rules, f, &mut cache);
            let verdict = fw.run(f);
            let expected = if want.outcome.drops() {
                XDP_DROP
            } else {
                XDP_PASS
            };
            assert_eq!(
                verdict,
                expected,
                "seed {seed:#x}, rule set {set}: verdict mismatch for frame {}\nmodel says {:?}\nrules: {rules:#?}",
                hex(f),
                want
            );
            *seen.entry(want.outcome).or_insert(0u64) += 1;
            judged.push(want);
        }
        // Counters: per outcome, packets and bytes; per source, packets.
        let got = delta(&before, &fw.stats());
        let want: Vec<(Outcome, u64, u64)> = Outcome::ALL
            .iter()
            .map(|o| {
                let frames_with: Vec<&Vec<u8>> = frames
                    .iter()
                    .zip(&judged)
                    .filter(|(_, j)| j.outcome == *o)
                    .map(|(f, _)| f)
                    .collect();
                (
                    *o,
                    frames_with.len() as u64,
                    frames_with.iter().map(|f| f.len() as u64).sum(),
                )
            })
            .collect();
        if got != want {
            // Find the first frame the counters disagree on.
            for (f, j) in frames.iter().zip(&judged) {
                let b = fw.stats();
                fw.run(f);
                let d = delta(&b, &fw.stats());
                let counted: Vec<Outcome> = d
                    .iter()
                    .filter(|(_, p, _)| *p > 0)
                    .map(|(o, _, _)| *o)
                    .collect();
                assert_eq!(
                    counted,
                    vec![j.outcome],
                    "seed {seed:#x}, rule set {set}: counter mismatch for frame {}\nrules: {rules:#?}",
                    hex(f)
                );
            }
            panic!("seed {seed:#x}, rule set {set}: counters {got:?}, model {want:?}");
        }
        assert_eq!(
            fw.counted(),
            model::counts(&judged),
            "seed {seed:#x}, rule set {set}: per-source counts"
        );
        // The datapath's cross-check would hide a wrong index by turning
        // it off: it must still be on, and have found nothing.
        let ctl: Array<_, u64> = Array::try_from(fw.ebpf.map(xdpfw::maps::CTL).unwrap()).unwrap();
        let word = |w: Ctl| ctl.get(&(w as u32), 0).unwrap();
        let mode = if set % 2 == 1 {
            xdpfw::INDEX_ON
        } else {
            xdpfw::INDEX_OFF
        };
        assert_eq!(
            [
                word(Ctl::Cidr4Mode),
                word(Ctl::Cidr4Drift),
                word(Ctl::PortsMode),
                word(Ctl::PortsDrift),
                word(Ctl::BloomMode),
                word(Ctl::BloomDrift),
                word(Ctl::Cidr6Mode),
                word(Ctl::Cidr6Drift),
            ],
            [mode, 0, mode, 0, mode, 0, mode, 0],
            "seed {seed:#x}, rule set {set}: index modes and drift"
        );
    }
    // The generator must reach every outcome, or the proof proves less:
    // every stateless one (rate limits depend on time, SYN cookies on the
    // kernel's secret and sockets: ratelimit.rs and syncookie.rs test them).
    let stateful = [Outcome::DropRate, Outcome::SynCookie, Outcome::DropCookie];
    for o in Outcome::ALL.into_iter().filter(|o| !stateful.contains(o)) {
        assert!(
            seen.get(&o).copied().unwrap_or(0) > 50,
            "outcome {o:?} was hit only {:?} times: {seen:?}",
            seen.get(&o)
        );
    }
    eprintln!("{} frames, outcomes: {seen:?}", RULE_SETS * FRAMES);
}

#[test]
fn fresh_load_drops_nothing_and_counts_icmp() {
    require_privileges!();
    let mut fw = Fw::load();
    let pool = Pool::new();
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let f = model::random_frame(&mut rng, &pool);
        assert_eq!(fw.run(&f), XDP_PASS, "a fresh load must pass {}", hex(&f));
    }
    fw.set(&Rules {
        drop_icmp: true,
        ..Default::default()
    });
    let mut icmp = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    icmp.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 198, 51, 100, 7, 10, 0, 0, 1,
    ]);
    icmp.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
    for _ in 0..4 {
        assert_eq!(fw.run(&icmp), XDP_DROP);
    }
    assert_eq!(fw.icmp_drops(), 4, "one count per dropped ICMP packet");
}
