//! The generated files under `man/` and `completions/`: made from the clap
//! definition, checked in, and checked here. `make docs` (that is,
//! `XDPCTL_BLESS=1 cargo test -p xdpctl docs`) refreshes them.

use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use roff::{Roff, bold, roman};

use crate::cli::{Cli, Shell};

const EXIT_STATUS: [(&str, &str); 4] = [
    ("0", "Success."),
    (
        "1",
        "Error; the message on standard error names the object, the reason and, where there is one, the fix.",
    ),
    ("2", "Usage error: bad arguments."),
    (
        "3",
        "Not found: map lookup or delete of a key that is not there.",
    ),
];

/// The workflow shown on the main page.
const WORKFLOW: &[&str] = &[
    "xdpctl load --pin /sys/fs/bpf/xdpfw",
    "xdpctl attach /sys/fs/bpf/xdpfw/xdp_fw ens5 --mode generic",
    "xdpctl net show ens5",
    "xdpctl map update blocklist 203.0.113.5 1",
    "xdpctl map update config 0 '{\"drop_icmp\":1}'",
    "xdpctl map dump pps --top 10",
    "xdpctl detach ens5",
    "xdpctl unload /sys/fs/bpf/xdpfw",
];

/// Examples of a command: the lines after "Examples:" in its after-help,
/// else its "Example:" line.
fn examples(cmd: &Command) -> Vec<String> {
    if cmd.get_bin_name() == Some("xdpctl") {
        return WORKFLOW.iter().map(|s| (*s).to_owned()).collect();
    }
    let after = cmd
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    if let Some((_, rest)) = after.split_once("Examples:") {
        return rest
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(ToString::to_string)
        .unwrap_or_default();
    let own: Vec<String> = about
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Example: "))
        .map(str::to_owned)
        .collect();
    if !own.is_empty() {
        return own;
    }
    // A group (map, net, prog): its subcommands' examples.
    cmd.get_subcommands().flat_map(examples).collect()
}

fn page(cmd: &Command, all: &[String]) -> Vec<u8> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section("1")
        .source(format!("xdpctl {}", env!("CARGO_PKG_VERSION")))
        .manual("xdpctl manual");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out).unwrap();
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out).unwrap();
    }

    let mut roff = Roff::new();
    let examples = examples(cmd);
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for e in &examples {
            roff.control("TP", [] as [&str; 0]);
            roff.text([roman(e.as_str())]);
        }
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in EXIT_STATUS {
        roff.control("TP", [] as [&str; 0]);
        roff.text([bold(code)]);
        roff.text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see: Vec<String> = all
        .iter()
        .filter(|p| **p != name)
        .map(|p| format!("{p}(1)"))
        .collect();
    see.extend(["bpftool(8)", "ip-link(8)", "tc(8)"].map(String::from));
    roff.text([roman(see.join(", "))]);
    out.extend(roff.render().into_bytes());
    man.render_version_section(&mut out).unwrap();
    out
}

/// Every man page, by file name.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    fn walk(cmd: &Command, out: &mut Vec<Command>) {
        out.push(cmd.clone());
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            walk(sub, out);
        }
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut cmds = Vec::new();
    walk(&cmd, &mut cmds);
    let names: Vec<String> = cmds
        .iter()
        .map(|c| c.get_display_name().unwrap_or(c.get_name()).to_owned())
        .collect();
    cmds.iter()
        .zip(&names)
        .map(|(c, n)| (format!("{n}.1"), page(c, &names)))
        .collect()
}

/// Every completion script, by file name.
pub fn completions() -> Vec<(String, Vec<u8>)> {
    Shell::FILES
        .iter()
        .map(|(shell, file)| {
            let mut buf = Vec::new();
            crate::completion_script(*shell, &mut buf).unwrap();
            ((*file).to_owned(), buf)
        })
        .collect()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compares (or, with XDPCTL_BLESS=1, writes) generated files in `dir`;
/// files there that nothing generates are stale too.
fn check(dir: &str, files: Vec<(String, Vec<u8>)>, keep: &[&str]) {
    let dir = repo().join(dir);
    let bless = std::env::var_os("XDPCTL_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, content) in &files {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(content.as_slice()) {
            stale.push(name.clone());
        }
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if keep.contains(&name.as_str()) || files.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if bless {
            std::fs::remove_file(dir.join(&name)).unwrap();
        } else {
            stale.push(format!("{name} (no longer generated)"));
        }
    }
    assert!(
        stale.is_empty(),
        "{} is out of date: {}; refresh with `make docs` (XDPCTL_BLESS=1 cargo test -p xdpctl docs)",
        dir.display(),
        stale.join(", ")
    );
}

#[test]
fn man_pages_are_current() {
    check("man", man_pages(), &["README.md"]);
}

#[test]
fn completions_are_current() {
    check("completions", completions(), &["README.md"]);
}

#[test]
fn every_subcommand_page_has_examples() {
    for (name, page) in man_pages() {
        let text = String::from_utf8(page).unwrap();
        assert!(
            text.contains(".SH EXAMPLES"),
            "{name} has no EXAMPLES section"
        );
        assert!(
            text.contains(".SH \"EXIT STATUS\"") || text.contains(".SH EXIT STATUS"),
            "{name}: no EXIT STATUS"
        );
    }
}
