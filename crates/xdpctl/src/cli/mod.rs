//! The command line, as data: clap derive types and the parsing of values
//! that needs no I/O. Doc comments are the help text.

pub mod complete;
#[cfg(test)]
mod docs;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::model::{
    guard::Cidr,
    handle::{Handle, MapReuse, bad_text, max_entries},
    xdp::XdpMode,
};
use clap_complete::engine::ArgValueCompleter;

const ENVIRONMENT: &str = "\
Environment:
  XDPCTL_BPFFS        the bpffs to use (as --bpffs)
  XDPCTL_MAX_ENTRIES  NAME=N[,NAME=N...]: sizes for every load (load, apply,
                      the agent) of the maps of those names an object has;
                      --max-entries wins, load --replace keeps its sizes";

const EXIT_STATUS: &str = "\
Exit status:
  0  success
  1  error (the message on stderr names the object, the reason and the fix)
  2  usage error (bad arguments)
  3  not found (map lookup or delete of a key that is not there)";

const GLOBAL_EXAMPLES: &str = "\
Examples:
  xdpctl load --pin /sys/fs/bpf/xdpfw      load and pin the built-in firewall
  xdpctl attach /sys/fs/bpf/xdpfw/xdp_fw ens5 --mode generic
  xdpctl net show ens5                     XDP + tcx + tc on ens5
  xdpctl prog show /sys/fs/bpf/xdpfw/xdp_fw
  xdpctl map show                          every map, with its pinned paths
  xdpctl detach ens5
  xdpctl -j map show | jq .                JSON for scripts
  xdpctl unload /sys/fs/bpf/xdpfw          remove what the load pinned";

/// The help heading of the options every command takes, listed after a
/// command's own.
pub const GLOBAL_OPTIONS: &str = "Global options";

/// The options every command takes.
#[derive(Debug, Args)]
pub struct Globals {
    /// Print JSON instead of a table (one document per command).
    #[arg(short, long, global = true, help_heading = GLOBAL_OPTIONS)]
    pub json: bool,

    /// Print indented JSON (implies --json).
    #[arg(short, long, global = true, help_heading = GLOBAL_OPTIONS)]
    pub pretty: bool,

    /// Root of the bpffs to use: relative pin paths are taken from here and
    /// shown objects are matched with the pins below it.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_OPTIONS,
        env = "XDPCTL_BPFFS",
        value_name = "DIR",
        value_parser = path_arg,
        default_value = pinfs::DEFAULT_ROOT
    )]
    pub bpffs: PathBuf,

    /// Never mount a bpffs. By default, when nothing is mounted at
    /// /sys/fs/bpf, a command that pins mounts one there (as bpftool does).
    #[arg(long, global = true, help_heading = GLOBAL_OPTIONS)]
    pub no_mount: bool,
}

/// The top level's text and settings, once for both structs below.
macro_rules! top_level {
    ($(#[$doc:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        /// Load, pin and inspect XDP programs and their maps.
        ///
        /// xdpctl loads BPF objects (its built-in XDP firewall or one you compiled)
        /// and pins their programs and maps under bpffs, so that later invocations
        /// can find and change them.
        #[derive(Debug, Parser)]
        #[command(
            name = "xdpctl",
            version,
            propagate_version = true,
            after_help = format!("{GLOBAL_EXAMPLES}\n\n{ENVIRONMENT}\n\n{EXIT_STATUS}"),
            max_term_width = 100
        )]
        $vis struct $name { $($body)* }
    };
}

top_level! {
    pub struct Cli {
        #[command(flatten)]
        pub globals: Globals,

        #[command(subcommand)]
        pub command: Command,
    }
}

top_level! {
    struct Top {
        #[command(flatten)]
        globals: Globals,
    }
}

/// The command line to parse with: [`Cli`]'s, but each subcommand's
/// arguments are made only when it is the one used (clap's `defer`). Making
/// every subcommand's took a third of a `net show`. Help, version and usage
/// errors are rendered from the whole [`Cli`] instead (main.rs): a listing
/// of the subcommands needs every one's text. A test checks the two trees
/// are the same.
#[cfg(test)]
pub fn parser() -> clap::Command {
    parser_with(|_| true)
}

/// [`parser`] with only the subcommands whose name is one of `args`: the
/// used one among them. clap copies the global options into every
/// subcommand it has, which cost `net show` a fifth of its time with all
/// of them. A line this tree does not parse (another subcommand's name was
/// taken for a value) is parsed again by the whole tree (main.rs), and a
/// line it parses, it parses as the whole tree does: the top level has no
/// positional argument a missing subcommand's name could become.
pub fn parser_for(args: &[std::ffi::OsString]) -> clap::Command {
    parser_with(|name| args.iter().skip(1).any(|a| a == name))
}

fn parser_with(wanted: impl Fn(&str) -> bool) -> clap::Command {
    use clap::{CommandFactory as _, Subcommand as _};
    type Make = fn(clap::Command) -> clap::Command;
    let leaf = |name: &'static str, make: Make| clap::Command::new(name).defer(make);
    // NB: a group's text is its variant's doc comment in `Command` (which
    // wins over its enum's): here after the enum's, and before, for the
    // listing of the top level.
    let group = |name: &'static str, about: &'static str, make: Make| {
        clap::Command::new(name)
            .about(about)
            .defer(make)
            .subcommand_required(true)
            .arg_required_else_help(true)
    };
    let subcommands = [
        leaf("load", LoadArgs::augment_args),
        leaf("unload", UnloadArgs::augment_args),
        leaf("attach", AttachArgs::augment_args),
        leaf("detach", DetachArgs::augment_args),
        group("net", NET_ABOUT, |c| {
            NetCommand::augment_subcommands(c)
                .about(NET_ABOUT)
                .long_about(None)
        }),
        group("prog", PROG_ABOUT, |c| {
            ProgCommand::augment_subcommands(c)
                .about(PROG_ABOUT)
                .long_about(None)
        }),
        group("map", MAP_ABOUT, |c| {
            MapCommand::augment_subcommands(c)
                .about(MAP_ABOUT)
                .long_about(None)
        }),
        leaf("stats", StatsArgs::augment_args),
        leaf("top", TopArgs::augment_args),
        leaf("capture", CaptureArgs::augment_args),
        leaf("guard", GuardArgs::augment_args),
        leaf("confirm", ConfirmArgs::augment_args),
        leaf("chain", ChainArgs::augment_args),
        leaf("apply", ApplyArgs::augment_args),
        leaf("save", SaveArgs::augment_args),
        leaf("agent", AgentArgs::augment_args),
        leaf("doctor", DoctorArgs::augment_args),
        leaf("completions", CompletionsArgs::augment_args),
    ];
    Top::command()
        .subcommands(subcommands.into_iter().filter(|c| wanted(c.get_name())))
        .subcommand_required(true)
        .arg_required_else_help(true)
}

// The groups' doc comments in `Command`, as clap shows them (without the
// final period).
const NET_ABOUT: &str = "Show what is attached to network devices: XDP, tcx and tc";
const PROG_ABOUT: &str = "Show programs, and run them on test packets";
const MAP_ABOUT: &str = "Show, dump and change maps";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    Load(LoadArgs),
    Unload(UnloadArgs),
    Attach(AttachArgs),
    Detach(DetachArgs),
    /// Show what is attached to network devices: XDP, tcx and tc.
    #[command(subcommand)]
    Net(NetCommand),
    /// Show programs, and run them on test packets.
    #[command(subcommand)]
    Prog(ProgCommand),
    /// Show, dump and change maps.
    #[command(subcommand)]
    Map(MapCommand),
    Stats(StatsArgs),
    Top(TopArgs),
    Capture(CaptureArgs),
    Guard(GuardArgs),
    Confirm(ConfirmArgs),
    Chain(ChainArgs),
    Apply(ApplyArgs),
    Save(SaveArgs),
    Agent(AgentArgs),
    Doctor(DoctorArgs),
    Completions(CompletionsArgs),
}

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
  xdpctl guard --threshold 10000 --dry-run")]
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

/// Keep a change made with --confirm-within.
///
/// attach, load --replace and apply with --confirm-within DURATION roll the
/// change back by themselves unless confirmed in time, even if the session
/// that made it is gone, like a router's "commit confirmed". Name the
/// device, with its --netns (attach), or the load directory (load --replace,
/// apply). One change at a time
/// waits for confirmation on a bpffs; a rollback acts only if the state is
/// still what the change made.
///
/// Example: xdpctl confirm ens5
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The device or load directory of the pending change.
    #[arg(value_name = "DEV|DIR", value_parser = name_arg)]
    pub target: String,
    /// The network namespace of the device.
    #[arg(long, value_name = "NAME|PATH", value_parser = name_arg, add = ArgValueCompleter::new(complete::namespaces))]
    pub netns: Option<String>,
}

/// Put an XDP program behind the firewall: what it passes goes on to it.
///
/// The firewall ends with a tail call through its one-slot program array
/// `chain`: the program put there runs next, with the packets the firewall
/// passed, on every device the firewall runs on. Nothing is detached, and
/// setting another program swaps it atomically (a packet meets the old one
/// or the new one). PROG is as for attach: a pinned path, a load directory
/// holding one XDP program, or an id; it must be an XDP program without
/// frags (a tail call's rule). With no PROG, shows the chain; --clear
/// empties it, and the firewall passes what it passes. `unload` of the
/// program's load takes it out of the chain first; `load --replace` of
/// either end keeps the chain. `net show` shows it after the firewall.
///
/// Example: xdpctl chain /sys/fs/bpf/xdpfw /sys/fs/bpf/lb
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The firewall's load directory (relative paths are under --bpffs).
    #[arg(value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub dir: PathBuf,
    /// The program to put behind it.
    #[arg(value_name = "PROG", conflicts_with = "clear", add = ArgValueCompleter::new(complete::progs))]
    pub next: Option<Handle>,
    /// Empty the chain: the firewall's passed packets pass.
    #[arg(long)]
    pub clear: bool,
}

/// Make the live state what a policy file says, changing only what differs.
///
/// The policy (YAML; the README and contrib/policy.example.yaml give the
/// schema, every field explained) names the load
/// directory and its object, the devices to attach it to, the firewall's
/// rules and guard's settings. apply reads the live state, prints the plan
/// (what it loads, attaches, detaches, and the entries it writes to and
/// removes from each rule map: every count, the first 100 entries of each),
/// and applies it: the rules through the
/// journal, so a crash midway is finished by the next xdpctl command. A
/// second apply of the same file changes nothing and says so. With
/// --dry-run it prints the plan only. With --confirm-within, a plan of rule
/// changes and new attachments is rolled back unless confirmed
/// (`xdpctl confirm DIR`); a plan that also loads, upgrades or detaches is
/// refused with it (apply that part first). Every device to attach must
/// exist before anything changes; --dry-run only warns about a missing
/// one, so a policy can be checked away from its host.
///
/// Example: xdpctl apply -f /etc/xdpctl/policy.yaml
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl apply -f policy.yaml --dry-run
  xdpctl apply -f policy.yaml
  xdpctl save > policy.yaml                 (the live state, as a policy)
  xdpctl apply -f policy.yaml --confirm-within 2m")]
pub struct ApplyArgs {
    /// The policy file.
    #[arg(short = 'f', long = "file", value_name = "POLICY", value_parser = path_arg)]
    pub file: PathBuf,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Roll the rule changes and new attachments back unless
    /// `xdpctl confirm DIR` runs within DURATION.
    #[arg(long, value_name = "DURATION", value_parser = at_least_a_second)]
    pub confirm_within: Option<std::time::Duration>,
}

/// Print the live state of a load as a policy (YAML; JSON with -j).
///
/// What is loaded in DIR, where it is attached, and what its rule maps
/// hold (guard's own blocks left out), in the format `apply -f` takes:
/// `save` on one host and `apply` on another gives the same state.
/// --hits adds each rule's counts as a comment on its line (packets and
/// last hit, or "never hit"), to review a list before pruning it; `apply`
/// ignores comments.
///
/// Example: xdpctl save xdpfw > policy.yaml
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The load directory; default: the only one under --bpffs.
    #[arg(value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub dir: Option<PathBuf>,
    /// Each rule's hits as a comment (YAML only).
    #[arg(long)]
    pub hits: bool,
}

/// Keep this host on a policy: apply it, watch it, report what drifts.
///
/// Applies POLICY, then re-applies it within 2 seconds of the file changing
/// (inotify) and every --resync; a change made by hand is reported, and
/// put back when the policy says `drift: correct`. Runs guard when the
/// policy has a guard section. Serves Prometheus metrics at /metrics and
/// health at /healthz on --listen. Stops cleanly on SIGTERM or SIGINT,
/// leaving the firewall as it is (a restart picks up without a gap).
///
/// Example: xdpctl agent --policy /etc/xdpctl/policy.yaml
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl agent --policy /etc/xdpctl/policy.yaml
  xdpctl agent --policy policy.yaml --listen 0.0.0.0:9470 --resync 10s
  curl -s localhost:9470/metrics")]
pub struct AgentArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE", value_parser = path_arg)]
    pub policy: PathBuf,
    /// Where to serve /metrics and /healthz.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9470", value_parser = listen_addr)]
    pub listen: std::net::SocketAddr,
    /// How often to compare the live state with the policy.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = at_least_a_second)]
    pub resync: std::time::Duration,
    /// Stop after N reconciles (for scripts and tests).
    #[arg(long, value_name = "N", hide = true, value_parser = count)]
    pub count: Option<u64>,
    /// Rules in /metrics: the N hit most since the last scrape.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = size)]
    pub top_rules: usize,
}

/// An address to listen on.
fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| {
        format!(
            "'{}' is not an address and port (like 127.0.0.1:9470)",
            s.escape_debug()
        )
    })
}

/// Settle the bpffs, repair xdpctl's leftovers, report what is not xdpctl's.
///
/// Like every command that changes something, doctor first finishes or
/// undoes any change a killed xdpctl left unfinished (saying which), rolls
/// back unconfirmed changes whose watcher died, and removes staging
/// directories nothing refers to. Then it checks every load directory
/// against its manifest, unpins links that are no longer attached, rebuilds
/// a firewall's indexes (CIDR, ports, blocklist filter) that are off
/// because a change was interrupted or another tool wrote the rule maps,
/// removes what older versions of xdpctl left, and lists pins that belong
/// to other tools (which it never touches). Exit status 1 if a problem
/// remains.
///
/// Example: xdpctl doctor
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl doctor
  xdpctl doctor --check          report only (after settling the journal)
  xdpctl -j doctor /sys/fs/bpf/xdpfw")]
pub struct DoctorArgs {
    /// Where to look: a directory on bpffs (default: the --bpffs root).
    #[arg(value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub dir: Option<PathBuf>,
    /// Report what needs repair without repairing it.
    #[arg(long)]
    pub check: bool,
}

/// A duration of at least `min` (and at most a year), in the one grammar
/// of durations ([`crate::model::duration`]).
fn duration_within(s: &str, min: std::time::Duration) -> Result<std::time::Duration, String> {
    crate::model::duration::parse_within(s, min)
}

/// Seconds between two reports or samples: 10ms to a year.
fn interval_secs(s: &str) -> Result<f64, String> {
    interval(s).map(|d| d.as_secs_f64())
}

/// An interval between two samples: 10ms to a year (shorter ones measure
/// only the timer).
fn interval(s: &str) -> Result<std::time::Duration, String> {
    duration_within(s, std::time::Duration::from_millis(10))
}

/// How long a change waits for confirmation, or a block lasts: 1s to a
/// year (no person confirms faster).
fn at_least_a_second(s: &str) -> Result<std::time::Duration, String> {
    duration_within(s, std::time::Duration::from_secs(1))
}

/// A packet rate: a finite number above zero, at most 10^12 pps.
fn rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{}' is not a rate in packets per second", s.escape_debug()))?;
    if !r.is_finite() || r <= 0.0 || r > 1e12 {
        return Err(format!(
            "'{s}': a rate must be a number above 0 and at most 1e12 pps"
        ));
    }
    Ok(r)
}

/// A count: 1 to 10^12.
fn count(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|n| (1..=1_000_000_000_000).contains(n))
        .ok_or_else(|| format!("'{}' is not a count from 1 to 10^12", s.escape_debug()))
}

/// A count that sizes something in memory: 1 to 10^8.
fn size(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=100_000_000).contains(n))
        .ok_or_else(|| format!("'{}' is not a number from 1 to 10^8", s.escape_debug()))
}

/// A prefix as a rule takes it: no host bits (the rule of `apply` and
/// `map update`).
fn rule_cidr(s: &str) -> Result<Cidr, String> {
    let c: Cidr = s.parse()?;
    c.check_rule()?;
    Ok(c)
}

/// A path argument.
fn path_arg(s: &str) -> Result<PathBuf, String> {
    match bad_text(s) {
        Some(why) => Err(format!("the path {:?} {why}", s)),
        None => Ok(PathBuf::from(s)),
    }
}

/// A device, namespace or file name argument.
/// `capture --max-rate`: packets a second, or none (`unlimited`).
#[derive(Clone, Copy, Debug)]
pub struct MaxRate(pub Option<u64>);

/// `capture --max-rate`: packets a second (1 to 10^9), or `unlimited`.
fn max_rate(s: &str) -> Result<MaxRate, String> {
    if s == "unlimited" {
        return Ok(MaxRate(None));
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| (1..=1_000_000_000).contains(n))
        .map(|n| MaxRate(Some(n)))
        .ok_or_else(|| {
            format!(
                "'{}' is not a rate from 1 to 10^9 packets a second, or 'unlimited'",
                s.escape_debug()
            )
        })
}

/// A pcap-filter expression: text without control characters, not empty.
fn expression(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("an empty filter expression: leave -f out to keep every packet".into());
    }
    name_arg(s)
}

fn name_arg(s: &str) -> Result<String, String> {
    match bad_text(s) {
        Some(why) => Err(format!("{:?} {why}", s)),
        None if s.len() > 4096 => Err(format!("a name of {} bytes is too long", s.len())),
        None => Ok(s.to_owned()),
    }
}

/// Print the shell completion script for SHELL.
///
/// Completion is dynamic: the script calls back into xdpctl, which offers
/// the maps, programs and load directories pinned under --bpffs, kernel
/// object names, the devices of the namespace given with --netns on the
/// same line, and namespace names. It only reads, never changes anything.
/// The scripts are also installed from completions/ by `make install`.
///
/// Example: xdpctl completions bash > /etc/bash_completion.d/xdpctl
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl completions bash > /etc/bash_completion.d/xdpctl
  xdpctl completions zsh > /usr/local/share/zsh/site-functions/_xdpctl
  xdpctl completions fish > ~/.config/fish/completions/xdpctl.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Shells with completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

impl Shell {
    /// Every shell, with the file its script is committed as.
    pub const FILES: [(Shell, &'static str); 5] = [
        (Shell::Bash, "xdpctl.bash"),
        (Shell::Zsh, "_xdpctl"),
        (Shell::Fish, "xdpctl.fish"),
        (Shell::Elvish, "xdpctl.elv"),
        (Shell::Powershell, "xdpctl.ps1"),
    ];

    /// clap_complete's name for it.
    pub const fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Elvish => "elvish",
            Shell::Powershell => "powershell",
        }
    }
}

/// Load a BPF object and pin its programs and maps.
///
/// Without OBJECT, loads xdpctl's built-in XDP firewall. Programs are pinned
/// at DIR/<program name>, maps at DIR/maps/<map name>, and DIR/manifest says
/// what was loaded: DIR is a load directory, which the commands that change
/// a load insist on. The pins appear all at once or not at all: a load that
/// fails (verifier, permissions, a bad --map) leaves nothing behind, not
/// even an empty directory, and one that is killed is cleaned up by the next
/// xdpctl command. A DIR that already holds pins, or lies inside another
/// load directory, is refused; --replace upgrades a load in place.
///
/// Maps the object pins by name (LIBBPF_PIN_BY_NAME, as xdp-filter's do)
/// are shared at <--bpffs>/<map name>, where libbpf pins them, as well as
/// in DIR/maps: a map already pinned there is reused if its type, sizes,
/// max entries and flags fit (else the load is refused, naming the field),
/// and unload removes such a pin with the last load that uses it, unless
/// another tool made it.
///
/// Example: xdpctl load --pin /sys/fs/bpf/xdpfw
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl load --pin /sys/fs/bpf/xdpfw
  xdpctl load ./my_xdp.o --pin my_xdp        (relative: under --bpffs)
  xdpctl load ./v2.o --pin /sys/fs/bpf/v2 --map blocklist=/sys/fs/bpf/xdpfw/maps/blocklist
  xdpctl load ./bad.o --pin bad --verifier-log /tmp/verifier.txt
  xdpctl load ./xdpfw-v2.o --pin /sys/fs/bpf/xdpfw --replace     (hitless upgrade)")]
pub struct LoadArgs {
    /// BPF object file (ELF, from `clang -target bpf`); default: the built-in firewall.
    #[arg(value_name = "OBJECT", value_parser = path_arg)]
    pub object: Option<PathBuf>,

    /// Directory to pin into; a relative path is taken under --bpffs.
    #[arg(long, value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub pin: PathBuf,

    /// Use the map pinned at PINNED_PATH for the object's map NAME instead of
    /// creating it (its type, key, value size, max entries and flags must
    /// match). May be repeated.
    #[arg(long = "map", value_name = "NAME=PINNED_PATH")]
    pub maps: Vec<MapReuse>,

    /// Give the object's map NAME room for N entries instead of its own
    /// max_entries (a blocklist of a million sources, say). May be
    /// repeated. `load --replace` keeps the sizes the load has unless given.
    /// XDPCTL_MAX_ENTRIES=NAME=N[,NAME=N...] gives defaults for every load
    /// (apply and agent included), for the maps of those names an object
    /// has; this option wins over it.
    #[arg(long = "max-entries", value_name = "NAME=N", value_parser = max_entries)]
    pub max_entries: Vec<(String, u32)>,

    /// Write the verifier's full log to FILE when a program is rejected.
    #[arg(long, value_name = "FILE", value_parser = path_arg)]
    pub verifier_log: Option<PathBuf>,

    /// Upgrade the load in DIR without a gap: reuse its compatible maps
    /// (state such as the blocklist carries over), switch every attachment
    /// made from DIR to the new program of the same name atomically, then
    /// swap the pins in one rename. A map whose definition changed is an
    /// error unless --reset-maps (the built-in firewall's own indexes,
    /// caches and control words start anew by themselves, rebuilt from the
    /// kept rules). Killed midway, the upgrade is finished by
    /// the next xdpctl command.
    #[arg(long)]
    pub replace: bool,

    /// With --replace: start maps whose definition changed empty instead of
    /// failing.
    #[arg(long, requires = "replace")]
    pub reset_maps: bool,

    /// With --replace: roll the upgrade back unless `xdpctl confirm DIR`
    /// runs within DURATION.
    #[arg(long, value_name = "DURATION", requires = "replace", value_parser = at_least_a_second)]
    pub confirm_within: Option<std::time::Duration>,
}

/// Detach what a load directory attached, then remove its pins.
///
/// First detaches every link pinned under DIR/links and every netlink
/// attachment of DIR's programs (in this network namespace and every one
/// under /run/netns), then removes everything pinned under DIR, and DIR.
/// Idempotent: a directory that does not exist is reported and is not an
/// error. Refuses the root of a bpffs mount, a directory that is not a load
/// directory, and a path through a symlink. Killed midway, the unload is
/// finished by the next xdpctl command.
///
/// Example: xdpctl unload /sys/fs/bpf/xdpfw
#[derive(Debug, Args)]
pub struct UnloadArgs {
    /// The directory a load pinned into; a relative path is taken under --bpffs.
    #[arg(value_name = "DIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
    pub dir: PathBuf,
}

/// Attach a pinned XDP program to a network device (or, with --tcx, a tc
/// program at its tcx ingress or egress).
///
/// The attachment outlives xdpctl: by default it is a bpf_link, which other
/// tools cannot silently replace, pinned at
/// <load dir>/links/<device>@<netns inode> when an xdpctl load directory
/// holds the program (`unload` detaches it), else (another tool's program)
/// at <bpffs root>/_xdpctl/links/<device>@<netns inode>; never in another
/// tool's directory. `detach` removes the pin and a `links/` left empty.
/// --netlink attaches the legacy way instead (visible to and removable by
/// `ip link set dev DEV xdp off`). The mode actually in effect is printed.
///
/// The default mode is native: XDP's point is to run in the driver, and a
/// silent fall back to generic mode would hide a several-fold slowdown. If
/// the kernel refuses native XDP, xdpctl fails and says why from the
/// device's own facts (its kind, its driver's xdp-features, its MTU: what
/// `xdpctl net explain DEV` reports) and what to do instead. Attached in
/// generic mode, it says when native would run there, or what generic mode
/// sees on a bridge, tunnel or macvlan. A device that already runs an XDP program is refused
/// unless --replace is given, which swaps the program atomically.
///
/// Example: xdpctl attach /sys/fs/bpf/xdpfw/xdp_fw ens5 --mode generic
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl attach /sys/fs/bpf/xdpfw/xdp_fw ens5 --mode generic
  xdpctl attach xdpfw eth1                      (a load dir with one XDP program)
  xdpctl attach id:42 veth0 --netns blue --netlink
  xdpctl attach xdpfw-v2/xdp_fw ens5 --mode generic --replace
  xdpctl attach lb/from_netdev ens5 --tcx ingress --first
  xdpctl attach lb/count ens5 --tcx ingress --after lb/from_netdev --expected-revision 7")]
pub struct AttachArgs {
    /// The program: a pinned path, a load directory holding one XDP
    /// program, or an id (42 or id:42). Relative paths are under --bpffs.
    #[arg(value_name = "PROG", add = ArgValueCompleter::new(complete::progs))]
    pub prog: Handle,

    /// The network device.
    #[arg(value_name = "DEV", value_parser = name_arg, add = ArgValueCompleter::new(complete::devices))]
    pub dev: String,

    /// Where the program runs: native (in the driver; `driver` and `drv`
    /// name it too), generic (after the kernel allocates an skb; any
    /// device), offload (on the NIC). Outputs call it by its first name.
    #[arg(long, value_enum, default_value_t = XdpMode::Native)]
    pub mode: XdpMode,

    /// The network namespace of DEV: a name from `ip netns list` or a path
    /// such as /proc/PID/ns/net. Entered with setns(2), so pins stay visible.
    #[arg(long, value_name = "NAME|PATH", value_parser = name_arg, add = ArgValueCompleter::new(complete::namespaces))]
    pub netns: Option<String>,

    /// Replace the XDP program DEV runs (same mode), atomically.
    #[arg(long)]
    pub replace: bool,

    /// Attach over netlink (IFLA_XDP) instead of with a pinned bpf_link.
    #[arg(long)]
    pub netlink: bool,

    /// Roll the attach back (detach, or put the replaced program back)
    /// unless `xdpctl confirm DEV` runs within DURATION, even if this
    /// session is gone by then.
    #[arg(long, value_name = "DURATION", value_parser = at_least_a_second)]
    pub confirm_within: Option<std::time::Duration>,

    /// Attach a sched_cls (tc) program at DEV's tcx ingress or egress
    /// instead, with a bpf_link pinned in its load directory
    /// (`links/tcx_<hook>:<prog>:<dev>@<netns inode>`), beside the
    /// programs other tools put there (Cilium's, bpftool's).
    #[arg(long, value_enum, value_name = "HOOK", conflicts_with_all = ["mode", "replace", "netlink", "confirm_within"])]
    pub tcx: Option<TcxHook>,

    /// With --tcx: run before every other program of the hook.
    #[arg(long, requires = "tcx", conflicts_with_all = ["last", "before", "after"])]
    pub first: bool,

    /// With --tcx: run after every other program of the hook (the
    /// default).
    #[arg(long, requires = "tcx", conflicts_with_all = ["before", "after"])]
    pub last: bool,

    /// With --tcx: run right before this program (a pin, an id, a name)
    /// of the hook.
    #[arg(long, value_name = "PROG", requires = "tcx", conflicts_with = "after")]
    pub before: Option<Handle>,

    /// With --tcx: run right after this program of the hook.
    #[arg(long, value_name = "PROG", requires = "tcx")]
    pub after: Option<Handle>,

    /// With --tcx: refuse, changing nothing, unless the hook is still at
    /// this revision (the kernel counts its changes; `net show` shows it,
    /// and `-j attach` and `-j detach --tcx` report it as `revision`): a
    /// concurrent change is refused, never overwritten.
    /// (1 or more: the kernel starts a hook at 1.)
    #[arg(long, value_name = "N", requires = "tcx", value_parser = clap::value_parser!(u64).range(1..))]
    pub expected_revision: Option<u64>,
}

/// A tcx hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TcxHook {
    /// Packets received.
    Ingress,
    /// Packets sent.
    Egress,
}

/// Take the XDP program off a network device, whatever attached it (or,
/// with --tcx, xdpctl's tcx links off a hook).
///
/// Removes our pinned links (and their pins, and a `links/` directory they
/// leave empty), links other tools made (their pins stay, named), and
/// netlink attachments in any mode; a link is told from a netlink
/// attachment by asking the device, also when another namespace has a
/// device with the same ifindex. A device with nothing attached is
/// reported and is not an error.
///
/// Example: xdpctl detach ens5
#[derive(Debug, Args)]
pub struct DetachArgs {
    /// The network device.
    #[arg(value_name = "DEV", value_parser = name_arg, add = ArgValueCompleter::new(complete::devices))]
    pub dev: String,

    /// The network namespace of DEV (a name or a path).
    #[arg(long, value_name = "NAME|PATH", value_parser = name_arg, add = ArgValueCompleter::new(complete::namespaces))]
    pub netns: Option<String>,

    /// Detach xdpctl's tcx links at DEV's ingress or egress instead of
    /// its XDP program.
    #[arg(long, value_enum, value_name = "HOOK")]
    pub tcx: Option<TcxHook>,

    /// With --tcx: only the link running this program.
    #[arg(long, value_name = "PROG", requires = "tcx")]
    pub prog: Option<Handle>,
}

/// `net` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// Everything attached to network devices: XDP (mode, program, link or
    /// netlink, the link's pins wherever they are; the programs of a libxdp
    /// dispatcher with priority and chain actions), tcx ingress/egress, tc
    /// cls_bpf filters (clsact, or the legacy ingress qdisc), plus the
    /// namespace's flow dissector and netfilter BPF links.
    ///
    /// Example: xdpctl net show ens5
    #[command(visible_alias = "list")]
    Show {
        /// Only this device (shown even with nothing attached).
        #[arg(value_name = "DEV", value_parser = name_arg, add = ArgValueCompleter::new(complete::devices))]
        dev: Option<String>,

        /// The network namespace to look in (a name or a path).
        #[arg(long, value_name = "NAME|PATH", value_parser = name_arg, add = ArgValueCompleter::new(complete::namespaces))]
        netns: Option<String>,
    },
    /// Whether native XDP can run on each device, and if not, why and what
    /// to do instead: from the device's kind (veth, bridge, vxlan,
    /// macvlan, ifb, bond, vlan, ...), its driver's XDP features (the
    /// netdev netlink family's `xdp-features`, Linux 6.3+), its MTU
    /// against the largest frame native XDP takes without frags, its
    /// queues, the programs it runs, and whether the BPF JIT is on.
    ///
    /// NATIVE is `yes`, `no`, `frags-only` (the MTU needs a program that
    /// declares frags, `SEC("xdp.frags")`: the built-in firewall does not),
    /// or `unknown` (a kernel that does not report XDP features). A
    /// refused `attach` gives the same reason. A device whose upper device
    /// (bridge, bond, macvlan, VLAN) runs an XDP program takes none in any
    /// mode; generic mode runs on every other device.
    ///
    /// Example: xdpctl net explain ens5
    #[command(after_help = "Examples:
  xdpctl net explain
  xdpctl net explain br0 --netns blue
  xdpctl -j net explain veth0 --frags")]
    Explain {
        /// Only this device.
        #[arg(value_name = "DEV", value_parser = name_arg, add = ArgValueCompleter::new(complete::devices))]
        dev: Option<String>,

        /// The network namespace to look in (a name or a path).
        #[arg(long, value_name = "NAME|PATH", value_parser = name_arg, add = ArgValueCompleter::new(complete::namespaces))]
        netns: Option<String>,

        /// Explain for a program that declares frags (multi-buffer
        /// frames; `SEC("xdp.frags")`).
        #[arg(long)]
        frags: bool,
    },
}

/// `prog` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProgCommand {
    Run(RunArgs),
    Top(ProgTopArgs),
    /// Show loaded programs as bpftool does, and who holds them.
    ///
    /// Id, type, name, load time (RFC 3339), translated and JIT-compiled
    /// sizes, memlock, tag, map ids, pinned paths and the processes that
    /// hold each program open (from /proc: bpftool's BPF iterator is refused
    /// on locked-down kernels). -j prints bpftool's field names (loaded_at,
    /// uid, bytes_xlated, jited, bytes_jited, bytes_memlock, map_ids, btf_id,
    /// run_time_ns, run_cnt, pinned, pids) and more (loaded, verified_insns).
    /// run_time_ns and run_cnt count only while statistics are on: see
    /// `xdpctl prog top`. The table leaves out map ids, tag, holders,
    /// memlock, sizes and load time, in that order, until it fits the
    /// terminal (80 columns when not one); -j has every field.
    ///
    /// Example: xdpctl prog show /sys/fs/bpf/xdpfw/xdp_fw
    #[command(visible_alias = "list")]
    Show {
        /// A program (pinned path, id or name); default: every program.
        #[arg(value_name = "PROG", add = ArgValueCompleter::new(complete::progs))]
        handle: Option<Handle>,
    },
}

/// Live run time per program: runs a second and nanoseconds per run.
///
/// Turns the kernel's statistics on (BPF_ENABLE_STATS) for as long as it
/// runs: they go off when it stops, however it stops (the kernel ties them
/// to an fd; the kernel.bpf_stats_enabled sysctl is never touched, and
/// another tool's statistics stay as they were). Refreshes in place in a
/// terminal; plain lines, or JSON lines with -j, otherwise. Without PROG,
/// only the programs that ran in the interval. CPU% is run time over wall
/// time (100% is one CPU); NS/RUN is the kernel's time in the program, not
/// counting the test harness `prog run` times too. Counting costs each run
/// two clock reads while on.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl prog top
  xdpctl prog top /sys/fs/bpf/xdpfw/xdp_fw --interval 2s
  xdpctl -j prog top --count 5 >> runtime.jsonl")]
pub struct ProgTopArgs {
    /// Programs to watch (pinned path, load directory, id or name); default: every program.
    #[arg(value_name = "PROG", add = ArgValueCompleter::new(complete::progs))]
    pub progs: Vec<Handle>,
    /// Time between refreshes (2s, 500ms; a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value_t = 1.0, value_parser = interval_secs)]
    pub interval: f64,
    /// Stop after N refreshes.
    #[arg(long, value_name = "N", value_parser = count)]
    pub count: Option<u64>,
    /// Show at most N programs, the busiest first.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = size)]
    pub limit: usize,
}

/// Run a program on a packet with BPF_PROG_TEST_RUN, without sending it.
///
/// Prints the verdict, the packet the program returns if it changed it,
/// and the average time per run. NB: the program runs for real, on its real
/// maps: counters such as the firewall's `stats` and `pps` count the packet
/// (REPEAT times).
///
/// Example: xdpctl prog run xdpfw --packet 'udp src=203.0.113.5 dst=10.0.0.1 dport=9999'
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl prog run xdpfw --packet 'udp src=203.0.113.5 dst=10.0.0.1 dport=9999'
  xdpctl prog run xdpfw --packet 'icmp6 src=2001:db8::1'
  xdpctl prog run xdpfw --packet 'vlan=100 tcp dport=22' --repeat 1000000
  xdpctl prog run /sys/fs/bpf/xdpfw/xdp_fw --data capture.pcap

Packet descriptions: optional vlan=ID tags (outermost first), one protocol
(udp, tcp, icmp, icmp6, ip, ip6, arp), then fields: src=, dst= (IPv4 or
IPv6), sport=, dport=, type= (ICMP type), ttl=, frag= (offset in bytes), mf
(more fragments), len= (payload bytes).")]
pub struct RunArgs {
    /// The program: pinned path, load directory, id or name.
    #[arg(value_name = "PROG", add = ArgValueCompleter::new(complete::progs))]
    pub prog: Handle,
    /// The packet, described (see below).
    #[arg(
        long,
        value_name = "SPEC",
        required_unless_present = "data",
        conflicts_with = "data"
    )]
    pub packet: Option<crate::model::packet::Spec>,
    /// The packet as raw bytes, or packets from a pcap or pcapng capture.
    #[arg(long, value_name = "FILE", value_parser = path_arg)]
    pub data: Option<PathBuf>,
    /// Run this many times (the time printed is the average).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub repeat: u32,
}

/// `map` subcommands.
///
/// MAP is a pinned path, an id (42 or id:42), or a name: a pin's file name
/// under --bpffs (`blocklist` finds /sys/fs/bpf/xdpfw/maps/blocklist), else
/// a loaded map's name. Keys and values are read and written by their BTF
/// types: IPv4/IPv6 addresses, CIDRs (LPM tries), ports (__be16), integers
/// (decimal or 0x hex), enums by name, structs as JSON objects, arrays as
/// JSON lists; unions show every member, anonymous members as their
/// parent's; global data (.rodata, .data, .bss) by variable name. Without
/// BTF, or with --raw, bytes as bpftool takes them ("203 0 113 5",
/// "hex cb 00 71 05"). Per-CPU values are shown CPU by CPU, and summed only
/// with --sum or when the value is a counter: a struct whose fields are
/// unsigned integers named like counters (packets, bytes, rx_packets,
/// drops, ...). A sum says so ("summed": true; "VALUE (sum of N CPUs)").
/// An update of a per-CPU map writes the value on CPU 0 and 0 on the
/// others, so that its sum reads what was written.
#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Show maps: id, type, name, key and value types, entries used / max,
    /// pinned paths.
    ///
    /// Example: xdpctl map show blocklist
    #[command(visible_alias = "list")]
    Show {
        /// A map (path, id or name); default: every map.
        #[arg(value_name = "MAP", add = ArgValueCompleter::new(complete::maps))]
        handle: Option<Handle>,
    },
    Dump(DumpArgs),
    /// Print the value of one key. A missing key prints "not found" on
    /// stderr (null with -j) and exits with status 3. In an LPM trie the
    /// key is a prefix, looked up as such: a longer prefix that only a
    /// shorter entry holds is not found (stderr names that entry).
    ///
    /// Example: xdpctl map lookup blocklist 203.0.113.5
    Lookup {
        /// The map.
        #[arg(value_name = "MAP", add = ArgValueCompleter::new(complete::maps))]
        map: Handle,
        /// The key, in its typed form.
        #[arg(value_name = "KEY", allow_hyphen_values = true)]
        key: String,
        /// Show a per-CPU value CPU by CPU, even a counter.
        #[arg(long, conflicts_with = "sum")]
        per_cpu: bool,
        /// Sum a per-CPU value over the CPUs (integers only).
        #[arg(long)]
        sum: bool,
        /// Keys and values as raw bytes, ignoring BTF.
        #[arg(long)]
        raw: bool,
    },
    Update(UpdateArgs),
    /// Delete one key. A missing key exits with status 3.
    ///
    /// Example: xdpctl map delete blocklist 203.0.113.5
    Delete {
        /// The map.
        #[arg(value_name = "MAP", add = ArgValueCompleter::new(complete::maps))]
        map: Handle,
        /// The key, in its typed form.
        #[arg(value_name = "KEY", allow_hyphen_values = true)]
        key: String,
        /// The key as raw bytes, ignoring BTF.
        #[arg(long)]
        raw: bool,
    },
    /// Delete every entry (arrays: set every value to zero).
    ///
    /// Example: xdpctl map clear pps
    Clear {
        /// The map.
        #[arg(value_name = "MAP", add = ArgValueCompleter::new(complete::maps))]
        map: Handle,
    },
}

/// Print every entry of a map, formatted by type.
///
/// Streamed with BPF_MAP_LOOKUP_BATCH (one element at a time for map types
/// without batch support), so memory stays bounded whatever the size;
/// --top and --sort-by value rank by the value (or a struct's first
/// integer field; per-CPU values by their sum). JSON entries carry the
/// typed key and value, their raw bytes, and for per-CPU maps every CPU's
/// value ("values"), so `map update --from-file` loads a dump back exactly.
/// Map types user space cannot list are described or refused with the
/// reason: program arrays list program ids and names, maps of maps their
/// inner map ids, queues and stacks their head (peeked, not taken), ring
/// buffers how many bytes wait to be read; a Bloom filter answers `map
/// lookup MAP VALUE` (maybe present, or exit status 3).
///
/// Example: xdpctl map dump pps --top 10
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The map.
    #[arg(value_name = "MAP", add = ArgValueCompleter::new(complete::maps))]
    pub map: Handle,
    /// Print at most N entries.
    #[arg(long, value_name = "N", value_parser = count)]
    pub limit: Option<u64>,
    /// Order by value, largest first.
    #[arg(long, value_enum, value_name = "FIELD")]
    pub sort_by: Option<SortBy>,
    /// Only the N entries with the largest values, largest first.
    #[arg(long, value_name = "N", value_parser = size)]
    pub top: Option<usize>,
    /// Show per-CPU values CPU by CPU, even counters.
    #[arg(long, conflicts_with = "sum")]
    pub per_cpu: bool,
    /// Sum per-CPU values over the CPUs (integers only).
    #[arg(long)]
    pub sum: bool,
    /// Keys and values as raw bytes, ignoring BTF.
    #[arg(long)]
    pub raw: bool,
}

/// What `map dump --sort-by` orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortBy {
    /// The value (a struct's first integer field), largest first.
    Value,
}

/// Set one key, or many from a file.
///
/// A struct given as a JSON object sets the fields it names, and the others
/// keep their values (a key not there yet: zeros), as global data's
/// variables do: '{"drop_icmp":1}' leaves drop_icmp6_echo as it is.
///
/// A per-CPU map's value is written on CPU 0, and 0 on the other CPUs (a
/// struct's fields not named keep their values on each), so that the sum
/// (`map lookup --sum`) reads what was written: `5` to a per-CPU counter
/// reads 5, not 5 times the CPUs. To set each CPU, give the JSON lines of
/// `map dump -j` with "values", one per CPU, to --from-file.
///
/// With --from-file, each line is `KEY VALUE` (`#` starts a comment, on
/// its own line or after a value) or a JSON object {"key": ..., "value":
/// ...}; the output of `map dump -j` (and of `map dump -j --raw`, whose
/// bytes are hex) is accepted as is. A line writes what the same update
/// would: a struct given in part keeps the fields it does not name; a key
/// given twice is one entry (the last line's value). The whole file is
/// checked before anything is written, errors name the line, and entries
/// are written with BPF_MAP_UPDATE_BATCH.
///
/// Example: xdpctl map update blocklist 203.0.113.5 1
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl map update blocklist 203.0.113.5 1
  xdpctl map update udp_ports 9999 1
  xdpctl map update config 0 '{\"drop_icmp\":1}'
  xdpctl map update blocklist --from-file blocked.txt
  xdpctl -j map dump blocklist > saved.json && xdpctl map update blocklist --from-file saved.json")]
pub struct UpdateArgs {
    /// The map.
    #[arg(value_name = "MAP", add = ArgValueCompleter::new(complete::maps))]
    pub map: Handle,
    /// The key, in its typed form.
    #[arg(
        value_name = "KEY",
        allow_hyphen_values = true,
        required_unless_present = "from_file"
    )]
    pub key: Option<String>,
    /// The value, in its typed form.
    #[arg(
        value_name = "VALUE",
        allow_hyphen_values = true,
        required_unless_present = "from_file"
    )]
    pub value: Option<String>,
    /// Read entries from FILE (- for stdin).
    #[arg(long, value_name = "FILE", value_parser = name_arg, conflicts_with_all = ["key", "value"])]
    pub from_file: Option<String>,
    /// Only change existing keys.
    #[arg(long, conflicts_with = "if_absent")]
    pub if_exists: bool,
    /// Only add new keys.
    #[arg(long)]
    pub if_absent: bool,
    /// Keys and values as raw bytes, ignoring BTF.
    #[arg(long)]
    pub raw: bool,
    /// For a per-CPU map: write the value on every CPU (flags and modes,
    /// such as xdp-filter's), not on CPU 0 with 0 on the others (counters,
    /// whose sum then reads what was written).
    #[arg(long)]
    pub every_cpu: bool,
}

impl Cli {
    /// What every command is given: the global options, validated.
    pub fn ctx(&self) -> crate::ctx::Ctx {
        let g = &self.globals;
        let format = crate::render::Format::of(g.json, g.pretty);
        crate::ctx::Ctx::new(format, g.bpffs.clone(), g.no_mount)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        parser().debug_assert();
    }

    /// Every command's help, by path, from a built tree.
    fn helps(mut cmd: clap::Command) -> Vec<(String, String)> {
        fn walk(cmd: &mut clap::Command, path: String, out: &mut Vec<(String, String)>) {
            out.push((path.clone(), cmd.render_long_help().to_string()));
            out.push((path.clone(), cmd.render_usage().to_string()));
            // NB: not clap's `help` subcommand, whose tree is a copy made
            // before the deferred parts are (`xdpctl help ...` is rendered
            // by the whole tree anyway).
            for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
                let p = format!("{path} {}", sub.get_name());
                walk(sub, p, out);
            }
        }
        cmd.build();
        let mut out = Vec::new();
        walk(&mut cmd, "xdpctl".into(), &mut out);
        out
    }

    #[test]
    fn the_deferred_parser_is_the_whole_cli() {
        let (whole, fast) = (helps(Cli::command()), helps(parser()));
        assert_eq!(whole.len(), fast.len());
        for (w, f) in whole.iter().zip(&fast) {
            assert_eq!(w, f);
        }
    }

    /// The tree made for one line parses it as the whole tree does, or
    /// not at all (then main.rs parses it with the whole tree).
    #[test]
    fn the_tree_for_a_line_parses_it_as_the_whole_cli() {
        for line in [
            "xdpctl net show",
            "xdpctl -j net show v0 --netns n1",
            "xdpctl --bpffs net net show",
            "xdpctl --bpffs load net show",
            "xdpctl map update blocklist 10.0.0.1 1",
            "xdpctl load --pin fw",
            "xdpctl attach fw/xdp_fw v0 --mode generic",
            "xdpctl prog run fw/xdp_fw udp,dport=9",
            "xdpctl net show --no-such-flag",
            "xdpctl completions bash",
            "xdpctl doctor --check",
        ] {
            let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let whole = <Cli as clap::Parser>::try_parse_from(&args).map(|c| format!("{c:?}"));
            let fast = parser_for(&args)
                .try_get_matches_from(&args)
                .ok()
                .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m).ok())
                .map(|c| format!("{c:?}"));
            match (whole, fast) {
                (Ok(whole), Some(fast)) => assert_eq!(whole, fast, "{line}"),
                (Err(_), None) => {}
                (Ok(_), None) => panic!("{line}: parsed by the whole tree only"),
                (Err(_), Some(_)) => panic!("{line}: parsed by its tree only"),
            }
        }
    }

    #[test]
    fn handles_parse() {
        assert_eq!("42".parse::<Handle>(), Ok(Handle::Id(42)));
        assert_eq!("id:7".parse::<Handle>(), Ok(Handle::Id(7)));
        assert_eq!(
            "/sys/fs/bpf/x".parse::<Handle>(),
            Ok(Handle::Path("/sys/fs/bpf/x".into()))
        );
        assert_eq!(
            "blocklist".parse::<Handle>(),
            Ok(Handle::Name("blocklist".into()))
        );
        assert_eq!(
            "fw/maps/pps".parse::<Handle>(),
            Ok(Handle::Path("fw/maps/pps".into()))
        );
        assert!("id:x".parse::<Handle>().is_err());
        assert!("99999999999".parse::<Handle>().is_err());
    }

    #[test]
    fn durations_and_cidrs_parse() {
        assert_eq!(interval("10m"), Ok(std::time::Duration::from_secs(600)));
        assert_eq!(interval("500ms"), Ok(std::time::Duration::from_millis(500)));
        assert_eq!(interval("3"), Ok(std::time::Duration::from_secs(3)));
        assert!(interval("0s").is_err());
        assert!(interval("5x").unwrap_err().contains("is not a duration"));
        assert_eq!(
            interval("2d"),
            Ok(std::time::Duration::from_secs(2 * 86400))
        );
        for huge in ["99999999999999999999999h", "1e300", "inf", "NaN", "8761h"] {
            assert!(interval(huge).is_err(), "{huge}");
        }
        assert!(interval("0.0000000001").unwrap_err().contains("too short"));
        assert!(at_least_a_second("500ms").is_err());
        for bad in ["NaN", "inf", "-1", "0", "1e13", ""] {
            assert!(rate(bad).is_err(), "{bad}");
        }
        assert_eq!(rate("5000"), Ok(5000.0));
        assert!(count("0").is_err() && count("-1").is_err() && count("1").is_ok());
        assert!(bad_text("a\nb").is_some() && bad_text("").is_some() && bad_text("ok").is_none());
        assert!(path_arg("/sys/fs/bpf/x\u{1}y").is_err());
        assert_eq!("10.0.0.1".parse::<Cidr>().unwrap().len, 32);
        assert_eq!("2001:db8::/32".parse::<Cidr>().unwrap().len, 32);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }

    #[test]
    fn map_reuse_parses() {
        assert_eq!(
            "blocklist=/sys/fs/bpf/a/maps/blocklist".parse::<MapReuse>(),
            Ok(MapReuse {
                name: "blocklist".into(),
                path: "/sys/fs/bpf/a/maps/blocklist".into()
            })
        );
        assert!("blocklist".parse::<MapReuse>().is_err());
        assert!("=x".parse::<MapReuse>().is_err());
    }
}
