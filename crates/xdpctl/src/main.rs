//! xdpctl: load, pin, attach and inspect XDP programs and their maps.
//!
//! This file only parses the command line, runs the command and turns the
//! outcome into an exit code: 0 success, 1 error, 2 usage (clap's own),
//! 3 not found (a map key).

#![cfg_attr(not(test), no_main)]

mod cli;
mod cmd;
mod ctx;
mod kernel;
mod layers;
mod model;
mod ops;
mod render;
#[cfg(target_feature = "crt-static")]
mod static_pcap;

use std::io;

use crate::cli::Command;

fn run(cli: &cli::Cli) -> anyhow::Result<()> {
    let ctx = cli.ctx();
    // Every command first settles a change a killed xdpctl left unfinished
    // on the bpffs it works on (commands that change something do so under
    // the lock, as they start).
    if !matches!(cli.command, Command::Completions(_))
        && ctx.bpffs.is_dir()
        && pinfs::is_bpffs(&ctx.bpffs).unwrap_or(false)
    {
        // NB: a reader without the rights to settle still gets to read.
        match ops::settle(&ctx.bpffs) {
            Ok(notes) => ctx.out.notes(notes),
            Err(e) => ctx.out.note(format_args!(
                "warning: a change left unfinished on {} could not be settled: {}",
                ctx.bpffs.display(),
                render_chain(&e)
            )),
        }
    }
    match &cli.command {
        Command::Load(args) => cmd::load::load(&ctx, args),
        Command::Unload(args) => cmd::unload::unload(&ctx, args),
        Command::Attach(args) => cmd::attach::attach(&ctx, args),
        Command::Detach(args) => cmd::detach::detach(&ctx, args),
        Command::Net(cmd) => cmd::net::run(&ctx, cmd),
        Command::Prog(cli::ProgCommand::Top(args)) => cmd::progtop::top(&ctx, args),
        Command::Prog(cmd) => cmd::prog::run(&ctx, cmd),
        Command::Map(cmd) => cmd::map::run(&ctx, cmd),
        Command::Stats(args) => cmd::stats::stats(&ctx, args),
        Command::Top(args) => cmd::top::top(&ctx, args),
        Command::Capture(args) => cmd::capture::capture(&ctx, args),
        Command::Guard(args) => cmd::guard::guard(&ctx, args),
        Command::Confirm(args) => cmd::confirm::confirm(&ctx, args),
        Command::Chain(args) => cmd::chain::chain(&ctx, args),
        Command::Apply(args) => cmd::apply::apply(&ctx, args),
        Command::Save(args) => cmd::save::save(&ctx, args),
        Command::Agent(args) => cmd::agent::agent(&ctx, args),
        Command::Doctor(args) => cmd::doctor::doctor(&ctx, args),
        Command::Completions(args) => {
            let mut out = io::stdout().lock();
            completion_script(args.shell, &mut out)?;
            Ok(())
        }
    }
}

/// A hint for errors whose cause is missing privileges.
fn permission_hint(err: &anyhow::Error) -> Option<&'static str> {
    let denied = model::error_text::denied(err)
        || err
            .downcast_ref::<model::verifier::Rejection>()
            .is_some_and(|r| r.log.is_empty() && r.error.raw_os_error() == Some(libc::EPERM));
    denied
        .then_some("xdpctl needs CAP_BPF and CAP_NET_ADMIN (or root); run it as root or with sudo")
}

/// The error and its causes, as one line.
fn render_chain(err: &anyhow::Error) -> String {
    render::chain_text(err)
}

/// Writes the completion script for `shell`: it calls `xdpctl` back with
/// `XDPCTL_COMPLETE` set.
pub fn completion_script(shell: cli::Shell, out: &mut dyn io::Write) -> io::Result<()> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(shell.name())
        .expect("clap_complete supports every Shell");
    completer.write_registration(cli::complete::ENV, "xdpctl", "xdpctl", "xdpctl", out)
}

/// The process's entry, in place of std's start: a short command (`net
/// show`) spends much of its time starting, and std's start reads
/// `/proc/self/maps` (with `sscanf`) and sets up a signal stack for a
/// stack-overflow message. What of it xdpctl needs is done here: SIGPIPE
/// ignored (a closed pipe is an `EPIPE` the commands handle), and stdout
/// flushed at the end.
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = xdpctl();
    let _ = io::Write::flush(&mut io::stdout());
    libc::c_int::from(code)
}

/// What `main` does; the exit code.
#[cfg_attr(test, allow(dead_code))]
fn xdpctl() -> u8 {
    // Listings of pins leave xdpctl's state directory out.
    pinfs::keep_private(model::manifest::STATE_DIR);
    // A crash test against a build without crash points would pass without
    // crashing anything: refuse it.
    if !pinfs::failpoint::COMPILED
        && [pinfs::failpoint::ENV, pinfs::failpoint::WATCHER_ENV]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
    {
        eprintln!(
            "xdpctl: {} is set, but this xdpctl was built without crash points; build it with \
             `cargo build --features failpoints` (scripts/test.sh does)",
            pinfs::failpoint::ENV
        );
        return 2;
    }
    // The watcher behind --confirm-within: started by xdpctl itself as
    // `xdpctl --bpffs ROOT __watch KEY`, outside clap so that no usage
    // message or completion ever offers it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let [_, flag, root, watch, key] = args.as_slice()
        && flag == "--bpffs"
        && watch == ops::watcher::WATCH
    {
        return match ops::watcher::watch(std::path::Path::new(root), &key.to_string_lossy()) {
            Ok(()) => 0,
            Err(_) => 1,
        };
    }
    complete();
    let format = requested_format(&args);
    let cli = parse(&args, format);
    outcome(run(&cli), format)
}

// NB: each step below a function of its own, never inlined: inlined into
// one, their locals made a frame of 21 KB whose stack probe touched five
// pages as every command started (a page fault each).

/// Shell completion, when the shell asks for it (`COMPLETE=...`): answers
/// and exits.
#[inline(never)]
fn complete() {
    cli::complete::remember_line();
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .var(cli::complete::ENV)
        .bin("xdpctl")
        .completer("xdpctl")
        .complete();
}

/// The command line parsed; help, version and usage errors printed, and
/// the process exits with clap's code.
#[inline(never)]
fn parse(args: &[std::ffi::OsString], format: render::Format) -> cli::Cli {
    // The fast tree first (only the subcommand used is made); anything but a
    // plain parse (help, version, a usage error) again with the whole tree,
    // which renders it.
    let mut fast = cli::parser_for(args);
    let parsed = fast
        .try_get_matches_from_mut(args)
        .ok()
        .and_then(|m| from_matches(&m));
    // NB: freeing the tree at exit costs more than keeping it.
    std::mem::forget(fast);
    match parsed {
        Some(cli) => cli,
        None => parse_whole(args, format),
    }
}

/// The command line from clap's matches.
#[inline(never)]
fn from_matches(m: &clap::ArgMatches) -> Option<cli::Cli> {
    <cli::Cli as clap::FromArgMatches>::from_arg_matches(m).ok()
}

/// The command line parsed by the whole tree, which renders help, version
/// and usage errors.
#[cold]
#[inline(never)]
fn parse_whole(args: &[std::ffi::OsString], format: render::Format) -> cli::Cli {
    match <cli::Cli as clap::Parser>::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => usage_error(e, format),
    }
}

/// Reports clap's error (or its help or version) and exits.
#[cold]
#[inline(never)]
fn usage_error(e: clap::Error, format: render::Format) -> ! {
    use clap::error::ErrorKind;
    if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        // The message: clap's text up to its usage lines, as one line.
        let text = e.to_string();
        let message = text
            .lines()
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let message = message.trim_start_matches("error: ");
        // A group without its subcommand: clap's text is the help.
        let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            "a subcommand is missing"
        } else {
            message
        };
        render::json_error(format, message, Some("see --help"), 2);
    }
    e.exit()
}

/// The exit code of a command's result, its error reported.
#[inline(never)]
fn outcome(result: anyhow::Result<()>, format: render::Format) -> u8 {
    match result {
        Ok(()) => 0,
        // `xdpctl map show | head` closing the pipe early is not a failure.
        Err(err)
            if err.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            0
        }
        Err(err) => failed(&err, format),
    }
}

/// Reports a command's error; its exit code.
#[cold]
#[inline(never)]
fn failed(err: &anyhow::Error, format: render::Format) -> u8 {
    let code = if err.downcast_ref::<ops::openmap::NotFound>().is_some() {
        3
    } else {
        1
    };
    let message = if code == 3 {
        err.to_string()
    } else {
        render_chain(err)
    };
    let hint = permission_hint(err);
    eprintln!("xdpctl: {message}");
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    match err.downcast_ref::<ops::openmap::NotFound>() {
        // NB: a closed stdout has nobody to tell.
        Some(nf) if nf.lookup && format != render::Format::Human => {
            let _ = render::print_json(format, &serde_json::Value::Null);
        }
        // The result on stdout already is the one document.
        _ if err.downcast_ref::<render::Reported>().is_some() => {}
        _ => render::json_error(format, &message, hint, code),
    }
    code
}

/// The output format the raw arguments ask for, before they are parsed (a
/// usage error under `-j` is reported in JSON too).
fn requested_format(args: &[std::ffi::OsString]) -> render::Format {
    let (mut json, mut pretty) = (false, false);
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--" {
            break;
        }
        let short = arg
            .strip_prefix('-')
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b == b'j' || b == b'p'));
        pretty |= arg == "--pretty" || short.is_some_and(|s| s.contains('p'));
        json |= arg == "--json" || short.is_some_and(|s| s.contains('j'));
    }
    render::Format::of(json, pretty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_causes_are_printed_once() {
        let io = io::Error::from_raw_os_error(libc::EPERM);
        let err = anyhow::Error::new(io)
            .context("failed to create map `pps`")
            .context("failed to create map `pps`")
            .context("loading xdpfw");
        assert_eq!(
            render_chain(&err),
            "loading xdpfw: failed to create map `pps`: Operation not permitted (os error 1)"
        );
        assert!(permission_hint(&err).is_some());
    }
}
