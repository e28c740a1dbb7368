//! Arguments of the commands that watch the firewall: `stats`, `capture`,
//! `top`, `guard`.

use super::*;

/// The firewall's counters: packets and bytes per outcome.
///
/// Once by default; with --interval, every DURATION with rates (JSON: one
/// object per interval, JSON lines). --prometheus prints the text
/// exposition format for node_exporter's textfile collector. DIR is the
/// firewall's load directory; default: the only one under --bpffs. Says on
/// stderr when one of the firewall's indexes is off (a change was
/// interrupted, or another tool wrote its rules; `xdpctl doctor` rebuilds
/// it).
///
/// --rules lists every rule of the rule maps (blocklist entries, CIDR
/// prefixes and their exceptions, ports) with the packets, bytes and last
/// time it matched while counting was on (kept by `load --replace`): the most hit
/// first, or with --unused only rules never hit and with --idle only rules
/// not hit for a while, to prune a list. Each packet counts for the rule
/// that decided it, as nftables' counters do: ports come before sources,
/// so a blocklisted source's packets to a dropped port count for the port;
/// an exception (a CIDR prefix of value 0) counts the packets it passes.
/// The datapath counts once --rule-counters on says so (off after load, as
/// nftables counts only rules with a `counter`: a hit costs a few ns), and
/// until off; reset sets the counts to zero. The switch stays with the load
/// (`load --replace` keeps it).
///
/// Example: xdpctl stats --interval 1
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl stats
  xdpctl stats /sys/fs/bpf/xdpfw --interval 1
  xdpctl -j stats --interval 10 --count 6 >> stats.jsonl
  xdpctl stats --prometheus > /var/lib/node_exporter/textfile/xdpctl.prom
  xdpctl stats --rule-counters on
  xdpctl stats --rules --top 20
  xdpctl stats --rules --idle 30d")]
pub struct StatsArgs {
    /// The firewall's load directory.
    #[arg(value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub dir: Option<PathBuf>,
    /// Print rates every DURATION (2s, 500ms; a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = interval_secs)]
    pub interval: Option<f64>,
    /// Stop after N intervals.
    #[arg(long, value_name = "N", requires = "interval", value_parser = count)]
    pub count: Option<u64>,
    /// Prometheus text format (a snapshot).
    #[arg(long, conflicts_with = "interval")]
    pub prometheus: bool,
    /// Counters per rule: each rule with its packets, bytes and last hit.
    #[arg(long, conflicts_with_all = ["interval", "prometheus"])]
    pub rules: bool,
    /// With --rules: only rules never hit.
    #[arg(long, requires = "rules")]
    pub unused: bool,
    /// With --rules: only rules not hit for DURATION (never hit included).
    #[arg(long, value_name = "DURATION", requires = "rules", value_parser = at_least_a_second)]
    pub idle: Option<std::time::Duration>,
    /// With --rules: at most N rules, the most hit first.
    #[arg(long, value_name = "N", requires = "rules", value_parser = size)]
    pub top: Option<usize>,
    /// With --rules: also rules no map holds any more (their counts stay).
    #[arg(long, requires = "rules")]
    pub removed: bool,
    /// Turn the datapath's counters per rule on or off, or reset them to
    /// zero (forgetting removed rules).
    #[arg(long, value_enum, value_name = "on|off|reset", conflicts_with_all = ["interval", "prometheus", "rules"])]
    pub rule_counters: Option<RuleCounters>,
}

/// What `stats --rule-counters` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuleCounters {
    /// Count.
    On,
    /// Stop counting, and its cost (the default after load).
    Off,
    /// Set every counter to zero.
    Reset,
}

/// Capture the packets the firewall judges, each with its verdict and rule.
///
/// Without -w, prints a line per packet (time, device, verdict, the rule
/// that decided it, headers, CPU and RX queue; JSON lines with -j). With
/// -w FILE (or -w - for stdout, to pipe into `tcpdump -r -` or Wireshark)
/// writes pcapng, the verdict and rule in each packet's comment. The rule
/// is what to change: `blocklist 203.0.113.5`, `cidr4 198.51.100.0/24`,
/// `udp_ports 53`, `config.drop_icmp`; `none` for a passed packet.
///
/// --verdict and --rule choose outcomes in the datapath; --sample and
/// --max-rate bound the cost under a flood (the cap is for all CPUs
/// together; packets over it are counted, not copied); -f filters what
/// was captured with a pcap-filter expression, as tcpdump takes it. Stops
/// at --count, --duration or Ctrl-C with a one-line summary on stderr.
/// Off, a capture costs the datapath one array read a packet. It holds a
/// lease the datapath drops 3 s after xdpctl stops renewing it, so a
/// killed capture leaves nothing on. One capture per load at a time.
///
/// DIR is the firewall's load directory (default: the only one under
/// --bpffs); DEV, a device the firewall is attached to (with --netns if it
/// is in another namespace): only its packets. Programs other than the
/// built-in firewall cannot be captured here: see CAPTURE in the README.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl capture --verdict drop
  xdpctl capture ens5 -c 100 -f 'udp port 53'
  xdpctl capture /sys/fs/bpf/xdpfw --rule blocklist --sample 100 -w drops.pcapng
  xdpctl capture -w - --duration 30s | tcpdump -nr -
  xdpctl capture --max-rate unlimited -c 100000 -w all.pcapng")]
pub struct CaptureArgs {
    /// The firewall's load directory, or a device it is attached to.
    #[arg(value_name = "DIR|DEV", value_parser = name_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub target: Option<String>,
    /// The namespace of DEV.
    #[arg(long, value_name = "NAME|PATH", value_parser = name_arg, add = ArgValueCompleter::new(complete::namespaces))]
    pub netns: Option<String>,
    /// Write pcapng to FILE ('-': stdout) instead of printing lines.
    #[arg(short = 'w', long = "write", value_name = "FILE", value_parser = path_arg)]
    pub write: Option<PathBuf>,
    /// Only packets with this verdict (repeatable).
    #[arg(long, value_enum, value_name = "VERDICT")]
    pub verdict: Vec<crate::model::capture::Verdict>,
    /// Only packets decided by this kind of rule (repeatable).
    #[arg(long, value_enum, value_name = "KIND")]
    pub rule: Vec<crate::model::capture::RuleKind>,
    /// Capture one packet in N of those chosen, on each CPU.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub sample: u32,
    /// At most PPS packets a second, or 'unlimited'.
    #[arg(long, value_name = "PPS", default_value = "10000", value_parser = max_rate)]
    pub max_rate: MaxRate,
    /// Bytes of each packet to keep (at most 4096).
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub snaplen: u32,
    /// Stop after N packets.
    #[arg(short = 'c', long, value_name = "N", value_parser = count)]
    pub count: Option<u64>,
    /// Stop after DURATION (30s, 5m).
    #[arg(long, value_name = "DURATION", value_parser = interval)]
    pub duration: Option<std::time::Duration>,
    /// Keep only packets this pcap-filter expression matches ('udp port 53').
    #[arg(short = 'f', long = "filter", value_name = "EXPRESSION", value_parser = expression)]
    pub filter: Option<String>,
}

/// Live top talkers by packet rate, from the per-source counters.
///
/// Refreshes in place in a terminal; plain lines (or JSON lines with -j)
/// otherwise. IPv4 and IPv6. Counts the packets the firewall passes; under
/// a flood of new sources, a source is counted once it sends more than
/// 1/1024 of the flood (see "Counting sources under a flood" in the README).
///
/// Example: xdpctl top --limit 10
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The firewall's load directory.
    #[arg(value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub dir: Option<PathBuf>,
    /// Time between refreshes (2s, 500ms; a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value_t = 1.0, value_parser = interval_secs)]
    pub interval: f64,
    /// Sources shown.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = size)]
    pub limit: usize,
    /// Stop after N refreshes.
    #[arg(long, value_name = "N", value_parser = count)]
    pub count: Option<u64>,
}

/// Block sources that send faster than a threshold, for a while.
///
/// Every interval, each source's packet rate is computed from the
/// firewall's counters; a source over --threshold goes into the blocklist
/// for --block-for, then comes out. --allow sources, and the client of the
/// SSH session guard runs in, are never blocked; --max-blocks caps how many
/// it holds. Entries an operator added are never touched. Each block and
/// unblock is one line (JSON with -j). SIGTERM or SIGINT stop it cleanly,
/// removing its blocks unless --keep-blocks; a restart picks up its own
/// unexpired blocks (kept in DIR/guard). While it runs, the firewall counts
/// a new source under a flood once it sent a quarter of the threshold's
/// packets in an epoch (about a second), so no source at the threshold goes
/// uncounted.
///
/// Example: xdpctl guard --threshold 10000 --block-for 10m
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl guard --threshold 10000
  xdpctl guard /sys/fs/bpf/xdpfw --threshold 5000 --interval 2 --block-for 1h --allow 10.0.0.0/8
  xdpctl guard --threshold 10000 --dry-run
  xdpctl guard --threshold 10000 --limit 1000 --block-for 5m")]
pub struct GuardArgs {
    /// The firewall's load directory.
    #[arg(value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub dir: Option<PathBuf>,
    /// Packets per second above which a source is blocked.
    #[arg(long, value_name = "PPS", value_parser = rate)]
    pub threshold: f64,
    /// How often to look.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = interval)]
    pub interval: std::time::Duration,
    /// How long a block lasts.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = at_least_a_second)]
    pub block_for: std::time::Duration,
    /// Never block these sources (address or CIDR, without host bits);
    /// may be repeated.
    #[arg(long, value_name = "CIDR", value_parser = rule_cidr)]
    pub allow: Vec<Cidr>,
    /// At most this many of guard's blocks at once.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = size)]
    pub max_blocks: usize,
    /// Limit a source over the threshold to PPS packets a second (a rate
    /// limit of its own in rate4/rate6) instead of blocking it.
    #[arg(long, value_name = "PPS", value_parser = limit_pps)]
    pub limit: Option<u64>,
    /// Log what would be blocked; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave guard's blocks in place when it stops.
    #[arg(long)]
    pub keep_blocks: bool,
    /// Stop after N intervals (for scripts and tests).
    #[arg(long, value_name = "N", hide = true, value_parser = count)]
    pub count: Option<u64>,
}
