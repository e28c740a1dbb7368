//! Arguments of the commands on objects: `load`, `unload`, `attach`,
//! `detach`, and the `net`, `prog` and `map` groups.

use super::*;

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
/// under /run/netns), and takes them out of any firewall's chain; then
/// removes everything pinned under DIR, and DIR. What other tools attached
/// with its programs by links or tc filters is named, and left.
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
/// program at its tcx ingress or egress; with --tc, as a legacy tc filter).
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
  xdpctl attach lb/count ens5 --tcx ingress --after lb/from_netdev --expected-revision 7
  xdpctl attach lb/from_netdev ens5 --tc ingress --priority 1   (kernels before 6.6)")]
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

    /// Attach a sched_cls (tc) program as a legacy direct-action cls_bpf
    /// filter at DEV's clsact ingress or egress instead (`tc filter add
    /// ... bpf da`; a clsact qdisc is added if DEV has none), for kernels
    /// without tcx (before 6.6). Its record is the program pinned in its
    /// load directory as `links/tc_<hook>:<prog>:<prio>:<dev>@<netns
    /// inode>`: `unload` and `detach --tc` delete the filter.
    #[arg(long, value_enum, value_name = "HOOK", conflicts_with_all = ["mode", "replace", "netlink", "confirm_within", "tcx", "first", "last", "before", "after", "expected_revision"])]
    pub tc: Option<TcxHook>,

    /// Put the program into the libxdp dispatcher on DEV, beside the
    /// programs of xdp-loader, xdp-filter and other libxdp users (or make
    /// one), by libxdp's protocol: a new dispatcher with every program in
    /// run-priority order, swapped in atomically. The program runs as an
    /// freplace copy loaded from its load's object with the load's maps;
    /// `unload` takes it out. Needs a kernel that allows freplace (one in
    /// lockdown refuses it; nothing is changed then).
    #[arg(long, conflicts_with_all = ["replace", "netlink", "confirm_within", "tcx", "tc"])]
    pub dispatcher: bool,

    /// With --dispatcher: the run priority (lower runs first; libxdp's
    /// default is 50).
    #[arg(long, value_name = "N", requires = "dispatcher", conflicts_with_all = ["replace", "netlink", "confirm_within", "tcx", "tc"], default_value_t = crate::model::dispatcher::DEFAULT_PRIORITY)]
    pub run_priority: u32,

    /// With --dispatcher: the actions after which the next program of the
    /// dispatcher runs, comma-separated: pass, drop, tx, redirect, aborted
    /// (the firewall hands on what it passes).
    #[arg(
        long,
        value_name = "ACTIONS",
        requires = "dispatcher",
        conflicts_with_all = ["replace", "netlink", "confirm_within", "tcx", "tc"],
        default_value = "pass"
    )]
    pub chain_call: String,

    /// With --tc: the filter's priority, 1-65535 (lower runs first);
    /// refused if a cls_bpf filter holds it. Default: after every cls_bpf
    /// filter of the hook (the highest priority there + 1, or 1).
    #[arg(long, value_name = "N", requires = "tc", conflicts_with_all = ["tcx", "dispatcher"], value_parser = clap::value_parser!(u16).range(1..))]
    pub priority: Option<u16>,

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
/// with --tcx, xdpctl's tcx links off a hook; with --tc, xdpctl's tc
/// filters).
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
#[command(group(clap::ArgGroup::new("tcx_or_tc").args(["tcx", "tc"])))]
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

    /// Delete xdpctl's tc filters (`attach --tc`) at DEV's clsact ingress
    /// or egress instead of its XDP program.
    #[arg(long, value_enum, value_name = "HOOK", conflicts_with = "tcx")]
    pub tc: Option<TcxHook>,

    /// With --tcx or --tc: only the link or filter running this program.
    #[arg(long, value_name = "PROG", requires = "tcx_or_tc")]
    pub prog: Option<Handle>,
}

/// `net` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// Everything attached to network devices: XDP (mode, program, link or
    /// netlink, the link's pins wherever they are; the programs of a libxdp
    /// dispatcher with priority and chain actions; the program behind a
    /// firewall, `xdpctl chain`'s, on the line after it), tcx
    /// ingress/egress, tc cls_bpf filters (clsact, or the legacy ingress
    /// qdisc), plus the namespace's flow dissector and netfilter BPF links.
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
/// The firewall's rate limits (rate4, rate6) take a prefix and
/// {"pps", "burst", "bytes_per_sec", "burst_bytes", "per_prefix"} (fields
/// not given keep the prefix's limit; owner and the buckets are not
/// written): a limit of neither packets nor bytes, a prefix with host bits
/// (for `map delete` too), a rate beyond 10^9 pps or 10^12 bytes/s, a
/// burst beyond 2^32, a burst without its rate, per_prefix other than 0 or
/// 1, or a prefix of the other address family is refused, as apply refuses
/// it.
///
/// A port of the firewall's syn_ports has its SYNs answered with SYN
/// cookies from XDP: the host must set net.ipv4.tcp_syncookies=2 where the
/// listener is, which is checked first (in the namespaces of the load's
/// devices).
///
/// Example: xdpctl map update blocklist 203.0.113.5 1
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  xdpctl map update blocklist 203.0.113.5 1
  xdpctl map update udp_ports 9999 1
  xdpctl map update config 0 '{\"drop_icmp\":1}'
  xdpctl map update rate4 192.0.2.0/24 '{\"pps\":1000,\"burst\":100}'
  xdpctl map update syn_ports 443 1
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
    /// whose sum then reads what was written). Refused for a map that is
    /// not per-CPU.
    #[arg(long)]
    pub every_cpu: bool,
}
