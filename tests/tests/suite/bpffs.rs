//! pinfs on a real, private bpffs: staging, commit, cleanup, enumeration,
//! mounting.

use std::{fs, os::fd::AsFd, process::Command};

use aya::{Ebpf, programs::Xdp};
use xdpctl_tests::{Bpffs, fixture, require_privileges, xdpctl_bin};

/// A loaded program to pin (the user fixture: small and quick to verify).
fn program() -> Ebpf {
    let mut ebpf = Ebpf::load_file(fixture("user_xdp")).expect("loading the fixture");
    let prog: &mut Xdp = ebpf.program_mut("count_types").unwrap().try_into().unwrap();
    prog.load().unwrap();
    ebpf
}

fn prog_fd(ebpf: &Ebpf) -> std::os::fd::BorrowedFd<'_> {
    ebpf.program("count_types").unwrap().fd().unwrap().as_fd()
}

#[test]
fn a_staged_change_that_is_dropped_leaves_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let ebpf = program();
    let target = pinfs::validate(&fs.path().join("a/b/load")).unwrap();
    assert_eq!(target.missing.len(), 3);
    {
        let mut staging = pinfs::Staging::begin(&target, &fs.path().join("stage")).unwrap();
        staging.pin("prog", prog_fd(&ebpf)).unwrap();
        let map_path = staging.prepare("maps/ethertypes").unwrap();
        ebpf.map("ethertypes").unwrap().pin(&map_path).unwrap();
        assert!(!fs.snapshot().is_empty());
        // dropped here without commit
    }
    assert_eq!(
        fs.snapshot(),
        Vec::<String>::new(),
        "the parents a/ and a/b/ and the stage must go too"
    );
}

#[test]
fn commit_makes_every_pin_appear_with_its_kind_and_id() {
    require_privileges!();
    let fs = Bpffs::new();
    let ebpf = program();
    let target = pinfs::validate(&fs.path().join("load")).unwrap();
    let stage = fs.path().join("stage");
    let mut staging = pinfs::Staging::begin(&target, &stage).unwrap();
    let final_path = staging.pin("prog", prog_fd(&ebpf)).unwrap();
    assert_eq!(final_path, target.path.join("prog"));
    assert!(!final_path.exists(), "nothing appears before commit");
    let map_path = staging.prepare("maps/ethertypes").unwrap();
    ebpf.map("ethertypes").unwrap().pin(&map_path).unwrap();
    let dir = staging.commit().unwrap();

    let pins = pinfs::list(&dir).unwrap();
    let kinds: Vec<(String, pinfs::Kind)> = pins
        .iter()
        .map(|p| {
            (
                p.path.strip_prefix(&dir).unwrap().display().to_string(),
                p.kind,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("maps/ethertypes".to_owned(), pinfs::Kind::Map),
            ("prog".to_owned(), pinfs::Kind::Prog)
        ]
    );
    let info = pinfs::obj_info(prog_fd(&ebpf)).unwrap();
    assert_eq!(pins[1].id, info.id, "the pin is the loaded program");
    assert!(!stage.exists(), "the stage became the load");

    // A second change into the same place is refused, naming the pins.
    let again = pinfs::Staging::begin(&target, &stage).unwrap();
    match again.commit() {
        Err(pinfs::Error::Occupied { pins, .. }) => assert_eq!(pins, 2),
        other => panic!("expected Occupied, got {other:?}"),
    }
    assert!(!stage.exists(), "a refused commit leaves no stage");

    let removed = pinfs::remove_all(&dir).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(!dir.exists());
    assert!(
        pinfs::remove_all(&dir).unwrap().is_empty(),
        "removing twice is fine"
    );
}

#[test]
fn remove_all_never_leaves_its_mount() {
    require_privileges!();
    let fs = Bpffs::new();
    let other = Bpffs::new();
    let ebpf = program();
    pinfs::obj_pin(prog_fd(&ebpf), &other.path().join("theirs")).unwrap();
    fs::create_dir(fs.path().join("dir")).unwrap();
    // A symlink to another bpffs, and another bpffs mounted below.
    std::os::unix::fs::symlink(other.path(), fs.path().join("dir/link")).unwrap();
    let mounted = fs.path().join("dir/mnt");
    fs::create_dir(&mounted).unwrap();
    nix::mount::mount(
        Some("bpf"),
        &mounted,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    pinfs::obj_pin(prog_fd(&ebpf), &mounted.join("inner")).unwrap();
    let err = pinfs::remove_all(&fs.path().join("dir")).unwrap_err();
    assert!(matches!(err, pinfs::Error::OtherMount { .. }), "{err}");
    assert!(other.path().join("theirs").exists(), "followed a symlink");
    assert!(mounted.join("inner").exists(), "crossed into a mount");
    nix::mount::umount2(&mounted, nix::mount::MntFlags::MNT_DETACH).unwrap();
}

#[test]
fn ensure_mounted_mounts_only_when_allowed() {
    require_privileges!();
    let plain = tempfile::tempdir().unwrap();
    assert!(matches!(
        pinfs::ensure_mounted(plain.path(), false),
        Err(pinfs::Error::NotBpffs { .. })
    ));
    assert!(!pinfs::is_bpffs(plain.path()).unwrap());
    let root = plain.path().join("bpf");
    assert!(pinfs::ensure_mounted(&root, true).unwrap(), "should mount");
    assert!(pinfs::is_bpffs(&root).unwrap());
    assert!(
        !pinfs::ensure_mounted(&root, true).unwrap(),
        "already mounted: no second mount"
    );
    nix::mount::umount2(&root, nix::mount::MntFlags::MNT_DETACH).unwrap();
}

/// With nothing at /sys/fs/bpf, `load` mounts bpffs there (as bpftool
/// does), and `--no-mount` refuses instead. Run in a private mount
/// namespace so the host's /sys/fs/bpf is never touched.
#[test]
fn load_mounts_the_default_bpffs_when_missing() {
    require_privileges!();
    let bin = xdpctl_bin();
    let script = format!(
        "set -e
         umount -l /sys/fs/bpf 2>/dev/null || true
         if {bin} --no-mount load --pin xdpfw 2>err; then echo no-mount-loaded; fi
         cat err
         {bin} load --pin xdpfw >/dev/null
         stat -f -c %T /sys/fs/bpf
         ls /sys/fs/bpf/xdpfw",
        bin = bin.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_remove("XDPCTL_BPFFS")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        !stdout.contains("no-mount-loaded"),
        "--no-mount must not load: {stdout}"
    );
    assert!(
        stdout.contains(
            "/sys/fs/bpf is not on a bpffs mount (mount one with: mount -t bpf bpf /sys/fs/bpf)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("bpf_fs"),
        "bpffs should be mounted: {stdout}"
    );
    assert!(
        stdout.contains("maps") && stdout.contains("xdp_fw"),
        "{stdout}"
    );
    assert!(stderr.contains("mounted bpffs at /sys/fs/bpf"), "{stderr}");
}
