//! `xdpctl top`: live top talkers by packet rate, from the firewall's
//! per-source counters.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

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
    render::{self, Format, Tabular},
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
    let tty = std::io::stdout().is_terminal() && ctx.format == Format::Human;
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
        let mut out = ctx.out.stdout();
        match ctx.format {
            Format::Human => {
                if tty {
                    // Refresh in place: home the cursor and clear the screen.
                    out.write_all(b"\x1b[H\x1b[2J")?;
                }
                writeln!(
                    out,
                    "{}  {} sources, top {} by packet rate",
                    rfc3339(now_ms()),
                    now.len(),
                    rows.len()
                )?;
                out.write_all(ctx.out.view().table(&rows).as_bytes())?;
            }
            _ => writeln!(
                out,
                "{}",
                json!({"time": rfc3339(now_ms()), "interval": dt, "sources": now.len(), "top": rows})
            )?,
        }
        out.flush()?;
        std::mem::swap(&mut prev, &mut now);
        samples += 1;
    }
    Ok(())
}
