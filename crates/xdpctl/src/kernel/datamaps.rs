//! Global-data maps (`.rodata`, `.data`, `.bss`) created with their BTF,
//! as libbpf creates them: `btf_fd`, key type 0 and the section's DATASEC
//! as the value type. Every tool that reads such a map (`xdpctl map dump`,
//! `bpftool map dump`) then sees its variables by name and type.
//!
//! NB: aya 0.14 creates these maps without BTF (aya-obj parses the
//! sections as legacy maps), and has no way to hand it a map but a pin
//! path. So the maps are made here and pinned in a scratch directory that
//! the loader is pointed at (`EbpfLoader::map_pin_path`): aya opens them,
//! writes the section's initial bytes and freezes `.rodata`, as for maps
//! it made itself. The scratch pins go away on drop; the caller records
//! the scratch directory in the journal first, so that recovery removes
//! it when the process dies before that.

use std::{
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya_obj::{EbpfSectionKind, Object, btf::BtfFeatures};

use crate::{kernel::sys, model::btf::Btf};

/// Why the global-data maps could not be made with their types.
#[derive(Debug, thiserror::Error)]
pub enum DataMapError {
    /// The object's BTF could not be prepared.
    #[error("preparing the object's BTF: {0}")]
    Btf(String),
    /// A system call failed.
    #[error("{call} for {what}")]
    Syscall {
        /// The call (`BPF_BTF_LOAD`, `BPF_MAP_CREATE`, `BPF_OBJ_PIN`).
        call: &'static str,
        /// The map or object it was for.
        what: String,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
}

/// Global-data maps made with their BTF and pinned for the loader; the pins
/// are removed on drop (the maps live on in what the loader made of them).
#[derive(Debug)]
pub struct DataMaps {
    dir: PathBuf,
    pins: Vec<(String, PathBuf)>,
    untyped: Vec<DataMapError>,
}

impl DataMaps {
    /// The maps by object map name (`.rodata`) and scratch pin path.
    pub fn pins(&self) -> &[(String, PathBuf)] {
        &self.pins
    }

    /// Why some global-data maps could not be made with their types: the
    /// loader makes those without, as aya does.
    pub fn untyped(&self) -> &[DataMapError] {
        &self.untyped
    }
}

impl Drop for DataMaps {
    fn drop(&mut self) {
        for (_, pin) in &self.pins {
            pinfs::failpoint::step("unlink");
            let _ = std::fs::remove_file(pin);
        }
        pinfs::failpoint::step("rmdir");
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn is_data(m: &aya_obj::Map) -> bool {
    matches!(
        m.section_kind(),
        EbpfSectionKind::Data | EbpfSectionKind::Rodata | EbpfSectionKind::Bss
    )
}

/// Whether `object` has global-data maps other than those in `skip`.
pub fn wanted(object: &Object, skip: &[&str]) -> bool {
    object
        .maps
        .iter()
        .any(|(name, m)| is_data(m) && !skip.contains(&name.as_str()))
}

/// Creates the global-data maps of the object `bytes` with their BTF and
/// pins them below `scratch` (a fresh path on a bpffs), all but those named
/// in `skip` (maps the caller reuses). Sections without a DATASEC, and
/// those whose types the kernel refuses ([`DataMaps::untyped`]), are left
/// to the loader; only failing to pin is an error.
pub fn create(bytes: &[u8], scratch: &Path, skip: &[&str]) -> Result<DataMaps, DataMapError> {
    let mut maps = DataMaps {
        dir: scratch.to_owned(),
        pins: Vec::new(),
        untyped: Vec::new(),
    };
    match typed(bytes, skip, &mut maps.untyped) {
        Ok(made) if !made.is_empty() => pin_all(&mut maps, made)?,
        Ok(_) => {}
        Err(e) => maps.untyped.push(e),
    }
    Ok(maps)
}

/// The global-data maps of `bytes` made with their BTF, by name; a map the
/// kernel refuses is noted in `untyped` and left out.
fn typed(
    bytes: &[u8],
    skip: &[&str],
    untyped: &mut Vec<DataMapError>,
) -> Result<Vec<(String, OwnedFd)>, DataMapError> {
    let mut object = Object::parse(bytes).map_err(|e| DataMapError::Btf(e.to_string()))?;
    let mut wanted: Vec<(String, aya_obj::Map)> = object
        .maps
        .iter()
        .filter(|(name, m)| is_data(m) && !skip.contains(&name.as_str()))
        .map(|(n, m)| (n.clone(), m.clone()))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    // The kernel this runs on (6.x) takes every BTF kind; the fixups that
    // matter are the DATASEC sizes and offsets clang leaves at zero.
    let features = BtfFeatures::new(true, true, true, true, true, true, true, true);
    let Some(btf) = object
        .fixup_and_sanitize_btf(&features)
        .map_err(|e| DataMapError::Btf(e.to_string()))?
    else {
        return Ok(Vec::new());
    };
    let raw = btf.to_bytes();
    let types = Btf::parse(&raw).map_err(DataMapError::Btf)?;
    let btf_fd = sys::btf_load(&raw).map_err(|source| DataMapError::Syscall {
        call: "BPF_BTF_LOAD",
        what: "the object's BTF".into(),
        source,
    })?;
    let mut made = Vec::new();
    for (name, def) in &wanted {
        let Some(datasec) = types.datasec(name) else {
            continue;
        };
        let created = sys::map_create_typed(&sys::MapSpec {
            map_type: def.map_type(),
            name,
            key_size: def.key_size(),
            value_size: def.value_size(),
            max_entries: def.max_entries(),
            flags: def.map_flags(),
            btf: btf_fd.as_fd(),
            key_type: 0,
            value_type: datasec,
        });
        match created {
            Ok(fd) => made.push((name.clone(), fd)),
            Err(source) => untyped.push(DataMapError::Syscall {
                call: "BPF_MAP_CREATE",
                what: format!("map {name} with its BTF"),
                source,
            }),
        }
    }
    Ok(made)
}

/// Pins `made` in the scratch directory, for the loader.
fn pin_all(maps: &mut DataMaps, made: Vec<(String, OwnedFd)>) -> Result<(), DataMapError> {
    let scratch = maps.dir.clone();
    pinfs::mkdir_0700(&scratch).map_err(|source| DataMapError::Syscall {
        call: "mkdir",
        what: scratch.display().to_string(),
        source,
    })?;
    for (name, fd) in made {
        let pin = scratch.join(name.replace('.', "_"));
        pinfs::failpoint::step("BPF_OBJ_PIN");
        pinfs::obj_pin(fd.as_fd(), &pin).map_err(|e| DataMapError::Syscall {
            call: "BPF_OBJ_PIN",
            what: format!("map {name} at {}", pin.display()),
            source: std::io::Error::other(e),
        })?;
        maps.pins.push((name, pin));
    }
    Ok(())
}
