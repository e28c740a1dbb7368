//! Apply a policy (`xdpctl apply -f POLICY`, the agent): read the live state, compute the difference
//! from the policy, print the plan, and apply only the difference — the
//! load or upgrade and the attachments through their own journaled
//! changes, the rule maps through one journal record whose steps write
//! exactly the entries that differ. The agent reconciles with the same
//! code.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::{
    ctx::Ctx,
    kernel::{netns::Netns, store},
    model::{
        change::{Change, Step},
        guard::GUARD_MARK,
        handle::Handle,
        manifest,
        policy::{self, DeviceSpec, MapDelta, Policy, RuleMaps, TcSpec, TcxSpec},
    },
    ops::{
        self,
        attach::{self, AttachOptions},
        detach,
        live::{self, LiveDevice},
        load::{self, LoadOptions},
        loaddir::LoadDir,
        pending, watcher,
    },
    render::Human,
};

/// Reads and checks a policy file and the feeds it names.
pub fn read_policy(path: &Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the policy {}", path.display()))?;
    let mut policy = policy::parse(&path.display().to_string(), &text)?;
    // The feeds it names, relative to its directory.
    policy.read_feeds(path.parent().unwrap_or(Path::new("")))?;
    Ok(policy)
}

/// The changes of one rule map.
#[derive(Debug, Serialize)]
pub struct RuleChange {
    /// The map.
    pub map: String,
    /// Entries written (new or changed).
    pub put: usize,
    /// Entries removed.
    pub remove: usize,
    /// The first [`LISTED`] entries written, as a policy says them.
    pub puts: Vec<String>,
    /// The first [`LISTED`] keys removed.
    pub removes: Vec<String>,
}

/// How many entries of each map, written and removed, the plan lists (the
/// counts are whole).
pub const LISTED: usize = 100;

impl RuleChange {
    fn of(map: &str, d: &MapDelta) -> Self {
        RuleChange {
            map: map.to_owned(),
            put: d.put.len(),
            remove: d.remove.len(),
            puts: (d.put.iter().take(LISTED))
                .map(|(k, v)| policy::entry_text(map, k, v))
                .collect(),
            removes: (d.remove.iter().take(LISTED))
                .map(|(k, _)| policy::entry_text(map, k, &[]))
                .collect(),
        }
    }
}

/// A change of the load's chain (`xdpctl chain`).
#[derive(Debug, Serialize)]
pub struct ChainPlan {
    /// The program in it now, if any.
    pub from: Option<u32>,
    /// The pinned program to put there; none: empty it.
    pub to: Option<PathBuf>,
}

/// What apply does.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// The policy file.
    pub policy: String,
    /// The load directory.
    pub dir: PathBuf,
    /// `keep`, `load` or `replace`.
    pub load: &'static str,
    /// Devices to attach to.
    pub attach: Vec<DeviceSpec>,
    /// Devices that run another XDP program in the policy's mode: the
    /// load's program replaces it atomically (`attach --replace`).
    pub replace: Vec<DeviceSpec>,
    /// Attachments of this load to take off.
    pub detach: Vec<LiveDevice>,
    /// tc programs of the load to attach at tcx hooks (appended last).
    pub tcx_attach: Vec<TcxSpec>,
    /// tcx links of the load to take off.
    pub tcx_detach: Vec<TcxSpec>,
    /// tc programs of the load to add as tc filters.
    pub tc_attach: Vec<TcSpec>,
    /// tc filters of the load to delete (one whose priority changes is
    /// deleted, then added at the new one).
    pub tc_detach: Vec<TcSpec>,
    /// The chain, when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainPlan>,
    /// Rule maps that change.
    pub rules: Vec<RuleChange>,
    /// How many changes in all (a map's entries count one by one).
    pub changes: usize,
    /// Whether it was applied (false for --dry-run and for no changes).
    pub applied: bool,
    #[serde(skip)]
    deltas: Vec<(String, MapDelta)>,
    /// What puts the maps back as they were.
    #[serde(skip)]
    undo: Vec<(String, MapDelta)>,
    #[serde(skip)]
    desired: RuleMaps,
    /// The network namespaces whose hosts must take SYN cookies (the
    /// policy's devices', when it protects ports the live state does not):
    /// `None` the current one.
    #[serde(skip)]
    syn_netns: Vec<Option<String>>,
}

impl Human for Plan {
    fn human(&self, _view: &crate::render::View) -> String {
        let mut out = String::new();
        if self.changes == 0 {
            out.push_str(&format!(
                "nothing to change: {} is as {} says\n",
                self.dir.display(),
                self.policy
            ));
            return out;
        }
        let verb = if self.applied { "applied" } else { "plan" };
        out.push_str(&format!(
            "{verb}: {} from {}\n",
            self.dir.display(),
            self.policy
        ));
        if self.load != "keep" {
            out.push_str(&format!("  {:<8} {}\n", self.load, self.dir.display()));
        }
        for d in &self.detach {
            out.push_str(&format!(
                "  detach   {}{}\n",
                d.name,
                in_ns(d.netns.name.as_deref())
            ));
        }
        for (verb, devices) in [("replace", &self.replace), ("attach", &self.attach)] {
            for d in devices {
                out.push_str(&format!(
                    "  {verb:<8} {} ({}){}\n",
                    d.name,
                    d.mode,
                    in_ns(d.netns.as_deref())
                ));
            }
        }
        for (verb, specs) in [("tcx-", &self.tcx_detach), ("tcx+", &self.tcx_attach)] {
            for t in specs {
                out.push_str(&format!(
                    "  {verb:<8} {} {} {}{}\n",
                    t.name,
                    t.hook,
                    t.prog,
                    in_ns(t.netns.as_deref())
                ));
            }
        }
        for (verb, specs) in [("tc-", &self.tc_detach), ("tc+", &self.tc_attach)] {
            for t in specs {
                out.push_str(&format!(
                    "  {verb:<8} {} {} {}{}{}\n",
                    t.name,
                    t.hook,
                    t.prog,
                    t.priority
                        .map_or_else(String::new, |p| format!(" (priority {p})")),
                    in_ns(t.netns.as_deref())
                ));
            }
        }
        if let Some(c) = &self.chain {
            let was = c
                .from
                .map_or_else(String::new, |id| format!(" (was program {id})"));
            match &c.to {
                Some(to) => out.push_str(&format!("  chain    {}{was}\n", to.display())),
                None => out.push_str(&format!("  unchain  {}{was}\n", self.dir.display())),
            }
        }
        for r in &self.rules {
            out.push_str(&format!("  {:<10} +{} -{}\n", r.map, r.put, r.remove));
            for (sign, listed, all) in [("+", &r.puts, r.put), ("-", &r.removes, r.remove)] {
                for e in listed {
                    out.push_str(&format!("    {sign} {e}\n"));
                }
                if all > listed.len() {
                    out.push_str(&format!("    {sign} ... {} more\n", all - listed.len()));
                }
            }
        }
        out
    }
}

fn in_ns(ns: Option<&str>) -> String {
    ns.map_or_else(String::new, |n| format!(" in netns {n}"))
}

/// The object label a load of `policy` has in its manifest, the digest of
/// the object's bytes now, and the names of its maps.
fn object_of(p: &Policy) -> Result<(String, String, Vec<String>)> {
    let (label, bytes) = if p.is_builtin() {
        (
            format!("built-in {}", xdp_progs::xdpfw::NAME),
            std::borrow::Cow::Borrowed(xdp_progs::xdpfw::OBJECT),
        )
    } else {
        let bytes = std::fs::read(&p.load.object)
            .with_context(|| format!("load.object: cannot read {}", p.load.object))?;
        let path = std::path::Path::new(&p.load.object);
        (
            super::object::object_source(path),
            std::borrow::Cow::Owned(bytes),
        )
    };
    let maps = match aya_obj::Object::parse(&bytes) {
        Ok(o) => o.maps.keys().cloned().collect(),
        Err(_) => bail!(
            "load.object: {} is not a BPF object xdpctl can load",
            p.load.object
        ),
    };
    Ok((label, manifest::digest(&bytes), maps))
}

/// The difference between the live state and `policy`; an error names
/// the policy's file and the field.
pub fn plan(ctx: &Ctx, policy: &Policy, file: &str) -> Result<Plan> {
    plan_of(ctx, policy, file).with_context(|| file.to_owned())
}

fn plan_of(ctx: &Ctx, policy: &Policy, file: &str) -> Result<Plan> {
    let dir = ctx.resolve(&policy.load.pin);
    let load = if dir.exists() {
        Some(LoadDir::open(&dir).context("load.pin")?)
    } else {
        None
    };
    // A new xdpctl's built-in firewall, or a changed object file, is an
    // upgrade: `load --replace`, without a gap.
    let (label, digest, object_maps) = object_of(policy)?;
    let load_action = match &load {
        None => "load",
        Some(l) if l.manifest.object == label && l.manifest.object_digest == digest => "keep",
        Some(_) => "replace",
    };
    let live_devices = match &load {
        Some(l) => live::devices(l, &ctx.link_pin_index()?)?,
        None => Vec::new(),
    };
    // Namespaces by identity, never by name: a policy naming `blue`
    // applied from inside `blue` means the devices it is looking at.
    let wanted: Vec<Option<Netns>> = policy
        .devices
        .iter()
        .map(|d| Netns::of(d.netns.as_deref()).ok())
        .collect();
    let same = |i: usize, l: &LiveDevice| {
        let d = &policy.devices[i];
        d.name == l.name && wanted[i].as_ref() == Some(&l.netns) && l.mode == Some(d.mode)
    };
    let missing: Vec<usize> = (0..policy.devices.len())
        .filter(|&i| !live_devices.iter().any(|l| same(i, l)))
        .collect();
    let detach: Vec<LiveDevice> = live_devices
        .iter()
        .filter(|l| !(0..policy.devices.len()).any(|i| same(i, l)))
        .cloned()
        .collect();
    // A device that runs another program in the policy's mode gets the
    // load's by an atomic replace, never a detach and an attach.
    let mut attach = Vec::new();
    let mut replace = Vec::new();
    for i in missing {
        let d = policy.devices[i].clone();
        let ours_elsewhere = detach
            .iter()
            .any(|l| l.name == d.name && wanted[i].as_ref() == Some(&l.netns));
        match &wanted[i] {
            Some(ns) if !ours_elsewhere && runs_xdp(ns, &d)? => replace.push(d),
            _ => attach.push(d),
        }
    }

    let desired = policy.rule_maps();
    let live_rules = match &load {
        Some(l) if policy.is_builtin() || live::rules(&l.path).is_ok() => live::rules(&l.path)?,
        // After a load every rule map is empty and every switch off.
        _ => desired
            .keys()
            .map(|name| {
                let want = &desired[name];
                let mut empty = policy::Entries::new(want.key_size, want.value_size);
                if name == "config" {
                    empty.push(&0u32.to_ne_bytes(), &[0, 0]);
                }
                (name.clone(), empty)
            })
            .collect(),
    };
    let mut deltas = Vec::new();
    let mut undo = Vec::new();
    let mut rules = Vec::new();
    for (name, want) in &desired {
        let keep =
            (name.starts_with("blocklist") || name.starts_with("rate")).then_some(GUARD_MARK);
        let empty = policy::Entries::new(want.key_size, want.value_size);
        let (d, u) = policy::delta(
            live_rules.get(name).unwrap_or(&empty),
            want,
            keep,
            policy::zero_is_rule(name),
        );
        if !d.is_empty() {
            undo.push((name.clone(), u));
            rules.push(RuleChange::of(name, &d));
            deltas.push((name.clone(), d));
        }
    }
    // Rules go to maps with the firewall's names: the object must have
    // them all (apply reads and writes them together).
    if !deltas.is_empty()
        && let Some(missing) = policy::RULE_MAPS
            .iter()
            .find(|m| !object_maps.iter().any(|o| o == *m))
    {
        bail!(
            "rules: {} has no map {missing}, and rules go to maps with the built-in firewall's \
             names and shapes ({}); leave rules out for this object",
            policy.load.object,
            policy::RULE_MAPS.join(", ")
        );
    }
    // Sizes: a map of the object, at least one entry, and not a resize of
    // a map that holds entries (which would empty it).
    if policy.is_builtin() {
        for name in policy.load.max_entries.keys() {
            if !xdp_progs::xdpfw::maps::ALL.contains(&name.as_str()) {
                bail!(
                    "load.max_entries: the built-in firewall has no map {name}; its maps are: {}",
                    xdp_progs::xdpfw::maps::ALL.join(", ")
                );
            }
            if let Some(why) = super::object::firewall_fixed_size(name) {
                bail!("load.max_entries.{name}: {why}");
            }
        }
    }
    if let Some(l) = &load {
        for (name, n) in &policy.load.max_entries {
            if let Some(m) = l.manifest.maps.iter().find(|m| &m.name == name)
                && m.max_entries != *n
            {
                bail!(
                    "load.max_entries.{name} is {n}, but the map in {} has room for {}: a \
                     resize empties the map, so apply does not do it (unload and apply again, \
                     or `xdpctl load --pin {} --replace --reset-maps --max-entries {name}={n}`)",
                    l.path.display(),
                    m.max_entries,
                    l.path.display()
                );
            }
        }
    }
    let chain = chain_plan(ctx, policy, load.as_ref(), load_action == "replace")?;
    let (tcx_attach, tcx_detach) = tcx_plan(policy, load.as_ref())?;
    let (tc_attach, tc_detach) = tc_plan(policy, load.as_ref())?;
    let changes = usize::from(load_action != "keep")
        + tcx_attach.len()
        + tcx_detach.len()
        + tc_attach.len()
        + tc_detach.len()
        + usize::from(chain.is_some())
        + attach.len()
        + replace.len()
        + detach.len()
        + rules.iter().map(|r| r.put + r.remove).sum::<usize>();
    // The host is checked when ports are newly protected: a plan that only
    // puts other rules back (the agent's drift) is not held up by a host
    // set back since (`doctor` and the agent's health say that).
    let protects = rules
        .iter()
        .any(|r| r.map == xdp_progs::xdpfw::maps::SYN_PORTS && r.put > 0);
    Ok(Plan {
        policy: file.to_owned(),
        dir,
        load: load_action,
        attach,
        replace,
        detach,
        tcx_attach,
        tcx_detach,
        tc_attach,
        tc_detach,
        chain,
        rules,
        changes,
        applied: false,
        deltas,
        undo,
        desired,
        syn_netns: if !protects {
            Vec::new()
        } else {
            let mut ns: Vec<Option<String>> =
                policy.devices.iter().map(|d| d.netns.clone()).collect();
            ns.sort();
            ns.dedup();
            if ns.is_empty() {
                ns.push(None);
            }
            ns
        },
    })
}

/// The tcx links `policy` asks for that the load lacks, and those it has
/// that the policy does not list (namespaces by identity, as devices);
/// nothing when the policy leaves `tcx` out. A link whose device went is
/// not the load's any more. An attach the kernel would refuse (the
/// program already runs at that hook, by another tool's link) is refused
/// here, before anything changes.
fn tcx_plan(policy: &Policy, load: Option<&LoadDir>) -> Result<(Vec<TcxSpec>, Vec<TcxSpec>)> {
    let Some(wanted) = &policy.tcx else {
        return Ok((Vec::new(), Vec::new()));
    };
    let live = match load {
        Some(l) => live::tcx_specs(l)?,
        None => Vec::new(),
    };
    // NB: a pin's name holds a device's `.` as `_` (bpffs allows no `.`);
    // namespaces by identity.
    let same = |t: &TcxSpec, (p, l): &(crate::model::linkpin::LinkPin, TcxSpec)| {
        l.hook == t.hook
            && l.prog == t.prog
            && p.names_device(&t.name)
            && Netns::of(t.netns.as_deref()).is_ok_and(|n| n.ino == p.netns)
    };
    tc_programs(load, "tcx", wanted.iter().map(|t| t.prog.as_str()))?;
    let attach: Vec<TcxSpec> = wanted
        .iter()
        .filter(|t| !live.iter().any(|l| same(t, l)))
        .cloned()
        .collect();
    if let Some(l) = load {
        for t in &attach {
            let id = l
                .manifest
                .programs
                .iter()
                .find(|p| p.name == t.prog)
                .map(|p| p.id);
            if let Some(id) = id
                && ops::tcx::runs_at(&t.name, t.netns.as_deref(), t.hook.egress(), id)?
            {
                bail!(
                    "tcx: {} already runs {} at tcx {} (another tool's link, or one xdpctl did \
                     not pin); nothing was changed (detach it, or leave it out of the policy)",
                    t.name,
                    t.prog,
                    t.hook
                );
            }
        }
    }
    let detach = live
        .iter()
        .filter(|l| !wanted.iter().any(|t| same(t, l)))
        .map(|(_, spec)| spec.clone())
        .collect();
    Ok((attach, detach))
}

/// Refuses a program name the load has no tc program of (policy field
/// `field`).
fn tc_programs<'a>(
    load: Option<&LoadDir>,
    field: &str,
    mut names: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let Some(l) = load else { return Ok(()) };
    let tc = |name: &str| {
        l.manifest
            .programs
            .iter()
            .any(|p| p.name == name && p.kind == "tc")
    };
    if let Some(name) = names.find(|n| !tc(n)) {
        bail!(
            "{field}: {} has no tc program {name} (its programs: {})",
            l.path.display(),
            l.manifest
                .programs
                .iter()
                .map(|p| format!("{} ({})", p.name, p.kind))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// The tc filters `policy` asks for that the load lacks (or has at another
/// priority than the policy gives), and those it has that the policy does
/// not list; nothing when the policy leaves `tc` out.
fn tc_plan(policy: &Policy, load: Option<&LoadDir>) -> Result<(Vec<TcSpec>, Vec<TcSpec>)> {
    let Some(wanted) = &policy.tc else {
        return Ok((Vec::new(), Vec::new()));
    };
    tc_programs(load, "tc", wanted.iter().map(|t| t.prog.as_str()))?;
    let live = match load {
        // A load that is replaced keeps its records (the programs change
        // under them: see `load --replace`), so they are planned the same.
        Some(l) => ops::tc::specs(l)?.0,
        None => Vec::new(),
    };
    let same = |t: &TcSpec, (p, l): &(crate::model::linkpin::LinkPin, TcSpec)| {
        l.hook == t.hook
            && l.prog == t.prog
            && t.priority.is_none_or(|want| l.priority == Some(want))
            && p.names_device(&t.name)
            && Netns::of(t.netns.as_deref()).is_ok_and(|n| n.ino == p.netns)
    };
    let attach: Vec<TcSpec> = wanted
        .iter()
        .filter(|t| !live.iter().any(|l| same(t, l)))
        .cloned()
        .collect();
    let detach: Vec<TcSpec> = live
        .iter()
        .filter(|l| !wanted.iter().any(|t| same(t, l)))
        .map(|(_, spec)| spec.clone())
        .collect();
    // A priority another filter holds (not one this plan deletes) would be
    // refused halfway, after the deletions: refused now.
    for t in &attach {
        let Some(prio) = t.priority else { continue };
        let spec = t
            .netns
            .as_deref()
            .map(|n| crate::kernel::netns::path_of(n).display().to_string());
        let freed = detach.iter().any(|d| {
            d.name == t.name && d.netns == t.netns && d.hook == t.hook && d.priority == Some(prio)
        });
        if !freed
            && let Some((name, prog)) =
                ops::tc::holder(&t.name, spec.as_deref(), t.hook.egress(), prio)?
        {
            bail!(
                "tc: priority {prio} at {} of {} holds the filter {name} (program {prog}), not \
                 one of this load's; nothing was changed (give {} another priority in the \
                 policy, or none)",
                t.hook,
                t.name,
                t.prog
            );
        }
    }
    Ok((attach, detach))
}

/// The change of the chain `policy` asks for, if any: the program pinned
/// where it says (resolved as `xdpctl chain` resolves it: a pin, or a load
/// directory holding one XDP program), against the one the load's chain
/// holds; nothing when the policy leaves `chain` out. What `xdpctl chain`
/// would refuse is refused here, before anything changes.
fn chain_plan(
    ctx: &Ctx,
    policy: &Policy,
    load: Option<&LoadDir>,
    upgrade: bool,
) -> Result<Option<ChainPlan>> {
    let Some(wanted) = &policy.chain else {
        return Ok(None);
    };
    let to = match wanted {
        Some(pin) => {
            let prog = attach::resolve_prog(ctx, &Handle::Path(pin.clone())).context("chain")?;
            if let Some(l) = load {
                if l.manifest.programs.iter().any(|p| p.id == prog.id) {
                    bail!(
                        "chain: program {} ({}) is {}'s own: it cannot follow itself",
                        prog.id,
                        prog.name,
                        l.path.display()
                    );
                }
                if let Ok(map) = ops::chain::map_id(l) {
                    ops::chain::refuse_loop(map, &prog, &l.path).context("chain")?;
                }
            }
            Some((ctx.resolve(pin), prog.id))
        }
        None => None,
    };
    let from = match load {
        Some(l) => match ops::chain::chain(ctx, &l.path, ops::chain::Set::Show) {
            Ok(c) => c.next.map(|n| n.prog_id),
            // A load without a chain: nothing to change unless asked (an
            // upgrade may bring one; setting it says if not).
            Err(e) if to.is_some() && !upgrade => return Err(e.context("chain")),
            Err(_) => None,
        },
        None => None,
    };
    Ok((from != to.as_ref().map(|(_, id)| *id)).then(|| ChainPlan {
        from,
        to: to.map(|(p, _)| p),
    }))
}

/// Whether device `d` of namespace `ns` runs an XDP program in the mode
/// `d` asks for. A namespace or device missing here runs nothing (a dry
/// run may be away from its host; a real apply stops at
/// [`check_devices`]).
fn runs_xdp(ns: &Netns, d: &DeviceSpec) -> Result<bool> {
    let Ok(Ok(_entered)) = ns.enter() else {
        return Ok(false);
    };
    let mut rtnl = crate::kernel::netlink::Rtnl::open().context("opening rtnetlink")?;
    Ok(rtnl
        .device(&d.name)?
        .is_some_and(|dev| dev.xdp.attached().iter().any(|(mode, _)| *mode == d.mode)))
}

/// Whether a desired device is the live one: the same name in the same
/// namespace (by identity), in the same mode.
pub fn same_device(d: &DeviceSpec, l: &LiveDevice) -> bool {
    d.name == l.name
        && Netns::of(d.netns.as_deref()).is_ok_and(|n| n == l.netns)
        && l.mode == Some(d.mode)
}

/// Everything the plan would attach to must exist before anything is
/// changed: a misspelt device must not cost the firewall on another. And
/// a device whose facts say native XDP is refused there (`xdpctl net
/// explain`) is not attached to in native mode: refused before the rules
/// or other devices change, not after.
pub fn check_devices(plan: &Plan) -> Result<()> {
    let devices = plan.attach.iter().chain(&plan.replace).map(|d| {
        (
            "devices",
            &d.name,
            &d.netns,
            d.mode == crate::model::xdp::XdpMode::Native,
        )
    });
    let tcx = plan
        .tcx_attach
        .iter()
        .map(|t| ("tcx", &t.name, &t.netns, false));
    let tc = plan
        .tc_attach
        .iter()
        .map(|t| ("tc", &t.name, &t.netns, false));
    for (field, name, netns, native) in devices.chain(tcx).chain(tc) {
        let spec = netns
            .as_deref()
            .map(|n| crate::kernel::netns::path_of(n).display().to_string());
        let _in = crate::kernel::netns::enter(spec.as_deref())
            .with_context(|| format!("{field}: {name}"))?;
        let mut rtnl = crate::kernel::netlink::Rtnl::open().context("opening rtnetlink")?;
        if rtnl.device(name)?.is_none() {
            bail!(
                "{field}: no device named {name}{}; nothing was changed (fix the policy)",
                netns
                    .as_deref()
                    .map_or_else(String::new, |n| format!(" in network namespace {n}"))
            );
        }
        if native && let Some(why) = ops::explain::native_refusal(name, netns.as_deref()) {
            bail!(
                "{field}: native XDP would be refused on {why}; nothing was changed (give it \
                 `mode: generic` in the policy, or fix the device)"
            );
        }
    }
    // SYN cookies: the listeners of the devices' namespaces must take
    // their ACKs (see ops::syncookie).
    for netns in &plan.syn_netns {
        let ns = crate::kernel::netns::Netns::of(netns.as_deref())
            .with_context(|| format!("rules.syn_ports: {netns:?}"))?;
        let host = ops::syncookie::host_in(&ns)?;
        if let Some(why) = ops::syncookie::refusal(&host, &ns) {
            bail!("rules.syn_ports: {why}; nothing was changed");
        }
    }
    Ok(())
}

/// Under --confirm-within, the plan may only change rules and attach.
pub fn check_confirmable(plan: &Plan, confirm: Option<std::time::Duration>) -> Result<()> {
    if confirm.is_some()
        && (plan.load != "keep"
            || !plan.detach.is_empty()
            || !plan.replace.is_empty()
            || !plan.tcx_attach.is_empty()
            || !plan.tcx_detach.is_empty()
            || !plan.tc_attach.is_empty()
            || !plan.tc_detach.is_empty()
            || plan.chain.is_some())
    {
        bail!(
            "with --confirm-within, apply rolls back rule changes and new attachments only, and \
             this plan also {}; apply it without --confirm-within first",
            if plan.load != "keep" {
                format!("{}s {}", plan.load, plan.dir.display())
            } else if !plan.detach.is_empty() {
                "detaches devices".to_owned()
            } else if plan.chain.is_some() {
                "changes the chain".to_owned()
            } else if !plan.tcx_attach.is_empty() || !plan.tcx_detach.is_empty() {
                "changes tcx links".to_owned()
            } else if !plan.tc_attach.is_empty() || !plan.tc_detach.is_empty() {
                "changes tc filters".to_owned()
            } else {
                "replaces other programs on devices".to_owned()
            }
        );
    }
    Ok(())
}

/// Carries a plan out. With `confirm`, arms a rollback of the rule
/// changes and the new attachments (the plan may then do nothing else).
pub fn execute(
    ctx: &Ctx,
    policy: &Policy,
    plan: &mut Plan,
    confirm: Option<std::time::Duration>,
) -> Result<()> {
    check_confirmable(plan, confirm)?;
    check_devices(plan)?;
    if plan.load != "keep" {
        let opts = LoadOptions {
            object: (!policy.is_builtin()).then(|| PathBuf::from(&policy.load.object)),
            pin: plan.dir.clone(),
            max_entries: policy
                .load
                .max_entries
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            replace: plan.load == "replace",
            ..LoadOptions::default()
        };
        load::load(ctx, &opts)?;
    }
    // The chain before any attach: a new attachment hands what it passes
    // to the program behind from its first packet.
    if let Some(c) = &plan.chain {
        let to = c.to.clone().map(Handle::Path);
        let set = match &to {
            Some(h) => ops::chain::Set::Next(h),
            None => ops::chain::Set::Clear,
        };
        ops::chain::chain(ctx, &plan.dir, set).context("chain")?;
    }
    let mut rollback = Vec::new();
    let mut expect = Vec::new();
    if confirm.is_some() {
        let (journal, _) = ops::begin(&plan.dir)?;
        pending::check_none(&journal)?;
    }
    let here = Netns::current()?;
    for d in &plan.detach {
        let ns = if d.netns == here {
            None
        } else if let Some(name) = &d.netns.name {
            Some(crate::kernel::netns::path_of(name).display().to_string())
        } else {
            bail!(
                "{} is attached in a network namespace not named under /run/netns (inode {}), \
                 which xdpctl cannot enter to detach it; detach it from inside that namespace \
                 (nsenter --net=/proc/PID/ns/net xdpctl detach {})",
                d.name,
                d.netns.ino,
                d.name
            );
        };
        detach::detach(ctx, &d.name, ns.as_deref())?;
    }
    // The load's program on a device of the policy, by a pinned link.
    let options = |d: &DeviceSpec, replace: bool| AttachOptions {
        prog: Handle::Path(plan.dir.clone()),
        dev: d.name.clone(),
        mode: d.mode,
        netns: d.netns.clone(),
        replace,
        netlink: false,
        confirm_within: None,
        advise: false,
    };
    for d in &plan.replace {
        attach::attach(ctx, &options(d, true))?;
    }
    for d in &plan.attach {
        let row = attach::attach(ctx, &options(d, false))?;
        if let (Some(link), Some(pin)) = (row.xdp.link_id, row.xdp.link_pinned.first()) {
            rollback.push(Step::LinkDetach { link });
            rollback.push(Step::UnpinLink {
                path: pin.clone(),
                link,
            });
            expect.push(pending::Expect::Link {
                link,
                prog: row.xdp.prog_id,
            });
        }
    }
    // tcx links: those not listed off, then the missing ones on, each
    // appended last at its hook; tc filters the same (a filter whose
    // priority changes is deleted, then added at the new one).
    let ns_path = |netns: &Option<String>| {
        netns
            .as_deref()
            .map(|n| crate::kernel::netns::path_of(n).display().to_string())
    };
    let prog = |name: &str| Handle::Path(plan.dir.join(name));
    for t in &plan.tcx_detach {
        let egress = t.hook.egress();
        ops::tcx::detach(
            ctx,
            &t.name,
            ns_path(&t.netns).as_deref(),
            egress,
            Some(&prog(&t.prog)),
        )
        .with_context(|| format!("tcx: detaching {} from {} {}", t.prog, t.name, t.hook))?;
    }
    for t in &plan.tcx_attach {
        let opts = ops::tcx::TcxOptions {
            prog: prog(&t.prog),
            dev: t.name.clone(),
            netns: ns_path(&t.netns),
            egress: t.hook.egress(),
            place: ops::tcx::Place::Last,
            expected_revision: 0,
        };
        ops::tcx::attach(ctx, &opts)
            .with_context(|| format!("tcx: attaching {} at {} {}", t.prog, t.name, t.hook))?;
    }
    for t in &plan.tc_detach {
        let egress = t.hook.egress();
        ops::tc::detach(
            ctx,
            &t.name,
            ns_path(&t.netns).as_deref(),
            egress,
            Some(&prog(&t.prog)),
        )
        .with_context(|| format!("tc: deleting {} from {} {}", t.prog, t.name, t.hook))?;
    }
    for t in &plan.tc_attach {
        let opts = ops::tc::TcOptions {
            prog: prog(&t.prog),
            dev: t.name.clone(),
            netns: ns_path(&t.netns),
            egress: t.hook.egress(),
            priority: t.priority,
        };
        ops::tc::attach(ctx, &opts)
            .with_context(|| format!("tc: adding {} at {} {}", t.prog, t.name, t.hook))?;
    }
    // The rules last, under one lock with the arming of the rollback: what
    // the rollback keeps is referred to by its record from the start (a
    // sweep would take it for a leftover otherwise).
    if !plan.deltas.is_empty() {
        live::check_rule_maps(&plan.dir, &plan.desired)?;
        if !plan.syn_netns.is_empty() {
            ops::syncookie::prepare(ctx, &plan.dir)?;
        }
    }
    let (mut journal, notes) = ops::begin(&plan.dir)?;
    ctx.out.notes(notes);
    if !plan.deltas.is_empty() {
        let desired = journal.scratch("stage")?;
        store::write_big(
            &desired,
            store::Kind::Desired,
            &policy::encode(&plan.deltas),
        )
        .context("recording the rules to write")?;
        let entry = journal.begin(Change::Steps {
            what: format!("apply of the rules of {}", plan.policy),
            steps: vec![
                Step::SyncRules {
                    dir: plan.dir.clone(),
                    desired: desired.clone(),
                },
                Step::RemoveTree { path: desired },
            ],
        })?;
        journal.run_forward(&entry)?;
        journal.finish(entry)?;
    }
    if let Some(within) = confirm {
        let mut keep = Vec::new();
        if !plan.undo.is_empty() {
            let path = journal.scratch("rollback")?;
            store::write_big(&path, store::Kind::Desired, &policy::encode(&plan.undo))?;
            rollback.insert(
                0,
                Step::SyncRules {
                    dir: plan.dir.clone(),
                    desired: path.clone(),
                },
            );
            keep.push(path);
        }
        let load = LoadDir::open(&plan.dir)?;
        watcher::arm(
            &journal,
            pending::load_key(load.manifest.load_id),
            format!("apply of {}", plan.policy),
            within,
            expect,
            rollback,
            keep,
        )?;
        ctx.out.note(format_args!(
            "this apply is rolled back in {} unless you run: xdpctl confirm {}",
            crate::model::duration::humane(within),
            plan.dir.display()
        ));
    }
    drop(journal);
    plan.applied = true;
    Ok(())
}
