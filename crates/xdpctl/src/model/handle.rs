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
