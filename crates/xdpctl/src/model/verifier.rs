//! Making a verifier rejection readable: where it gave up, and why that
//! usually happens.

use std::fmt;

/// How many lines of the log to show: the verifier's last words.
const TAIL_LINES: usize = 12;

/// A program the verifier rejected.
#[derive(Debug)]
pub struct Rejection {
    /// The program's name.
    pub program: String,
    /// The syscall's error (usually EACCES or EINVAL).
    pub error: std::io::Error,
    /// The full verifier log.
    pub log: String,
    /// Where the full log was written, if it was asked for: the file, or
    /// why it could not be written there.
    pub saved_to: Option<(std::path::PathBuf, Option<String>)>,
}

impl std::error::Error for Rejection {}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the verifier rejected program {} ({})",
            self.program, self.error
        )?;
        let tail = tail(&self.log);
        if !tail.is_empty() {
            f.write_str("; where it gave up:")?;
            for line in tail {
                write!(f, "\n  | {line}")?;
            }
        }
        if let Some(h) = hint(&self.log) {
            write!(f, "\nhint: {h}")?;
        }
        match &self.saved_to {
            Some((path, None)) => write!(f, "\nthe full verifier log is in {}", path.display()),
            Some((path, Some(why))) => write!(
                f,
                "\nthe full verifier log could not be written to {}: {why}",
                path.display()
            ),
            None => f.write_str("\nwrite the full verifier log with --verifier-log FILE"),
        }
    }
}

/// The last lines of the log that say something (statistics trimmed).
pub fn tail(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("verification time") && !l.starts_with("stack depth"))
        .filter(|l| !l.starts_with("processed ") || !l.contains(" insns "))
        .collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
}

/// A one-line explanation for the common causes of a rejection.
pub fn hint(log: &str) -> Option<&'static str> {
    const HINTS: &[(&[&str], &str)] = &[
        (
            &["invalid access to packet", "math between pkt pointer"],
            "a packet access lacks a bounds check: compare every header pointer \
             with data_end (e.g. `if ((void *)(ip + 1) > data_end) return XDP_PASS;`) \
             before reading it, including after a variable offset such as ip->ihl * 4",
        ),
        (
            &["map_value_or_null", "_or_null'", "or_null"],
            "a map lookup result is used without a NULL check: test the pointer \
             bpf_map_lookup_elem returns (`if (!v) ...`) before dereferencing it",
        ),
        (
            &[
                "back-edge",
                "infinite loop detected",
                "loop is not bounded",
                "BPF program is too large",
            ],
            "a loop has no bound the verifier can prove: give it a constant trip \
             count (or `#pragma unroll` for a small one) or use bpf_loop()",
        ),
        (
            &["invalid mem access 'scalar'", "invalid mem access 'inv'"],
            "a pointer is dereferenced after the verifier lost track of it: \
             re-derive it from ctx or a checked map value",
        ),
        (
            &["invalid access to map value", "value_size="],
            "a map value is accessed out of its bounds (value_size= in the log is \
             the map's): check the offset against the value size, and if the map \
             was reused (--map, or pinned by name) that its value size is the one \
             the program was compiled for",
        ),
        (
            &["unknown func", "program of this type cannot use helper"],
            "the program calls a helper that this program type or kernel does not offer",
        ),
    ];
    // NB: the line where the verifier gave up says why; register states
    // above it mention `map_value_or_null` and the like in passing. So the
    // lines are tried from the last one up.
    tail(log).iter().rev().find_map(|line| {
        HINTS
            .iter()
            .find(|(needles, _)| needles.iter().any(|n| line.contains(n)))
            .map(|(_, h)| *h)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
0: R1=ctx() R10=fp0
; void *data_end = (void *)(long)ctx->data_end; @ bad.bpf.c:10
1: (61) r2 = *(u32 *)(r1 +4)
; if (eth->h_proto == 0) @ bad.bpf.c:12
3: (69) r1 = *(u16 *)(r1 +12)
invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)
R1 offset is outside of the packet
processed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
";

    #[test]
    fn tail_keeps_where_it_gave_up_and_drops_statistics() {
        let t = tail(LOG);
        assert_eq!(t.last(), Some(&"R1 offset is outside of the packet"));
        assert!(t.iter().any(|l| l.starts_with("invalid access to packet")));
    }

    #[test]
    fn hints_name_the_common_causes() {
        assert!(hint(LOG).unwrap().contains("data_end"));
        assert!(
            hint("R0 invalid mem access 'map_value_or_null'")
                .unwrap()
                .contains("NULL")
        );
        assert!(
            hint("back-edge from insn 10 to 5")
                .unwrap()
                .contains("loop")
        );
        assert_eq!(hint("something else entirely"), None);
    }

    #[test]
    fn the_hint_follows_the_line_where_it_gave_up() {
        // A reused map with a smaller value than the program expects: the
        // NULL check is there, the register states above say or_null.
        let log = "\
5: (85) call bpf_map_lookup_elem#1    ; R0_w=map_value_or_null(id=1,off=0,ks=4,vs=4,imm=0)
6: (15) if r0 == 0x0 goto pc+2        ; R0_w=map_value(off=0,ks=4,vs=4,imm=0)
7: (79) r1 = *(u64 *)(r0 +8)
invalid access to map value, value_size=4 off=8 size=8
R0 min value is outside of the allowed memory range
processed 8 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
";
        let h = hint(log).unwrap();
        assert!(h.contains("value size"), "{h}");
        assert!(!h.contains("NULL"), "{h}");
    }
}
