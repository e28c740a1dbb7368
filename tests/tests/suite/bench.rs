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
        // The portable flood (a test-run generator tail-calling each
        // program), with the seed's programs and xdp-filter as peers.
        "UDP to dropped port 9: the seed's xdp_drop_udp (floor)",
        "UDP to dropped port 9: firewall, that rule only",
        "UDP to dropped port 9: firewall + 65,536 blocklist + 10,000 mixed CIDR",
        "UDP to dropped port 9: xdp-filter",
        "one blocklisted source 203.0.113.5: firewall",
        "one source, UDP to open port 7777, passed: the seed's xdp_count_drop",
        "one source, UDP to open port 7777, passed: firewall, no rules",
        "spoofed 2^24 sources, UDP to open port 7777, passed: firewall, no rules",
        "IPv6 one source, passed: firewall + 10,000 CIDR6",
        // Live frames on veth: measured, or said why not.
        "veth Mpps",
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
    // Every flood row measured something.
    for row in rows.iter().filter(|r| r.starts_with("| flood ns/pkt")) {
        let ns: f64 = row
            .split(" | ")
            .nth(1)
            .unwrap()
            .trim_end_matches(" ns")
            .parse()
            .unwrap_or_else(|_| panic!("no ns figure: {row}"));
        assert!(ns > 0.0, "{row}");
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
