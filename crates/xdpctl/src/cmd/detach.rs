//! `xdpctl detach`: [`ops::detach`] and what it took off as a table.

use anyhow::Result;

use crate::{cli::DetachArgs, ctx::Ctx, ops::detach};

/// `xdpctl detach`.
pub fn detach(ctx: &Ctx, args: &DetachArgs) -> Result<()> {
    let detached = detach::detach(ctx, &args.dev, args.netns.as_deref())?;
    ctx.out.result(&detached)?;
    Ok(())
}
