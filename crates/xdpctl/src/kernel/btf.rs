//! BTF objects from the kernel, parsed by the model's reader.

use std::io;

use crate::{kernel::sys, model::btf::Btf};

/// Loads the BTF object with this kernel id.
pub fn load(btf_id: u32) -> io::Result<Btf> {
    let buf = sys::btf_data(btf_id)?;
    Btf::parse(&buf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("BTF {btf_id}: {e}")))
}
