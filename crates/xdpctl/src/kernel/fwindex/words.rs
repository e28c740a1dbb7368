//! The firewall's control words other than the indexes' modes: the
//! admission cap under a flood, and `ctl` words by name.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use xdp_progs::xdpfw::{self, Ctl};

use crate::kernel::{map::MapHandle, sys::update_flags};

/// Sets the firewall's admission cap (`ctl[AdmitCap]`, 0: none): under a
/// flood, a new source is counted in `pps` once it sent this many packets
/// in an epoch on one CPU (see `xdpfw.h`).
pub fn set_admit_cap(maps: &Path, packets_per_epoch: u64) -> Result<()> {
    let path = maps.join(xdpfw::maps::CTL);
    if !path.exists() {
        // A firewall from before the sketch counts every source exactly.
        return Ok(());
    }
    let ctl =
        MapHandle::open_pinned(&path).with_context(|| format!("opening {}", path.display()))?;
    if ctl.key_size() != 4 || ctl.value_len() != 8 || ctl.per_cpu() {
        bail!("{} is not the firewall's ctl map", path.display());
    }
    set_ctl_word(&ctl, Ctl::AdmitCap, packets_per_epoch)
}

/// The firewall's admission cap (0: none, or a firewall without one).
pub fn admit_cap_of(maps: &Path) -> Result<u64> {
    let path = maps.join(xdpfw::maps::CTL);
    if !path.exists() {
        return Ok(0);
    }
    let ctl =
        MapHandle::open_pinned(&path).with_context(|| format!("opening {}", path.display()))?;
    if ctl.key_size() != 4 || ctl.value_len() != 8 || ctl.per_cpu() {
        return Ok(0);
    }
    ctl_word(&ctl, Ctl::AdmitCap)
}

/// Word `w` of a firewall's `ctl` map.
pub fn ctl_word(ctl: &MapHandle, w: Ctl) -> Result<u64> {
    let mut v = [0u8; 8];
    ctl.lookup(&(w as u32).to_ne_bytes(), &mut v)?;
    Ok(u64::from_ne_bytes(v))
}

/// Sets word `w` of a firewall's `ctl` map.
pub fn set_ctl_word(ctl: &MapHandle, w: Ctl, value: u64) -> Result<()> {
    ctl.update(
        &(w as u32).to_ne_bytes(),
        &value.to_ne_bytes(),
        update_flags::ANY,
    )?;
    Ok(())
}

/// The admission cap for guard's `threshold` (packets per second): a source
/// at the threshold reaches it within a quarter of an epoch even if its
/// packets are spread over all `cpus`.
pub fn admit_cap(threshold: f64, cpus: usize) -> u64 {
    let per_epoch = threshold * xdpfw::EPOCH_NS as f64 / 1e9;
    ((per_epoch / (4.0 * cpus.max(1) as f64)).floor() as u64).max(1)
}
