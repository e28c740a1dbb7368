//! The `-j` rule, for every command: stdout holds exactly one JSON document
//! (commands that report every interval — `stats --interval`, `top`,
//! `guard` — one JSON document per line), on success and on failure alike;
//! a failure's document is `{"error": {"message", "hint", "exit_code"}}`,
//! but for `map lookup` of a missing key, whose document is `null`.
//! The exceptions are text by nature: `--help`, `--version` and
//! `completions`.

use serde_json::Value;
use xdpctl_tests::{Bpffs, Run, VethPair, fixture, require_privileges, xdpctl};

fn one_document(run: &Run) -> Value {
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "`xdpctl {}`: stdout is not one JSON document ({e}):\n{}",
            run.args, run.stdout
        )
    });
    if run.code != 0 {
        assert_eq!(
            v["error"]["exit_code"].as_u64(),
            Some(run.code as u64),
            "`xdpctl {}`: {v}",
            run.args
        );
    }
    v
}

fn json_lines(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("`xdpctl {}`: a line is not JSON ({e}): {l}", run.args))
        })
        .collect()
}

#[test]
fn every_command_prints_json_under_j_on_success_and_failure() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let (dev, ns) = (pair.dev_b.as_str(), pair.b.name());
    let j = |args: &[&str]| {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        xdpctl(&fs, &all)
    };
    let user = fixture("user_xdp");
    let ok = [
        vec!["load", "--pin", "fw"],
        vec!["load", user.to_str().unwrap(), "--pin", "u"],
        vec!["load", "--pin", "fw", "--replace"],
        vec!["attach", "fw", dev, "--netns", ns, "--mode", "generic"],
        vec!["net", "show", "--netns", ns],
        vec!["net", "show", dev, "--netns", ns],
        vec!["prog", "show"],
        vec!["prog", "show", "fw/xdp_fw"],
        vec![
            "prog",
            "run",
            "fw",
            "--packet",
            "udp src=203.0.113.5 dport=53",
        ],
        vec!["map", "show"],
        vec!["map", "show", "fw/maps/blocklist"],
        vec!["map", "update", "fw/maps/blocklist", "203.0.113.5", "1"],
        vec!["map", "lookup", "fw/maps/blocklist", "203.0.113.5"],
        vec!["map", "dump", "fw/maps/blocklist"],
        vec!["map", "delete", "fw/maps/blocklist", "203.0.113.5"],
        vec!["map", "clear", "fw/maps/blocklist"],
        vec!["stats", "fw"],
        vec!["doctor"],
        vec!["detach", dev, "--netns", ns],
        vec![
            "attach",
            "fw",
            dev,
            "--netns",
            ns,
            "--mode",
            "generic",
            "--confirm-within",
            "1m",
        ],
        vec!["confirm", dev, "--netns", ns],
        vec!["detach", dev, "--netns", ns],
        vec!["unload", "u"],
        vec!["unload", "fw"],
        vec!["unload", "fw"],
    ];
    for args in ok {
        let run = j(&args).ok();
        one_document(&run);
    }
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    for args in [
        vec!["stats", "fw", "--interval", "0.1", "--count", "2"],
        vec!["top", "fw", "--interval", "0.1", "--count", "2"],
        vec![
            "guard",
            "fw",
            "--threshold",
            "1",
            "--interval",
            "0.1",
            "--count",
            "2",
        ],
    ] {
        let run = j(&args).ok();
        let lines = json_lines(&run);
        if args[0] != "guard" {
            assert_eq!(lines.len(), 2, "`xdpctl {}`", run.args);
        }
    }
    for args in [
        vec!["load", "--pin", "fw"],
        vec!["unload", "fw/maps"],
        vec!["attach", "fw", "nope0", "--netns", ns],
        vec!["map", "delete", "blocklist", "8.8.8.8"],
        vec!["prog", "show", "id:999999"],
        vec!["confirm", dev, "--netns", ns],
        vec!["stats", "fw", "--prometheus"],
        vec!["no-such-command"],
        vec!["load", "--pin"],
    ] {
        let run = j(&args);
        assert_ne!(run.code, 0, "`xdpctl {}` should fail", run.args);
        one_document(&run);
    }
    // A lookup of a missing key: `null`, the value of no entry, exit 3 and
    // the one line on stderr.
    let run = j(&["map", "lookup", "blocklist", "8.8.8.8"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stdout, "null\n", "{run:?}");
    assert!(run.stderr.contains("not found"), "{run:?}");
}
