//! `xdpctl top`: live top talkers by packet rate, from the firewall's
//! per-source counters.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use crate::{
    cli::TopArgs,
    ctx::Ctx,
    kernel::{
        clock::{now_ms, rfc3339, sleep_until},
        process::handle_signals,
    },
    ops::firewall::{Counts, Firewall, rates},
    render::{self, Tabular},
};

/// A source in `top`.
#[derive(Debug, Serialize)]
struct TalkerRow {
    source: String,
    pps: f64,
    packets: u64,
}

impl Tabular for TalkerRow {
    const HEADERS: &'static [&'static str] = &["SOURCE", "PPS", "PACKETS"];
    fn cells(&self, _view: &render::View) -> Vec<String> {
        vec![
            self.source.clone(),
            format!("{:.0}", self.pps),
            self.packets.to_string(),
        ]
    }
}

/// `xdpctl top`.
pub fn top(ctx: &Ctx, args: &TopArgs) -> Result<()> {
    let fw = Firewall::open(ctx, args.dir.as_deref())?;
    handle_signals()?;
    let period = Duration::from_secs_f64(args.interval);
    let (mut prev, mut now) = (Counts::default(), Counts::default());
    fw.sample(&mut prev)?;
    let mut prev_at = Instant::now();
    let mut samples = 0u64;
    while args.count.is_none_or(|c| samples < c) && sleep_until(prev_at + period) {
        fw.sample(&mut now)?;
        let dt = prev_at.elapsed().as_secs_f64();
        prev_at = Instant::now();
        let rows: Vec<TalkerRow> = rates(&prev, &now, dt, 0.0, args.limit)
            .into_iter()
            .map(|(s, pps, packets)| TalkerRow {
                source: s.to_string(),
                pps,
                packets,
            })
            .collect();
        ctx.out.frame(
            &format!(
                "{}  {} sources, top {} by packet rate",
                rfc3339(now_ms()),
                now.len(),
                rows.len()
            ),
            &rows,
            || json!({"time": rfc3339(now_ms()), "interval": dt, "sources": now.len(), "top": rows}),
        )?;
        std::mem::swap(&mut prev, &mut now);
        samples += 1;
    }
    Ok(())
}
