//! Declarative policy on the real kernel: `apply` makes exactly the state a
//! file says and a second apply changes nothing; `save` on one sandbox and
//! `apply` on another give the same state; a bad file is refused naming the
//! line and field; the agent reconciles an edited file within 2 s, reports
//! and corrects drift, serves metrics Prometheus' own parser reads, stops
//! on SIGTERM, and a start after a kill in the middle of an apply finishes
//! it.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use xdpctl_tests::{Bpffs, NetNs, VethPair, command, require_privileges, run, xdpctl, xdpctl_bin};

/// A policy's start: the load `fw` on B's device, generic mode.
fn header(pair: &VethPair) -> String {
    format!(
        "version: 1
load:
  pin: fw
devices:
  - name: {dev}
    netns: {ns}
    mode: generic
",
        dev = pair.dev_b,
        ns = pair.b.name()
    )
}

fn policy(pair: &VethPair, blocklist: &str, drift: &str) -> String {
    format!(
        "{header}rules:
  blocklist: [{blocklist}]
  cidr: [198.51.100.0/24, 2001:db8:1::/48]
  udp_ports: [53, 9999]
  tcp_ports: [23]
  drop_icmp: true
drift: {drift}
",
        header = header(pair)
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    // Written beside and renamed, as editors and ConfigMaps do.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The state a policy governs, as `save -j` prints it.
fn saved(fs: &Bpffs) -> Value {
    let mut v = xdpctl(fs, ["-j", "save", "fw"]).ok().json();
    // Device names and namespaces are the sandbox's own.
    v["devices"] = Value::Null;
    v
}

fn blocked(fs: &Bpffs, ip: &str) -> bool {
    xdpctl(fs, ["map", "lookup", "fw/maps/blocklist", ip]).code == 0
}

#[test]
fn apply_makes_exactly_the_policy_and_a_second_apply_changes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.yaml",
        &policy(&pair, "203.0.113.5, 2001:db8::5", "report"),
    );

    // A dry run changes nothing.
    let before = fs.snapshot();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", &file, "--dry-run"])
        .ok()
        .json();
    assert_eq!(plan["load"], "load");
    assert_eq!(plan["applied"], false);
    assert!(plan["changes"].as_u64().unwrap() >= 8, "{plan}");
    assert_eq!(fs.snapshot(), before);

    let applied = xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json();
    assert_eq!(applied["applied"], true);
    // Exactly the policy: attached, and each map holds what it says.
    let shown = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    assert_eq!(shown["devices"][0]["xdp"][0]["prog_name"], "xdp_fw");
    assert_eq!(shown["devices"][0]["xdp"][0]["mode"], "generic");
    let dump = |map: &str| {
        xdpctl(&fs, ["-j", "map", "dump", &format!("fw/maps/{map}")])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(dump("blocklist"), ["\"203.0.113.5\""]);
    assert_eq!(dump("blocklist6"), ["\"2001:db8::5\""]);
    assert_eq!(dump("udp_ports").len(), 2);
    assert_eq!(dump("tcp_ports"), ["23"]);
    assert_eq!(dump("cidr4"), ["\"198.51.100.0/24\""]);
    // apply's rule writes rebuild the CIDR index and turn it on.
    let mode = xdpctl(&fs, ["-j", "map", "lookup", "fw/maps/ctl", "0"])
        .ok()
        .json();
    assert_eq!(mode["value"], 0, "the CIDR index is in use after apply");
    let config = xdpctl(&fs, ["-j", "map", "lookup", "fw/maps/config", "0"])
        .ok()
        .json();
    assert_eq!(config["value"]["drop_icmp"], 1);
    // Traffic: ICMP from a to b is dropped now.
    assert_eq!(pair.ping_b_from_a(2), 0, "drop_icmp is applied to traffic");

    // Again: nothing to change, and it says so.
    let again = xdpctl(&fs, ["-j", "apply", "-f", &file]).ok();
    assert_eq!(again.json()["changes"], 0, "{}", again.stdout);
    let text = xdpctl(&fs, ["apply", "-f", &file]).ok().stdout;
    assert!(text.contains("nothing to change"), "{text}");

    // A change by hand is put back, and guard's own entries are left alone.
    xdpctl(
        &fs,
        ["map", "update", "fw/maps/blocklist", "192.0.2.9", "1"],
    )
    .ok();
    xdpctl(
        &fs,
        ["map", "update", "fw/maps/blocklist", "192.0.2.67", "0x67"],
    )
    .ok();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json();
    assert_eq!(plan["changes"], 1, "{plan}");
    assert!(!blocked(&fs, "192.0.2.9"));
    assert!(blocked(&fs, "192.0.2.67"), "guard's block was removed");

    // An edited policy: only the difference is written.
    let file = write(
        dir.path(),
        "p.yaml",
        &policy(&pair, "203.0.113.6, 2001:db8::5", "report"),
    );
    let plan = xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json();
    assert_eq!(plan["changes"], 2, "{plan}");
    assert_eq!(plan["rules"][0]["map"], "blocklist");
    assert_eq!(
        (
            plan["rules"][0]["put"].as_u64(),
            plan["rules"][0]["remove"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(blocked(&fs, "203.0.113.6") && !blocked(&fs, "203.0.113.5"));

    // A device left out of the policy is detached.
    let no_devices = policy(&pair, "203.0.113.6, 2001:db8::5", "report")
        .replace(
            &format!(
                "  - name: {}\n    netns: {}\n    mode: generic\n",
                pair.dev_b,
                pair.b.name()
            ),
            "",
        )
        .replace("devices:\n", "devices: []\n");
    let file = write(dir.path(), "p.yaml", &no_devices);
    let plan = xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json();
    assert_eq!(plan["detach"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(pair.ping_b_from_a(1), 1, "detached: ICMP passes again");
}

#[test]
fn save_on_one_host_and_apply_on_another_give_the_same_state() {
    require_privileges!();
    let (one, two) = (Bpffs::new(), Bpffs::new());
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let mut text = policy(&pair, "203.0.113.5, 2001:db8::5", "report");
    text = text.replace(
        "  pin: fw\n",
        "  pin: fw\n  max_entries:\n    blocklist: 100000\n",
    );
    let file = write(dir.path(), "p.yaml", &text);
    xdpctl(&one, ["apply", "-f", &file]).ok();
    let saved_text = xdpctl(&one, ["save", "fw"]).ok().stdout;
    assert!(saved_text.contains("blocklist: 100000"), "{saved_text}");
    // The other host has no such devices: apply the saved rules there.
    let rules_only = {
        let mut v: serde_norway_value::Value = serde_norway_value::from_str(&saved_text);
        v.strip_devices();
        v.0
    };
    let file2 = write(dir.path(), "saved.yaml", &rules_only);
    xdpctl(&two, ["apply", "-f", &file2]).ok();
    assert_eq!(saved(&one), saved(&two));
    xdpctl(&one, ["unload", "fw"]).ok();
}

/// Just enough of YAML editing for the test: the saved policy's device
/// list dropped.
mod serde_norway_value {
    pub struct Value(pub String);
    pub fn from_str(s: &str) -> Value {
        Value(s.to_owned())
    }
    impl Value {
        pub fn strip_devices(&mut self) {
            let mut out = String::new();
            let mut skipping = false;
            for line in self.0.lines() {
                if line.starts_with("devices:") {
                    out.push_str("devices: []\n");
                    skipping = true;
                    continue;
                }
                if skipping && (line.starts_with("- ") || line.starts_with("  ")) {
                    continue;
                }
                skipping = false;
                out.push_str(line);
                out.push('\n');
            }
            self.0 = out;
        }
    }
}

#[test]
fn a_bad_policy_names_the_line_and_field_and_changes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let good = policy(&pair, "203.0.113.5", "report");
    let before = fs.snapshot();
    for (bad, needles) in [
        (
            good.replace("203.0.113.5", "203.0.113.500"),
            vec![":9:", "rules.blocklist"],
        ),
        (
            good.replace("drift:", "drfit:"),
            vec!["unknown field `drfit`"],
        ),
        (
            good.replace("mode: generic", "mode: turbo"),
            vec![":7:", "mode", "turbo"],
        ),
        (
            good.replace("198.51.100.0/24", "198.51.100.1/24"),
            vec![":10:", "host bits", "198.51.100.0/24"],
        ),
        (
            good.replace("version: 1", "version: 7"),
            vec![":1:", "version"],
        ),
        (
            good.replace("udp_ports: [53, 9999]", "udp_ports: [53, 99999]"),
            vec!["rules.udp_ports"],
        ),
        ("load: [".to_owned(), vec!["p.yaml"]),
        (
            good.replace("udp_ports: [53, 9999]", "udp_ports:\n    - 53\n    - 0"),
            vec![":13:", "rules.udp_ports[1]", "port 0"],
        ),
        (
            good.replace("drop_icmp: true", "cidr_except: [198.51.100.0/24]"),
            vec![":13:", "rules.cidr_except[0]", "is in cidr too"],
        ),
        (
            format!("{good}guard:\n  threshold: 10\n  block_for: 500ms\n"),
            vec![":17:", "guard.block_for", "at least 1s"],
        ),
        (
            good.replace("  pin: fw\n", "  pin: fw\n  max_entries: {stats: 100}\n"),
            vec![
                "p.yaml: load.max_entries.stats",
                "the size its program is built for",
            ],
        ),
        (
            good.replace(
                "  pin: fw\n",
                &format!(
                    "  pin: other\n  object: {}\n",
                    xdpctl_tests::fixture("xdp_pass").display()
                ),
            ),
            vec!["p.yaml: rules:", "has no map blocklist", "leave rules out"],
        ),
    ] {
        let file = write(dir.path(), "p.yaml", &bad);
        // The plan refuses what the apply would: a dry run says it too.
        for dry in [true, false] {
            let mut args = vec!["apply", "-f", &file];
            if dry {
                args.push("--dry-run");
            }
            let out = xdpctl(&fs, args).fails_with(&needles);
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
            assert_eq!(fs.snapshot(), before);
        }
    }
}

/// Feeds a policy names are read with it, relative to its directory, and
/// their entries are the maps' like the inline ones; save → apply of the
/// result changes nothing; a bad line names the feed and the line.
#[test]
fn feeds_are_rules_the_policy_names() {
    require_privileges!();
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("feeds")).unwrap();
    std::fs::write(
        dir.path().join("feeds/blocked.txt"),
        "# spam\n203.0.113.7\n203.0.113.8 1  # again\n2001:db8::7\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("feeds/nets.txt"),
        "198.51.100.0/24\n198.51.100.0/28 0\n",
    )
    .unwrap();
    let file = write(
        dir.path(),
        "p.yaml",
        "version: 1\nload:\n  pin: fw\nrules:\n  blocklist: [192.0.2.1]\n  \
         blocklist_files: [feeds/blocked.txt]\n  cidr_files: [feeds/nets.txt]\n",
    );
    // From another directory: the feeds are the policy's, not the cwd's.
    let mut cmd = command(&fs);
    cmd.args(["-j", "apply", "-f", &file]).current_dir("/");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = saved(&fs)["rules"].clone();
    assert_eq!(
        rules["blocklist"],
        serde_json::json!(["192.0.2.1", "203.0.113.7", "203.0.113.8", "2001:db8::7"]),
        "{rules}"
    );
    assert_eq!(
        rules["cidr"],
        serde_json::json!(["198.51.100.0/24"]),
        "{rules}"
    );
    assert_eq!(
        rules["cidr_except"],
        serde_json::json!(["198.51.100.0/28"]),
        "{rules}"
    );
    assert!(blocked(&fs, "203.0.113.8"));
    let again = xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json();
    assert_eq!(again["changes"], 0, "{again}");
    let before = fs.snapshot();
    std::fs::write(
        dir.path().join("feeds/nets.txt"),
        "198.51.100.0/24\n198.51.100.7/24\n",
    )
    .unwrap();
    xdpctl(&fs, ["apply", "-f", &file]).fails_with(&[
        "feeds/nets.txt:2:",
        "rules.cidr_files[0]",
        "host bits",
    ]);
    assert_eq!(fs.snapshot(), before);
}

/// A running agent, stopped with SIGTERM on drop.
struct Agent {
    child: Child,
    port: u16,
    /// The namespace it runs in, if not the test's.
    ns: Option<std::path::PathBuf>,
}

/// The calling thread is in the namespace at `path` while this lives.
struct InNs(std::fs::File);

impl Drop for InNs {
    fn drop(&mut self) {
        nix::sched::setns(&self.0, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns back");
    }
}

fn enter_path(path: &Path) -> InNs {
    let back = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let target = std::fs::File::open(path).unwrap();
    nix::sched::setns(&target, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    InNs(back)
}

/// xdpctl run inside the namespace `ns`, as
/// `nsenter --net=/run/netns/NS xdpctl` (not `ip netns exec`, which
/// remounts /sys).
fn inside(fs: &Bpffs, ns: &NetNs) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", ns.path().display()))
        .arg(xdpctl_bin())
        .env("XDPCTL_BPFFS", fs.path());
    cmd
}

impl Agent {
    fn start(fs: &Bpffs, file: &str, extra: &[&str]) -> Agent {
        Self::start_in(fs, None, file, extra)
    }

    /// Starts it inside the namespace `ns` (entered with nsenter, as a
    /// pod on that network would be), or in the test's own.
    fn start_in(fs: &Bpffs, ns: Option<&NetNs>, file: &str, extra: &[&str]) -> Agent {
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let port = 20000
            + (std::process::id() % 20000) as u16
            + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cmd = match ns {
            Some(ns) => inside(fs, ns),
            None => command(fs),
        };
        cmd.args([
            "agent",
            "--policy",
            file,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--resync",
            "1s",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let child = cmd.spawn().expect("starting the agent");
        let agent = Agent {
            child,
            port,
            ns: ns.map(NetNs::path),
        };
        wait_for("the agent to be healthy", Duration::from_secs(20), || {
            agent.get("/healthz").is_some_and(|(code, _)| code == 200)
        });
        agent
    }

    /// GET a path: status code and body.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        // Its loopback is the namespace's it runs in.
        let _in = self.ns.as_ref().map(|p| enter_path(p));
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_owned();
        Some((code, body))
    }

    /// Stops it with SIGTERM; returns its exit status and stderr.
    fn stop(mut self) -> (i32, String) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = self.child.wait().unwrap();
        let code = status.code().unwrap_or(-1);
        std::mem::forget(self);
        (code, err)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command lines of a process's children.
fn children_of(pid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid ...
            let ppid: u32 = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
            (ppid == pid).then(|| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                    .unwrap_or_default()
            })
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn the_agent_reconciles_edits_reports_and_corrects_drift_and_serves_metrics() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let with_guard = |p: String| format!("{p}guard:\n  threshold: 1000000\n  interval: 500ms\n");
    let file = write(
        dir.path(),
        "policy.yaml",
        &with_guard(policy(&pair, "203.0.113.5", "report")),
    );
    let agent = Agent::start(&fs, &file, &["--top-rules", "1"]);
    assert!(blocked(&fs, "203.0.113.5"));
    // It runs guard on this load, keeping its blocks across restarts.
    wait_for("guard to run", Duration::from_secs(5), || {
        children_of(agent.child.id())
            .iter()
            .any(|cmd| cmd.contains("guard") && cmd.contains("--keep-blocks") && cmd.contains("fw"))
    });

    // An edit is applied within 2 seconds.
    write(
        dir.path(),
        "policy.yaml",
        &with_guard(policy(&pair, "203.0.113.5, 203.0.113.7", "report")),
    );
    let took = wait_for("the edit to be applied", Duration::from_secs(5), || {
        blocked(&fs, "203.0.113.7")
    });
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // A change by hand under `drift: report`: reported, not corrected.
    xdpctl(&fs, ["map", "delete", "fw/maps/blocklist", "203.0.113.7"]).ok();
    wait_for("drift to be reported", Duration::from_secs(5), || {
        agent
            .get("/metrics")
            .is_some_and(|(_, m)| m.contains("xdpctl_agent_drift_total 1"))
    });
    assert!(!blocked(&fs, "203.0.113.7"), "drift: report corrected it");

    // Under `drift: correct`: put back.
    write(
        dir.path(),
        "policy.yaml",
        &with_guard(policy(&pair, "203.0.113.5, 203.0.113.7", "correct")),
    );
    wait_for("the policy to be back", Duration::from_secs(5), || {
        blocked(&fs, "203.0.113.7")
    });
    xdpctl(&fs, ["map", "delete", "fw/maps/blocklist", "203.0.113.5"]).ok();
    wait_for("drift to be corrected", Duration::from_secs(5), || {
        blocked(&fs, "203.0.113.5")
    });

    // A bad edit: the last good policy stays, the error is counted, and
    // health says why.
    write(dir.path(), "policy.yaml", "version: 1\nload: [\n");
    wait_for(
        "the bad policy to be refused",
        Duration::from_secs(5),
        || {
            agent
                .get("/healthz")
                .is_some_and(|(code, body)| code == 503 && body.contains("policy.yaml"))
        },
    );
    assert!(blocked(&fs, "203.0.113.5"));
    // Resyncs of the last good policy do not hide the bad file.
    std::thread::sleep(Duration::from_millis(2_500));
    let (code, body) = agent.get("/healthz").unwrap();
    assert_eq!(
        code, 503,
        "after resyncs, the bad file is still said: {body}"
    );

    // The rule hit most of late, alone (--top-rules 1), whoever scraped
    // before: the rates are over the agent's own samples.
    let hit = |src: &str, n: &str| {
        let packet = format!("udp src={src} dst=10.0.0.1 dport=7777");
        xdpctl(
            &fs,
            ["prog", "run", "fw", "--packet", &packet, "--repeat", n],
        )
        .ok();
    };
    xdpctl(&fs, ["stats", "fw", "--rule-counters", "on"]).ok();
    hit("203.0.113.5", "2");
    hit("203.0.113.7", "2");
    agent.get("/metrics").unwrap();
    hit("203.0.113.7", "3");
    let (_, metrics) = agent.get("/metrics").unwrap();
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("xdpctl_rule_packets_total{"))
        .collect();
    assert_eq!(series.len(), 1, "{metrics}");
    assert!(
        series[0].contains("map=\"blocklist\",rule=\"203.0.113.7\"} 5"),
        "the rule hit most since the last scrape: {series:?}"
    );
    assert!(
        metrics.contains("xdpctl_rule_hits_lost_total{"),
        "{metrics}"
    );
    assert!(metrics.contains("xdpctl_rule_counters_on{"), "{metrics}");
    let (_, again) = agent.get("/metrics").unwrap();
    assert!(
        again.contains("map=\"blocklist\",rule=\"203.0.113.7\"} 5"),
        "a scrape does not change what the next one shows: {again}"
    );

    // Metrics parse with Prometheus' own parser.
    let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nnames = {f.name for f in p(sys.stdin.read())}\nprint(' '.join(sorted(names)))";
    let mut py = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused:\n{metrics}");
    let names = String::from_utf8_lossy(&out.stdout);
    for want in [
        "xdpctl_agent_reconciles",
        "xdpctl_agent_drift",
        "xdpctl_agent_attached",
        "xdpctl_agent_rules",
        "xdpctl_guard_blocks",
        "xdpctl_firewall_packets",
        "xdpctl_rule_packets",
        "xdpctl_rule_last_hit_timestamp_seconds",
    ] {
        assert!(names.contains(want), "{want} missing from {names}");
    }
    assert!(metrics.contains(&format!("xdpctl_agent_attached{{device=\"{}\"", pair.dev_b)));

    // SIGTERM: a clean stop that leaves the firewall in place.
    let (code, err) = agent.stop();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped"), "{err}");
    let shown = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    assert_eq!(
        shown["devices"][0]["xdp"][0]["prog_name"], "xdp_fw",
        "no gap"
    );
}

#[test]
fn an_agent_killed_in_the_middle_of_an_apply_is_finished_by_the_next_start() {
    require_privileges!();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let many: Vec<String> = (0..2000)
        .map(|i| format!("10.9.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let text = policy(&pair, &many.join(", "), "report");
    let file = write(dir.path(), "policy.yaml", &text);
    let mut kills = 0;
    for n in [3, 10, 20, 30, 40] {
        let fs = Bpffs::new();
        xdpctl(&fs, ["load", "--pin", "fw"]).ok();
        let mut cmd = command(&fs);
        cmd.env("XDPCTL_FAILPOINT", n.to_string()).args([
            "agent",
            "--policy",
            &file,
            "--listen",
            "127.0.0.1:0",
            "--count",
            "1",
        ]);
        let out = cmd.output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        if out.status.signal() == Some(9) {
            kills += 1;
        }
        // The next start finishes it.
        let mut cmd = command(&fs);
        cmd.args([
            "agent",
            "--policy",
            &file,
            "--listen",
            "127.0.0.1:0",
            "--count",
            "1",
        ]);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan = xdpctl(&fs, ["-j", "apply", "-f", &file, "--dry-run"])
            .ok()
            .json();
        assert_eq!(plan["changes"], 0, "killed before state change {n}: {plan}");
        xdpctl(&fs, ["detach", &pair.dev_b, "--netns", pair.b.name()]).ok();
    }
    assert!(kills >= 3, "only {kills} runs were killed midway");
}

/// A changed object (or a newer xdpctl's built-in firewall) is an upgrade:
/// apply replaces the load, without a gap, and then has nothing to change.
#[test]
fn a_changed_object_is_upgraded_by_apply() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let obj = dir.path().join("drop.o");
    let bytes = std::fs::read(xdpctl_tests::fixture("xdp_drop")).unwrap();
    std::fs::write(&obj, &bytes).unwrap();
    let text = format!(
        "version: 1\nload:\n  pin: d\n  object: {}\ndevices:\n  - name: {}\n    netns: {}\n    mode: generic\n",
        obj.display(),
        pair.dev_b,
        pair.b.name()
    );
    let file = write(dir.path(), "p.yaml", &text);
    xdpctl(&fs, ["apply", "-f", &file]).ok();
    let id = |fs: &Bpffs| {
        xdpctl(
            fs,
            ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
        )
        .ok()
        .json()["devices"][0]["xdp"][0]["prog_id"]
            .as_u64()
    };
    let before = id(&fs);
    assert!(before.is_some());
    assert_eq!(
        xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json()["changes"],
        0
    );
    // The same programs, other bytes: a new build of the object.
    let mut rebuilt = bytes.clone();
    rebuilt.extend_from_slice(b"\0rebuilt");
    std::fs::write(&obj, &rebuilt).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", &file, "--dry-run"])
        .ok()
        .json();
    assert_eq!(plan["load"], "replace", "{plan}");
    assert_eq!(plan["detach"], serde_json::json!([]), "{plan}");
    assert_eq!(plan["attach"], serde_json::json!([]), "{plan}");
    let link = |fs: &Bpffs| {
        xdpctl(
            fs,
            ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
        )
        .ok()
        .json()["devices"][0]["xdp"][0]["link_id"]
            .clone()
    };
    let link_before = link(&fs);
    xdpctl(&fs, ["apply", "-f", &file]).ok();
    assert_eq!(link(&fs), link_before, "the same link runs the new program");
    let after = id(&fs);
    assert!(after.is_some() && after != before, "the new program runs");
    assert_eq!(
        xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json()["changes"],
        0
    );
}

/// `apply --confirm-within`: the rule changes and new attachments roll back
/// unless confirmed.
#[test]
fn an_unconfirmed_apply_rolls_back_and_a_confirmed_one_stays() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        ["map", "update", "fw/maps/blocklist", "192.0.2.1", "1"],
    )
    .ok();
    let file = write(
        dir.path(),
        "p.yaml",
        &policy(&pair, "203.0.113.5", "report"),
    );
    let attached = |fs: &Bpffs| {
        xdpctl(fs, ["-j", "net", "show", "--netns", pair.b.name()])
            .ok()
            .json()["devices"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    };
    let out = xdpctl(&fs, ["apply", "-f", &file, "--confirm-within", "2s"]).ok();
    assert!(out.stderr.contains("xdpctl confirm"), "{}", out.stderr);
    assert!(blocked(&fs, "203.0.113.5") && !blocked(&fs, "192.0.2.1") && attached(&fs));
    wait_for("the apply to roll back", Duration::from_secs(8), || {
        !blocked(&fs, "203.0.113.5") && blocked(&fs, "192.0.2.1") && !attached(&fs)
    });
    // Confirmed: it stays.
    xdpctl(&fs, ["apply", "-f", &file, "--confirm-within", "2s"]).ok();
    xdpctl(&fs, ["confirm", "fw"]).ok();
    thread::sleep(Duration::from_secs(3));
    assert!(blocked(&fs, "203.0.113.5") && attached(&fs));
    assert!(
        fs.snapshot().iter().all(|e| !e.starts_with("f _xdpctl/")),
        "{:?}",
        fs.snapshot()
    );
}

/// A misspelt device or namespace is refused before anything changes: the
/// firewall stays on the device it protects.
#[test]
fn a_misspelt_device_changes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let good = policy(&pair, "203.0.113.5", "report");
    let file = write(dir.path(), "p.yaml", &good);
    xdpctl(&fs, ["apply", "-f", &file]).ok();
    // A bridge beside the pair: no native XDP in its driver.
    pair.b
        .exec(&["ip", "link", "add", "pbr0", "type", "bridge"]);
    pair.b.exec(&["ip", "link", "set", "pbr0", "up"]);
    let before = fs.snapshot();
    // A device or namespace missing on this host only warns in a dry run
    // (the policy may be checked away from its host); a bad map size is
    // wrong everywhere and fails the dry run too.
    for (bad, dry_run_fails) in [
        (
            good.replace(&format!("name: {}", pair.dev_b), "name: nosuch0"),
            false,
        ),
        (
            good.replace(&format!("netns: {}", pair.b.name()), "netns: nosuchns"),
            false,
        ),
        (
            good.replace(
                "  pin: fw\n",
                "  pin: fw\n  max_entries:\n    blocklist: 2048\n",
            ),
            true,
        ),
        // A device where native XDP is refused, with a rule changed too:
        // refused before the rule is written.
        (
            good.replace(
                "devices:\n",
                &format!(
                    "devices:\n  - name: pbr0\n    netns: {}\n    mode: native\n",
                    pair.b.name()
                ),
            )
            .replace("udp_ports: [53, 9999]", "udp_ports: [53, 9999, 7]"),
            false,
        ),
        (
            good.replace(
                "  pin: fw\n",
                "  pin: fw\n  max_entries:\n    blocklst: 10\n",
            ),
            true,
        ),
    ] {
        let file = write(dir.path(), "p.yaml", &bad);
        if dry_run_fails {
            xdpctl(&fs, ["apply", "-f", &file, "--dry-run"]).fails_with(&[]);
        } else {
            let dry = xdpctl(&fs, ["apply", "-f", &file, "--dry-run"]).ok();
            assert!(
                dry.stderr.contains("warning: on this host"),
                "{}",
                dry.stderr
            );
            assert_eq!(fs.snapshot(), before, "{}", dry.stderr);
        }
        let out = xdpctl(&fs, ["apply", "-f", &file]).fails_with(&[]);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert_eq!(fs.snapshot(), before, "{}", out.stderr);
        let shown = xdpctl(
            &fs,
            ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
        )
        .ok()
        .json();
        assert_eq!(
            shown["devices"][0]["xdp"][0]["prog_name"], "xdp_fw",
            "{}",
            out.stderr
        );
    }
}

/// The link id and program on the policy's device.
fn attached(fs: &Bpffs, pair: &VethPair) -> (Value, Value) {
    let x = xdpctl(
        fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json()["devices"][0]["xdp"][0]
        .clone();
    (x["link_id"].clone(), x["prog_name"].clone())
}

/// `apply` inside the namespace its policy names, and outside it, sees
/// the same devices: the second apply has nothing to do, and the link is
/// the one the first made. The namespace is named the same from inside.
#[test]
fn apply_inside_or_outside_the_namespace_it_names_changes_nothing_twice() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.yaml",
        &policy(&pair, "203.0.113.5", "report"),
    );
    let apply_inside = || {
        let mut cmd = inside(&fs, &pair.b);
        cmd.args(["-j", "apply", "-f", &file]);
        run(cmd).ok().json()
    };
    let first = apply_inside();
    assert_eq!(first["applied"], true, "{first}");
    let (link, prog) = attached(&fs, &pair);
    assert_eq!(prog, "xdp_fw");
    assert!(link.is_u64(), "attached by a link: {link}");

    for (i, plan) in [
        apply_inside(),
        xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json(),
        apply_inside(),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(plan["changes"], 0, "apply {}: {plan}", i + 2);
        assert_eq!(plan["attach"], serde_json::json!([]), "{plan}");
        assert_eq!(plan["detach"], serde_json::json!([]), "{plan}");
        assert_eq!(attached(&fs, &pair).0, link, "the same link");
    }

    // Named by its /run/netns name from inside, as from outside.
    let mut cmd = inside(&fs, &pair.b);
    cmd.args(["-j", "net", "show", &pair.dev_b]);
    assert_eq!(run(cmd).ok().json()["netns"], pair.b.name());
    let mut cmd = inside(&fs, &pair.b);
    cmd.args(["-j", "save", "fw"]);
    let saved_inside = run(cmd).ok().json();
    assert_eq!(saved_inside["devices"][0]["netns"], pair.b.name());
    let saved_outside = xdpctl(&fs, ["-j", "save", "fw"]).ok().json();
    assert_eq!(saved_inside, saved_outside);
}

/// The agent run inside the namespace its policy names keeps the firewall
/// attached: its resyncs find nothing to do, and it says it is attached.
#[test]
fn an_agent_inside_the_namespace_it_names_never_reattaches() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.yaml",
        &policy(&pair, "203.0.113.5", "correct"),
    );
    let agent = Agent::start_in(&fs, Some(&pair.b), &file, &[]);
    let (link, prog) = attached(&fs, &pair);
    assert_eq!(prog, "xdp_fw");
    let line = format!(
        "xdpctl_agent_attached{{device=\"{}\",netns=\"{}\",mode=\"generic\"}} 1",
        pair.dev_b,
        pair.b.name()
    );
    wait_for("attached to read 1", Duration::from_secs(5), || {
        agent
            .get("/metrics")
            .is_some_and(|(_, m)| m.contains(&line))
    });
    let changes = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("xdpctl_agent_changes_total "))
            .map(str::to_owned)
    };
    let at_start = changes(&agent.get("/metrics").unwrap().1);
    assert!(at_start.is_some());
    // Several resyncs (1 s each): no drift, no change, the same link.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        assert_eq!(attached(&fs, &pair), (link.clone(), prog.clone()));
        thread::sleep(Duration::from_millis(100));
    }
    let (_, metrics) = agent.get("/metrics").unwrap();
    assert!(metrics.contains(&line), "{metrics}");
    assert!(metrics.contains("xdpctl_agent_drift_total 0"), "{metrics}");
    assert_eq!(changes(&metrics), at_start, "{metrics}");
    let (code, err) = agent.stop();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("drift"), "{err}");
}

/// A policy that puts another load's program on an attached device
/// replaces it atomically: no detach in the plan, the device never without
/// XDP, and the link (and its pin) now the new load's.
#[test]
fn apply_that_changes_the_program_replaces_it_without_a_gap() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let text = policy(&pair, "203.0.113.5", "report");
    let file = write(dir.path(), "p.yaml", &text);
    xdpctl(&fs, ["apply", "-f", &file]).ok();
    let (link, _) = attached(&fs, &pair);

    // The same policy for a load in another directory.
    let moved = write(
        dir.path(),
        "p2.yaml",
        &text.replace("  pin: fw\n", "  pin: fw2\n"),
    );
    let plan = xdpctl(&fs, ["-j", "apply", "-f", &moved, "--dry-run"])
        .ok()
        .json();
    assert_eq!(plan["load"], "load", "{plan}");
    assert_eq!(plan["detach"], serde_json::json!([]), "{plan}");
    assert_eq!(plan["attach"], serde_json::json!([]), "{plan}");
    assert_eq!(plan["replace"][0]["name"], pair.dev_b.as_str(), "{plan}");

    // Watch the device while the apply runs.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let (dev, ns) = (pair.dev_b.clone(), pair.b.name().to_owned());
        let root = fs.path().to_owned();
        thread::spawn(move || {
            let mut samples = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || samples == 0 {
                let out = Command::new(xdpctl_bin())
                    .env("XDPCTL_BPFFS", &root)
                    .args(["-j", "net", "show", &dev, "--netns", &ns])
                    .output()
                    .unwrap();
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                let xdp = v["devices"][0]["xdp"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(xdp.len(), 1, "the device ran without XDP: {v}");
                samples += 1;
            }
            samples
        })
    };
    let applied = xdpctl(&fs, ["-j", "apply", "-f", &moved]).ok().json();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = watcher.join().expect("the device was always attached");
    assert!(samples > 0);
    assert_eq!(applied["detach"], serde_json::json!([]), "{applied}");

    let x = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json()["devices"][0]["xdp"][0]
        .clone();
    let fw2 = xdpctl(&fs, ["-j", "prog", "show", "fw2/xdp_fw"])
        .ok()
        .json()[0]["id"]
        .clone();
    assert_eq!(x["prog_id"], fw2, "fw2's program runs");
    assert_eq!(x["link_id"], link, "the same link, updated");
    assert!(
        x["link_pinned"][0]
            .as_str()
            .unwrap()
            .contains("/fw2/links/"),
        "{x}"
    );
    assert_eq!(
        xdpctl(&fs, ["-j", "apply", "-f", &moved]).ok().json()["changes"],
        0
    );
    // The old load no longer owns it.
    xdpctl(&fs, ["unload", "fw"]).ok();
    assert_eq!(attached(&fs, &pair), (link, Value::from("xdp_fw")));
}

/// `save` records an object file by its canonical path, so the saved
/// policy applies from any directory, though `load` was given a relative
/// path.
#[test]
fn a_saved_object_path_applies_from_any_directory() {
    require_privileges!();
    let (one, two) = (Bpffs::new(), Bpffs::new());
    let (objdir, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::copy(
        xdpctl_tests::fixture("xdp_drop"),
        objdir.path().join("v2.o"),
    )
    .unwrap();
    let in_dir = |fs: &Bpffs, dir: &Path, args: &[&str]| {
        let mut cmd = command(fs);
        cmd.current_dir(dir).args(args);
        xdpctl_tests::run(cmd)
    };
    in_dir(&one, objdir.path(), &["load", "v2.o", "--pin", "d"]).ok();
    let saved_text = in_dir(&one, elsewhere.path(), &["save", "d"]).ok().stdout;
    let canonical = objdir.path().join("v2.o").canonicalize().unwrap();
    assert!(
        saved_text.contains(&format!("object: {}\n", canonical.display())),
        "{saved_text}"
    );
    let file = write(elsewhere.path(), "saved.yaml", &saved_text);
    // From another directory, on another host and on this one.
    in_dir(&two, elsewhere.path(), &["apply", "-f", &file]).ok();
    let again = in_dir(&one, elsewhere.path(), &["-j", "apply", "-f", &file]).ok();
    assert_eq!(again.json()["changes"], 0, "{}", again.stdout);
    xdpctl(&one, ["unload", "d"]).ok();
    xdpctl(&two, ["unload", "d"]).ok();
}

/// A policy takes `mode: driver` as the command line takes `--mode
/// driver`, and the live state and `save` call it `native`.
#[test]
fn a_mode_has_every_name_in_and_one_name_out() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let dir = tempfile::tempdir().unwrap();
    let text = policy(&pair, "203.0.113.5", "report").replace("mode: generic", "mode: driver");
    let file = write(dir.path(), "p.yaml", &text);
    xdpctl(&fs, ["apply", "-f", &file]).ok();
    let shown = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    assert_eq!(shown["devices"][0]["xdp"][0]["mode"], "native", "{shown}");
    assert_eq!(
        xdpctl(&fs, ["-j", "apply", "-f", &file]).ok().json()["changes"],
        0,
        "driver is native"
    );
    assert_eq!(
        xdpctl(&fs, ["-j", "save", "fw"]).ok().json()["devices"][0]["mode"],
        "native"
    );
    let saved = xdpctl(&fs, ["save", "fw"]).ok().stdout;
    assert!(
        saved.contains("mode: native") && !saved.contains("driver"),
        "{saved}"
    );
    xdpctl(&fs, ["unload", "fw"]).ok();
}

/// The agent knows rate limits and SYN cookies: it makes them, puts back
/// what is changed by hand (drift: correct), takes an edited limit, and a
/// host whose listeners would not take the cookies' ACKs is said in its
/// health (the last good state kept) until it is set right.
#[test]
fn the_agent_keeps_rate_limits_and_syn_cookies() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
    let dir = tempfile::tempdir().unwrap();
    let text = |pps: u32, ports: &str| {
        format!(
            "{header}rules:
  syn_ports: [{ports}]
  rate_limits:
    - cidr: 198.51.100.0/24
      pps: {pps}
      burst: 50
drift: correct
",
            header = header(&pair)
        )
    };
    let file = write(dir.path(), "policy.yaml", &text(100, "443"));
    let agent = Agent::start(&fs, &file, &[]);
    let protected =
        |port: &str| xdpctl(&fs, ["map", "lookup", "fw/maps/syn_ports", port]).code == 0;
    let limit = || {
        let v = xdpctl(
            &fs,
            ["-j", "map", "lookup", "fw/maps/rate4", "198.51.100.0/24"],
        );
        (v.code == 0).then(|| v.json()["value"]["pps"].as_u64().unwrap())
    };
    assert!(protected("443"));
    assert_eq!(limit(), Some(100));
    let cfg = xdpctl(&fs, ["-j", "map", "lookup", "fw/maps/syn_cfg", "0"])
        .ok()
        .json();
    assert_eq!(
        cfg["value"]["check_ack"], 1,
        "the cookies' settings written: {cfg}"
    );

    // Removed by hand: put back at the next resync.
    xdpctl(&fs, ["map", "delete", "fw/maps/syn_ports", "443"]).ok();
    xdpctl(&fs, ["map", "delete", "fw/maps/rate4", "198.51.100.0/24"]).ok();
    wait_for("the drift to be corrected", Duration::from_secs(5), || {
        protected("443") && limit() == Some(100)
    });
    // A limit changed by hand: put back too.
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "fw/maps/rate4",
            "198.51.100.0/24",
            r#"{"pps":7}"#,
        ],
    )
    .ok();
    wait_for("the limit to be put back", Duration::from_secs(5), || {
        limit() == Some(100)
    });

    // An edit: the new limit and port, and still the cookies' host check.
    write(dir.path(), "policy.yaml", &text(250, "443, 8443"));
    wait_for("the edit to be applied", Duration::from_secs(5), || {
        limit() == Some(250) && protected("8443")
    });

    // The host set back: health says so at the next resync (as doctor
    // does), and other drift is still put back.
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=1"]);
    wait_for("the host to be said", Duration::from_secs(5), || {
        agent
            .get("/healthz")
            .is_some_and(|(code, body)| code == 503 && body.contains("tcp_syncookies"))
    });
    xdpctl(&fs, ["map", "delete", "fw/maps/rate4", "198.51.100.0/24"]).ok();
    wait_for(
        "drift put back under a host set back",
        Duration::from_secs(5),
        || limit() == Some(250),
    );
    // An edit that protects another port is refused whole meanwhile.
    write(dir.path(), "policy.yaml", &text(300, "443, 8443, 9443"));
    thread::sleep(Duration::from_millis(2500));
    assert!(!protected("9443"), "nothing of the refused edit written");
    assert_eq!(limit(), Some(250));
    let (code, body) = agent.get("/healthz").unwrap();
    assert!(
        code == 503 && body.contains("tcp_syncookies"),
        "{code} {body}"
    );
    pair.b.exec(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=2"]);
    wait_for(
        "the edit once the host is right",
        Duration::from_secs(5),
        || protected("9443") && limit() == Some(300),
    );
    wait_for(
        "health once the host is right",
        Duration::from_secs(3),
        || agent.get("/healthz").is_some_and(|(c, _)| c == 200),
    );
    let (code, err) = agent.stop();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("tcp_syncookies is 1") && err.contains("takes the SYN cookies' ACKs again"),
        "the host's change said in the log, once each way: {err}"
    );
}
