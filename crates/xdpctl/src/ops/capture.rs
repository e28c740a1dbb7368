//! A capture of the built-in firewall's decisions: claims a load's capture
//! maps, keeps its lease and cap while reading the ring buffer, and gives
//! the lease back on drop.
//!
//! The datapath side is in xdpfw.h ("Capture"). Nothing is created or
//! pinned: the ring buffer and the settings are the load's own maps, and
//! the lease in `ctl` lapses by itself when the capturing process dies
//! (SIGKILL included), so no later command has anything to clean up.

use std::{
    os::fd::AsFd,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{Map, MapData, RingBuf};
use xdp_progs::xdpfw::{self, CaptureCfg, CaptureHead, Ctl, Outcome};

use crate::{
    kernel::{
        clock::{monotonic_ns, unix_offset_ns},
        fwindex::{ctl_word, set_ctl_word},
        map::MapHandle,
    },
    model::{
        capture::{self, Prefixes},
        guard::Cidr,
        manifest::MAPS_SUBDIR,
    },
};

/// How long a lease lasts: a capture that stops renewing it (killed,
/// stopped) stops costing the datapath within this.
pub const LEASE: Duration = Duration::from_secs(3);
/// How often the lease is renewed and the cap's tokens refilled.
pub const RENEW: Duration = Duration::from_millis(100);

/// How often the ring buffer is read without a wakeup (the datapath wakes
/// the reader only when it is half full: `XDPFW_CAPTURE_POLL_MS`). At
/// 20 ms, the flood in `make bench` section 5 ran 1.5% slower than at
/// 100 ms, where a line still reaches the terminal within a blink.
pub const POLL: Duration = Duration::from_millis(100);

/// What to capture.
#[derive(Clone, Debug)]
pub struct Options {
    /// A bit per outcome index (see [`capture::outcome_mask`]).
    pub outcomes: u32,
    /// One matching packet in this many, per CPU.
    pub every: u32,
    /// Bytes of each packet to keep.
    pub snaplen: u32,
    /// At most this many packets a second, all CPUs together.
    pub max_rate: Option<u64>,
    /// 0, or the only ingress device.
    pub ifindex: u32,
}

/// A packet the firewall judged, as the capture caught it.
#[derive(Clone, Debug)]
pub struct Caught {
    /// Wall-clock time since the Unix epoch.
    pub time: Duration,
    /// The ingress device.
    pub ifindex: u32,
    /// Its RX queue.
    pub rx_queue: u32,
    /// The CPU that judged it.
    pub cpu: u32,
    /// The frame's length.
    pub len: u32,
    /// Its bytes, at least the headers (cut to the snap length by the
    /// writer).
    pub data: Vec<u8>,
    /// What the firewall did.
    pub outcome: Outcome,
}

/// The cap's tokens for each renewal: `--max-rate` spread over the
/// renewals of a second, the remainder carried, so that a rate below the
/// renewals' (10 a second) is kept too (1/s: a token every tenth).
#[derive(Clone, Debug)]
struct Refill {
    /// Packets a second; `None`: unlimited.
    rate: Option<u64>,
    /// Tokens owed, in renewals' parts (rate × renewals counted so far,
    /// less what was given).
    owed: u64,
}

impl Refill {
    const PER_SECOND: u64 = 1000 / RENEW.as_millis() as u64;

    fn new(rate: Option<u64>) -> Self {
        // The first renewal gives a token at once.
        Refill {
            rate,
            owed: Self::PER_SECOND - 1,
        }
    }

    /// The tokens of the next renewal.
    fn next(&mut self) -> i64 {
        match self.rate {
            None => i64::MAX / 4,
            Some(r) => {
                self.owed += r;
                let give = self.owed / Self::PER_SECOND;
                self.owed %= Self::PER_SECOND;
                i64::try_from(give).unwrap_or(i64::MAX / 4)
            }
        }
    }
}

/// The datapath's counts for a capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets whose outcome (and device) was wanted.
    pub matched: u64,
    /// Sampled packets over the cap.
    pub capped: u64,
    /// Sampled packets the ring buffer had no room for.
    pub lost: u64,
}

/// A running capture of one firewall load.
pub struct Capture {
    dir: PathBuf,
    cfg_map: MapHandle,
    ctl: MapHandle,
    slot: MapHandle,
    ring: RingBuf<MapData>,
    cfg: CaptureCfg,
    refill: Refill,
    renewed: Instant,
    started_mono: u64,
    mono_to_real: i128,
    cidr: [MapHandle; 2],
    prefixes: PrefixCache,
    /// `rate4` and `rate6`, where the firewall has them.
    rates: Vec<MapHandle>,
    rate_prefixes: PrefixCache,
    stopped: bool,
}

fn pod_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is one of xdpfw's plain-old-data mirrors.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

fn pod_from<T: Copy + Default>(bytes: &[u8]) -> T {
    let mut v = T::default();
    let n = bytes.len().min(size_of::<T>());
    // SAFETY: T is plain old data; at most its size is copied.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), (&raw mut v).cast::<u8>(), n) };
    v
}

const ZERO: [u8; 4] = 0u32.to_ne_bytes();

impl Capture {
    /// Claims the capture of the firewall loaded at `dir` and starts it.
    pub fn start(dir: &Path, opts: &Options) -> Result<Capture> {
        let maps = dir.join(MAPS_SUBDIR);
        let open = |name: &str| -> Result<MapHandle> {
            let path = maps.join(name);
            if std::fs::symlink_metadata(&path).is_err() {
                bail!(
                    "{}: this firewall has no capture maps (loaded by an older xdpctl); reload \
                     it with `xdpctl load --replace --pin {}` to capture",
                    dir.display(),
                    dir.display()
                );
            }
            MapHandle::open_pinned(&path).with_context(|| format!("opening {}", path.display()))
        };
        let cfg_map = open(xdpfw::maps::CAPTURE_CFG)?;
        let slot = open(xdpfw::maps::CAPTURE_SLOT)?;
        let ctl = open(xdpfw::maps::CTL)?;
        let slot_len = size_of::<CaptureHead>()
            + size_of::<xdpfw::CaptureRec>()
            + xdpfw::CAPTURE_SNAP_MAX as usize;
        if slot.info().value_size as usize != slot_len {
            bail!(
                "{}: its capture maps have another layout (loaded by an older xdpctl); reload it \
                 with `xdpctl load --replace --pin {}` to capture",
                dir.display(),
                dir.display()
            );
        }
        let cidr = [open(xdpfw::maps::CIDR4)?, open(xdpfw::maps::CIDR6)?];
        let rates = [xdpfw::maps::RATE4, xdpfw::maps::RATE6]
            .iter()
            .filter_map(|name| open(name).ok())
            .collect();
        if ctl.info().max_entries <= Ctl::Capture as u32 {
            bail!(
                "{}: its ctl map has {} words, too few for the capture's lease (loaded with \
                 --max-entries ctl=...); reload it without",
                dir.display(),
                ctl.info().max_entries
            );
        }
        let ring_path = maps.join(xdpfw::maps::CAPTURE_RB);
        let ring = MapData::from_pin(&ring_path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", ring_path.display()))?;
        let ring = RingBuf::try_from(Map::RingBuf(ring))
            .map_err(|e| anyhow::anyhow!("{}: {e}", ring_path.display()))?;

        // One capture per load: they would share one ring buffer.
        let _lock = pinfs::DirLock::exclusive(dir)?;
        let now = monotonic_ns();
        let mut value = vec![0u8; cfg_map.value_len()];
        cfg_map.lookup(&ZERO, &mut value)?;
        let held: CaptureCfg = pod_from(&value);
        let lease = ctl_word(&ctl, Ctl::Capture)?;
        let me = std::process::id();
        if lease > now && held.owner != 0 && held.owner != me && alive(held.owner) {
            bail!(
                "{}: xdpctl (pid {}) is capturing this firewall already, and a load has one \
                 capture at a time (they share its ring buffer); stop it first",
                dir.display(),
                held.owner
            );
        }
        let cfg = CaptureCfg {
            outcomes: opts.outcomes,
            every: opts.every.max(1),
            snaplen: opts.snaplen,
            owner: me,
            ifindex: opts.ifindex,
            pad: 0,
            tokens: 0,
        };
        // No tokens yet: drain what a capture before this one left. The
        // lease is taken back first, so that no CPU is counting while
        // each CPU's head (its settings, its counts at zero) is written.
        set_ctl_word(&ctl, Ctl::Capture, 0)?;
        cfg_map.update(&ZERO, pod_bytes(&cfg), 0)?;
        write_heads(
            &slot,
            &CaptureHead {
                every: cfg.every,
                outcomes: cfg.outcomes,
                ifindex: cfg.ifindex,
                ..CaptureHead::default()
            },
        )?;
        let mut ring = ring;
        while ring.next().is_some() {}
        // The first renewal below gives the first tokens.
        let refill = Refill::new(opts.max_rate);
        let mut c = Capture {
            dir: dir.to_owned(),
            cfg_map,
            ctl,
            slot,
            ring,
            cfg,
            refill,
            renewed: Instant::now(),
            started_mono: now,
            mono_to_real: unix_offset_ns(nix::time::ClockId::CLOCK_MONOTONIC),
            cidr,
            prefixes: PrefixCache::default(),
            rates,
            rate_prefixes: PrefixCache::default(),
            stopped: false,
        };
        c.renew()?;
        Ok(c)
    }

    /// Renews the lease and refills the cap's tokens.
    fn renew(&mut self) -> Result<()> {
        self.cfg.tokens = self.refill.next();
        self.cfg_map.update(&ZERO, pod_bytes(&self.cfg), 0)?;
        let until = monotonic_ns() + LEASE.as_nanos() as u64;
        set_ctl_word(&self.ctl, Ctl::Capture, until)?;
        self.renewed = Instant::now();
        Ok(())
    }

    /// Waits up to `timeout` for packets, renewing the lease when due.
    pub fn wait(&mut self, timeout: Duration) -> Result<()> {
        if self.renewed.elapsed() >= RENEW {
            self.renew()?;
        }
        // The datapath wakes the reader only when the ring is half full.
        let timeout = timeout
            .min(RENEW.saturating_sub(self.renewed.elapsed()))
            .min(POLL);
        let mut fds = [nix::poll::PollFd::new(
            self.ring.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context("waiting for captured packets")),
        }
    }

    /// The next packet caught, into `c` (its buffer reused: this runs per
    /// packet); false if none is waiting.
    pub fn next_into(&mut self, c: &mut Caught) -> bool {
        loop {
            let Some(item) = self.ring.next() else {
                return false;
            };
            let Some((rec, data)) = capture::decode(&item) else {
                continue;
            };
            // Left by a capture before this one.
            if rec.ts_ns < self.started_mono {
                continue;
            }
            let Some(outcome) = capture::outcome_of(rec.outcome) else {
                continue;
            };
            let real = i128::from(rec.ts_ns) + self.mono_to_real;
            c.time = Duration::from_nanos(u64::try_from(real).unwrap_or(0));
            c.ifindex = rec.ifindex;
            c.rx_queue = rec.rx_queue;
            c.cpu = rec.cpu;
            c.len = rec.len;
            c.data.clear();
            c.data.extend_from_slice(data);
            c.outcome = outcome;
            return true;
        }
    }

    /// The datapath's counts since the capture started.
    pub fn counts(&self) -> Result<Counts> {
        counts(&self.slot)
    }

    /// The CIDR prefixes, re-read at most once a second (for telling which
    /// prefix dropped a packet).
    pub fn prefixes(&mut self) -> &Prefixes {
        self.prefixes
            .get(&self.cidr, |v| v.first().copied().unwrap_or(0))
    }

    /// The rate limits' prefixes, re-read at most once a second (for
    /// telling which limit dropped a packet).
    pub fn rate_prefixes(&mut self) -> &Prefixes {
        self.rate_prefixes.get(&self.rates, |_| 1)
    }

    /// The load directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Gives the lease back, so that the datapath stops copying now: what
    /// a capture does when it ends (dropping it without does the same, best
    /// effort; a lease not given back lapses in [`LEASE`]).
    pub fn finish(mut self) -> Result<()> {
        let done = self.stop();
        self.stopped = true;
        done.with_context(|| {
            format!(
                "stopping the capture of {} (its lease lapses in {} s anyway)",
                self.dir.display(),
                LEASE.as_secs()
            )
        })
    }

    fn stop(&mut self) -> Result<()> {
        set_ctl_word(&self.ctl, Ctl::Capture, 0)?;
        self.cfg.tokens = 0;
        self.cfg.owner = 0;
        self.cfg_map.update(&ZERO, pod_bytes(&self.cfg), 0)?;
        Ok(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop();
        }
    }
}

/// The capture's counts summed over CPUs (each CPU's head was zeroed
/// when the capture started).
fn counts(slot: &MapHandle) -> Result<Counts> {
    let mut v = vec![0u8; slot.value_len()];
    slot.lookup(&ZERO, &mut v)?;
    let mut sum = Counts::default();
    for cpu in v.chunks(slot.stride()) {
        let c: CaptureHead = pod_from(cpu);
        sum.matched += c.matched();
        sum.capped += c.capped;
        sum.lost += c.lost;
    }
    Ok(sum)
}

/// Writes `head` at the start of every CPU's slot (the record area after
/// it is left as it is).
fn write_heads(slot: &MapHandle, head: &CaptureHead) -> Result<()> {
    let mut v = vec![0u8; slot.value_len()];
    slot.lookup(&ZERO, &mut v)?;
    let bytes = pod_bytes(head);
    for cpu in v.chunks_mut(slot.stride()) {
        cpu[..bytes.len()].copy_from_slice(bytes);
    }
    slot.update(&ZERO, &v, 0)
        .context("writing the capture's settings to each CPU")
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// What `capture` reads: a firewall load, and the device it is limited to.
#[derive(Clone, Debug)]
pub struct Target {
    /// The load directory.
    pub dir: PathBuf,
    /// 0, or the only device captured.
    pub ifindex: u32,
    /// Device names by ifindex, for the output.
    pub names: std::collections::HashMap<u32, String>,
}

/// Resolves `capture`'s DIR|DEV: a load directory (under the bpffs root,
/// or absolute), else a device in `netns` whose XDP program is a pinned
/// firewall's. `None`: the only firewall load.
pub fn resolve(ctx: &crate::ctx::Ctx, target: Option<&str>, netns: Option<&str>) -> Result<Target> {
    use crate::{kernel::netlink::Rtnl, ops::firewall::Firewall};
    let dev = match target {
        Some(t) if t.contains('/') || (netns.is_none() && ctx.resolve(Path::new(t)).exists()) => {
            None
        }
        Some(t) => Some(t),
        None => None,
    };
    let Some(dev) = dev else {
        let fw = Firewall::open(ctx, target.map(Path::new))?;
        let names = attached_names(ctx, &fw.dir)?;
        return Ok(Target {
            dir: fw.dir,
            ifindex: 0,
            names,
        });
    };
    let entered = crate::kernel::netns::enter(netns)?;
    let device = Rtnl::open()
        .context("opening rtnetlink")?
        .device(dev)
        .map_err(|e| anyhow::anyhow!("reading device {dev}: {e}"))?;
    drop(entered);
    let where_ = netns.map_or(String::new(), |n| format!(" in namespace {n}"));
    let Some(device) = device else {
        bail!(
            "{dev} is neither a load directory under {} nor a device{where_}; name the firewall's \
             load directory, or a device it is attached to (with --netns for another namespace)",
            ctx.bpffs.display()
        );
    };
    let progs: Vec<u32> = device
        .xdp
        .attached()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let Some(&prog) = progs.first() else {
        bail!(
            "{dev}{where_} runs no XDP program; attach the firewall (`xdpctl attach DIR/xdp_fw \
             {dev}{}`) to capture its decisions",
            crate::model::error_text::netns_arg(netns)
        );
    };
    let pins = ctx.pin_index()?;
    let firewalls = super::firewall::find_loads(&ctx.bpffs).unwrap_or_default();
    let dir = progs
        .iter()
        .filter_map(|id| pins.get(&(pinfs::Kind::Prog, *id)))
        .flatten()
        .filter_map(|p| super::loaddir::nearest(p))
        .find(|d| firewalls.contains(d));
    let Some(dir) = dir else {
        bail!(
            "{dev}{where_} runs XDP program {prog}, which is not a pinned load of the built-in \
             firewall: capture reads the firewall's own record of its decisions. Another \
             program's packets need fentry/fexit tracing (as xdpdump does), which this kernel \
             refuses when it is locked down; where tracing is allowed, use `xdpdump -i {dev}`"
        );
    };
    // The datapath filters by ifindex, which does not say the namespace:
    // another device of this load with the same ifindex is captured too.
    let all = attached_names(ctx, &dir).unwrap_or_default();
    if let Some(both) = all.get(&device.ifindex).filter(|n| n.contains('|')) {
        ctx.out.note(format_args!(
            "{dev} has ifindex {}, and so has another device this firewall runs on ({both}): \
             XDP does not tell namespaces apart, so its packets are captured too (the device \
             column names both)",
            device.ifindex
        ));
    }
    let name = all
        .get(&device.ifindex)
        .filter(|n| n.contains('|'))
        .cloned()
        .unwrap_or_else(|| dev.to_owned());
    Ok(Target {
        dir,
        ifindex: device.ifindex,
        names: [(device.ifindex, name)].into_iter().collect(),
    })
}

/// The devices the load at `dir` is attached to, by ifindex, each named
/// `dev` in the current namespace and `dev@netns` in another. The kernel
/// records an ifindex, not its namespace: two attached devices with one
/// ifindex in two namespaces are both named. Index 1 is `lo`, where a test
/// run's packets (`xdpctl prog run`) come from.
fn attached_names(
    ctx: &crate::ctx::Ctx,
    dir: &Path,
) -> Result<std::collections::HashMap<u32, String>> {
    use crate::kernel::{netlink::Rtnl, netns::Netns};
    let load = super::loaddir::LoadDir::open(dir)?;
    let here = Netns::current()?;
    let mut names: std::collections::HashMap<u32, Vec<String>> = std::collections::HashMap::new();
    for d in super::live::devices(&load, &ctx.link_pin_index()?)? {
        let Ok(Ok(entered)) = d.netns.enter() else {
            continue;
        };
        let found = Rtnl::open()
            .ok()
            .and_then(|mut r| r.device(&d.name).ok().flatten());
        drop(entered);
        let Some(found) = found else { continue };
        let name = match (&d.netns.name, d.netns.ino == here.ino) {
            (_, true) => d.name.clone(),
            (Some(ns), false) => format!("{}@{ns}", d.name),
            (None, false) => format!("{}@netns:{}", d.name, d.netns.ino),
        };
        let v = names.entry(found.ifindex).or_default();
        if !v.contains(&name) {
            v.push(name);
        }
    }
    names.entry(1).or_insert_with(|| vec!["lo".into()]);
    Ok(names.into_iter().map(|(i, v)| (i, v.join("|"))).collect())
}

/// The prefixes of LPM maps (`cidr4`/`cidr6`, `rate4`/`rate6`), read
/// again at most once a second.
#[derive(Default)]
struct PrefixCache {
    prefixes: Prefixes,
    at: Option<Instant>,
}

impl PrefixCache {
    /// The prefixes of `maps`, each with the value `value_of` its map
    /// value gives.
    fn get(&mut self, maps: &[MapHandle], value_of: impl Fn(&[u8]) -> u8) -> &Prefixes {
        if self
            .at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            let mut p = Prefixes::default();
            for map in maps {
                let _ = map.for_each(|k, v| {
                    if let Some(c) = Cidr::from_lpm_key(k) {
                        p.insert(c.addr, c.len, value_of(v));
                    }
                    Ok(true)
                });
            }
            self.prefixes = p;
            self.at = Some(Instant::now());
        }
        &self.prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::Refill;

    #[test]
    fn the_cap_holds_below_and_above_the_renewals_rate() {
        for rate in [1u64, 2, 5, 15, 20, 200, 10_000] {
            let mut r = Refill::new(Some(rate));
            // Ten seconds of renewals: the first gives a token at once, so
            // the count is the rate's, give or take that one.
            let given: i64 = (0..100).map(|_| r.next()).sum();
            assert!(
                (rate * 10..=rate * 10 + 1).contains(&(given as u64)),
                "rate {rate}: {given}"
            );
        }
        let mut r = Refill::new(Some(1));
        assert_eq!(r.next(), 1, "the first packet is not kept waiting");
        assert_eq!((0..9).map(|_| r.next()).sum::<i64>(), 0);
        assert_eq!(r.next(), 1);
    }
}
