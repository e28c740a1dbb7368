//! xdpctl: load, pin, attach and inspect XDP programs and their maps.
//!
//! This file only parses the command line, runs the command and turns the
//! outcome into an exit code: 0 success, 1 error, 2 usage (clap's own).

mod cli;
mod ctx;
mod describe;
mod load;
mod map;
mod output;
mod prog;
mod sys;
mod verifier;

use std::{io, process::ExitCode};

use clap::Parser;

use crate::{cli::Command, ctx::Ctx};

fn run(cli: &cli::Cli) -> anyhow::Result<()> {
    let ctx = Ctx::new(cli);
    match &cli.command {
        Command::Load(args) => load::load(&ctx, args),
        Command::Unload(args) => load::unload(&ctx, args),
        Command::Prog(cmd) => prog::run(&ctx, cmd),
        Command::Map(cmd) => map::run(&ctx, cmd),
    }
}

/// A hint for errors whose cause is missing privileges.
fn permission_hint(err: &anyhow::Error) -> Option<&'static str> {
    let denied = err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .is_some_and(|code| code == libc::EPERM || code == libc::EACCES)
    }) || err
        .downcast_ref::<verifier::Rejection>()
        .is_some_and(|r| r.log.is_empty() && r.error.raw_os_error() == Some(libc::EPERM));
    denied
        .then_some("xdpctl needs CAP_BPF and CAP_NET_ADMIN (or root); run it as root or with sudo")
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `xdpctl map show | head` closing the pipe early is not a failure.
        Err(err)
            if err.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("xdpctl: {err:#}");
            if let Some(hint) = permission_hint(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}
