//! `xdpctl prog top`: run time per program, live, with the kernel's
//! statistics on only while it runs.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde_json::json;

use crate::{
    cli::ProgTopArgs,
    ctx::Ctx,
    kernel::{
        clock::{now_ms, rfc3339, sleep_until},
        process::handle_signals,
        sys,
    },
    ops::progs::{self, RunTime},
    render::{self, Tabular},
};

/// A program's share of one interval.
#[derive(Debug, Serialize)]
struct TopRow {
    id: u32,
    #[serde(rename = "type")]
    type_: String,
    name: String,
    runs_per_sec: f64,
    ns_per_run: Option<f64>,
    cpu_percent: f64,
}

impl Tabular for TopRow {
    const HEADERS: &'static [&'static str] = &["ID", "TYPE", "NAME", "RUNS/S", "NS/RUN", "CPU%"];
    fn cells(&self, _view: &render::View) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.type_.clone(),
            self.name.clone(),
            format!("{:.0}", self.runs_per_sec),
            self.ns_per_run
                .map_or_else(|| "-".into(), |n| format!("{n:.1}")),
            format!("{:.2}", self.cpu_percent),
        ]
    }
}

/// `xdpctl prog top`.
pub fn top(ctx: &Ctx, args: &ProgTopArgs) -> Result<()> {
    let only = if args.progs.is_empty() {
        None
    } else {
        Some(
            args.progs
                .iter()
                .map(|h| progs::id_of(ctx, h))
                .collect::<Result<Vec<u32>>>()?,
        )
    };
    handle_signals()?;
    let _stats = sys::enable_stats().context(
        "turning the kernel's BPF run-time statistics on (BPF_ENABLE_STATS needs CAP_SYS_ADMIN)",
    )?;
    let period = Duration::from_secs_f64(args.interval);
    let mut prev = progs::run_times(only.as_deref())?;
    let mut prev_at = Instant::now();
    let mut samples = 0u64;
    while args.count.is_none_or(|c| samples < c) && sleep_until(prev_at + period) {
        let now = progs::run_times(only.as_deref())?;
        let dt = prev_at.elapsed().as_secs_f64();
        prev_at = Instant::now();
        let mut rows: Vec<TopRow> = now
            .iter()
            .map(|(id, (name, type_, t))| {
                let before = prev.get(id).map_or(RunTime::default(), |p| p.2);
                let runs = t.runs.saturating_sub(before.runs);
                let ns = t.ns.saturating_sub(before.ns);
                TopRow {
                    id: *id,
                    type_: type_.clone(),
                    name: name.clone(),
                    runs_per_sec: runs as f64 / dt,
                    ns_per_run: (runs > 0).then(|| ns as f64 / runs as f64),
                    cpu_percent: ns as f64 / (dt * 1e9) * 100.0,
                }
            })
            .filter(|r| only.is_some() || r.runs_per_sec > 0.0)
            .collect();
        rows.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then(a.id.cmp(&b.id))
        });
        rows.truncate(args.limit);
        ctx.out.frame(
            &format!(
                "{}  {} {}, statistics on while this runs",
                rfc3339(now_ms()),
                render::count(rows.len(), "program", "programs"),
                if only.is_some() { "watched" } else { "ran" }
            ),
            &rows,
            || json!({"time": rfc3339(now_ms()), "interval": dt, "programs": rows}),
        )?;
        prev = now;
        samples += 1;
    }
    Ok(())
}
