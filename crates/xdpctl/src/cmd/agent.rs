//! `xdpctl agent --policy FILE`: keeps a host on a policy.
//!
//! - Applies the policy at start (finishing first whatever a killed agent
//!   or command left in the journal), then whenever the file changes: the
//!   directory is watched with inotify, so an editor's rename and a
//!   Kubernetes ConfigMap's symlink swap are both seen, within 2 seconds.
//! - Every `--resync`, compares the live state with the policy: a
//!   difference is drift, made by hand; it is reported (log and metrics),
//!   and put back when the policy says `drift: correct`.
//! - Runs guard (`xdpctl guard ... --keep-blocks`) as a child when the
//!   policy has a guard section, and restarts it if it dies.
//! - Serves Prometheus metrics at /metrics and health at /healthz.
//! - Stops on SIGTERM or SIGINT and leaves the firewall as it is: a
//!   restarted agent finds it applied, so protection has no gap.

use std::{
    os::{fd::AsFd, unix::ffi::OsStrExt},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::{
    cli::AgentArgs,
    ctx::Ctx,
    kernel::{
        clock::now_ms,
        process::{STOP, handle_signals},
    },
    model::policy::{Drift, Policy},
    ops::{
        apply::{self, read_policy},
        firewall::Firewall,
        live,
    },
    render::prometheus::{self, Exposition, Kind},
};

/// What the agent has done, for /metrics and /healthz.
#[derive(Default)]
struct Status {
    reconciles_ok: AtomicU64,
    reconciles_error: AtomicU64,
    changes: AtomicU64,
    drift: AtomicU64,
    corrected: AtomicU64,
    policy_errors: AtomicU64,
    guard_restarts: AtomicU64,
    last_ok_ms: AtomicU64,
    /// The last error, while the last reconcile failed.
    last_error: Mutex<Option<String>>,
    /// Why the policy file (with its feeds) is not in force, while the
    /// last reading of it failed or could not be applied: a resync of the
    /// last good policy does not hide it.
    file_error: Mutex<Option<String>>,
    /// The file parsed and checked but could not be applied (the host
    /// refused it: e.g. `net.ipv4.tcp_syncookies` not 2 where its SYN
    /// cookies would run): tried again at every resync, as the host may
    /// be set right without the file changing.
    file_unapplied: AtomicBool,
    /// What the host does that defeats the policy in force, while it does
    /// (`doctor`'s finding: SYN cookies protected where listeners refuse
    /// their ACKs since `net.ipv4.tcp_syncookies` was set back).
    host_error: Mutex<Option<String>>,
    /// The drift last logged under `drift: report`: the same drift is
    /// logged once, not at every resync (it is counted at every one).
    last_drift: Mutex<Option<String>>,
    /// The policy in force.
    policy: Mutex<Option<Policy>>,
    /// Rules in `/metrics`: the most hit since the last scrape.
    top_rules: usize,
    /// The rules' packet counts at the agent's last two samples (every
    /// [`RULE_SAMPLE`]), and when: the base of the rates `/metrics` shows,
    /// the same whoever scrapes and how often.
    rule_samples: Mutex<std::collections::VecDeque<(Instant, RuleCounts)>>,
}

/// How often the agent samples the counters per rule.
const RULE_SAMPLE: Duration = Duration::from_secs(10);

/// Packets per rule (map, rule), as counted at one scrape.
type RuleCounts = std::collections::HashMap<(&'static str, String), u64>;

/// Why a reconcile runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Start, or the file changed: apply.
    Apply,
    /// The timer: look for drift.
    Resync,
}

/// `xdpctl agent`.
pub fn agent(ctx: &Ctx, args: &AgentArgs) -> Result<()> {
    // A policy that cannot be read at start is an error to exit on (a
    // service manager shows it); later, a bad edit keeps the last good one.
    read_policy(&args.policy)?;
    handle_signals()?;
    let status = Status {
        top_rules: args.top_rules,
        ..Status::default()
    };
    let server = tiny_http::Server::http(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    ctx.out.note(format_args!(
        "agent: keeping this host on {}; metrics at http://{}/metrics",
        args.policy.display(),
        args.listen
    ));
    let dir = args
        .policy
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .context("starting inotify")?;
    inotify
        .add_watch(
            &dir,
            AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_ATTRIB,
        )
        .with_context(|| format!("watching {}", dir.display()))?;

    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(|| serve(ctx, &server, &status));
        let result = run(ctx, args, &inotify, &status);
        STOP.store(true, Ordering::SeqCst);
        result
    })
}

/// The reconcile loop.
fn run(ctx: &Ctx, args: &AgentArgs, inotify: &Inotify, status: &Status) -> Result<()> {
    let mut guard: Option<Child> = None;
    let mut last_text: Option<Vec<u8>> = None;
    let mut next_resync = Instant::now() + args.resync;
    let mut why = Some(Why::Apply);
    let mut done = 0u64;
    let mut next_rule_sample = Instant::now();
    while !STOP.load(Ordering::SeqCst) {
        // The file: re-read on any event in its directory, applied if its
        // text changed.
        let mut changed = false;
        while let Ok(events) = inotify.read_events() {
            if events.is_empty() {
                break;
            }
            changed |= events.iter().any(|e| {
                e.name.is_none()
                    || e.name.as_ref().is_some_and(|n| {
                        n.as_bytes() == args.policy.file_name().map_or(&[][..], |f| f.as_bytes())
                            || n.as_bytes().starts_with(b"..")
                    })
            });
        }
        if changed {
            let text = std::fs::read(&args.policy).ok();
            if text != last_text {
                why = Some(Why::Apply);
            }
        }
        if Instant::now() >= next_resync {
            why = why.or(Some(Why::Resync));
            next_resync = Instant::now() + args.resync;
        }
        if let Some(w) = why.take() {
            if w == Why::Apply {
                last_text = std::fs::read(&args.policy).ok();
            }
            reconcile(ctx, args, w, status);
            done += 1;
            keep_guard(ctx, args, status, &mut guard);
            if args.count.is_some_and(|c| done >= c) {
                break;
            }
        }
        if Instant::now() >= next_rule_sample && done > 0 {
            sample_rules(ctx, status);
            next_rule_sample = Instant::now() + RULE_SAMPLE;
        }
        std::thread::sleep(Duration::from_millis(100));
        if let Some(child) = &mut guard
            && let Ok(Some(exit)) = child.try_wait()
        {
            ctx.out
                .note(format_args!("agent: guard stopped ({exit}); restarting it"));
            status.guard_restarts.fetch_add(1, Ordering::Relaxed);
            guard = None;
            keep_guard(ctx, args, status, &mut guard);
        }
    }
    if let Some(mut child) = guard {
        // Guard keeps its blocks (--keep-blocks): the next agent's guard
        // resumes them.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = child.wait();
    }
    ctx.out.note("agent: stopped; the firewall stays as it is");
    Ok(())
}

/// One reconcile: apply the policy (`Why::Apply`), or look for drift and
/// correct it if the policy says so. A resync first tries again a file
/// the host refused; while it still refuses, the resync goes on with the
/// last good policy (and the refusal stays in /healthz, said once).
fn reconcile(ctx: &Ctx, args: &AgentArgs, why: Why, status: &Status) {
    if why == Why::Resync
        && status.file_unapplied.load(Ordering::Relaxed)
        && reconcile_once(ctx, args, Why::Apply, status, true)
    {
        ctx.out
            .note(format_args!("agent: {} applied now", args.policy.display()));
        return;
    }
    reconcile_once(ctx, args, why, status, false);
}

/// [`reconcile`] once; whether it succeeded. `retry`: the file tried
/// again, its error not said again if it is the same.
fn reconcile_once(ctx: &Ctx, args: &AgentArgs, why: Why, status: &Status, retry: bool) -> bool {
    let read_file = std::cell::Cell::new(false);
    let parsed = std::cell::Cell::new(false);
    let result = (|| -> Result<()> {
        // A resync checks the policy in force; a change of the file reads
        // it again (the last good policy stays in force if it is bad, drift
        // checks included), and so does a resync of a policy with feeds (a
        // feed rewritten by cron is no change of the policy file; a bad
        // one is then counted at every resync).
        let last = status.policy.lock().expect("not poisoned").clone();
        let policy = match (why, last) {
            (Why::Resync, Some(p))
                if p.rules.blocklist_files.is_empty() && p.rules.cidr_files.is_empty() =>
            {
                p
            }
            _ => {
                read_file.set(true);
                match read_policy(&args.policy) {
                    Ok(p) => {
                        parsed.set(true);
                        p
                    }
                    Err(e) => {
                        status.policy_errors.fetch_add(1, Ordering::Relaxed);
                        return Err(
                            e.context("the policy was not applied; the last good one stays")
                        );
                    }
                }
            }
        };
        let file = args.policy.display().to_string();
        let mut plan = apply::plan(ctx, &policy, &file)?;
        if plan.changes > 0 {
            let correct = why == Why::Apply || policy.drift == Drift::Correct;
            let what = describe(&plan);
            if why == Why::Resync {
                status.drift.fetch_add(1, Ordering::Relaxed);
                let mut last = status.last_drift.lock().expect("not poisoned");
                // Reported only, the same drift is said once.
                let again = !correct && last.as_deref() == Some(what.as_str());
                *last = Some(what.clone());
                drop(last);
                if !again {
                    ctx.out.note(format_args!(
                    "agent: drift: the live state differs from {file} in {} place(s), changed by hand (to put back: {what}){}",
                    plan.changes,
                    if correct {
                        "; putting the policy back"
                    } else {
                        "; reported only (drift: report)"
                    }
                ));
                }
            }
            if correct {
                apply::execute(ctx, &policy, &mut plan, None)?;
                status
                    .changes
                    .fetch_add(plan.changes as u64, Ordering::Relaxed);
                if why == Why::Resync {
                    status.corrected.fetch_add(1, Ordering::Relaxed);
                } else {
                    ctx.out.note(format_args!(
                        "agent: applied {} change(s) from {file}",
                        plan.changes
                    ));
                }
            }
        } else {
            *status.last_drift.lock().expect("not poisoned") = None;
        }
        // The host under the policy, as doctor sees it: said once when it
        // starts and when it ends, and in /healthz meanwhile.
        let host = if policy.rules.syn_ports.is_empty() {
            None
        } else {
            crate::ops::syncookie::unready(ctx, &plan.dir).unwrap_or(None)
        };
        let mut was = status.host_error.lock().expect("not poisoned");
        if *was != host {
            match &host {
                Some(why) => ctx.out.note(format_args!("agent: {why}")),
                None => ctx
                    .out
                    .note("agent: the host takes the SYN cookies' ACKs again"),
            }
            *was = host;
        }
        drop(was);
        *status.policy.lock().expect("not poisoned") = Some(policy);
        Ok(())
    })();
    let mut said = false;
    if read_file.get() {
        let text = result.as_ref().err().map(crate::render::chain_text);
        let mut file_error = status.file_error.lock().expect("not poisoned");
        said = retry && text.is_some() && *file_error == text;
        *file_error = text;
        status
            .file_unapplied
            .store(parsed.get() && result.is_err(), Ordering::Relaxed);
    }
    match result {
        Ok(()) => {
            status.reconciles_ok.fetch_add(1, Ordering::Relaxed);
            status.last_ok_ms.store(now_ms(), Ordering::Relaxed);
            *status.last_error.lock().expect("not poisoned") = None;
            true
        }
        Err(e) => {
            // A retry that fails as before is no new event: the resync of
            // the last good policy goes on.
            if said {
                return false;
            }
            status.reconciles_error.fetch_add(1, Ordering::Relaxed);
            let text = crate::render::chain_text(&e);
            ctx.out.note(format_args!("agent: {text}"));
            *status.last_error.lock().expect("not poisoned") = Some(text);
            false
        }
    }
}

/// A short account of a plan, for the drift log.
fn describe(plan: &apply::Plan) -> String {
    let mut parts = Vec::new();
    if plan.load != "keep" {
        parts.push(format!("{} needed", plan.load));
    }
    for d in &plan.attach {
        parts.push(format!("{} not attached", d.name));
    }
    for d in &plan.replace {
        parts.push(format!("{} runs another program", d.name));
    }
    for d in &plan.detach {
        parts.push(format!("{} attached by hand", d.name));
    }
    for r in &plan.rules {
        parts.push(format!("{} +{} -{}", r.map, r.put, r.remove));
    }
    parts.join(", ")
}

/// Starts guard if the policy has a guard section and it is not running.
fn keep_guard(ctx: &Ctx, _args: &AgentArgs, status: &Status, guard: &mut Option<Child>) {
    if guard.is_some() {
        return;
    }
    let Some(policy) = status.policy.lock().expect("not poisoned").clone() else {
        return;
    };
    let Some(g) = &policy.guard else { return };
    let dir = ctx.resolve(&policy.load.pin);
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = Command::new(exe);
    cmd.arg("--bpffs")
        .arg(&ctx.bpffs)
        .arg("guard")
        .arg(&dir)
        .args(["--threshold", &g.threshold.to_string()])
        .args(["--interval", &g.interval])
        .args(["--block-for", &g.block_for])
        .args(["--max-blocks", &g.max_blocks.to_string()])
        .arg("--keep-blocks")
        .stdin(Stdio::null())
        // Its events (block, limit, unblock: one line each) go to the
        // agent's log.
        .stdout(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_or_else(|_| Stdio::null(), Stdio::from),
        );
    for a in &g.allow {
        cmd.args(["--allow", &format!("{}/{}", a.addr, a.len)]);
    }
    if let Some(pps) = g.limit {
        cmd.args(["--limit", &pps.to_string()]);
    }
    match cmd.spawn() {
        Ok(child) => *guard = Some(child),
        Err(e) => ctx.out.note(format_args!("agent: cannot start guard: {e}")),
    }
}

/// Serves /metrics and /healthz until the agent stops.
fn serve(ctx: &Ctx, server: &tiny_http::Server, status: &Status) {
    while !STOP.load(Ordering::SeqCst) {
        let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let (code, body, kind) = match request.url() {
            "/metrics" => (200, metrics(ctx, status), "text/plain; version=0.0.4"),
            "/healthz" => match (status.file_error.lock().expect("not poisoned").clone())
                .or_else(|| status.last_error.lock().expect("not poisoned").clone())
                .or_else(|| status.host_error.lock().expect("not poisoned").clone())
            {
                None if status.reconciles_ok.load(Ordering::Relaxed) > 0 => {
                    (200, "ok\n".to_owned(), "text/plain")
                }
                None => (503, "starting\n".to_owned(), "text/plain"),
                Some(e) => (503, format!("{e}\n"), "text/plain"),
            },
            _ => (
                404,
                "not found: try /metrics or /healthz\n".to_owned(),
                "text/plain",
            ),
        };
        let header = tiny_http::Header::from_bytes("Content-Type", kind).expect("a valid header");
        let _ = request.respond(
            tiny_http::Response::from_string(body)
                .with_status_code(code)
                .with_header(header),
        );
    }
}

/// The metrics, in Prometheus' text format.
fn metrics(ctx: &Ctx, status: &Status) -> String {
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = Exposition::default();
    let reconciles = "xdpctl_agent_reconciles_total";
    out.family(
        reconciles,
        Kind::Counter,
        "Reconciles of the live state with the policy, by result.",
    )
    .sample(reconciles, &[("result", "ok")], n(&status.reconciles_ok))
    .sample(
        reconciles,
        &[("result", "error")],
        n(&status.reconciles_error),
    );
    for (name, help, v) in [
        (
            "xdpctl_agent_changes_total",
            "Changes the agent applied.",
            &status.changes,
        ),
        (
            "xdpctl_agent_drift_total",
            "Resyncs that found the live state changed by hand.",
            &status.drift,
        ),
        (
            "xdpctl_agent_drift_corrected_total",
            "Drifts the agent put back (drift: correct).",
            &status.corrected,
        ),
        (
            "xdpctl_agent_policy_errors_total",
            "Policy files that did not parse or check; the last good policy stayed.",
            &status.policy_errors,
        ),
        (
            "xdpctl_agent_guard_restarts_total",
            "Times guard stopped and was started again.",
            &status.guard_restarts,
        ),
    ] {
        out.single(name, Kind::Counter, help, n(v));
    }
    out.single(
        "xdpctl_agent_last_reconcile_timestamp_seconds",
        Kind::Gauge,
        "When the last reconcile succeeded.",
        n(&status.last_ok_ms) as f64 / 1000.0,
    );
    let Some(policy) = status.policy.lock().expect("not poisoned").clone() else {
        return out.finish();
    };
    let dir = ctx.resolve(&policy.load.pin);
    // Attach state per device of the policy.
    let attached = "xdpctl_agent_attached";
    out.family(
        attached,
        Kind::Gauge,
        "Whether a device of the policy runs the load's program (1) or not (0).",
    );
    let live_devices = crate::ops::loaddir::LoadDir::open(&dir)
        .ok()
        .and_then(|l| live::devices(&l, &ctx.link_pin_index().ok()?).ok())
        .unwrap_or_default();
    for d in &policy.devices {
        let ns = d.netns.as_deref().map(crate::kernel::netns::display);
        // By identity: the agent may run inside the namespace it names.
        let up = live_devices
            .iter()
            .any(|l| apply::same_device(d, l) && l.mode == Some(d.mode));
        let mode = d.mode.to_string();
        out.sample(
            attached,
            &[
                ("device", &d.name),
                ("netns", ns.as_deref().unwrap_or("")),
                ("mode", &mode),
            ],
            u8::from(up),
        );
    }
    // Rule counts, and guard's blocks.
    if let Ok(rules) = live::rules(&dir) {
        let name = "xdpctl_agent_rules";
        out.family(
            name,
            Kind::Gauge,
            "Entries in each rule map of the firewall.",
        );
        for (map, entries) in &rules {
            out.sample(name, &[("map", map)], entries.len());
        }
    }
    let guard_blocks =
        crate::kernel::map::MapHandle::open_pinned(&dir.join(crate::ops::guard::STATE_PIN))
            .and_then(|m| m.entries().map_err(std::io::Error::other))
            .map_or(0, |e| e.len());
    out.single(
        "xdpctl_guard_blocks",
        Kind::Gauge,
        "Sources guard blocks now.",
        guard_blocks,
    );
    // Per-outcome counters, as `stats --prometheus` prints them.
    if let Ok(fw) = Firewall::open(ctx, Some(&dir))
        && let Ok(outcomes) = fw.outcomes()
    {
        prometheus::firewall(&mut out, &fw.dir, &outcomes);
        rule_metrics(&mut out, status, &fw, report_or_none(&fw));
    }
    out.finish()
}

/// The counters per rule of the policy's load, if it has them.
fn report_or_none(fw: &Firewall) -> Option<crate::ops::rulehits::Report> {
    crate::ops::rulehits::read(&fw.maps_dir()).ok()
}

/// Packets per rule, as `/metrics` keys them.
fn rule_counts(report: &crate::ops::rulehits::Report) -> RuleCounts {
    report
        .rows
        .iter()
        .filter(|r| r.packets > 0)
        .map(|r| ((r.map, r.rule.clone()), r.packets))
        .collect()
}

/// Takes the agent's sample of the counters per rule (the two latest are
/// kept).
fn sample_rules(ctx: &Ctx, status: &Status) {
    let Some(policy) = status.policy.lock().expect("not poisoned").clone() else {
        return;
    };
    let dir = ctx.resolve(&policy.load.pin);
    let Some(report) = Firewall::open(ctx, Some(&dir))
        .ok()
        .and_then(|fw| report_or_none(&fw))
    else {
        return;
    };
    let mut samples = status.rule_samples.lock().expect("not poisoned");
    samples.push_back((Instant::now(), rule_counts(&report)));
    while samples.len() > 2 {
        samples.pop_front();
    }
}

/// The rules with the highest rates over the agent's sampling window (the
/// older of its two samples to now: 10 to 20 seconds), then the most hit,
/// at most `--top-rules` (bounded series however long the lists are),
/// with their counters; and whether the counting is on.
fn rule_metrics(
    out: &mut Exposition,
    status: &Status,
    fw: &Firewall,
    report: Option<crate::ops::rulehits::Report>,
) {
    let Some(report) = report else {
        return;
    };
    let samples = status.rule_samples.lock().expect("not poisoned");
    let (dt, base) = match samples.front() {
        Some((at, counts)) => (at.elapsed().as_secs_f64(), counts.clone()),
        None => (0.0, RuleCounts::new()),
    };
    drop(samples);
    let top = crate::model::rulehits::top_rates(&base, &report.rows, dt, status.top_rules);
    prometheus::rules(out, &fw.dir, &top, report.lost, report.counting, dt > 0.0);
}
