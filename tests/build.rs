//! Compiles the BPF test fixtures in `bpf/` (objects for tests only; they
//! never ship in the binary).

#[path = "../crates/xdp-progs/clang.rs"]
mod clang;

use std::{env, path::PathBuf};

/// Fixtures, by file stem (`bpf/<stem>.bpf.c`).
const FIXTURES: &[&str] = &[
    "user_xdp",
    "bad_bounds",
    "bad_null",
    "bad_value_size",
    "tc_pass",
    "tcx_order",
    "chain_next",
    "typed_maps",
    "xdp_drop",
    "xdp_pass",
    "xdp_reflect",
    "xdp_cookie_floor",
    "trafficgen",
    "seed_drop_udp",
    "seed_count_drop",
    "dissect",
    "fake_fw",
    "globals",
    "xdpfw_nocapture",
    "xdpfw_nommap",
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=../crates/xdp-progs/clang.rs");
    // xdpfw_nocapture and xdpfw_nommap include the firewall's source.
    println!("cargo:rerun-if-changed=../crates/xdp-progs/src/bpf");
    for stem in FIXTURES {
        let src = manifest.join("bpf").join(format!("{stem}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        clang::compile(&src, &out_dir.join(format!("{stem}.bpf.o")), &[]);
    }
}
