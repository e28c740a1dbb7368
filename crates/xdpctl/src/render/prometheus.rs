//! The Prometheus text exposition format (version 0.0.4), written in one
//! place for `stats --prometheus` and the agent's `/metrics`: a metric
//! family is its HELP and TYPE lines, then its samples, labels escaped.
//!
//! NB: not the prometheus-client crate: it writes OpenMetrics (`# EOF`,
//! counters renamed without `_total` in HELP and TYPE), a different format
//! from the 0.0.4 text these endpoints have always served.

use std::{fmt::Display, path::Path};

use xdp_progs::xdpfw::Outcome;

/// A metric's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// Text being written in the exposition format.
#[derive(Default)]
pub struct Exposition(String);

impl Exposition {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        self.0.push_str(&format!(
            "# HELP {name} {}\n# TYPE {name} {kind}\n",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        ));
        self
    }

    /// A sample of the family last started.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Self {
        self.0.push_str(name);
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            self.0.push_str(&format!("{{{}}}", labels.join(",")));
        }
        self.0.push_str(&format!(" {value}\n"));
        self
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// The text.
    pub fn finish(self) -> String {
        self.0
    }
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The firewall's counters per outcome (`stats --prometheus`, and the
/// agent's `/metrics`).
pub fn firewall(out: &mut Exposition, dir: &Path, outcomes: &[(Outcome, u64, u64)]) {
    let dir = dir.display().to_string();
    for (metric, help, packets) in [
        (
            "xdpctl_firewall_packets_total",
            "Packets seen by the xdpctl firewall, by outcome.",
            true,
        ),
        (
            "xdpctl_firewall_bytes_total",
            "Bytes seen by the xdpctl firewall, by outcome.",
            false,
        ),
    ] {
        out.family(metric, Kind::Counter, help);
        for (o, p, b) in outcomes {
            let v = if packets { p } else { b };
            out.sample(metric, &[("dir", &dir), ("outcome", o.name())], v);
        }
    }
}

/// The counters of the rules hit most since the last scrape (`top`, with
/// their rates), and the hits that could not be counted (the agent's
/// `/metrics`).
pub fn rules(
    out: &mut Exposition,
    dir: &Path,
    top: &[(crate::model::rulehits::RuleHit, f64)],
    lost: u64,
    counting: bool,
    rated: bool,
) {
    let dir = dir.display().to_string();
    for (metric, kind, help) in [
        (
            "xdpctl_rule_packets_total",
            Kind::Counter,
            "Packets each rule matched, for the rules hit most of late.",
        ),
        (
            "xdpctl_rule_bytes_total",
            Kind::Counter,
            "Bytes of the packets each rule matched, for the same rules.",
        ),
        (
            "xdpctl_rule_packets_per_second",
            Kind::Gauge,
            "Packets each rule matched per second over the agent's last 10 to 20 seconds.",
        ),
        (
            "xdpctl_rule_last_hit_timestamp_seconds",
            Kind::Gauge,
            "When each rule last matched.",
        ),
    ] {
        out.family(metric, kind, help);
        for (r, rate) in top {
            let labels = [
                ("dir", dir.as_str()),
                ("map", r.map),
                ("rule", r.rule.as_str()),
            ];
            match metric {
                "xdpctl_rule_packets_total" => out.sample(metric, &labels, r.packets),
                "xdpctl_rule_bytes_total" => out.sample(metric, &labels, r.bytes),
                "xdpctl_rule_packets_per_second" if rated => {
                    out.sample(metric, &labels, format!("{rate:.3}"))
                }
                "xdpctl_rule_packets_per_second" => out,
                _ => out.sample(
                    metric,
                    &labels,
                    format!("{:.3}", r.last_unix_ns.unwrap_or(0) as f64 / 1e9),
                ),
            };
        }
    }
    out.family(
        "xdpctl_rule_hits_lost_total",
        Kind::Counter,
        "Rule hits not counted because the firewall's rule_hits map was full.",
    )
    .sample("xdpctl_rule_hits_lost_total", &[("dir", &dir)], lost);
    out.family(
        "xdpctl_rule_counters_on",
        Kind::Gauge,
        "Whether the firewall counts per rule (1) or not (0: stats --rule-counters off).",
    )
    .sample(
        "xdpctl_rule_counters_on",
        &[("dir", &dir)],
        u8::from(counting),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_help_type_and_labels() {
        let mut out = Exposition::default();
        firewall(
            &mut out,
            Path::new("/sys/fs/bpf/xd\"pfw"),
            &[(Outcome::Passed, 5, 300)],
        );
        out.single("up", Kind::Gauge, "Up.", 1.5);
        let text = out.finish();
        assert!(text.contains("# TYPE xdpctl_firewall_packets_total counter\n"));
        assert!(text.contains(
            "xdpctl_firewall_packets_total{dir=\"/sys/fs/bpf/xd\\\"pfw\",outcome=\"passed\"} 5\n"
        ));
        assert!(text.contains(
            "xdpctl_firewall_bytes_total{dir=\"/sys/fs/bpf/xd\\\"pfw\",outcome=\"passed\"} 300\n"
        ));
        assert!(
            text.ends_with("# HELP up Up.\n# TYPE up gauge\nup 1.5\n"),
            "{text}"
        );
    }
}
