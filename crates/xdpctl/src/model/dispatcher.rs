//! Planning a libxdp dispatcher (protocol version 2, xdp-tools'
//! `lib/libxdp/protocol.org`): which program runs in which slot, and the
//! configuration the dispatcher is loaded with. Pure: the kernel layer
//! loads what this decides.
//!
//! The protocol's rules, as implemented here:
//! - slots are filled in run order: by run priority (lower first), ties
//!   broken by program name, then programs already in a dispatcher before
//!   new ones, then by program id (libxdp's last tie-breakers, the size and
//!   tag of a program and its load time, only matter for two programs of
//!   the same name and priority; an older program has a lower id);
//! - at most ten programs;
//! - every slot's chain call actions include `XDP_DISPATCHER_RETVAL` (31),
//!   which an empty slot returns;
//! - the dispatcher is loaded with XDP frags support only if every
//!   program has it, and `program_flags` keeps each program's flag;
//! - a program without run configuration runs at priority 50 and chains
//!   on `XDP_PASS` only.

use crate::model::xdp::{
    DISPATCHER_MAGIC, DISPATCHER_RETVAL as RETVAL, DISPATCHER_SLOTS, DispatcherConfig, XDP_ACTIONS,
    XDP_HAS_FRAGS as HAS_FRAGS,
};

/// The priority of a program that says none.
pub const DEFAULT_PRIORITY: u32 = 50;

/// A program for a dispatcher slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// Its name (the tie-breaker after the priority).
    pub name: String,
    /// Its id if it is loaded already (a program of the dispatcher being
    /// replaced); `None` for the one being added.
    pub existing: Option<u32>,
    /// Run priority: lower runs first.
    pub priority: u32,
    /// Bitmap of the XDP actions after which the next program runs.
    pub chain_call_actions: u32,
    /// Whether it was loaded with XDP frags support.
    pub frags: bool,
}

/// Why a dispatcher cannot be planned.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// More programs than slots.
    #[error("a libxdp dispatcher runs at most 10 programs; this would make {0}")]
    TooMany(usize),
    /// An action name that is not one.
    #[error(
        "{0:?} is not an XDP action (give pass, drop, tx, redirect or aborted, comma-separated)"
    )]
    BadAction(String),
}

/// The chain call actions `spec` names (`pass,drop`, or XDP_PASS...), with
/// `XDP_DISPATCHER_RETVAL`.
pub fn parse_actions(spec: &str) -> Result<u32, PlanError> {
    let mut bits = 1 << RETVAL;
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let upper = word.to_ascii_uppercase();
        let name = upper.strip_prefix("XDP_").unwrap_or(&upper);
        let Some(n) = XDP_ACTIONS.iter().position(|a| a[4..] == *name) else {
            return Err(PlanError::BadAction(word.to_owned()));
        };
        bits |= 1 << n;
    }
    Ok(bits)
}

/// The chain call actions of a program without its own: `XDP_PASS`.
#[cfg(test)]
fn default_actions() -> u32 {
    (1 << 2) | (1 << RETVAL)
}

/// The programs in slot order.
pub fn order(mut components: Vec<Component>) -> Result<Vec<Component>, PlanError> {
    if components.len() > DISPATCHER_SLOTS {
        return Err(PlanError::TooMany(components.len()));
    }
    components.sort_by(|a, b| {
        (a.priority, &a.name, a.existing.is_none(), a.existing).cmp(&(
            b.priority,
            &b.name,
            b.existing.is_none(),
            b.existing,
        ))
    });
    Ok(components)
}

/// Whether a dispatcher of these programs is loaded with frags support.
pub fn frags(slots: &[Component]) -> bool {
    !slots.is_empty() && slots.iter().all(|c| c.frags)
}

/// The configuration of a dispatcher running `slots` (in slot order).
pub fn config(slots: &[Component]) -> DispatcherConfig {
    let mut c = DispatcherConfig {
        version: 2,
        num_progs_enabled: slots.len() as u8,
        is_xdp_frags: frags(slots),
        chain_call_actions: [0; DISPATCHER_SLOTS],
        run_prios: [0; DISPATCHER_SLOTS],
        program_flags: [0; DISPATCHER_SLOTS],
    };
    for (i, s) in slots.iter().enumerate() {
        c.chain_call_actions[i] = s.chain_call_actions | (1 << RETVAL);
        c.run_prios[i] = s.priority;
        c.program_flags[i] = if s.frags { HAS_FRAGS } else { 0 };
    }
    c
}

impl DispatcherConfig {
    /// The bytes of a version 2 configuration (`struct
    /// xdp_dispatcher_config`), as [`Self::parse`] reads them: the
    /// dispatcher's `conf` global, set before it is loaded.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::V2_SIZE);
        v.extend([
            DISPATCHER_MAGIC,
            2,
            self.num_progs_enabled,
            u8::from(self.is_xdp_frags),
        ]);
        for array in [
            &self.chain_call_actions,
            &self.run_prios,
            &self.program_flags,
        ] {
            for x in array {
                v.extend(x.to_ne_bytes());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, priority: u32, existing: Option<u32>) -> Component {
        Component {
            name: name.into(),
            existing,
            priority,
            chain_call_actions: default_actions(),
            frags: false,
        }
    }

    #[test]
    fn slots_go_by_priority_then_name_then_the_loaded_first() {
        let got = order(vec![
            c("xdp_fw", 50, None),
            c("lb", 20, Some(7)),
            c("xdp_fw", 50, Some(9)),
            c("counter", 50, Some(3)),
        ])
        .unwrap();
        let names: Vec<(&str, Option<u32>)> =
            got.iter().map(|c| (c.name.as_str(), c.existing)).collect();
        assert_eq!(
            names,
            [
                ("lb", Some(7)),
                ("counter", Some(3)),
                ("xdp_fw", Some(9)),
                ("xdp_fw", None)
            ]
        );
        let eleven = (0..11).map(|i| c("p", i, Some(i))).collect();
        assert_eq!(order(eleven), Err(PlanError::TooMany(11)));
    }

    #[test]
    fn a_configuration_is_read_back_as_it_was_written() {
        let mut fw = c("xdp_fw", 50, None);
        fw.chain_call_actions = parse_actions("pass,XDP_DROP").unwrap();
        let mut lb = c("lb", 10, Some(4));
        lb.frags = true;
        let slots = order(vec![fw, lb]).unwrap();
        let conf = config(&slots);
        assert!(!conf.is_xdp_frags, "frags only if every program has them");
        let back = DispatcherConfig::parse(&conf.encode()).unwrap();
        assert_eq!(back, conf);
        assert_eq!(back.num_progs_enabled, 2);
        assert_eq!(back.run_prios[..2], [10, 50]);
        assert_eq!(back.chain_call_actions[1], (1 << 1) | (1 << 2) | (1 << 31));
        assert_eq!(back.program_flags[..2], [HAS_FRAGS, 0]);
    }

    #[test]
    fn actions_are_named_as_xdp_names_them() {
        assert_eq!(parse_actions("").unwrap(), 1 << 31);
        assert_eq!(parse_actions("pass").unwrap(), default_actions());
        assert_eq!(
            parse_actions("tx, redirect").unwrap(),
            (1 << 3) | (1 << 4) | (1 << 31)
        );
        assert_eq!(
            parse_actions("pass,bounce"),
            Err(PlanError::BadAction("bounce".into()))
        );
    }
}
