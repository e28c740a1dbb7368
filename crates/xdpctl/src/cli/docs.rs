//! The generated files under `man/` and `completions/`: made from the clap
//! definition, checked in, and checked here. `make docs` (that is,
//! `XDPCTL_BLESS=1 cargo test -p xdpctl docs`) refreshes them.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command, CommandFactory};

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

/// The ENVIRONMENT section: variable, what it does.
const ENVIRONMENT: [(&str, &str); 4] = [
    (
        "XDPCTL_BPFFS",
        "The root of the bpffs to use, as --bpffs (which wins when both are given). Default: /sys/fs/bpf.",
    ),
    (
        "XDPCTL_COMPLETE",
        "Set by the shell completion scripts when they call xdpctl back for the candidates of a word (see xdpctl-completions(1)); not for use by hand.",
    ),
    (
        "XDPCTL_FAILPOINT",
        "For tests only: N makes xdpctl kill itself right before its N-th state-changing system call, to check that the next command finishes or undoes what it left (see \"Crash safety\" in the README).",
    ),
    (
        "XDPCTL_FAILPOINT_WATCHER",
        "For tests only: the same crash point for the watcher that rolls back a change made with --confirm-within.",
    ),
];

/// The FILES section: path (`{X}` in italics, the rest in bold), what it is.
const FILES: [(&str, &str); 7] = [
    (
        "/sys/fs/bpf",
        "The default bpffs (--bpffs, XDPCTL_BPFFS). A command that pins mounts a bpffs there when nothing is mounted, unless --no-mount.",
    ),
    (
        "{DIR}/manifest",
        "The manifest of a load directory DIR (what load --pin DIR made): a pinned array map holding JSON that names the object, its programs and maps with their ids and shapes, and a generation. Commands that change a load work on load directories only.",
    ),
    (
        "{DIR}/{PROGRAM}",
        "A program of the load, pinned under its name.",
    ),
    (
        "{DIR}/maps/",
        "The maps of the load, pinned under their names (global data such as .rodata as _rodata).",
    ),
    (
        "{DIR}/links/{DEV}@{NETNS_INODE}",
        "The bpf_link attach made for device DEV in the network namespace with inode NETNS_INODE; detach and unload remove it.",
    ),
    (
        "{DIR}/guard",
        "The blocks guard made, so that a restart picks up those not yet expired.",
    ),
    (
        "{ROOT}/_xdpctl/",
        "xdpctl's state directory at the root of a bpffs it changes: made when a change needs it, removed when empty, left out of listings (doctor shows it). It holds:",
    ),
];

/// What `_xdpctl/` holds.
const STATE_FILES: [(&str, &str); 5] = [
    (
        "journal/",
        "records of changes under way, which the next command finishes or undoes if xdpctl was killed;",
    ),
    (
        "pending/",
        "changes made with --confirm-within that wait for xdpctl confirm;",
    ),
    ("stage/", "the pins of a load or upgrade being staged;"),
    ("trash/", "a load being removed by unload;"),
    (
        "rollback/",
        "the old pins of an upgrade that waits for confirmation.",
    ),
];

/// `text` escaped for a roff text line: hyphens as `\-` and quotes as
/// their ASCII glyphs, so that what is shown copies and pastes as typed.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\e"),
            '-' => out.push_str(r"\-"),
            '\'' => out.push_str(r"\*(Aq"),
            '`' => out.push_str(r"\(ga"),
            '~' => out.push_str(r"\(ti"),
            '^' => out.push_str(r"\(ha"),
            c => out.push(c),
        }
    }
    if out.starts_with('.') {
        out.insert_str(0, r"\&");
    }
    out
}

/// A FILES path: `{X}` in italics, the rest in bold.
fn file_tag(path: &str) -> String {
    let mut out = String::new();
    for (i, part) in path.split(['{', '}']).enumerate() {
        if !part.is_empty() {
            let font = if i % 2 == 1 { 'I' } else { 'B' };
            out.push_str(&format!(r"\f{font}{}\fR", esc(part)));
        }
    }
    out
}

/// The after-help of `cmd` in blocks (separated by blank lines): the lines
/// of its `Examples:` block, and its other blocks but `Exit status:`
/// (which has a section of its own).
fn after_help(cmd: &Command) -> (Vec<String>, Vec<String>) {
    let after = cmd
        .get_after_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    let (mut examples, mut prose) = (Vec::new(), Vec::new());
    for block in after.split("\n\n") {
        let lines: Vec<&str> = block
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        match lines.split_first() {
            Some((&"Examples:", rest)) => examples.extend(rest.iter().map(|l| (*l).to_owned())),
            Some((first, _)) if first.starts_with("Exit status:") => {}
            Some(_) => prose.push(lines.join(" ")),
            None => {}
        }
    }
    (examples, prose)
}

/// The paragraphs of `cmd`'s long help, without its `Example:` line.
fn about(cmd: &Command) -> Vec<String> {
    cmd.get_long_about()
        .or(cmd.get_about())
        .map(ToString::to_string)
        .unwrap_or_default()
        .split("\n\n")
        .map(|p| p.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty() && !p.starts_with("Example: "))
        .collect()
}

/// Examples of a command: its "Example:" line and the lines of the
/// "Examples:" block of its after-help; for a group (map, net, prog), its
/// subcommands' examples.
fn examples(cmd: &Command) -> Vec<String> {
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut all: Vec<String> = about
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Example: "))
        .map(str::to_owned)
        .collect();
    for e in after_help(cmd).0 {
        if !all.contains(&e) {
            all.push(e);
        }
    }
    if all.is_empty() {
        return cmd.get_subcommands().flat_map(examples).collect();
    }
    all
}

/// One item of a SYNOPSIS: `[--mode MODE]`, `--pin DIR`, `[-j|--json]`,
/// `[DIR]`, kept on one line.
fn synopsis_item(arg: &Arg) -> String {
    let mut item = match (arg.get_short(), arg.get_long()) {
        (Some(s), Some(l)) => format!(r"\fB\-{s}\fR|\fB\-\-{}\fR", esc(l)),
        (Some(s), None) => format!(r"\fB\-{s}\fR"),
        (None, Some(l)) => format!(r"\fB\-\-{}\fR", esc(l)),
        (None, None) => String::new(),
    };
    let takes_values = arg.get_num_args().is_some_and(|n| n.takes_values());
    if takes_values {
        let names: Vec<String> = match arg.get_value_names() {
            Some(names) => names.iter().map(|n| esc(n)).collect(),
            None => vec![esc(&arg.get_id().as_str().to_uppercase())],
        };
        let values = names
            .iter()
            .map(|n| format!(r"\fI{n}\fR"))
            .collect::<Vec<_>>()
            .join(r"\ ");
        if item.is_empty() {
            item = values;
        } else {
            item = format!(r"{item}\ {values}");
        }
    }
    let repeated = matches!(arg.get_action(), ArgAction::Append | ArgAction::Count)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    let mut item = if arg.is_required_set() {
        item
    } else {
        format!("[{item}]")
    };
    if repeated {
        item.push_str(r"...\&");
    }
    item
}

/// SYNOPSIS: the command's own options first, then those under a heading
/// (the global options), then its arguments, each option with its value.
fn synopsis(cmd: &Command) -> String {
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name());
    let mut out = format!(".SH SYNOPSIS\n.SY \"{}\"\n", esc(name));
    let options: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .collect();
    let mut headings: Vec<&str> = Vec::new();
    for h in options.iter().filter_map(|a| a.get_help_heading()) {
        if !headings.contains(&h) {
            headings.push(h);
        }
    }
    let own = options.iter().filter(|a| a.get_help_heading().is_none());
    let rest = headings.iter().flat_map(|h| {
        options
            .iter()
            .filter(move |a| a.get_help_heading() == Some(*h))
    });
    for arg in own.chain(rest) {
        out.push_str(&synopsis_item(arg));
        out.push('\n');
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        out.push_str(&synopsis_item(arg));
        out.push('\n');
    }
    if cmd.has_subcommands() {
        out.push_str("\\fIcommand\\fR\n");
    }
    out.push_str(".YS\n");
    out
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
    // NB: hyphenation would break the names these pages are full of
    // (xdpctl-map-dump, bpf_link, --confirm-within) where a reader copies
    // them; .YS restores the hyphenation mode from HY, hence both.
    out.extend(b".nh\n.nr HY 0\n.ad l\n");
    man.render_name_section(&mut out).unwrap();
    let mut text = synopsis(cmd);

    text.push_str(".SH DESCRIPTION\n");
    let (_, prose) = after_help(cmd);
    for (i, paragraph) in about(cmd).iter().chain(&prose).enumerate() {
        if i > 0 {
            text.push_str(".PP\n");
        }
        text.push_str(&esc(paragraph));
        text.push('\n');
    }
    out.extend(text.into_bytes());

    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out).unwrap();
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out).unwrap();
    }

    let mut text = String::new();
    let examples = examples(cmd);
    if !examples.is_empty() {
        // NB: no-fill, so that each command is one line, as it is typed:
        // never reflowed, never hyphenated.
        text.push_str(".SH EXAMPLES\n.EX\n");
        for e in &examples {
            text.push_str(&esc(e));
            text.push('\n');
        }
        text.push_str(".EE\n");
    }
    text.push_str(".SH ENVIRONMENT\n");
    for (var, what) in ENVIRONMENT {
        text.push_str(&format!(".TP\n.B {var}\n{}\n", esc(what)));
    }
    text.push_str(".SH FILES\n");
    for (path, what) in FILES {
        text.push_str(&format!(".TP\n{}\n{}\n", file_tag(path), esc(what)));
    }
    text.push_str(".RS\n");
    for (path, what) in STATE_FILES {
        text.push_str(&format!(".TP\n{}\n{}\n", file_tag(path), esc(what)));
    }
    text.push_str(".RE\n");
    text.push_str(".SH \"EXIT STATUS\"\n");
    for (code, what) in EXIT_STATUS {
        text.push_str(&format!(".TP\n.B {code}\n{}\n", esc(what)));
    }
    text.push_str(".SH \"SEE ALSO\"\n");
    let mut see: Vec<String> = all
        .iter()
        .filter(|p| **p != name)
        .map(|p| format!("{p}(1)"))
        .collect();
    see.extend(["bpftool(8)", "ip-link(8)", "tc(8)"].map(String::from));
    text.push_str(&esc(&see.join(", ")));
    text.push('\n');
    out.extend(text.into_bytes());
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
fn every_page_has_its_sections_once() {
    for (name, page) in man_pages() {
        let text = String::from_utf8(page).unwrap();
        for section in [
            ".SH SYNOPSIS",
            ".SH EXAMPLES",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH \"EXIT STATUS\"",
        ] {
            let n = text.lines().filter(|l| *l == section).count();
            assert_eq!(n, 1, "{name}: `{section}` {n} times");
        }
        assert!(
            !text.contains("Exit status:"),
            "{name}: the exit status is also in another section"
        );
        let examples = text.split_once(".SH EXAMPLES\n.EX\n").map(|(_, e)| e);
        assert!(
            examples.is_some_and(|e| e.contains("\n.EE\n")),
            "{name}: EXAMPLES are not one no-fill block"
        );
    }
}

#[test]
fn synopsis_shows_option_values() {
    let pages = man_pages();
    let page = |name: &str| {
        let (_, page) = pages.iter().find(|(n, _)| n == name).unwrap();
        let text = String::from_utf8(page.clone()).unwrap();
        let (_, synopsis) = text.split_once(".SH SYNOPSIS\n").unwrap();
        synopsis.split_once(".YS\n").unwrap().0.to_owned()
    };
    let attach = page("xdpctl-attach.1");
    for item in [
        r"[\fB\-\-mode\fR\ \fIMODE\fR]",
        r"[\fB\-\-netns\fR\ \fINAME|PATH\fR]",
        r"[\fB\-\-confirm\-within\fR\ \fIDURATION\fR]",
        r"[\fB\-\-bpffs\fR\ \fIDIR\fR]",
        r"[\fB\-j\fR|\fB\-\-json\fR]",
        r"\fIPROG\fR",
    ] {
        assert!(
            attach.contains(item),
            "attach's SYNOPSIS lacks {item}:\n{attach}"
        );
    }
    // The command's own options come before the global ones.
    assert!(attach.find("mode") < attach.find("bpffs"), "{attach}");
    let load = page("xdpctl-load.1");
    assert!(
        load.contains("\n\\fB\\-\\-pin\\fR\\ \\fIDIR\\fR\n")
            && load.contains(r"[\fB\-\-map\fR\ \fINAME=PINNED_PATH\fR]...\&"),
        "load's SYNOPSIS: {load}"
    );
}
