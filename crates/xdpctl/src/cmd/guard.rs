//! `xdpctl guard`: the count-then-block control loop. Every interval it
//! reads the firewall's per-source counters, and blocks a source whose
//! packet rate is over the threshold, for a while.
//!
//! Guard's own blocks are told apart from an operator's: they carry the
//! value [`GUARD_MARK`] in the blocklist and are recorded, with their expiry,
//! in a small map pinned in the load directory (`DIR/guard`). So guard never
//! removes an entry an operator added, and a restarted guard picks up its
//! unexpired blocks.

use std::{
    collections::HashMap,
    io::{self, Write},
    net::IpAddr,
    os::fd::AsFd,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use xdp_progs::xdpfw;

use crate::{
    cli::{Cidr, GuardArgs},
    ctx::Ctx,
    kernel::clock::{now_ms, rfc3339, sleep_until},
    kernel::{
        fwindex,
        sys::{self, update_flags},
    },
    model::guard::{Blocklist, Event, GUARD_MARK, Guard, Inserted, Settings, Source},
    ops::{
        firewall::{self as stats, Firewall},
        openmap::OpenMap,
    },
    render::{self, Format},
};

/// The pin of guard's state in the load directory.
const STATE_PIN: &str = "guard";

/// Guard's record of its blocks: source → expiry (Unix ms), pinned.
struct State {
    map: OpenMap,
}

fn state_key(src: Source) -> [u8; 16] {
    match src {
        Source::V4(a) => {
            // IPv4-mapped IPv6: ::ffff:a.b.c.d
            let mut k = [0u8; 16];
            k[10] = 0xff;
            k[11] = 0xff;
            k[12..].copy_from_slice(&a);
            k
        }
        Source::V6(a) => a,
    }
}

fn from_state_key(k: &[u8]) -> Source {
    if k[..10].iter().all(|b| *b == 0) && k[10] == 0xff && k[11] == 0xff {
        Source::V4(
            k.get(12..16)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default(),
        )
    } else {
        Source::V6(k.try_into().unwrap_or_default())
    }
}

impl State {
    /// Opens guard's state in `dir`, creating (and pinning) it the first
    /// time; none in a dry run, which changes nothing.
    fn open(dir: &std::path::Path, dry_run: bool) -> Result<Option<Self>> {
        if dry_run {
            return Ok(None);
        }
        let path = dir.join(STATE_PIN);
        if !path.exists() {
            let fd = sys::map_create(
                aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_HASH,
                "xdpctl_guard",
                16,
                8,
                65_536,
            )
            .context("creating guard's state map")?;
            pinfs::failpoint::step("BPF_OBJ_PIN");
            pinfs::obj_pin(fd.as_fd(), &path)?;
        }
        let map = OpenMap::at(&path)?;
        let info = map.handle().info();
        if info.key_size != 16 || info.value_size != 8 || map.handle().per_cpu() {
            bail!(
                "{} is not guard's state map (key {} bytes, value {} bytes; guard's has 16 and 8); \
                 move it away, or name another load directory",
                path.display(),
                info.key_size,
                info.value_size
            );
        }
        Ok(Some(State { map }))
    }

    fn all(&self) -> Result<HashMap<Source, u64>> {
        let mut out = HashMap::new();
        self.map.for_each(|k, v| {
            out.insert(from_state_key(k), stats::ne_u64(v));
            Ok(true)
        })?;
        Ok(out)
    }

    fn set(&self, src: Source, expiry: u64) -> Result<()> {
        self.map
            .handle()
            .update(&state_key(src), &expiry.to_ne_bytes(), update_flags::ANY)?;
        Ok(())
    }

    fn remove(&self, src: Source) -> Result<()> {
        self.map.handle().delete(&state_key(src))?;
        Ok(())
    }
}

fn blocklist_for(fw: &Firewall, src: Source) -> (&OpenMap, Vec<u8>) {
    match src {
        Source::V4(a) => (fw.map(xdpfw::maps::BLOCKLIST), a.to_vec()),
        Source::V6(a) => (fw.map(xdpfw::maps::BLOCKLIST6), a.to_vec()),
    }
}

/// The blocklist value of a source, if it has an entry.
fn blocklist_value(fw: &Firewall, src: Source) -> Result<Option<u8>> {
    let (map, key) = blocklist_for(fw, src);
    let mut value = vec![0u8; map.value_len()];
    Ok(map.handle().lookup(&key, &mut value)?.then(|| value[0]))
}

/// The address of the SSH client this runs under, if any: never blocked.
fn ssh_client() -> Option<Cidr> {
    let conn = std::env::var("SSH_CONNECTION")
        .or_else(|_| std::env::var("SSH_CLIENT"))
        .ok()?;
    let addr: IpAddr = conn.split_whitespace().next()?.parse().ok()?;
    Some(Cidr {
        addr,
        len: if addr.is_ipv4() { 32 } else { 128 },
    })
}

struct Log {
    format: Format,
}

impl Log {
    fn event(&self, e: &Event) -> io::Result<()> {
        let (action, src, rate, expiry, why) = (e.action, e.src, e.rate, e.expiry, e.why);
        let now = now_ms();
        let mut out = render::stdout();
        match self.format {
            Format::Human => {
                let mut line = format!("{} {action} {src}", rfc3339(now));
                if let Some(r) = rate {
                    line.push_str(&format!(" rate={r:.0}pps"));
                }
                if let Some(e) = expiry {
                    line.push_str(&format!(" expires={}", rfc3339(e)));
                }
                if !why.is_empty() {
                    line.push_str(&format!(" ({why})"));
                }
                writeln!(out, "{line}")?;
            }
            _ => writeln!(
                out,
                "{}",
                json!({
                    "time": rfc3339(now),
                    "action": action,
                    "source": src.to_string(),
                    "rate": rate,
                    "expiry": expiry.map(rfc3339),
                    "reason": why,
                })
            )?,
        }
        out.flush()
    }
}

/// The firewall's blocklist and guard's records, for [`Guard`]'s rules.
struct Maps<'a> {
    fw: &'a Firewall,
    state: &'a State,
}

impl Blocklist for Maps<'_> {
    fn entry(&mut self, src: Source) -> Result<Option<u8>> {
        blocklist_value(self.fw, src)
    }

    fn block(&mut self, src: Source, expiry_ms: u64) -> Result<Inserted> {
        let (map, key) = blocklist_for(self.fw, src);
        // The record first: a guard killed in between resumes a block it
        // may not have made, and removes it at expiry only if it carries
        // guard's mark.
        self.state.set(src, expiry_ms)?;
        let mut value = vec![0u8; map.value_len()];
        value[0] = GUARD_MARK;
        // The one protocol of rule changes: the datapath's blocklist filter
        // learns the source first, or it would not look the new entry up
        // (blocklist6, if marked empty, is looked up from now on).
        let change = begin(self.fw, src, &key)?;
        let written = map.handle().update(&key, &value, update_flags::NOEXIST);
        if let Some((t, c)) = change {
            c.finish(&t)?;
        }
        match written {
            Ok(()) => Ok(Inserted::Blocked),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.state.remove(src)?;
                Ok(Inserted::Taken)
            }
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) => {
                self.state.remove(src)?;
                Ok(Inserted::Full)
            }
            Err(e) => Err(e).context(format!("blocking {src}")),
        }
    }

    fn unblock(&mut self, src: Source) -> Result<bool> {
        let mine = blocklist_value(self.fw, src)? == Some(GUARD_MARK);
        if mine {
            let (map, key) = blocklist_for(self.fw, src);
            // The datapath forgets it as cached blocked; the last block
            // gone, the kind is skipped again.
            let change = begin(self.fw, src, &[])?;
            let deleted = map.handle().delete(&key);
            if let Some((t, c)) = change {
                c.finish(&t)?;
            }
            deleted?;
        }
        self.state.remove(src)?;
        Ok(mine)
    }
}

/// Begins a change to the blocklist of `src` that adds `key` (if not
/// empty): `fwindex`'s one protocol, finished after the write.
fn begin(
    fw: &Firewall,
    src: Source,
    key: &[u8],
) -> Result<Option<(fwindex::Target, fwindex::Change)>> {
    let Some(t) = fwindex::Target::open(&fw.maps_dir())? else {
        return Ok(None);
    };
    let (kind, added) = match src {
        Source::V4(_) => (fwindex::Rules::Blocklist, key),
        _ => (fwindex::Rules::Blocklist6, &[][..]),
    };
    let change = t.begin(&[kind], added)?;
    Ok(Some((t, change)))
}

/// A dry run reads the blocklist and changes nothing.
struct ReadOnly<'a>(&'a Firewall);

impl Blocklist for ReadOnly<'_> {
    fn entry(&mut self, src: Source) -> Result<Option<u8>> {
        blocklist_value(self.0, src)
    }
    fn block(&mut self, _: Source, _: u64) -> Result<Inserted> {
        bail!("a dry run blocks nothing")
    }
    fn unblock(&mut self, _: Source) -> Result<bool> {
        Ok(false)
    }
}

/// `xdpctl guard`.
pub fn guard(ctx: &Ctx, args: &GuardArgs) -> Result<()> {
    if args.threshold <= 0.0 {
        bail!("--threshold must be a packet rate above 0");
    }
    let fw = Firewall::open(ctx, args.dir.as_deref())?;
    let log = Log { format: ctx.format };
    let mut allow = args.allow.clone();
    if let Some(ssh) = ssh_client() {
        ctx.out.note(format_args!(
            "guard: never blocking this SSH session's client {}",
            ssh.addr
        ));
        allow.push(ssh);
    }
    let state = State::open(&fw.dir, args.dry_run)?;
    // Under a flood the firewall counts a new source once it is heavy
    // enough; guard makes sure "heavy enough" is well below its threshold.
    let maps_dir = fw.maps_dir();
    if !args.dry_run {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        fwindex::set_admit_cap(&maps_dir, fwindex::admit_cap(args.threshold, cpus))?;
    }
    let settings = Settings {
        threshold: args.threshold,
        block_for_ms: args.block_for.as_millis().min(u128::from(u64::MAX)) as u64,
        allow,
        max_blocks: args.max_blocks,
        dry_run: args.dry_run,
    };
    crate::kernel::process::handle_signals()?;
    let mut maps: Box<dyn Blocklist> = match &state {
        Some(state) => Box::new(Maps { fw: &fw, state }),
        None => Box::new(ReadOnly(&fw)),
    };

    // A restart picks up its own unexpired blocks (and drops expired ones
    // below, on the first pass).
    let mut guard = Guard {
        active: match &state {
            Some(s) => s.all()?,
            None => HashMap::new(),
        },
    };
    if !guard.active.is_empty() {
        ctx.out.note(format_args!(
            "guard: resuming {} block(s) from {}",
            guard.active.len(),
            fw.dir.join(STATE_PIN).display()
        ));
    }
    ctx.out.note(format_args!(
        "guard: watching {} every {:?}, blocking sources over {} pps for {:?}{}",
        fw.dir.display(),
        args.interval,
        args.threshold,
        args.block_for,
        if args.dry_run {
            " (dry run: nothing is changed)"
        } else {
            ""
        }
    ));

    let (mut prev, mut sample) = (stats::Counts::default(), stats::Counts::default());
    fw.sample(&mut prev)?;
    let mut prev_at = Instant::now();
    let mut passes = 0u64;
    loop {
        // Expiry first: it frees room under --max-blocks.
        for e in guard.expire(maps.as_mut(), now_ms())? {
            log.event(&e)?;
        }
        if args.count.is_some_and(|c| passes >= c) || !sleep_until(prev_at + args.interval) {
            break;
        }
        fw.sample(&mut sample)?;
        let dt = prev_at.elapsed().as_secs_f64();
        prev_at = Instant::now();
        let rates: Vec<(Source, f64)> =
            stats::rates(&prev, &sample, dt, args.threshold, usize::MAX)
                .into_iter()
                .map(|(src, rate, _)| (src, rate))
                .collect();
        for e in guard.pass(maps.as_mut(), &settings, &rates, now_ms())? {
            log.event(&e)?;
        }
        std::mem::swap(&mut prev, &mut sample);
        passes += 1;
    }

    if args.keep_blocks && state.is_some() {
        ctx.out.note(format_args!(
            "guard: stopping; keeping {} block(s) (--keep-blocks)",
            guard.active.len()
        ));
    }
    for e in guard.stop(maps.as_mut(), args.keep_blocks)? {
        log.event(&e)?;
    }
    if !args.dry_run {
        fwindex::set_admit_cap(&maps_dir, 0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_round_trip_both_families() {
        for src in [
            Source::V4([203, 0, 113, 5]),
            Source::V6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
        ] {
            assert_eq!(from_state_key(&state_key(src)), src);
        }
    }
}
