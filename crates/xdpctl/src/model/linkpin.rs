//! The pins of the links `attach` makes: `<owner>/links/<device>@<netns inode>`
//! for XDP (one program a device), `tcx_ingress:<prog>:<device>@<netns
//! inode>` (or `tcx_egress:`) for tcx (several programs a hook), and
//! `tc_ingress:<prog>:<priority>:<device>@<netns inode>` (or `tc_egress:`)
//! for a legacy tc `cls_bpf` filter, which is no link: its record is the
//! program pinned under that name, the filter's owner and place.
//!
//! XDP link info names the device by ifindex only, and ifindexes repeat
//! across network namespaces, so the pin's name says which device of which
//! namespace the link is attached to; the directory says who owns it. This
//! is the one place that name is made and read.

use std::path::{Path, PathBuf};

use crate::model::manifest::LINKS_SUBDIR;

/// Who a link pin belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A load directory: the link is the load's, `unload` detaches it.
    Load(PathBuf),
    /// xdpctl itself, for a program no load directory holds: the pin is in
    /// `_xdpctl/links/` at the root of this bpffs mount.
    Xdpctl(PathBuf),
}

impl Owner {
    /// The directory whose journal a change to the owner's links is
    /// recorded in: the load's, or that of `bpffs` (xdpctl's own links).
    pub fn journal_dir(&self, bpffs: &Path) -> PathBuf {
        match self {
            Owner::Load(dir) => dir.clone(),
            Owner::Xdpctl(_) => bpffs.to_owned(),
        }
    }

    /// The directory the owner's link pins are in.
    pub fn links_dir(&self) -> PathBuf {
        match self {
            Owner::Load(dir) => dir.join(LINKS_SUBDIR),
            Owner::Xdpctl(root) => root
                .join(crate::model::manifest::STATE_DIR)
                .join(LINKS_SUBDIR),
        }
    }
}

/// The hook a link pin's link is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// XDP.
    Xdp,
    /// tcx ingress or egress, program `prog` (its name: a hook runs
    /// several).
    Tcx { egress: bool, prog: String },
    /// A legacy tc `cls_bpf` filter (direct action, handle 1) at clsact's
    /// ingress or egress, priority `prio`, running program `prog`. The pin
    /// is the program, not a link: a filter has no bpf_link.
    Tc {
        egress: bool,
        prog: String,
        prio: u16,
    },
    /// A slot of the libxdp dispatcher on the device, running an freplace
    /// copy of program `prog`; the pin is that copy (a record, as for tc).
    Libxdp { prog: String },
}

impl Hook {
    /// `xdp`, `tcx-ingress`, `tcx-egress`: the hook in outputs.
    pub fn name(&self) -> &'static str {
        match self {
            Hook::Xdp => "xdp",
            Hook::Tcx { egress: false, .. } => "tcx-ingress",
            Hook::Tcx { egress: true, .. } => "tcx-egress",
            Hook::Tc { egress: false, .. } => "tc-ingress",
            Hook::Tc { egress: true, .. } => "tc-egress",
            Hook::Libxdp { .. } => "xdp/libxdp",
        }
    }

    /// Whether the pin is a filter's record (a program), not a link.
    pub fn is_tc(&self) -> bool {
        matches!(self, Hook::Tc { .. })
    }

    /// Whether the pin is the record of a program in a libxdp dispatcher.
    pub fn is_libxdp(&self) -> bool {
        matches!(self, Hook::Libxdp { .. })
    }
}

/// A link pin xdpctl made: its owner, the hook, the device and the
/// namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPin {
    /// Who owns the link.
    pub owner: Owner,
    /// The device, as the name holds it (bpffs allows no `.` in names: a
    /// `.` in the device's name is `_` here).
    pub dev: String,
    /// The inode of the device's network namespace.
    pub netns: u64,
    /// The hook.
    pub hook: Hook,
}

/// A device's or program's name as a pin's name holds it: bpffs allows no
/// `.` in names, so a `.` is `_`.
pub fn pin_name(name: &str) -> String {
    name.replace('.', "_")
}

impl LinkPin {
    /// Whether the pin is of the device named `dev`.
    pub fn names_device(&self, dev: &str) -> bool {
        self.dev == pin_name(dev)
    }

    /// The pin of a link of `owner` to device `dev` of namespace `netns`.
    pub fn new(owner: Owner, dev: &str, netns: u64) -> Self {
        LinkPin {
            owner,
            dev: pin_name(dev),
            netns,
            hook: Hook::Xdp,
        }
    }

    /// The pin of a tcx link of `owner` running program `prog` at
    /// ingress or `egress` of device `dev` of namespace `netns`.
    pub fn tcx(owner: Owner, dev: &str, netns: u64, egress: bool, prog: &str) -> Self {
        LinkPin {
            hook: Hook::Tcx {
                egress,
                prog: pin_name(prog),
            },
            ..Self::new(owner, dev, netns)
        }
    }

    /// The record of a tc filter of `owner` running program `prog` at
    /// clsact's ingress or `egress` of device `dev` of namespace `netns`,
    /// priority `prio`.
    pub fn tc(owner: Owner, dev: &str, netns: u64, egress: bool, prog: &str, prio: u16) -> Self {
        LinkPin {
            hook: Hook::Tc {
                egress,
                prog: pin_name(prog),
                prio,
            },
            ..Self::new(owner, dev, netns)
        }
    }

    /// The pin's file name: `<device>@<netns inode>`, after
    /// `tcx_ingress:<prog>:` or `tcx_egress:<prog>:` for tcx, and
    /// `tc_ingress:<prog>:<priority>:` or `tc_egress:...` for tc.
    pub fn name(&self) -> String {
        match &self.hook {
            Hook::Xdp => format!("{}@{}", self.dev, self.netns),
            Hook::Libxdp { prog } => format!("libxdp:{prog}:{}@{}", self.dev, self.netns),
            Hook::Tc { egress, prog, prio } => format!(
                "tc_{}:{prog}:{prio}:{}@{}",
                if *egress { "egress" } else { "ingress" },
                self.dev,
                self.netns
            ),
            Hook::Tcx { egress, prog } => format!(
                "tcx_{}:{prog}:{}@{}",
                if *egress { "egress" } else { "ingress" },
                self.dev,
                self.netns
            ),
        }
    }

    /// Where it is pinned.
    pub fn path(&self) -> PathBuf {
        self.owner.links_dir().join(self.name())
    }

    /// Reads a pin's path back; `None` when it is not named as xdpctl names
    /// link pins (`.../links/<device>@<netns inode>`). Whether the owner is
    /// really a load directory is for the caller to check.
    pub fn parse(path: &Path) -> Option<Self> {
        let (hook, dev, netns) = Self::parse_name(path.file_name()?.to_str()?)?;
        let links = path.parent()?;
        if links.file_name()? != LINKS_SUBDIR {
            return None;
        }
        let dir = links.parent()?;
        let owner = if dir.file_name()? == crate::model::manifest::STATE_DIR {
            Owner::Xdpctl(dir.parent()?.to_owned())
        } else {
            Owner::Load(dir.to_owned())
        };
        Some(LinkPin {
            owner,
            dev: dev.to_owned(),
            netns,
            hook,
        })
    }

    /// Whether a walk looking for link pins goes into the subdirectory
    /// `sub` of a directory holding `names`: in a load directory (it holds
    /// a manifest) only into its links directory. A load holds no other
    /// load (`load` refuses that), so nothing else in it is a link pin of
    /// xdpctl's; the maps directory, the largest, is not read.
    pub fn may_hold(names: &[std::ffi::OsString], sub: &std::ffi::OsStr) -> bool {
        sub == LINKS_SUBDIR || !names.iter().any(|n| n == crate::model::manifest::PIN)
    }

    /// Whether a file name looks like a link pin's (for walks that look
    /// for them without opening every pin).
    pub fn is_name(name: &std::ffi::OsStr) -> bool {
        name.to_str().is_some_and(|n| Self::parse_name(n).is_some())
    }

    fn parse_name(name: &str) -> Option<(Hook, &str, u64)> {
        let (hook, rest) = match name.split_once(':') {
            Some((h @ ("tcx_ingress" | "tcx_egress"), rest)) => {
                let (prog, rest) = rest.split_once(':')?;
                if prog.is_empty() {
                    return None;
                }
                (
                    Hook::Tcx {
                        egress: h == "tcx_egress",
                        prog: prog.to_owned(),
                    },
                    rest,
                )
            }
            Some(("libxdp", rest)) => {
                let (prog, rest) = rest.split_once(':')?;
                if prog.is_empty() {
                    return None;
                }
                (
                    Hook::Libxdp {
                        prog: prog.to_owned(),
                    },
                    rest,
                )
            }
            Some((h @ ("tc_ingress" | "tc_egress"), rest)) => {
                let (prog, rest) = rest.split_once(':')?;
                let (prio, rest) = rest.split_once(':')?;
                let prio: u16 = prio.parse().ok().filter(|p| *p != 0)?;
                if prog.is_empty() {
                    return None;
                }
                (
                    Hook::Tc {
                        egress: h == "tc_egress",
                        prog: prog.to_owned(),
                        prio,
                    },
                    rest,
                )
            }
            _ => (Hook::Xdp, name),
        };
        let (dev, ino) = rest.rsplit_once('@')?;
        if dev.is_empty() {
            return None;
        }
        Some((hook, dev, ino.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_for_link_pins_reads_only_a_loads_links() {
        let names = |n: &[&str]| {
            n.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        let load = names(&["manifest", "xdp_fw", "maps", "links"]);
        assert!(LinkPin::may_hold(&load, "links".as_ref()));
        assert!(!LinkPin::may_hold(&load, "maps".as_ref()));
        // Not a load directory: anything may hold a load.
        let other = names(&["maps", "links", "fw"]);
        for sub in ["maps", "links", "fw"] {
            assert!(LinkPin::may_hold(&other, sub.as_ref()));
        }
    }

    #[test]
    fn a_pin_is_read_back_as_it_was_made() {
        for owner in [
            Owner::Load("/sys/fs/bpf/fw".into()),
            Owner::Xdpctl("/sys/fs/bpf".into()),
        ] {
            let pin = LinkPin::new(owner, "eth0.100", 4026531840);
            assert_eq!(pin.name(), "eth0_100@4026531840");
            assert_eq!(LinkPin::parse(&pin.path()), Some(pin.clone()));
        }
        assert_eq!(
            LinkPin::new(Owner::Load("/b/fw".into()), "v0", 7).path(),
            Path::new("/b/fw/links/v0@7")
        );
        assert_eq!(
            LinkPin::new(Owner::Xdpctl("/b".into()), "v0", 7).path(),
            Path::new("/b/_xdpctl/links/v0@7")
        );
        let t = LinkPin::tcx(Owner::Load("/b/fw".into()), "v0", 7, true, "tc_pass");
        assert_eq!(t.path(), Path::new("/b/fw/links/tcx_egress:tc_pass:v0@7"));
        assert_eq!(LinkPin::parse(&t.path()), Some(t));
        assert_eq!(
            LinkPin::parse(Path::new("/b/fw/links/tcx_ingress::v0@7")),
            None
        );
        let tc = LinkPin::tc(Owner::Load("/b/fw".into()), "v0", 7, false, "tc_pass", 3);
        assert_eq!(
            tc.path(),
            Path::new("/b/fw/links/tc_ingress:tc_pass:3:v0@7")
        );
        assert_eq!(LinkPin::parse(&tc.path()), Some(tc));
        let l = LinkPin {
            hook: Hook::Libxdp {
                prog: "xdp_fw".into(),
            },
            ..LinkPin::new(Owner::Load("/b/fw".into()), "v0", 7)
        };
        assert_eq!(l.path(), Path::new("/b/fw/links/libxdp:xdp_fw:v0@7"));
        assert_eq!(LinkPin::parse(&l.path()), Some(l));
        for bad in [
            "tc_ingress:p:0:v0@7",
            "tc_ingress:p:x:v0@7",
            "tc_egress::1:v0@7",
        ] {
            assert_eq!(
                LinkPin::parse(&Path::new("/b/fw/links").join(bad)),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn other_names_are_not_link_pins() {
        for path in [
            "/b/fw/links/v0",
            "/b/fw/links/v0@x",
            "/b/fw/links/@7",
            "/b/fw/maps/v0@7",
            "/v0@7",
        ] {
            assert_eq!(LinkPin::parse(Path::new(path)), None, "{path}");
        }
        assert!(LinkPin::is_name("v0@7".as_ref()));
        assert!(!LinkPin::is_name("blocklist".as_ref()));
    }
}
