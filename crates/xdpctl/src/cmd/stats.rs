//! `xdpctl stats`: the built-in firewall's counters ([`ops::firewall`]),
//! as a table, JSON lines or Prometheus text.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::json;

use crate::{
    cli::{RuleCounters, StatsArgs},
    ctx::Ctx,
    kernel::{
        clock::{now_ms, rfc3339, sleep_until},
        process::handle_signals,
    },
    model::rulehits::{self as rulemodel, Role, Select},
    ops::{firewall::Firewall, rulehits},
    render::{self, Format, Tabular},
};

/// One outcome in a stats sample.
#[derive(Debug, Serialize)]
struct OutcomeRow {
    outcome: &'static str,
    packets: u64,
    bytes: u64,
    pps: Option<f64>,
    bps: Option<f64>,
}

impl Tabular for OutcomeRow {
    const HEADERS: &'static [&'static str] = &["OUTCOME", "PACKETS", "BYTES", "PPS", "BITS/S"];
    fn cells(&self, _view: &render::View) -> Vec<String> {
        let rate = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        vec![
            self.outcome.to_owned(),
            self.packets.to_string(),
            self.bytes.to_string(),
            rate(self.pps),
            rate(self.bps),
        ]
    }
}

/// One rule in `stats --rules`.
#[derive(Debug, Serialize)]
struct RuleRow {
    map: &'static str,
    rule: String,
    /// drop, exception (a CIDR prefix of value 0) or guard (guard's block).
    role: Role,
    /// False for a counted rule no rule map holds any more.
    present: bool,
    packets: u64,
    bytes: u64,
    /// RFC 3339, or null: never hit.
    last_hit: Option<String>,
    #[serde(skip)]
    ago: String,
}

impl Tabular for RuleRow {
    const HEADERS: &'static [&'static str] = &["MAP", "RULE", "PACKETS", "BYTES", "LAST HIT"];
    fn cells(&self, _view: &render::View) -> Vec<String> {
        let rule = match (self.present, self.role) {
            (false, _) => format!("{} (removed)", self.rule),
            (true, Role::Exception) => format!("{} (exception)", self.rule),
            (true, Role::Guard) => format!("{} (guard)", self.rule),
            (true, Role::Drop) => self.rule.clone(),
        };
        vec![
            self.map.to_owned(),
            rule,
            self.packets.to_string(),
            self.bytes.to_string(),
            self.ago.clone(),
        ]
    }
}

/// `xdpctl stats --rules`.
fn rules(ctx: &Ctx, fw: &Firewall, args: &StatsArgs) -> Result<()> {
    let report = rulehits::read(&fw.maps_dir())?;
    if !report.counting {
        ctx.out.note(format!(
            "the firewall at {} does not count per rule (off after load: `xdpctl stats --rule-counters on` turns it on); the counts are those made while it was on",
            fw.dir.display()
        ));
    }
    if report.lost > 0 {
        ctx.out.note(format!(
            "{} hits were not counted: rule_hits is full ({} rules); load with --max-entries rule_hits=N for more",
            report.lost, report.stored.1
        ));
    }
    let now = report.now_unix_ns;
    let sel = Select {
        unused: args.unused,
        idle_ns: args.idle.map(|d| d.as_nanos() as u64),
        top: args.top,
        removed: args.removed,
    };
    let rows: Vec<RuleRow> = rulemodel::select(report.rows, sel, now)
        .into_iter()
        .map(|r| RuleRow {
            ago: rulemodel::ago(r.last_unix_ns, now),
            last_hit: r
                .last_unix_ns
                .map(|t| rfc3339(u64::try_from(t / 1_000_000).unwrap_or(0))),
            map: r.map,
            rule: r.rule,
            role: r.role,
            present: r.present,
            packets: r.packets,
            bytes: r.bytes,
        })
        .collect();
    ctx.out.result(&rows).map_err(Into::into)
}

/// `xdpctl stats`.
pub fn stats(ctx: &Ctx, args: &StatsArgs) -> Result<()> {
    if args.prometheus && ctx.format != Format::Human {
        bail!("--prometheus prints Prometheus text, -j JSON: choose one");
    }
    let fw = Firewall::open(ctx, args.dir.as_deref())?;
    if let Some(what) = args.rule_counters {
        let say = |b: bool| if b { "on" } else { "off" };
        if what == RuleCounters::Reset {
            rulehits::reset(&fw.maps_dir())?;
            ctx.out.note(format!(
                "per-rule counters of {}: reset to zero",
                fw.dir.display()
            ));
            return Ok(());
        }
        let on = what == RuleCounters::On;
        let was = rulehits::set_counting(&fw.maps_dir(), on)?;
        ctx.out.note(format!(
            "per-rule counters of {}: {} (were {})",
            fw.dir.display(),
            say(on),
            say(was)
        ));
        return Ok(());
    }
    if let Some(t) = crate::kernel::fwindex::Target::open(&fw.maps_dir())? {
        ctx.out.notes(t.warnings()?);
    }
    if args.rules {
        return rules(ctx, &fw, args);
    }
    if args.prometheus {
        let mut text = crate::render::prometheus::Exposition::default();
        crate::render::prometheus::firewall(&mut text, &fw.dir, &fw.outcomes()?);
        ctx.out.text(&text.finish())?;
        return Ok(());
    }
    let Some(interval) = args.interval else {
        let rows: Vec<OutcomeRow> = fw
            .outcomes()?
            .into_iter()
            .map(|(o, packets, bytes)| OutcomeRow {
                outcome: o.name(),
                packets,
                bytes,
                pps: None,
                bps: None,
            })
            .collect();
        return ctx.out.result(&rows).map_err(Into::into);
    };
    handle_signals()?;
    let period = Duration::from_secs_f64(interval);
    let mut prev = fw.outcomes()?;
    let mut prev_at = Instant::now();
    let mut samples = 0u64;
    while args.count.is_none_or(|c| samples < c) && sleep_until(prev_at + period) {
        let now = fw.outcomes()?;
        let dt = prev_at.elapsed().as_secs_f64();
        prev_at = Instant::now();
        let rows: Vec<OutcomeRow> = now
            .iter()
            .map(|(o, p, b)| {
                let (pp, pb) = prev
                    .iter()
                    .find(|(x, _, _)| x == o)
                    .map_or((0, 0), |(_, p, b)| (*p, *b));
                OutcomeRow {
                    outcome: o.name(),
                    packets: *p,
                    bytes: *b,
                    pps: Some(p.saturating_sub(pp) as f64 / dt),
                    bps: Some(b.saturating_sub(pb) as f64 * 8.0 / dt),
                }
            })
            .collect();
        let mut out = ctx.out.stdout();
        match ctx.format {
            Format::Human => {
                writeln!(out, "{}", rfc3339(now_ms()))?;
                out.write_all(ctx.out.view().table(&rows).as_bytes())?;
            }
            _ => {
                // JSON lines: one object per interval.
                let outcomes: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|r| (r.outcome.to_owned(), json!({"packets": r.packets, "bytes": r.bytes, "pps": r.pps, "bps": r.bps})))
                    .collect();
                let line = json!({"time": rfc3339(now_ms()), "interval": dt, "dir": fw.dir, "outcomes": outcomes});
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        prev = now;
        samples += 1;
    }
    Ok(())
}
