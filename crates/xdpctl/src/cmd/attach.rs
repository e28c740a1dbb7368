//! `xdpctl attach`: the options to [`ops::attach`], and the attachment
//! as a table.

use anyhow::Result;

use crate::{
    cli::AttachArgs,
    ctx::Ctx,
    ops::attach::{self, AttachOptions},
};

impl From<&AttachArgs> for AttachOptions {
    fn from(a: &AttachArgs) -> Self {
        AttachOptions {
            prog: a.prog.clone(),
            dev: a.dev.clone(),
            mode: a.mode,
            netns: a.netns.clone(),
            replace: a.replace,
            netlink: a.netlink,
            confirm_within: a.confirm_within,
            advise: true,
        }
    }
}

/// `xdpctl attach`.
pub fn attach(ctx: &Ctx, args: &AttachArgs) -> Result<()> {
    let row = attach::attach(ctx, &AttachOptions::from(args))?;
    ctx.out.result(&vec![row])?;
    Ok(())
}
