//! `xdpctl guard`: the count-then-block control loop. Every interval it
//! reads the firewall's per-source counters, and blocks a source whose
//! packet rate is over the threshold, for a while: [`Guard`]'s rules over
//! [`ops::guard`](crate::ops::guard)'s maps.

use std::{
    collections::HashMap,
    io::{self, Write},
    net::IpAddr,
    time::Instant,
};

use anyhow::{Result, bail};
use serde_json::json;

use crate::{
    cli::{Cidr, GuardArgs},
    ctx::Ctx,
    kernel::clock::{now_ms, rfc3339, sleep_until},
    kernel::fwindex,
    model::guard::{Blocklist, Event, Guard, Settings, Source},
    ops::{
        firewall::{self as stats, Firewall},
        guard::{Maps, ReadOnly, STATE_PIN, State},
    },
    render::{self, Format},
};

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
    /// Whether guard limits rather than blocks (the events' names say so).
    limit: Option<u64>,
}

impl Log {
    fn event(&self, e: &Event) -> io::Result<()> {
        let action = crate::model::guard::action_name(self.limit.is_some(), e.action);
        let (src, rate, expiry, why) = (e.src, e.rate, e.expiry, e.why);
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

/// `xdpctl guard`.
pub fn guard(ctx: &Ctx, args: &GuardArgs) -> Result<()> {
    if args.threshold <= 0.0 {
        bail!("--threshold must be a packet rate above 0");
    }
    if let Some(limit) = args.limit
        && limit as f64 >= args.threshold
    {
        bail!(
            "--limit {limit} is not below --threshold {}: a source limited there would still \
             be over the threshold, and the limit would slow nothing; give a lower --limit",
            args.threshold
        );
    }
    let blocks = if args.limit.is_some() {
        "limit(s)"
    } else {
        "block(s)"
    };
    let fw = Firewall::open(ctx, args.dir.as_deref())?;
    let log = Log {
        format: ctx.format,
        limit: args.limit,
    };
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
        Some(state) => Box::new(Maps {
            fw: &fw,
            state,
            limit: args.limit,
        }),
        None => Box::new(ReadOnly(&fw, args.limit)),
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
            "guard: resuming {} {blocks} from {}",
            guard.active.len(),
            fw.dir.join(STATE_PIN).display()
        ));
    }
    ctx.out.note(format_args!(
        "guard: watching {} every {:?}, {} sources over {} pps for {:?}{}",
        fw.dir.display(),
        args.interval,
        match args.limit {
            Some(pps) => format!("limiting to {pps} pps"),
            None => "blocking".to_owned(),
        },
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
        // Its firewall unloaded: nothing left to guard.
        if !fw.dir.exists() {
            ctx.out.note(format_args!(
                "guard: {} was unloaded; stopping",
                fw.dir.display()
            ));
            return Ok(());
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
            "guard: stopping; keeping {} {blocks} (--keep-blocks)",
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
