//! `xdpctl load`: the options to [`ops::load`], and the pins it made as a
//! table.

use anyhow::Result;

use crate::{
    cli::LoadArgs,
    ctx::Ctx,
    ops::{
        load::{self, LoadOptions},
        object,
    },
};

impl From<&LoadArgs> for LoadOptions {
    fn from(a: &LoadArgs) -> Self {
        LoadOptions {
            object: a.object.clone(),
            pin: a.pin.clone(),
            maps: a.maps.clone(),
            max_entries: a.max_entries.clone(),
            verifier_log: a.verifier_log.clone(),
            replace: a.replace,
            reset_maps: a.reset_maps,
            confirm_within: a.confirm_within,
        }
    }
}

/// `xdpctl load`: loads and pins through the journal, then lists the pins.
pub fn load(ctx: &Ctx, args: &LoadArgs) -> Result<()> {
    let dir = load::load(ctx, &LoadOptions::from(args))?;
    ctx.out.result(&object::loaded(dir)?)?;
    Ok(())
}
