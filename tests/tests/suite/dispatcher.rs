//! `attach --dispatcher`: the firewall in libxdp's dispatcher, beside other
//! libxdp users' programs. On a kernel that refuses `freplace` (lockdown,
//! as on this project's test machine) the join is refused with the reason
//! and changes nothing; on one that allows it, the firewall runs in the
//! dispatcher, drops what it drops, and `unload` takes it out. The
//! dispatcher object itself (recognised as libxdp's, passing packets with
//! its slots empty) is checked by a unit test of `kernel::dispatcher`.

use xdpctl_tests::{Bpffs, VethPair, attach_generic, require_privileges, xdpctl};

fn dispatcher_args<'a>(pair: &'a VethPair, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "attach",
        "fw",
        pair.dev_b.as_str(),
        "--netns",
        pair.b.name(),
        "--mode",
        "generic",
        "--dispatcher",
    ];
    v.extend_from_slice(extra);
    v
}

/// What runs at XDP on the pair's b end: (prog name, dispatcher version).
fn xdp_on(fs: &Bpffs, pair: &VethPair) -> Vec<(String, Option<u64>)> {
    let j = xdpctl(
        fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    j["devices"][0]["xdp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["prog_name"].as_str().unwrap().to_owned(),
                x["dispatcher"]["version"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn the_firewall_joins_libxdps_dispatcher_or_is_refused_with_the_reason() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let before = fs.snapshot();

    // Bad options: refused before anything is looked at.
    xdpctl(
        &fs,
        dispatcher_args(&pair, &["--chain-call", "pass,bounce"]),
    )
    .fails_with(&["--chain-call", "\"bounce\" is not an XDP action"]);
    let usage = xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_b,
            "--netns",
            pair.b.name(),
            "--run-priority",
            "10",
        ],
    );
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert!(usage.stderr.contains("--dispatcher"), "{}", usage.stderr);

    let out = xdpctl(&fs, dispatcher_args(&pair, &["--run-priority", "20"]));
    if out.code != 0 {
        // This kernel refuses freplace: said, and nothing changed (no
        // dispatcher, no pins, not even libxdp's directory).
        assert!(
            out.stderr.contains("this kernel refuses freplace programs")
                && out.stderr.contains("nothing was changed")
                && !out.stderr.contains("CAP_BPF"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert_eq!(fs.snapshot(), before);
        assert!(xdp_on(&fs, &pair).is_empty());
        // A record whose program runs in no dispatcher (the dispatcher was
        // detached behind xdpctl's back): doctor reports and removes it.
        let ino = std::fs::metadata(format!("/run/netns/{}", pair.b.name()))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap();
        std::fs::create_dir_all(fs.path().join("fw/links")).unwrap();
        let record = fs
            .path()
            .join(format!("fw/links/libxdp:xdp_fw:{}@{ino}", pair.dev_b));
        xdpctl_tests::sh(
            "bpftool",
            &[
                "prog",
                "pin",
                "pinned",
                fs.path().join("fw/xdp_fw").to_str().unwrap(),
                record.to_str().unwrap(),
            ],
        );
        let check = xdpctl(&fs, ["doctor", "--check"]);
        assert_ne!(check.code, 0, "{}", check.stdout);
        assert!(
            check.stdout.contains("runs in no libxdp dispatcher"),
            "{}",
            check.stdout
        );
        xdpctl(&fs, ["doctor"]).ok();
        assert!(!record.exists());
        assert_eq!(xdpctl(&fs, ["doctor", "--check"]).code, 0);
    } else {
        // The firewall runs in slot 0 of a version 2 dispatcher, drops
        // what it drops there, and leaves with its load.
        assert_eq!(xdp_on(&fs, &pair), [("xdp_dispatcher".to_owned(), Some(2))]);
        assert_eq!(pair.ping_b_from_a(1), 1);
        xdpctl(&fs, ["map", "update", "fw/maps/blocklist", &pair.ip_a, "1"]).ok();
        assert_eq!(
            pair.ping_b_from_a(1),
            0,
            "the firewall in the dispatcher drops"
        );
        xdpctl(&fs, dispatcher_args(&pair, &[])).fails_with(&["is in the dispatcher"]);
        xdpctl(&fs, ["unload", "fw"]).ok();
        assert!(
            xdp_on(&fs, &pair).is_empty(),
            "its last program gone, so is it"
        );
        assert_eq!(pair.ping_b_from_a(1), 1);
        return;
    }

    // A device that runs another program (not a dispatcher): refused,
    // naming it, on any kernel.
    let other = VethPair::new();
    attach_generic(&fs, "fw/xdp_fw", &other);
    let on_other = fs.snapshot();
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &other.dev_b,
            "--netns",
            other.b.name(),
            "--mode",
            "generic",
            "--dispatcher",
        ],
    )
    .fails_with(&[
        "runs program",
        "(xdp_fw) in generic mode, not a libxdp dispatcher",
    ]);
    assert_eq!(fs.snapshot(), on_other);
}
