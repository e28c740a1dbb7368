//! The processes that hold BPF programs open, from /proc: each fd that is
//! `anon_inode:bpf-prog` and the `prog_id:` of its fdinfo. bpftool finds
//! them with a BPF iterator, which a locked-down kernel refuses; /proc
//! works wherever xdpctl can read other processes' fds (root).

use std::collections::HashMap;

use serde::Serialize;

/// A process holding an object open.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Holder {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`comm`).
    pub comm: String,
}

/// Holders of every program held open, by program id, each process once
/// per program, sorted by pid.
pub fn programs() -> HashMap<u32, Vec<Holder>> {
    let mut out: HashMap<u32, Vec<Holder>> = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue; // gone, or not ours to read
        };
        let mut comm: Option<String> = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.as_os_str() != "anon_inode:bpf-prog" {
                continue;
            }
            let info = p.path().join("fdinfo").join(fd.file_name());
            let Some(id) = std::fs::read_to_string(info).ok().and_then(|t| prog_id(&t)) else {
                continue;
            };
            let comm = comm
                .get_or_insert_with(|| {
                    std::fs::read_to_string(p.path().join("comm"))
                        .map(|c| c.trim_end().to_owned())
                        .unwrap_or_default()
                })
                .clone();
            let v = out.entry(id).or_default();
            let h = Holder { pid, comm };
            if !v.contains(&h) {
                v.push(h);
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// The `prog_id:` of an fdinfo.
fn prog_id(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("prog_id:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prog_id_is_read_from_fdinfo() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nprog_type:\t6\n\
                    prog_jited:\t1\nprog_tag:\t6f987718e6b7d813\nmemlock:\t24576\n\
                    prog_id:\t140669\nrun_time_ns:\t0\nrun_cnt:\t0\n";
        assert_eq!(prog_id(text), Some(140_669));
        assert_eq!(prog_id("pos:\t0\n"), None);
    }
}
