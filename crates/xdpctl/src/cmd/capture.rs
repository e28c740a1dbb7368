//! `xdpctl capture`: the packets the firewall judges, with the verdict and
//! the rule that decided each, as lines, JSON lines or pcapng.

use std::{
    io::Write,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::{
    cli::CaptureArgs,
    ctx::Ctx,
    kernel::process::{STOP, handle_signals},
    model::capture::{self, Filter, Headers, Tally},
    ops::capture::{Capture, Caught, Options, resolve},
    render::{
        Format,
        pcapng::{Packet, Pcapng},
    },
};

/// Where the packets go.
enum Sink {
    Lines(Box<dyn Write>),
    Json(Box<dyn Write>),
    Pcapng(Pcapng<Box<dyn Write>>),
}

/// `xdpctl capture`.
pub fn capture(ctx: &Ctx, args: &CaptureArgs) -> Result<()> {
    let outcomes = capture::outcome_mask(&args.verdict, &args.rule);
    if outcomes == 0 {
        anyhow::bail!(
            "no packet has a verdict of {} and a rule of {}: a dropped packet has a drop \
             rule, a passed one none, malformed or unparsed; change --verdict or --rule",
            names(&args.verdict),
            names(&args.rule)
        );
    }
    let filter = args
        .filter
        .as_deref()
        .map(Filter::compile)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let target = resolve(ctx, args.target.as_deref(), args.netns.as_deref())?;
    let mut sink = match &args.write {
        Some(path) => {
            let out: Box<dyn Write> = if path.as_os_str() == "-" {
                Box::new(std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::io::stdout(),
                ))
            } else {
                Box::new(std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                ))
            };
            let mut p = Pcapng::new(out, args.snaplen)?;
            // The devices known now, so that even an empty capture reads.
            let mut known: Vec<(&u32, &String)> = target.names.iter().collect();
            known.sort();
            for (ifindex, name) in known {
                p.interface(*ifindex, name)?;
            }
            p.flush()?;
            Sink::Pcapng(p)
        }
        // Buffered: flushed whenever the ring buffer is drained, so lines
        // stay live without a write per packet.
        None if ctx.format == Format::Human => {
            Sink::Lines(Box::new(std::io::BufWriter::new(std::io::stdout())))
        }
        None => Sink::Json(Box::new(std::io::BufWriter::new(std::io::stdout()))),
    };
    handle_signals()?;
    let mut cap = Capture::start(
        &target.dir,
        &Options {
            outcomes,
            every: args.sample,
            snaplen: args.snaplen,
            max_rate: args.max_rate.0,
            ifindex: target.ifindex,
        },
    )?;
    eprintln!(
        "xdpctl: capturing the decisions of {}{}; Ctrl-C to stop",
        cap.dir().display(),
        args.target
            .as_deref()
            .filter(|_| target.ifindex != 0)
            .map_or(String::new(), |d| format!(" on {d}"))
    );
    let began = Instant::now();
    let deadline = args.duration.map(|d| began + d);
    let mut tally = Tally::default();
    let mut buf = String::new();
    let no_prefixes = capture::Prefixes::default();
    // The last device's name (a packet's device is looked up per packet).
    let mut last_device: Option<(u32, String)> = None;
    let mut c = Caught {
        time: Duration::ZERO,
        ifindex: 0,
        rx_queue: 0,
        cpu: 0,
        len: 0,
        data: Vec::with_capacity(4096),
        outcome: xdp_progs::xdpfw::Outcome::Passed,
    };
    // The last rule named, by what names it: a flood's packets mostly
    // share their rule, and naming it costs more than writing the packet.
    let mut last: Option<(RuleOf, String)> = None;
    // What the comment in `buf` was written for (pcapng).
    let mut commented: Option<(RuleOf, u32, u32)> = None;
    'outer: loop {
        while cap.next_into(&mut c) {
            if filter.as_ref().is_some_and(|f| !f.matches(&c.data)) {
                tally.filtered += 1;
                continue;
            }
            let device = match &last_device {
                Some((ifindex, name)) if *ifindex == c.ifindex => name.as_str(),
                _ => {
                    let name = target
                        .names
                        .get(&c.ifindex)
                        .cloned()
                        .unwrap_or_else(|| format!("if{}", c.ifindex));
                    &last_device.insert((c.ifindex, name)).1
                }
            };
            // pcapng needs the headers only to name a rule that has a key.
            let headers = if !matches!(sink, Sink::Pcapng(_)) || capture::rule_has_key(c.outcome) {
                Headers::of(&c.data)
            } else {
                Headers::default()
            };
            let of = RuleOf::of(c.outcome, &headers);
            // (A prefix's rule is named anew: the prefixes may change.)
            let by_prefix = matches!(
                c.outcome,
                xdp_progs::xdpfw::Outcome::DropCidr | xdp_progs::xdpfw::Outcome::DropRate
            );
            let rule = match &last {
                Some((o, rule)) if *o == of && !by_prefix => rule.as_str(),
                _ => {
                    let prefixes = match c.outcome {
                        xdp_progs::xdpfw::Outcome::DropCidr => cap.prefixes(),
                        xdp_progs::xdpfw::Outcome::DropRate => cap.rate_prefixes(),
                        _ => &no_prefixes,
                    };
                    &last
                        .insert((of, capture::rule(c.outcome, &headers, prefixes)))
                        .1
                }
            };
            if matches!(sink, Sink::Pcapng(_))
                && (by_prefix || commented != Some((of, c.cpu, c.rx_queue)))
            {
                comment(&mut buf, &c, capture::verdict_name(c.outcome), rule);
                commented = Some((of, c.cpu, c.rx_queue));
            }
            match write(&mut sink, &c, device, &headers, rule, args.snaplen, &buf) {
                Ok(()) => {}
                // The reader went away (`| head`, tcpdump quit): done.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break 'outer,
                Err(e) => return Err(anyhow::Error::new(e).context("writing the capture")),
            }
            tally.captured += 1;
            match capture::verdict_of(c.outcome) {
                capture::Verdict::Drop => tally.dropped += 1,
                capture::Verdict::Tx => tally.sent_back += 1,
                capture::Verdict::Pass => {}
            }
            if args.count.is_some_and(|n| tally.captured >= n) {
                break 'outer;
            }
        }
        if flush(&mut sink).is_err()
            || STOP.load(Ordering::SeqCst)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let wait = deadline.map_or(Duration::from_millis(100), |d| {
            d.saturating_duration_since(Instant::now())
        });
        cap.wait(wait)?;
    }
    let _ = flush(&mut sink);
    let counts = cap.counts()?;
    if let Err(e) = cap.finish() {
        // A warning: what was captured is written, and the lease lapses.
        eprintln!("xdpctl: {e:#}");
    }
    tally.matched = counts.matched;
    tally.capped = counts.capped;
    tally.lost = counts.lost;
    eprintln!("xdpctl: {}", tally.line(began.elapsed().as_secs_f64()));
    Ok(())
}

/// What a packet's rule is named by: its outcome and the key the outcome's
/// rule has (the source, or the port), if any.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RuleOf(
    xdp_progs::xdpfw::Outcome,
    Option<std::net::IpAddr>,
    Option<u16>,
);

impl RuleOf {
    fn of(outcome: xdp_progs::xdpfw::Outcome, h: &Headers) -> Self {
        use xdp_progs::xdpfw::Outcome::*;
        match outcome {
            DropBlocklist | DropCidr | DropRate => RuleOf(outcome, h.src, None),
            DropUdpPort | DropTcpPort => RuleOf(outcome, None, h.dport),
            _ => RuleOf(outcome, None, None),
        }
    }
}

fn names<T: clap::ValueEnum>(v: &[T]) -> String {
    v.iter()
        .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_owned()))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn flush(sink: &mut Sink) -> std::io::Result<()> {
    match sink {
        Sink::Lines(w) | Sink::Json(w) => w.flush(),
        Sink::Pcapng(p) => p.flush(),
    }
}

/// A packet's pcapng comment, written into `buf` (reused: this runs per
/// packet).
fn comment(buf: &mut String, c: &Caught, verdict: &str, rule: &str) {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(
        buf,
        "xdpfw: {verdict} {} rule={rule} cpu={} queue={}",
        c.outcome.name(),
        c.cpu,
        c.rx_queue
    );
}

fn write(
    sink: &mut Sink,
    c: &Caught,
    device: &str,
    h: &Headers,
    rule: &str,
    snaplen: u32,
    comment: &str,
) -> std::io::Result<()> {
    let time = || humantime::format_rfc3339_nanos(std::time::UNIX_EPOCH + c.time).to_string();
    let verdict = capture::verdict_name(c.outcome);
    match sink {
        Sink::Lines(w) => {
            let time = time();
            writeln!(
                w,
                "{} {device} {verdict} {rule}  {}  len {} cpu {} queue {}",
                &time[11..time.len() - 1],
                h.summary(),
                c.len,
                c.cpu,
                c.rx_queue
            )
        }
        Sink::Json(w) => {
            let line = json!({
                "time": time(),
                "device": device,
                "ifindex": c.ifindex,
                "queue": c.rx_queue,
                "cpu": c.cpu,
                "verdict": verdict,
                "outcome": c.outcome.name(),
                "rule": rule,
                "len": c.len,
                "headers": h,
            });
            writeln!(w, "{line}")
        }
        Sink::Pcapng(p) => p.write(&Packet {
            ifindex: c.ifindex,
            device,
            time: c.time,
            len: c.len,
            data: &c.data[..c.data.len().min(snaplen as usize)],
            comment,
        }),
    }
}
