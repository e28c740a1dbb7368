//! `xdpctl unload`: [`ops::unload`], and what it removed as a table.

use anyhow::Result;

use crate::{cli::UnloadArgs, ctx::Ctx, ops::unload};

/// `xdpctl unload`.
pub fn unload(ctx: &Ctx, args: &UnloadArgs) -> Result<()> {
    let unloaded = unload::unload(ctx, &args.dir)?;
    ctx.out.result(&unloaded)?;
    Ok(())
}
