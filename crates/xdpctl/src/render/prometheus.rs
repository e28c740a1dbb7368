//! The Prometheus text exposition format, for `stats --prometheus` and
//! the agent's `/metrics`.

use std::path::Path;

use xdp_progs::xdpfw::Outcome;

/// The Prometheus text exposition format of the counters.
pub fn firewall(dir: &Path, outcomes: &[(Outcome, u64, u64)]) -> String {
    let dir = dir
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let mut out = String::new();
    for (metric, help, pick) in [
        (
            "xdpctl_firewall_packets_total",
            "Packets seen by the xdpctl firewall, by outcome.",
            0,
        ),
        (
            "xdpctl_firewall_bytes_total",
            "Bytes seen by the xdpctl firewall, by outcome.",
            1,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {metric} {help}\n# TYPE {metric} counter\n"
        ));
        for (o, packets, bytes) in outcomes {
            let v = if pick == 0 { packets } else { bytes };
            out.push_str(&format!(
                "{metric}{{dir=\"{dir}\",outcome=\"{}\"}} {v}\n",
                o.name()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_help_type_and_labels() {
        let text = firewall(Path::new("/sys/fs/bpf/xdpfw"), &[(Outcome::Passed, 5, 300)]);
        assert!(text.contains("# TYPE xdpctl_firewall_packets_total counter\n"));
        assert!(text.contains(
            "xdpctl_firewall_packets_total{dir=\"/sys/fs/bpf/xdpfw\",outcome=\"passed\"} 5\n"
        ));
        assert!(text.contains(
            "xdpctl_firewall_bytes_total{dir=\"/sys/fs/bpf/xdpfw\",outcome=\"passed\"} 300\n"
        ));
    }
}
