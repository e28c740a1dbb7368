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
        "test-run ns/packet: bare XDP_DROP",
        "firewall, blocked source",
        "firewall, passed packet",
        "passed packet, 10,000 CIDR rules",
        "one source, UDP to blocked port 9: bare XDP_DROP (floor)",
        "256 sources, UDP to blocked port 9: firewall",
        "65,536 sources, UDP to blocked port 9: firewall",
        "spoofed 2^24 sources, UDP to blocked port 9: firewall, no source rules",
        "spoofed 2^24 sources, UDP to blocked port 9: nftables",
        "firewall + 65,536 blocklist + 10,000 CIDR",
        "open port 7777: bare XDP_PASS (floor)",
        "open port 7777: firewall",
        "one blocklisted source 203.0.113.5: firewall, native",
        "xdp-filter",
        "bulk load",
        "raw BPF_MAP_LOOKUP_BATCH",
        "map dump of a 5000-entry hash, table",
        "map dump of a 5000-entry hash, -j",
        "peak memory",
        "guard/top interval",
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
        .filter(|r| r.starts_with("| veth Mpps") && !r.contains("did not run"))
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
