//! libxdp's multi-program dispatcher, read the way libxdp's protocol
//! (xdp-tools, `lib/libxdp/protocol.org`) documents it: an XDP program
//! named `xdp_dispatcher` whose one map, its `.rodata`, holds `struct
//! xdp_dispatcher_config` (programs enabled, per slot the chain call
//! actions and the run priority); the component programs (`freplace`
//! programs in slots `prog0`..`prog9`) and the links that attach them are
//! pinned by libxdp at `<bpffs>/xdp/dispatch-IFINDEX-DID/progN-prog` and
//! `progN-link`, DID being the dispatcher's program id.

use std::{io, os::fd::AsFd, path::Path};

use pinfs::Kind;

use crate::{
    kernel::{
        map::MapHandle,
        sys::{self, IdKind},
    },
    model::xdp::{DISPATCHER_NAME, Dispatcher, DispatcherConfig, DispatcherError},
};

/// What reading a dispatcher can fail on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall on the dispatcher or its configuration map.
    #[error("reading libxdp dispatcher {prog_id}")]
    Syscall {
        /// The dispatcher's program id.
        prog_id: u32,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Its configuration is not one this xdpctl can read.
    #[error("reading libxdp dispatcher {prog_id}")]
    Config {
        /// The dispatcher's program id.
        prog_id: u32,
        /// What is wrong with it.
        #[source]
        source: DispatcherError,
    },
}

/// Whether a program of this (kernel) name may be libxdp's dispatcher:
/// [`read`] tells.
pub fn is_named(name: &str) -> bool {
    name == DISPATCHER_NAME
}

/// The dispatcher `prog_id` attached to device `ifindex`, with its programs;
/// `None` when the program is not a libxdp dispatcher. `bpffs` is where
/// libxdp pins (`LIBXDP_BPFFS`, by default /sys/fs/bpf): without its pins a
/// slot's priority and actions are known but not its program.
pub fn read(prog_id: u32, ifindex: u32, bpffs: &Path) -> Result<Option<Dispatcher>, Error> {
    let syscall = |source| Error::Syscall { prog_id, source };
    let prog = sys::fd_by_id(IdKind::Prog, prog_id).map_err(syscall)?;
    let (info, map_ids) = sys::prog_info(prog.as_fd()).map_err(syscall)?;
    // libxdp's own test: the name, and exactly one map.
    let [map_id] = map_ids.as_slice() else {
        return Ok(None);
    };
    if sys::c_name(&info.name) != DISPATCHER_NAME {
        return Ok(None);
    }
    let map = sys::fd_by_id(IdKind::Map, *map_id)
        .and_then(MapHandle::from_fd)
        .map_err(syscall)?;
    if map.key_size() != 4 || map.info().max_entries != 1 || map.per_cpu() {
        return Ok(None);
    }
    let mut value = vec![0u8; map.value_len()];
    if !map
        .lookup(&0u32.to_ne_bytes(), &mut value)
        .map_err(syscall)?
    {
        return Ok(None);
    }
    let config =
        DispatcherConfig::parse(&value).map_err(|source| Error::Config { prog_id, source })?;
    let dir = pin_dir(bpffs, ifindex, prog_id);
    let pinned = dir.is_dir().then(|| dir.clone());
    let mut programs = config.slots();
    for p in &mut programs {
        // A pin that is missing or not what libxdp puts there leaves the
        // slot's program unknown.
        let pin = |suffix: &str, kind: Kind| {
            pinfs::pin_info(&dir.join(format!("prog{}-{suffix}", p.slot)))
                .ok()
                .filter(|pin| pin.kind == kind)
                .map(|pin| pin.id)
        };
        p.prog_id = pin("prog", Kind::Prog);
        p.link_id = pin("link", Kind::Link);
        p.prog_name = p.prog_id.and_then(|id| {
            let fd = sys::fd_by_id(IdKind::Prog, id).ok()?;
            sys::prog_info(fd.as_fd())
                .ok()
                .map(|(info, _)| sys::c_name(&info.name))
        });
    }
    Ok(Some(Dispatcher {
        version: config.version,
        pinned,
        programs,
    }))
}

/// Loads xdpctl's dispatcher (`xdp_progs::dispatcher`) with `config` (its
/// `is_xdp_frags` must be false: the object is not built for frags);
/// not attached. Returns the loaded object, whose program
/// [`xdp_progs::dispatcher::PROGRAM`] the slots' programs replace into.
pub fn load_new(config: &DispatcherConfig) -> anyhow::Result<aya::Ebpf> {
    use anyhow::Context as _;
    anyhow::ensure!(
        !config.is_xdp_frags,
        "a dispatcher with XDP frags is not built"
    );
    let conf = config.encode();
    let mut ebpf = aya::EbpfLoader::new()
        .btf(None)
        .override_global(xdp_progs::dispatcher::CONF, conf.as_slice(), true)
        .load(xdp_progs::dispatcher::OBJECT)
        .context("loading a libxdp dispatcher")?;
    let prog: &mut aya::programs::Xdp = ebpf
        .program_mut(xdp_progs::dispatcher::PROGRAM)
        .expect("the object has its entry point")
        .try_into()
        .context("the dispatcher's entry point")?;
    prog.load().context("loading a libxdp dispatcher")?;
    Ok(ebpf)
}

/// The dispatcher's program in `ebpf` (see [`load_new`]).
pub fn program_fd(ebpf: &aya::Ebpf) -> anyhow::Result<aya::programs::ProgramFd> {
    Ok(ebpf
        .program(xdp_progs::dispatcher::PROGRAM)
        .expect("loaded")
        .fd()?
        .try_clone()?)
}

/// The function of slot `k` that a component program replaces.
pub fn slot_function(k: usize) -> String {
    format!("prog{k}")
}

/// Where libxdp pins the programs of dispatcher `did` on device
/// `ifindex`, under its bpffs (`LIBXDP_BPFFS`, by default the one xdpctl
/// uses).
pub fn pin_dir(libxdp_bpffs: &Path, ifindex: u32, did: u32) -> std::path::PathBuf {
    libxdp_bpffs
        .join("xdp")
        .join(format!("dispatch-{ifindex}-{did}"))
}

/// Re-attaches a component already in a dispatcher (its `progN-prog` pin,
/// an freplace program) to slot `k` of the new dispatcher `target`, as
/// the protocol does (kernel 5.10 and later); returns its new link.
pub fn reattach(
    component_pin: &Path,
    target: &aya::programs::ProgramFd,
    k: usize,
) -> anyhow::Result<aya::programs::links::FdLink> {
    use anyhow::Context as _;
    let mut ext = aya::programs::Extension::from_pin(component_pin)
        .with_context(|| format!("opening libxdp's component {}", component_pin.display()))?;
    let id = ext
        .attach_to_program(target, &slot_function(k))
        .with_context(|| format!("attaching {} to slot {k}", component_pin.display()))?;
    Ok(ext.take_link(id)?.into())
}

/// Loads program `name` of the object `bytes` as an freplace program for
/// slot `k` of the dispatcher `target`, with its maps opened at their pins
/// (`maps`: name, pin), and attaches it there, as libxdp loads a
/// component: returns the loaded object (its program) and the link.
pub fn load_component(
    bytes: &[u8],
    name: &str,
    maps: &[(String, std::path::PathBuf)],
    kernel_btf: bool,
    target: &aya::programs::ProgramFd,
    k: usize,
) -> anyhow::Result<(aya::Ebpf, aya::programs::links::FdLink)> {
    use anyhow::Context as _;
    let mut loader = aya::EbpfLoader::new();
    loader.extension(name);
    if !kernel_btf {
        loader.btf(None);
    }
    for (map, pin) in maps {
        loader.map_pin_path(map, pin.as_path());
    }
    let mut ebpf = loader
        .load(bytes)
        .with_context(|| format!("loading {name} with the maps of its load"))?;
    let ext: &mut aya::programs::Extension = ebpf
        .program_mut(name)
        .with_context(|| format!("the object has no program {name}"))?
        .try_into()
        .with_context(|| format!("{name} as an freplace program"))?;
    ext.load(target.try_clone()?, &slot_function(k))
        .with_context(|| format!("loading {name} as an freplace program for slot {k}"))?;
    let id = ext.attach().context("attaching it to its slot")?;
    let link = ext.take_link(id)?.into();
    Ok((ebpf, link))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dispatcher::{Component, config, order, parse_actions};

    /// Root, or (under CI) a failure: this test loads programs.
    fn privileged() -> bool {
        let root = nix::unistd::geteuid().is_root();
        assert!(
            root || std::env::var_os("CI").is_none(),
            "CI=true: this test needs root"
        );
        root
    }

    /// xdpctl's dispatcher, as loaded for a plan, is a libxdp dispatcher by
    /// libxdp's own test (the name, one map holding the configuration),
    /// its configuration reads back as written, and with its slots' stubs
    /// in place every packet passes (a stub returns XDP_DISPATCHER_RETVAL,
    /// which every slot chains on).
    #[test]
    fn the_dispatcher_loads_reads_back_and_passes_through_its_stubs() {
        if !privileged() {
            return;
        }
        let frame = [0u8; 64];
        for n in [0usize, 1, 3, 10] {
            let slots = order(
                (0..n)
                    .map(|i| Component {
                        name: format!("p{i}"),
                        existing: Some(i as u32 + 1),
                        priority: 10 * i as u32,
                        chain_call_actions: parse_actions("pass,drop").unwrap(),
                        frags: false,
                    })
                    .collect(),
            )
            .unwrap();
            let conf = config(&slots);
            let ebpf = load_new(&conf).unwrap();
            let fd = program_fd(&ebpf).unwrap();
            let id = pinfs::obj_info(fd.as_fd()).unwrap().id;
            let read = read(id, 1, Path::new("/nonexistent"))
                .unwrap()
                .expect("recognised as a dispatcher");
            assert_eq!(read.version, 2);
            assert_eq!(read.programs.len(), n);
            for (i, p) in read.programs.iter().enumerate() {
                assert_eq!(p.priority, 10 * i as u32);
                assert_eq!(p.chain_call_bits, conf.chain_call_actions[i]);
            }
            let run = sys::prog_test_run(fd.as_fd(), &frame, 1).unwrap();
            assert_eq!(run.retval, 2, "{n} empty slots: XDP_PASS");
            // What an freplace into a slot needs of the target: its BTF,
            // with a function for every slot (libxdp and the kernel look
            // `progN` up by name).
            let (info, _) = sys::prog_info(fd.as_fd()).unwrap();
            assert_ne!(info.btf_id, 0, "loaded with its BTF");
            let data = sys::btf_data(info.btf_id).unwrap();
            let btf = aya_obj::btf::Btf::parse(&data, object::Endianness::default()).unwrap();
            for k in 0..crate::model::xdp::DISPATCHER_SLOTS {
                btf.id_by_type_name_kind(&slot_function(k), aya_obj::btf::BtfKind::Func)
                    .unwrap_or_else(|e| panic!("no BTF function {}: {e}", slot_function(k)));
            }
        }
    }
}
