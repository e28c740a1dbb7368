//! How an object is named on the command line: an id, a pinned path or a
//! name. Parsing only; resolving it to an object is the kernel layer's.

use std::{path::PathBuf, str::FromStr};

/// How an object is named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handle {
    /// By kernel id: `42` or `id:42`.
    Id(u32),
    /// By pinned path (anything with a `/`; relative: under --bpffs).
    Path(PathBuf),
    /// By name: a pin's file name under --bpffs, else the kernel's name.
    Name(String),
}

impl FromStr for Handle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("id:").unwrap_or(s);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits
                .parse()
                .map(Handle::Id)
                .map_err(|_| format!("id {digits} is out of range (ids are 32-bit)"));
        }
        if s.starts_with("id:") {
            return Err(format!("'{s}' is not an id; write id:<number>"));
        }
        if s.is_empty() {
            return Err("empty handle; give an id, a name or a pinned path".into());
        }
        if s.contains('/') {
            Ok(Handle::Path(PathBuf::from(s)))
        } else {
            Ok(Handle::Name(s.to_owned()))
        }
    }
}

/// `--map NAME=PINNED_PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapReuse {
    /// The map's name in the object.
    pub name: String,
    /// Where the map to reuse is pinned.
    pub path: PathBuf,
}

impl FromStr for MapReuse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(MapReuse {
                name: name.to_owned(),
                path: PathBuf::from(path),
            }),
            _ => Err(format!(
                "'{s}' is not NAME=PINNED_PATH (e.g. blocklist=/sys/fs/bpf/xdpfw/maps/blocklist)"
            )),
        }
    }
}

/// Why a name or path from the command line is refused, if it is: empty,
/// or holding a control character (a newline in a pin name would break
/// every listing that prints it).
pub fn bad_text(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".to_owned());
    }
    s.chars()
        .find(|c| c.is_control())
        .map(|c| format!("holds the control character {:?}", c))
}

/// The most entries a map may be given (`--max-entries`,
/// `XDPCTL_MAX_ENTRIES`, a policy's `load.max_entries`): 2^28.
pub const MAX_ENTRIES: u32 = 1 << 28;

/// Whether `n` entries is a size a map may be given; the error says the
/// range.
pub fn check_max_entries(n: u32) -> Result<u32, String> {
    if (1..=MAX_ENTRIES).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} entries: give 1 to {MAX_ENTRIES}"))
    }
}

/// `NAME=N`, a map's size (`--max-entries`, `XDPCTL_MAX_ENTRIES`): N from
/// 1 to [`MAX_ENTRIES`].
pub fn max_entries(s: &str) -> Result<(String, u32), String> {
    let (name, n) = s.split_once('=').ok_or_else(|| {
        format!(
            "'{}' is not NAME=N (like blocklist=1048576)",
            s.escape_debug()
        )
    })?;
    if let Some(why) = bad_text(name) {
        return Err(format!("the map name {name:?} {why}"));
    }
    let n = n
        .parse::<u32>()
        .ok()
        .and_then(|n| check_max_entries(n).ok())
        .ok_or_else(|| format!("'{}': N must be from 1 to {MAX_ENTRIES}", s.escape_debug()))?;
    Ok((name.to_owned(), n))
}
