//! An error and its causes as one line: the one rule every message of
//! xdpctl follows.

use std::error::Error;

/// How a command a message suggests names the namespace it was given:
/// ` --netns NAME`, or nothing for the current one.
pub fn netns_arg(netns: Option<&str>) -> String {
    netns.map_or_else(String::new, |n| format!(" --netns {n}"))
}

/// `err` and its causes, `: `-separated, skipping a cause whose text its
/// parent already includes (libraries often repeat their source's message).
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut last = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if !last.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
            last = text;
        }
        cause = e.source();
    }
    out
}

/// Whether `err` comes of missing privileges: EPERM or EACCES anywhere in
/// its chain (the one rule for "you need root" hints and for readers told
/// they may not read).
pub fn denied(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|n| n == libc::EPERM || n == libc::EACCES)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_its_parent_repeats_is_said_once() {
        let inner = std::io::Error::other("no room");
        let outer = anyhow::Error::new(inner).context("pinning x: no room");
        assert_eq!(chain(outer.as_ref()), "pinning x: no room");
        let e = anyhow::anyhow!("disk full").context("writing y");
        assert_eq!(chain(e.as_ref()), "writing y: disk full");
    }
}
