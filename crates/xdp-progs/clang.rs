//! Compiling BPF C sources with clang, shared by the build scripts of
//! `xdp-progs` (the programs xdpctl ships) and `tests` (fixtures that must
//! never ship). Each build script includes this file with `#[path]`.
//!
//! NB: this runs inside build scripts, so errors are reported by panicking
//! with a message that names the file and the fix.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// The compiler to use: `$CLANG` if set, else `clang` from `PATH`.
pub fn clang() -> PathBuf {
    println!("cargo:rerun-if-env-changed=CLANG");
    env::var_os("CLANG").map_or_else(|| PathBuf::from("clang"), PathBuf::from)
}

/// `bpfel` or `bpfeb`, following the endianness of the target being built.
fn bpf_target() -> &'static str {
    match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    }
}

/// Where Debian and Ubuntu keep `asm/types.h` for the build's architecture.
fn multiarch_include() -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let triple = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        _ => return None,
    };
    let dir = PathBuf::from("/usr/include").join(triple);
    dir.is_dir().then_some(dir)
}

const INSTALL_HINT: &str = "install the build dependencies with: \
     apt-get install clang llvm libbpf-dev linux-libc-dev \
     (or run `make deps`)";

/// Compiles `src` into the BPF object `out`. `includes` are extra `-I` dirs.
pub fn compile(src: &Path, out: &Path, includes: &[&Path]) {
    let clang = clang();
    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", bpf_target()]);
    // Keep the object free of host-specific paths and the build reproducible.
    cmd.arg("-fno-ident");
    if let Some(dir) = multiarch_include() {
        cmd.arg("-I").arg(dir);
    }
    for dir in includes {
        cmd.arg("-I").arg(dir);
    }
    cmd.arg("-c").arg(src).arg("-o").arg(out);

    let output = match cmd.output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "cannot compile {}: {} was not found; {INSTALL_HINT}",
            src.display(),
            clang.display()
        ),
        Err(err) => panic!(
            "cannot run {} for {}: {err}",
            clang.display(),
            src.display()
        ),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("file not found") {
            format!("\nhint: a header is missing; {INSTALL_HINT}")
        } else {
            String::new()
        };
        panic!(
            "clang failed to compile {} ({}):\n{stderr}{hint}",
            src.display(),
            output.status
        );
    }
}
