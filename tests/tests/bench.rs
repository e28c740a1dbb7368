//! The benchmark harness in smoke mode (tiny sizes, seconds), so it cannot
//! rot: every row is measured, with the peer, and the table is well formed.
//! How fast things are belongs to `make bench`, not here.

use std::process::Command;

use xdpctl_tests::{require_privileges, xdpctl_bin};

#[test]
fn benchmark_harness_runs_in_smoke_mode() {
    require_privileges!();
    let out = Command::new(env!("CARGO_BIN_EXE_xdpctl-bench"))
        .arg("--smoke")
        .env("XDPCTL_BIN", xdpctl_bin())
        .env_remove("XDPCTL_BPFFS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed\n{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| what"))
        .collect();
    for what in [
        "bare XDP_DROP",
        "firewall, blocked source",
        "firewall, passed packet",
        "(2) firewall, native",
        "(5) nftables",
        "(6) xdp-filter",
        "bulk load",
        "dump",
        "peak memory",
        "net show",
        "load + pin",
    ] {
        let row = rows
            .iter()
            .find(|r| r.contains(what))
            .unwrap_or_else(|| panic!("no row for {what}:\n{stdout}"));
        assert_eq!(row.matches(" | ").count(), 5, "six columns: {row}");
        assert!(!row.contains("NaN"), "{row}");
    }
    // Every data-plane receiver saw the flood.
    for row in rows
        .iter()
        .filter(|r| r.contains("Mpps:") && !r.contains("did not run"))
    {
        let mpps: f64 = row
            .split(" | ")
            .nth(1)
            .unwrap()
            .trim_end_matches(" Mpps")
            .parse()
            .unwrap();
        assert!(mpps > 0.0, "no packets counted: {row}");
    }
}
