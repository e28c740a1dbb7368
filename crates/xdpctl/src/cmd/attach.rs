//! `xdpctl attach`: the options to [`ops::attach`], and the attachment
//! as a table.

use anyhow::Result;

use crate::{
    cli::{AttachArgs, TcxHook},
    ctx::Ctx,
    ops::{
        attach::{self, AttachOptions},
        tc::{self, TcOptions},
        tcx::{self, Place, TcxOptions},
    },
};

impl From<&AttachArgs> for Option<TcOptions> {
    fn from(a: &AttachArgs) -> Self {
        let hook = a.tc?;
        Some(TcOptions {
            prog: a.prog.clone(),
            dev: a.dev.clone(),
            netns: a.netns.clone(),
            egress: hook == TcxHook::Egress,
            priority: a.priority,
        })
    }
}

impl From<&AttachArgs> for Option<TcxOptions> {
    fn from(a: &AttachArgs) -> Self {
        let hook = a.tcx?;
        Some(TcxOptions {
            prog: a.prog.clone(),
            dev: a.dev.clone(),
            netns: a.netns.clone(),
            egress: hook == TcxHook::Egress,
            place: match (&a.before, &a.after, a.first) {
                (Some(p), _, _) => Place::Before(p.clone()),
                (_, Some(p), _) => Place::After(p.clone()),
                (_, _, true) => Place::First,
                _ => Place::Last,
            },
            expected_revision: a.expected_revision.unwrap_or(0),
        })
    }
}

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
    if args.dispatcher {
        let opts = crate::ops::dispatcher::JoinOptions {
            prog: args.prog.clone(),
            dev: args.dev.clone(),
            netns: args.netns.clone(),
            mode: args.mode,
            priority: args.run_priority,
            chain_call_actions: crate::model::dispatcher::parse_actions(&args.chain_call)
                .map_err(|e| anyhow::anyhow!("--chain-call: {e}"))?,
        };
        let row = crate::ops::dispatcher::join(ctx, &opts)?;
        ctx.out.result(&vec![row])?;
        return Ok(());
    }
    if let Some(opts) = Option::<TcOptions>::from(args) {
        let row = tc::attach(ctx, &opts)?;
        ctx.out.result(&vec![row])?;
        return Ok(());
    }
    if let Some(opts) = Option::<TcxOptions>::from(args) {
        let row = tcx::attach(ctx, &opts)?;
        ctx.out.result(&vec![row])?;
        return Ok(());
    }
    let row = attach::attach(ctx, &AttachOptions::from(args))?;
    ctx.out.result(&vec![row])?;
    Ok(())
}
