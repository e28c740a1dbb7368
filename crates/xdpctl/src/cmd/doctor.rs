//! `xdpctl doctor`: [`ops::doctor`]'s findings as a table; problems make
//! the exit status 1.

use anyhow::Result;

use crate::{cli::DoctorArgs, ctx::Ctx, ops::doctor, render};

/// `xdpctl doctor`.
pub fn doctor(ctx: &Ctx, args: &DoctorArgs) -> Result<()> {
    let report = doctor::doctor(ctx, args.dir.as_deref(), args.check)?;
    ctx.out.result(&report.findings)?;
    if report.problems > 0 {
        return Err(render::Reported(format!(
            "{} under {}{}",
            render::count(report.problems, "problem", "problems"),
            report.root.display(),
            if args.check {
                " (run `xdpctl doctor` without --check to repair what can be)"
            } else {
                ""
            }
        ))
        .into());
    }
    Ok(())
}
