//! `prog show` against bpftool, field by field; `prog top` with the
//! kernel's statistics on only while it runs.

use std::time::Duration;

use serde_json::Value;
use xdpctl_tests::{Bpffs, NetNs, fixture, require_privileges, sh, xdpctl};

/// Every field `bpftool -j -f prog show` prints for program `id` equals
/// xdpctl's (`-j prog show`), but `pids`, which bpftool gets from a BPF
/// iterator this kernel refuses (compared when it has it).
fn agrees_with_bpftool(fs: &Bpffs, id: u64) -> Value {
    let ours = xdpctl(fs, ["-j", "prog", "show", &id.to_string()])
        .ok()
        .json()[0]
        .clone();
    let theirs: Value = serde_json::from_str(&sh(
        "bpftool",
        &["-j", "-f", "prog", "show", "id", &id.to_string()],
    ))
    .unwrap();
    let theirs = theirs.as_object().unwrap();
    let mut compared = 0;
    for (k, v) in theirs {
        let mine = &ours[k];
        match k.as_str() {
            // bpftool lists pins from every bpffs mount it sees.
            "pinned" => {
                for p in mine.as_array().unwrap() {
                    assert!(v.as_array().unwrap().contains(p), "{k}: {ours} vs {v}");
                }
            }
            "pids" => {
                for h in v.as_array().unwrap() {
                    assert!(
                        mine.as_array()
                            .unwrap()
                            .iter()
                            .any(|m| m["pid"] == h["pid"]),
                        "{k}: {ours} vs {v}"
                    );
                }
            }
            // Counting while statistics are on (another test's prog top
            // may run meanwhile): bpftool reads after xdpctl.
            "run_time_ns" | "run_cnt" => {
                assert!(mine.as_u64().unwrap() <= v.as_u64().unwrap(), "{k}");
            }
            _ => assert_eq!(
                mine,
                v,
                "{k}: xdpctl {ours}\nbpftool {}",
                Value::Object(theirs.clone())
            ),
        }
        compared += 1;
    }
    assert!(compared >= 13, "bpftool printed only {theirs:?}");
    ours
}

#[test]
fn prog_show_agrees_with_bpftool_and_names_who_holds_a_program() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let id = |path: &str| {
        xdpctl(&fs, ["-j", "prog", "show", path]).ok().json()[0]["id"]
            .as_u64()
            .unwrap()
    };
    let fw = agrees_with_bpftool(&fs, id("fw/xdp_fw"));
    assert_eq!(fw["type"], "xdp");
    assert!(fw["bytes_jited"].as_u64().unwrap() > 0 && fw["verified_insns"].as_u64().unwrap() > 0);
    assert!(fw["loaded"].as_str().unwrap().ends_with('Z'), "{fw}");
    assert_eq!(
        fw["pids"],
        serde_json::json!([]),
        "a pinned program nobody holds"
    );

    // Third-party objects: xdp-tools' filter and a tc classifier.
    let xf = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o";
    xdpctl(&fs, ["load", xf, "--pin", "xf"]).ok();
    agrees_with_bpftool(&fs, id("xf/xdpfilt_alw_all"));
    xdpctl(
        &fs,
        ["load", fixture("tc_pass").to_str().unwrap(), "--pin", "tc"],
    )
    .ok();
    let tc = agrees_with_bpftool(&fs, id("tc/tc_pass"));
    assert_eq!(tc["type"], "sched_cls");

    // A program held by a process (a tcx link made with aya, in this
    // process), not pinned: its holder is named.
    let ns = NetNs::new();
    ns.exec(&[
        "ip", "link", "add", "hold0", "type", "veth", "peer", "name", "hold1",
    ]);
    let _link = ns.tcx_link("hold0", &fixture("tc_pass"), false);
    let shown = xdpctl(&fs, ["-j", "prog", "show"]).ok().json();
    let me = std::process::id();
    let held = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tc_pass" && p["pinned"].as_array().unwrap().is_empty())
        .expect("the tcx program");
    assert!(
        held["pids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["pid"] == me),
        "{held}"
    );
    // The table fits 80 columns and names the holder when it has room.
    let table = xdpctl(&fs, ["prog", "show", &held["id"].to_string()]).ok();
    assert!(
        table.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        table.stdout
    );
    let mut wide = xdpctl_tests::command(&fs);
    wide.env("COLUMNS", "200")
        .args(["prog", "show", &held["id"].to_string()]);
    let wide = xdpctl_tests::run(wide).ok();
    assert!(wide.stdout.contains(&format!("({me})")), "{}", wide.stdout);
}

#[test]
fn prog_top_counts_runs_only_while_it_runs() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let run = || {
        xdpctl(
            &fs,
            [
                "prog",
                "run",
                "fw/xdp_fw",
                "--packet",
                "udp",
                "--repeat",
                "20000",
            ],
        )
        .ok();
    };
    let runs = || {
        xdpctl(&fs, ["-j", "prog", "show", "fw/xdp_fw"]).ok().json()[0]["run_cnt"]
            .as_u64()
            .unwrap()
    };
    run();
    let before = runs();
    let mut top = xdpctl_tests::command(&fs);
    top.args([
        "-j",
        "prog",
        "top",
        "fw", // a load directory: its one program
        "--interval",
        "700ms",
        "--count",
        "2",
    ])
    .stdout(std::process::Stdio::piped());
    let child = top.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    run();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let first = &lines[0]["programs"][0];
    assert!(first["runs_per_sec"].as_f64().unwrap() > 1000.0, "{first}");
    assert!(first["ns_per_run"].as_f64().unwrap() > 0.0, "{first}");
    let counted = runs();
    assert!(counted >= before + 20_000, "{before} -> {counted}");
    // Off again: runs after it stopped are not counted.
    run();
    assert_eq!(runs(), counted, "statistics stayed on after prog top");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
            .unwrap()
            .trim(),
        "0"
    );
}
