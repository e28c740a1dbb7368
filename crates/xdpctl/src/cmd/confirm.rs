//! `xdpctl confirm`: keeps a change made with `--confirm-within`. The
//! record of a pending change lives in [`ops::pending`](crate::ops::pending),
//! its watcher in [`ops::watcher`](crate::ops::watcher).

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::{
    cli::ConfirmArgs,
    ctx::Ctx,
    kernel::{netlink::Rtnl, netns},
    ops::{
        self,
        loaddir::LoadDir,
        pending::{self, Settled},
    },
};

/// The pending key for `xdpctl confirm TARGET`: a load directory, or a
/// device in this (or --netns) namespace.
fn key_of(ctx: &Ctx, args: &ConfirmArgs) -> Result<(String, std::path::PathBuf)> {
    let path = ctx.resolve(Path::new(&args.target));
    if path.is_dir() && pinfs::is_bpffs(&path).unwrap_or(false) {
        let load = LoadDir::open(&path)?;
        return Ok((pending::load_key(load.manifest.load_id), load.path));
    }
    let _in = netns::enter(args.netns.as_deref())?;
    let ino = netns::current_inode()?;
    let mut rtnl = Rtnl::open().context("opening rtnetlink")?;
    let Some(dev) = rtnl.device(&args.target)? else {
        bail!(
            "{} is neither a load directory nor a device{}",
            args.target,
            args.netns.as_deref().map_or_else(
                || " here (a device in another namespace needs --netns NAME)".to_owned(),
                |n| format!(" in network namespace {n}")
            )
        );
    };
    ctx.ensure_bpffs()?;
    Ok((pending::dev_key(ino, dev.ifindex), ctx.bpffs.clone()))
}

/// `xdpctl confirm`.
pub fn confirm(ctx: &Ctx, args: &ConfirmArgs) -> Result<()> {
    let (key, on) = key_of(ctx, args)?;
    let (mut journal, notes) = ops::begin(&on)?;
    ctx.out.notes(notes);
    match pending::confirm(&mut journal, &key)? {
        Some(Settled::Confirmed(what)) => {
            ctx.out.note(format_args!("confirmed the {what}; it stays"));
            ctx.out.json_or_nothing(&serde_json::json!({
                "confirmed": what,
            }))?;
            Ok(())
        }
        Some(Settled::LeftAlone(what)) => bail!(
            "the {what} was undone or changed since it was made, so there is nothing to keep; \
             its record is dropped"
        ),
        _ => bail!(
            "nothing is waiting for confirmation on {} (already confirmed, or rolled back)",
            args.target
        ),
    }
}
