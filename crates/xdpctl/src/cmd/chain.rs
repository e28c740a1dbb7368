//! `xdpctl chain`: shows or sets the program behind a firewall (see
//! [`ops::chain`](crate::ops::chain)).

use anyhow::Result;

use crate::{
    cli::ChainArgs,
    ctx::Ctx,
    ops::chain::{self, Chained, Set},
    render::{Human, View},
};

impl Human for Chained {
    fn human(&self, view: &View) -> String {
        let prog = |p: &chain::ProgRef| format!("program {} ({})", p.prog_id, p.prog_name);
        let dir = view.path(&self.dir);
        let mut out = match &self.next {
            Some(next) => format!("{dir} passes to {}\n", prog(next)),
            None => format!("{dir} chains to nothing: what it passes, passes\n"),
        };
        if let Some(previous) = &self.previous {
            out.push_str(&format!("(was {})\n", prog(previous)));
        }
        out
    }
}

/// `xdpctl chain`.
pub fn chain(ctx: &Ctx, args: &ChainArgs) -> Result<()> {
    let set = match (&args.next, args.clear) {
        (Some(next), _) => Set::Next(next),
        (None, true) => Set::Clear,
        (None, false) => Set::Show,
    };
    let chained = chain::chain(ctx, &args.dir, set)?;
    ctx.out.result(&chained)?;
    Ok(())
}
