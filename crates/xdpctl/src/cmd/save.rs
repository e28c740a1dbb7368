//! `xdpctl save`: the live state of a load as a policy, in the format
//! `apply -f` takes.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::{
    cli::SaveArgs,
    ctx::Ctx,
    kernel::clock::{now_ms, rfc3339},
    model::rulehits::{RuleHit, annotate_yaml},
    model::{
        guard::GUARD_MARK,
        policy::{self, DeviceSpec, Drift, LoadSpec, Policy, TcSpec, TcxSpec, VERSION},
    },
    ops::{live, loaddir::LoadDir, rulehits},
    render::Human,
};

/// A saved policy: YAML for people, the same document as JSON with -j.
#[derive(Debug, Serialize)]
pub struct Saved {
    #[serde(flatten)]
    policy: Policy,
    /// With --hits: each rule's counts, as comments of the YAML.
    #[serde(skip)]
    hits: Option<Vec<RuleHit>>,
}

impl Human for Saved {
    fn human(&self, _view: &crate::render::View) -> String {
        let yaml = serde_norway::to_string(&self.policy).unwrap_or_default();
        match &self.hits {
            None => format!("# xdpctl policy, saved from the live state\n{yaml}"),
            Some(rows) => format!(
                "# xdpctl policy, saved from the live state at {}, with each rule's hits since \
                 the load\n{}",
                rfc3339(now_ms()),
                annotate_yaml(&yaml, rows, |t| rfc3339(
                    u64::try_from(t / 1_000_000).unwrap_or(0)
                ))
            ),
        }
    }
}

/// The only load directory under the bpffs root.
fn only_load(root: &Path) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = crate::ops::loaddir::all(root)?
        .into_iter()
        .map(|l| l.path)
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.swap_remove(0)),
        0 => bail!(
            "nothing is loaded under {}; name the load directory",
            root.display()
        ),
        n => bail!(
            "{n} load directories are under {}: {}; name one",
            root.display(),
            found
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `xdpctl save`.
pub fn save(ctx: &Ctx, args: &SaveArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => ctx.resolve(d),
        None => only_load(&ctx.bpffs)?,
    };
    let load = LoadDir::open(&dir)?;
    let builtin = load.manifest.object == format!("built-in {}", xdp_progs::xdpfw::NAME);
    // A namespace a policy cannot name (no name under /run/netns, not this
    // one) would read as this one: what is there is left out, said.
    let known = crate::kernel::netns::known()?;
    let nameable = |ino: u64, what: &str| {
        let ok = known.iter().any(|n| n.ino == ino);
        if !ok {
            ctx.out.note(format_args!(
                "left out {what}: its network namespace (inode {ino}) has no name under \
                 /run/netns, which a policy could give"
            ));
        }
        ok
    };
    let devices = live::devices(&load, &ctx.link_pin_index()?)?
        .into_iter()
        .filter(|d| nameable(d.netns.ino, &format!("the attachment to {}", d.name)))
        .map(|d| DeviceSpec {
            name: d.name,
            netns: d.netns.name,
            mode: d.mode.unwrap_or(crate::model::xdp::XdpMode::Native),
        })
        .collect();
    // Its tcx links, in run order (apply appends them in the policy's).
    let tcx: Vec<TcxSpec> = live::tcx_specs(&load)?
        .into_iter()
        .filter(|(pin, spec)| {
            nameable(
                pin.netns,
                &format!("the tcx link of {} on {}", spec.prog, spec.name),
            )
        })
        .map(|(_, spec)| spec)
        .collect();
    // Its tc filters, by priority (apply adds them at theirs).
    let (tc, unnamed) = crate::ops::tc::specs(&load)?;
    let tc: Vec<TcSpec> = tc.into_iter().map(|(_, spec)| spec).collect();
    for record in unnamed {
        ctx.out.note(format_args!(
            "left out the tc filter recorded at {}: its network namespace has no name under \
             /run/netns, which a policy could give",
            record.display()
        ));
    }
    // The program behind the load, by a pin of it (a program pinned
    // nowhere cannot be named in a policy: said, not saved).
    let chain = match crate::ops::chain::chain(ctx, &load.path, crate::ops::chain::Set::Show) {
        Ok(crate::ops::chain::Chained {
            next: Some(next), ..
        }) => {
            let pins = ctx.pin_index()?;
            let pin = pins
                .get(&(pinfs::Kind::Prog, next.prog_id))
                .and_then(|p| p.first())
                .map(|p| {
                    p.strip_prefix(&ctx.bpffs)
                        .map_or_else(|_| p.clone(), Path::to_owned)
                });
            if pin.is_none() {
                ctx.out.note(format_args!(
                    "not saved: the chain to program {} ({}), which is pinned nowhere under {} \
                     (pin it, or load it with xdpctl, to name it in a policy)",
                    next.prog_id,
                    next.prog_name,
                    ctx.bpffs.display()
                ));
            }
            pin
        }
        _ => None,
    };
    let rules = match live::rules(&load.path) {
        Ok(maps) => policy::rules_of(&maps, GUARD_MARK),
        Err(_) if !builtin => policy::Rules::default(),
        Err(e) => return Err(e),
    };
    // Sizes the load chose over the object's own.
    let max_entries = if builtin {
        let object = crate::ops::firewall::firewall_object()?;
        load.manifest
            .maps
            .iter()
            .filter(|m| {
                object
                    .maps
                    .get(&m.name)
                    .is_some_and(|d| d.max_entries() != m.max_entries)
            })
            .map(|m| (m.name.clone(), m.max_entries))
            .collect()
    } else {
        Default::default()
    };
    let pin = load
        .path
        .strip_prefix(&ctx.bpffs)
        .map_or_else(|_| load.path.clone(), Path::to_owned);
    let saved = Policy {
        version: VERSION,
        load: LoadSpec {
            pin,
            object: if builtin {
                policy::BUILTIN.to_owned()
            } else {
                load.manifest.object.clone()
            },
            max_entries,
        },
        devices,
        // Left out when there is nothing to say: a policy without them
        // leaves tcx links, tc filters and the chain as they are.
        tcx: (!tcx.is_empty()).then_some(tcx),
        tc: (!tc.is_empty()).then_some(tc),
        chain: chain.map(Some),
        rules,
        guard: None,
        drift: Drift::Report,
    };
    let hits = if args.hits {
        if !builtin {
            bail!(
                "{} is not a load of the built-in firewall: it has no counters per rule (--hits)",
                load.path.display()
            );
        }
        if ctx.format != crate::render::Format::Human {
            ctx.out
                .note("--hits adds comments to the YAML; JSON has none, so -j leaves them out");
        }
        Some(rulehits::read(&load.path.join(crate::model::manifest::MAPS_SUBDIR))?.rows)
    } else {
        None
    };
    ctx.out.result(&Saved {
        policy: saved,
        hits,
    })?;
    Ok(())
}
