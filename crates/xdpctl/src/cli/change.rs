//! Arguments of the commands that change or check the whole state:
//! `confirm`, `chain`, `apply`, `save`, `agent`, `doctor`.

use super::*;

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
/// either end keeps the chain. A loop (a program whose own chain leads
/// back) is refused. `net show` shows it after the firewall; a policy
/// names it with `chain:`.
///
/// Example: xdpctl chain /sys/fs/bpf/xdpfw /sys/fs/bpf/lb
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// The firewall's load directory (relative paths are under --bpffs).
    #[arg(value_name = "FWDIR", value_parser = path_arg, add = ArgValueCompleter::new(complete::dirs))]
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
/// directory and its object, the devices to attach it to, its tc programs
/// at tcx hooks (`tcx`) and as tc filters (`tc`, with priorities), the
/// program behind the firewall (`chain`), the firewall's rules and guard's
/// settings (`tcx`, `tc` or `chain` left out: left as they are). apply reads the live state, prints the plan
/// (what it loads, attaches, detaches, and the entries it writes to and
/// removes from each rule map: every count, the first 100 entries of each),
/// and applies it: the rules through the
/// journal, so a crash midway is finished by the next xdpctl command. A
/// second apply of the same file changes nothing and says so. With
/// --dry-run it prints the plan only. With --confirm-within, a plan of rule
/// changes and new attachments is rolled back unless confirmed
/// (`xdpctl confirm DIR`); a plan that also loads, upgrades or detaches is
/// refused with it (apply that part first). Every device to attach must
/// exist before anything changes, and take native XDP if its mode is
/// native (`xdpctl net explain` tells); --dry-run only warns about a
/// device that fails this, so a policy can be checked away from its host.
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
/// What is loaded in DIR, where it is attached (XDP, its tcx links in run
/// order, its tc filters with their priorities), the program behind it (by
/// a pin), and what its rule maps
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
/// put back when the policy says `drift: correct`. A policy the host
/// refuses (SYN cookies where tcp_syncookies is not 2) is tried again at
/// every resync, the last good one kept meanwhile. Runs guard when the
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
