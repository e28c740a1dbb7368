//! The command line, as data: clap derive types and the parsing of values
//! that needs no I/O. Doc comments are the help text.

mod change;
pub mod complete;
#[cfg(test)]
mod docs;
mod objects;
mod observe;
mod values;

pub use change::*;
pub use objects::*;
pub use observe::*;
use values::*;

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
    // (name, group's text or none for a leaf, maker): the Commands are
    // made for the wanted names only (an array of all eighteen made a
    // 16 KB stack frame, five pages touched as every command started).
    let subcommands: [(&'static str, Option<&'static str>, Make); 18] = [
        ("load", None, LoadArgs::augment_args),
        ("unload", None, UnloadArgs::augment_args),
        ("attach", None, AttachArgs::augment_args),
        ("detach", None, DetachArgs::augment_args),
        // NB: a group's text is its variant's doc comment in `Command`
        // (which wins over its enum's): here after the enum's, and
        // before, for the listing of the top level.
        ("net", Some(NET_ABOUT), |c| {
            NetCommand::augment_subcommands(c)
                .about(NET_ABOUT)
                .long_about(None)
        }),
        ("prog", Some(PROG_ABOUT), |c| {
            ProgCommand::augment_subcommands(c)
                .about(PROG_ABOUT)
                .long_about(None)
        }),
        ("map", Some(MAP_ABOUT), |c| {
            MapCommand::augment_subcommands(c)
                .about(MAP_ABOUT)
                .long_about(None)
        }),
        ("stats", None, StatsArgs::augment_args),
        ("top", None, TopArgs::augment_args),
        ("capture", None, CaptureArgs::augment_args),
        ("guard", None, GuardArgs::augment_args),
        ("confirm", None, ConfirmArgs::augment_args),
        ("chain", None, ChainArgs::augment_args),
        ("apply", None, ApplyArgs::augment_args),
        ("save", None, SaveArgs::augment_args),
        ("agent", None, AgentArgs::augment_args),
        ("doctor", None, DoctorArgs::augment_args),
        ("completions", None, CompletionsArgs::augment_args),
    ];
    let made = subcommands
        .into_iter()
        .filter(|(name, _, _)| wanted(name))
        .map(|(name, about, make)| match about {
            None => clap::Command::new(name).defer(make),
            Some(about) => clap::Command::new(name)
                .about(about)
                .defer(make)
                .subcommand_required(true)
                .arg_required_else_help(true),
        });
    Top::command()
        .subcommands(made)
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
