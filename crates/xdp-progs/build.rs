//! Compiles the XDP programs in `src/bpf/` into BPF objects in `OUT_DIR`,
//! which `src/lib.rs` embeds into the binary.

#[path = "clang.rs"]
mod clang;

use std::{env, path::PathBuf};

/// Every program this crate ships, by file stem (`src/bpf/<stem>.bpf.c`).
const PROGRAMS: &[&str] = &["xdpfw", "xdp_dispatcher"];
/// Headers the programs include; a change to one rebuilds them all.
const HEADERS: &[&str] = &["xdpfw.h"];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let bpf_dir = manifest.join("src/bpf");

    println!("cargo:rerun-if-changed=clang.rs");
    for header in HEADERS {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(header).display());
    }
    for stem in PROGRAMS {
        let src = bpf_dir.join(format!("{stem}.bpf.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        clang::compile(&src, &out_dir.join(format!("{stem}.bpf.o")), &[&bpf_dir]);
    }
}
