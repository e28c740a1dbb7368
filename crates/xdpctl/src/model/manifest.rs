//! A load directory's manifest: what was loaded there, written atomically
//! with the pins (it is staged with them), so that every command can tell
//! a load directory from any other directory and knows what is in it.

use serde::{Deserialize, Serialize};

/// The manifest's format version.
pub const FORMAT: u32 = 1;

/// Where the manifest is pinned in a load directory.
pub const PIN: &str = "manifest";
/// Where a load pins its maps, relative to the load directory.
pub const MAPS_SUBDIR: &str = "maps";

/// xdpctl's own state directory at the root of each bpffs it uses
/// (journal, staging, pending confirmations, links of programs no load
/// holds): listings of pins leave it out (`pinfs::keep_private`); `xdpctl
/// doctor` shows it.
pub const STATE_DIR: &str = "_xdpctl";
/// Where attach pins links, relative to the load directory.
pub const LINKS_SUBDIR: &str = "links";
/// Names a program may not have: they are the load directory's own.
pub const RESERVED: [&str; 3] = [PIN, MAPS_SUBDIR, LINKS_SUBDIR];

/// What a load directory holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The xdpctl that wrote it.
    pub tool: String,
    /// Stays the same across `load --replace`: the load's identity.
    pub load_id: u64,
    /// New with every load and replace: which pins these are.
    pub generation: u64,
    /// The object: `built-in xdpfw`, or its canonical path (older
    /// versions recorded the path as given).
    pub object: String,
    /// A digest of the object's bytes ([`digest`]): tells whether a file
    /// (or a newer xdpctl's built-in firewall) is the object loaded here.
    #[serde(default)]
    pub object_digest: String,
    /// When, in Unix milliseconds.
    pub loaded_at_ms: u64,
    /// The programs, pinned at `<dir>/<name>`.
    pub programs: Vec<ProgEntry>,
    /// The maps, pinned at `<dir>/maps/<pin>`.
    pub maps: Vec<MapEntry>,
    /// Where links made by `attach` are pinned (`<dir>/links`).
    pub links: String,
}

/// A program of the load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgEntry {
    /// The function name, and its pin's name.
    pub name: String,
    /// The kernel id at load time.
    pub id: u32,
    /// `xdp` or `tc`.
    pub kind: String,
}

/// A map of the load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapEntry {
    /// The name in the object (`.rodata` and the like included).
    pub name: String,
    /// The pin's name under `maps/` (dots become underscores).
    pub pin: String,
    /// The kernel id at load time.
    pub id: u32,
    /// Type, key and value size, max entries, flags.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// Whether the map came from another pin (`--map`) or an earlier
    /// generation of this load, rather than being created by this load.
    pub reused: bool,
    /// Set when the object pins the map by name (`LIBBPF_PIN_BY_NAME`):
    /// it is also pinned outside the load, where every load of such an
    /// object shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<Shared>,
}

/// Where a map pinned by name is shared, and whether xdpctl made that pin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    /// `<--bpffs>/<name>`.
    pub path: std::path::PathBuf,
    /// Whether an xdpctl load made the pin (so the last load that uses it
    /// removes it); a pin another tool made is never removed.
    pub owned: bool,
}

/// The digest of an object's bytes: 64-bit FNV-1a, in hex. A change
/// detector, not a signature.
pub fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

impl Manifest {
    /// The manifest as bytes to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest serialises")
    }

    /// Parses a stored manifest, refusing other format versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("damaged: {e}"))?;
        if m.format != FORMAT {
            return Err(format!(
                "format {} (this xdpctl reads format {FORMAT})",
                m.format
            ));
        }
        for p in &m.programs {
            if p.name.is_empty() || p.name.contains('/') || RESERVED.contains(&p.name.as_str()) {
                return Err(format!("a program is named {:?}", p.name));
            }
        }
        for map in &m.maps {
            if map.pin.is_empty() || map.pin.contains('/') || map.pin.contains('.') {
                return Err(format!("a map is pinned as {:?}", map.pin));
            }
            if let Some(shared) = &map.shared
                && (!shared.path.is_absolute()
                    || shared
                        .path
                        .components()
                        .any(|c| matches!(c, std::path::Component::ParentDir)))
            {
                return Err(format!("a map is shared at {}", shared.path.display()));
            }
        }
        Ok(m)
    }

    /// The map pinned as `pin`.
    pub fn map(&self, pin: &str) -> Option<&MapEntry> {
        self.maps.iter().find(|m| m.pin == pin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            tool: "xdpctl".into(),
            load_id: 1,
            generation: 2,
            object: "built-in xdpfw".into(),
            object_digest: digest(b"x"),
            loaded_at_ms: 0,
            programs: vec![ProgEntry {
                name: "xdp_fw".into(),
                id: 5,
                kind: "xdp".into(),
            }],
            maps: vec![],
            links: LINKS_SUBDIR.into(),
        }
    }

    #[test]
    fn round_trips_and_refuses_traversal() {
        let m = manifest();
        assert_eq!(Manifest::from_bytes(&m.to_bytes()).unwrap(), m);
        let mut bad = manifest();
        bad.programs[0].name = "../x".into();
        assert!(Manifest::from_bytes(&bad.to_bytes()).is_err());
        let mut bad = manifest();
        bad.format = 9;
        assert!(
            Manifest::from_bytes(&bad.to_bytes())
                .unwrap_err()
                .contains("format 9")
        );
    }
}
