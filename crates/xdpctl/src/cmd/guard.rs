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
    cmd::map::OpenMap,
    cmd::stats::{self, Firewall, Source},
    ctx::Ctx,
    kernel::sys::{self, update_flags},
    render::{self, Format},
};

/// The blocklist value guard writes: non-zero (drops), and not the `1` an
/// operator types.
pub const GUARD_MARK: u8 = 0x67;

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

fn in_cidr(addr: IpAddr, cidr: &Cidr) -> bool {
    match (addr, cidr.addr) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = u32::from(cidr.len);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = u32::from(cidr.len);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn ip(src: Source) -> IpAddr {
    match src {
        Source::V4(a) => IpAddr::from(a),
        Source::V6(a) => IpAddr::from(a),
    }
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
    fn event(
        &self,
        action: &str,
        src: Source,
        rate: Option<f64>,
        expiry: Option<u64>,
        why: &str,
    ) -> io::Result<()> {
        let now = stats::now_ms();
        let mut out = render::stdout();
        match self.format {
            Format::Human => {
                let mut line = format!("{} {action} {src}", stats::rfc3339(now));
                if let Some(r) = rate {
                    line.push_str(&format!(" rate={r:.0}pps"));
                }
                if let Some(e) = expiry {
                    line.push_str(&format!(" expires={}", stats::rfc3339(e)));
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
                    "time": stats::rfc3339(now),
                    "action": action,
                    "source": src.to_string(),
                    "rate": rate,
                    "expiry": expiry.map(stats::rfc3339),
                    "reason": why,
                })
            )?,
        }
        out.flush()
    }
}

/// Removes guard's block of `src`: the blocklist entry only if it is still
/// guard's (an operator may have taken it over), and the record.
fn unblock(fw: &Firewall, state: &State, src: Source) -> Result<bool> {
    let mine = blocklist_value(fw, src)? == Some(GUARD_MARK);
    if mine {
        let (map, key) = blocklist_for(fw, src);
        map.handle().delete(&key)?;
    }
    state.remove(src)?;
    Ok(mine)
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
    let block_for = args.block_for.as_millis() as u64;
    stats::handle_signals()?;

    // A restart picks up its own unexpired blocks (and drops expired ones
    // below, on the first pass).
    let mut active: HashMap<Source, u64> = match &state {
        Some(s) => s.all()?,
        None => HashMap::new(),
    };
    if !active.is_empty() {
        ctx.out.note(format_args!(
            "guard: resuming {} block(s) from {}",
            active.len(),
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

    let mut prev = fw.sources()?;
    let mut prev_at = Instant::now();
    let mut passes = 0u64;
    loop {
        let now_ms = stats::now_ms();
        // Expiry first: it frees room under --max-blocks.
        let expired: Vec<Source> = active
            .iter()
            .filter(|(_, e)| **e <= now_ms)
            .map(|(s, _)| *s)
            .collect();
        for src in expired {
            active.remove(&src);
            if let Some(state) = &state {
                unblock(&fw, state, src)?;
            }
            log.event("unblock", src, None, None, "expired")?;
        }
        if args.count.is_some_and(|c| passes >= c) || !stats::sleep_until(prev_at + args.interval) {
            break;
        }
        let sample = fw.sources()?;
        let dt = prev_at.elapsed().as_secs_f64();
        prev_at = Instant::now();
        let now_ms = stats::now_ms();
        for (src, rate, _) in stats::rates(&prev, &sample, dt, args.threshold) {
            if active.contains_key(&src) || allow.iter().any(|c| in_cidr(ip(src), c)) {
                continue;
            }
            // An entry an operator made (blocking or not) is theirs.
            if blocklist_value(&fw, src)?.is_some() {
                continue;
            }
            if active.len() >= args.max_blocks {
                log.event("skip", src, Some(rate), None, "--max-blocks reached")?;
                continue;
            }
            let expiry = now_ms + block_for;
            if let Some(state) = &state {
                let (map, key) = blocklist_for(&fw, src);
                state.set(src, expiry)?;
                match map
                    .handle()
                    .update(&key, &[GUARD_MARK], update_flags::NOEXIST)
                {
                    Ok(()) => {}
                    // Added by someone else in the meantime: theirs.
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        state.remove(src)?;
                        continue;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::E2BIG) => {
                        state.remove(src)?;
                        log.event("skip", src, Some(rate), None, "the blocklist is full")?;
                        continue;
                    }
                    Err(e) => return Err(e).context(format!("blocking {src}")),
                }
                active.insert(src, expiry);
                log.event("block", src, Some(rate), Some(expiry), "")?;
            } else {
                log.event("would-block", src, Some(rate), Some(expiry), "dry run")?;
            }
        }
        prev = sample;
        passes += 1;
    }

    if let Some(state) = &state {
        if args.keep_blocks {
            ctx.out.note(format_args!(
                "guard: stopping; keeping {} block(s) (--keep-blocks)",
                active.len()
            ));
        } else {
            for src in active.keys().copied().collect::<Vec<_>>() {
                unblock(&fw, state, src)?;
                log.event("unblock", src, None, None, "guard stopped")?;
            }
        }
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

    #[test]
    fn cidr_membership() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(in_cidr("10.1.200.3".parse().unwrap(), &net));
        assert!(!in_cidr("10.2.0.1".parse().unwrap(), &net));
        assert!(!in_cidr("2001:db8::1".parse().unwrap(), &net));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(in_cidr("2001:db8::1".parse().unwrap(), &all));
    }
}
