//! `xdpctl chain`: a program behind the firewall gets what the firewall
//! passes and nothing it drops, by real traffic; swapping it under a
//! steady stream loses no packet; `unload` takes it out first; `load
//! --replace` of either end keeps the chain; and SIGKILL at every state
//! change of a chain change and of an upgrade of the program behind
//! leaves the chain holding the program its load holds.

use std::{
    net::UdpSocket,
    os::unix::process::ExitStatusExt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use xdpctl_tests::{Bpffs, VethPair, attach_generic, command, fixture, require_privileges, xdpctl};

/// `seen[slot]` of the chained programs' load `nx`.
fn seen(fs: &Bpffs, slot: u32) -> u64 {
    xdpctl(
        fs,
        ["-j", "map", "lookup", "nx/maps/seen", &slot.to_string()],
    )
    .ok()
    .json()["value"]
        .as_u64()
        .expect("a number")
}

/// The id of the program in `fw`'s chain, if any.
fn next(fs: &Bpffs) -> Option<u64> {
    xdpctl(fs, ["-j", "chain", "fw"]).ok().json()["next"]["prog_id"].as_u64()
}

/// The id of the program pinned at `pin`.
fn pinned_id(fs: &Bpffs, pin: &str) -> u64 {
    let j = xdpctl(fs, ["-j", "prog", "show", pin]).ok().json();
    j[0]["id"].as_u64().unwrap_or_else(|| panic!("{j}"))
}

/// The firewall (dropping UDP to port 9) on the pair's b end, and the
/// fixture's programs loaded as `nx`, `nx/next_a` behind the firewall.
fn setup(fs: &Bpffs, pair: &VethPair) {
    xdpctl(fs, ["load", "--pin", "fw"]).ok();
    xdpctl(fs, ["map", "update", "fw/maps/udp_ports", "9", "1"]).ok();
    let obj = fixture("chain_next");
    xdpctl(fs, ["load", obj.to_str().unwrap(), "--pin", "nx"]).ok();
    xdpctl(fs, ["chain", "fw", "nx/next_a"]).ok();
    attach_generic(fs, "fw", pair).ok();
}

/// A sender in a and a receiver of port 7777 in b.
fn sockets(pair: &VethPair) -> (UdpSocket, UdpSocket) {
    let rx = {
        let _in = pair.b.enter();
        UdpSocket::bind((pair.ip_b.as_str(), 7777)).unwrap()
    };
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let tx = {
        let _in = pair.a.enter();
        UdpSocket::bind((pair.ip_a.as_str(), 0)).unwrap()
    };
    (tx, rx)
}

/// Datagrams `rx` holds, read until it has none for a while.
fn drain(rx: &UdpSocket) -> u64 {
    let mut buf = [0u8; 64];
    let mut n = 0;
    while rx.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

#[test]
fn the_program_behind_the_firewall_gets_what_it_passes_and_swaps_without_loss() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    setup(&fs, &pair);
    let (tx, rx) = sockets(&pair);

    // Passed to port 7777: the firewall's pass, then next_a's; dropped to
    // port 9: next_a never sees them.
    for _ in 0..40 {
        tx.send_to(b"open", (pair.ip_b.as_str(), 7777)).unwrap();
        tx.send_to(b"shut", (pair.ip_b.as_str(), 9)).unwrap();
    }
    assert_eq!(drain(&rx), 40, "the passed datagrams arrive");
    assert_eq!((seen(&fs, 0), seen(&fs, 1)), (40, 0));
    let j = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    let x = &j["devices"][0]["xdp"][0];
    assert_eq!(x["prog_name"], "xdp_fw", "{j}");
    assert_eq!(x["chain"]["prog_name"], "next_a", "{j}");
    let table = xdpctl(&fs, ["net", "show", &pair.dev_b, "--netns", pair.b.name()])
        .ok()
        .stdout;
    assert!(
        table.contains("then") && table.contains("next_a"),
        "{table}"
    );

    // A steady stream while next_b takes over and hands back: every
    // datagram reaches one of them, and the receiver.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (stop, tx, dst) = (stop.clone(), tx.try_clone().unwrap(), pair.ip_b.clone());
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) || sent < 400 {
                tx.send_to(b"flow", (dst.as_str(), 7777)).unwrap();
                sent += 1;
                if sent.is_multiple_of(20) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            sent
        })
    };
    let reader = {
        let rx = rx.try_clone().unwrap();
        std::thread::spawn(move || drain(&rx))
    };
    for prog in ["nx/next_b", "nx/next_a", "nx/next_b"] {
        std::thread::sleep(Duration::from_millis(30));
        let j = xdpctl(&fs, ["-j", "chain", "fw", prog]).ok().json();
        assert!(
            j["next"]["prog_name"]
                .as_str()
                .is_some_and(|n| prog.ends_with(n)),
            "{j}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let received = reader.join().unwrap();
    let (a, b) = (seen(&fs, 0) - 40, seen(&fs, 2));
    assert!(a > 0 && b > 0, "both ran: next_a {a}, next_b {b}");
    assert_eq!(a + b, sent, "every datagram met one of them");
    assert_eq!(received, sent, "and none was lost");
    assert_eq!((seen(&fs, 1), seen(&fs, 3)), (0, 0), "nor any dropped one");

    // Refused, and nothing changes: the firewall itself, a program that
    // is not XDP, a load without a chain.
    let before = (next(&fs), fs.snapshot());
    xdpctl(&fs, ["chain", "fw", "fw"]).fails_with(&["tail-calls this chain itself"]);
    xdpctl(&fs, ["chain", "nx", "fw"]).fails_with(&["has no chain map"]);
    xdpctl(&fs, ["chain", "fw", "nx"]).fails_with(&["holds 2 XDP programs"]);
    assert_eq!((next(&fs), fs.snapshot()), before);

    // Unloading the program behind takes it out of the chain first: the
    // firewall passes on its own.
    let out = xdpctl(&fs, ["unload", "nx"]).ok();
    assert!(out.stderr.contains("out of the chain of"), "{}", out.stderr);
    assert_eq!(next(&fs), None);
    tx.send_to(b"open", (pair.ip_b.as_str(), 7777)).unwrap();
    assert_eq!(drain(&rx), 1);
    tx.send_to(b"shut", (pair.ip_b.as_str(), 9)).unwrap();
    assert_eq!(drain(&rx), 0);
}

#[test]
fn the_chain_survives_an_upgrade_of_either_end_and_a_kill_at_any_point() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    setup(&fs, &pair);
    let obj = fixture("chain_next");
    let obj = obj.to_str().unwrap();

    // The program behind, upgraded: the chain follows it to the new one.
    let old = pinned_id(&fs, "nx/next_a");
    assert_eq!(next(&fs), Some(old));
    xdpctl(&fs, ["load", obj, "--pin", "nx", "--replace"]).ok();
    let new = pinned_id(&fs, "nx/next_a");
    assert_ne!(new, old);
    assert_eq!(next(&fs), Some(new));
    // The firewall, upgraded: its chain map carries over.
    xdpctl(&fs, ["load", "--pin", "fw", "--replace"]).ok();
    assert_eq!(next(&fs), Some(new));
    let (tx, rx) = sockets(&pair);
    let before = seen(&fs, 0);
    tx.send_to(b"open", (pair.ip_b.as_str(), 7777)).unwrap();
    assert_eq!(drain(&rx), 1);
    assert_eq!(seen(&fs, 0), before + 1, "the new next_a counts it");

    // Killed at each state change of an upgrade of the program behind, and
    // of a swap to next_b and back: the next ordinary command leaves the
    // chain holding a program its load holds (the old or the new).
    for (what, args) in [
        ("upgrade", vec!["load", obj, "--pin", "nx", "--replace"]),
        ("swap", vec!["chain", "fw", "nx/next_b"]),
        ("swap back", vec!["chain", "fw", "nx/next_a"]),
    ] {
        for n in 1.. {
            let before = next(&fs).unwrap();
            let mut cmd = command(&fs);
            cmd.args(&args).env("XDPCTL_FAILPOINT", n.to_string());
            let out = cmd.output().unwrap();
            let killed = out.status.signal() == Some(9);
            assert!(
                killed || out.status.success(),
                "{what} at {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let now = next(&fs).expect("never an empty chain");
            let held = [pinned_id(&fs, "nx/next_a"), pinned_id(&fs, "nx/next_b")];
            assert!(
                held.contains(&now),
                "{what}, killed at {n}: the chain holds {now}, the load {held:?} (was {before})"
            );
            if !killed {
                assert!(
                    n > 1,
                    "{what}: no crash point: is the build's failpoint on?"
                );
                break;
            }
        }
    }
    assert_eq!(next(&fs), Some(pinned_id(&fs, "nx/next_a")));
}

#[test]
fn a_policy_names_the_chain_and_save_then_apply_keeps_it() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    setup(&fs, &pair);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    let file = file.to_str().unwrap();

    // Saved with the chain's pin; applied as saved, nothing changes.
    let mut policy = xdpctl(&fs, ["-j", "save", "fw"]).ok().json();
    assert_eq!(policy["chain"], "nx/next_a", "{policy}");
    std::fs::write(file, policy.to_string()).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "{plan}");

    // Another program: the plan says so, and apply puts it there.
    policy["chain"] = "nx/next_b".into();
    std::fs::write(file, policy.to_string()).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file, "--dry-run"])
        .ok()
        .json();
    assert_eq!(
        plan["chain"]["to"],
        fs.path().join("nx/next_b").to_str().unwrap(),
        "{plan}"
    );
    assert_eq!(next(&fs), Some(pinned_id(&fs, "nx/next_a")), "a dry run");
    let text = xdpctl(&fs, ["apply", "-f", file]).ok().stdout;
    assert!(text.contains("chain"), "{text}");
    assert_eq!(next(&fs), Some(pinned_id(&fs, "nx/next_b")));

    // Left out: left as it is; null: emptied.
    policy.as_object_mut().unwrap().remove("chain");
    std::fs::write(file, policy.to_string()).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "{plan}");
    assert_eq!(next(&fs), Some(pinned_id(&fs, "nx/next_b")));
    policy["chain"] = serde_json::Value::Null;
    std::fs::write(file, policy.to_string()).unwrap();
    let text = xdpctl(&fs, ["apply", "-f", file]).ok().stdout;
    assert!(text.contains("unchain"), "{text}");
    assert_eq!(next(&fs), None);
    // What `xdpctl chain` refuses, the plan refuses, a dry run too, and
    // nothing changes: no program there, the firewall itself, not XDP.
    let before = fs.snapshot();
    for (target, why) in [
        ("nx/nothing", "nothing is pinned at"),
        ("fw/xdp_fw", "cannot follow itself"),
        ("nx/maps/seen", "not a prog"),
    ] {
        policy["chain"] = target.into();
        std::fs::write(file, policy.to_string()).unwrap();
        xdpctl(&fs, ["apply", "-f", file, "--dry-run"]).fails_with(&["chain", why]);
    }
    assert_eq!(fs.snapshot(), before);
}

#[test]
fn a_loop_is_refused_and_a_chain_is_shown_whatever_attached_the_firewall() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    setup(&fs, &pair);
    // fw → fw2, then fw2 → fw would loop; fw2 → nx/next_a does not.
    xdpctl(&fs, ["load", "--pin", "fw2"]).ok();
    xdpctl(&fs, ["chain", "fw", "fw2"]).ok();
    let before = fs.snapshot();
    xdpctl(&fs, ["chain", "fw2", "fw"]).fails_with(&["leads through", "cannot loop"]);
    xdpctl(&fs, ["chain", "fw2", "fw2"]).fails_with(&["tail-calls this chain itself"]);
    assert_eq!(fs.snapshot(), before);
    xdpctl(&fs, ["chain", "fw2", "nx/next_a"]).ok();

    // The whole chain in the order packets take it: fw, fw2, next_a.
    let j = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    let chain = &j["devices"][0]["xdp"][0]["chain"];
    assert_eq!(chain["prog_name"], "xdp_fw", "{j}");
    assert_eq!(chain["then"]["prog_name"], "next_a", "{j}");
    assert!(chain["then"]["then"].is_null(), "{j}");
    let table = xdpctl(&fs, ["net", "show", &pair.dev_b, "--netns", pair.b.name()]).ok();
    let thens: Vec<&str> = table
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("then"))
        .collect();
    assert_eq!(thens.len(), 2, "{}", table.stdout);
    assert!(
        thens[0].contains("xdp_fw") && thens[1].contains("next_a"),
        "{}",
        table.stdout
    );

    // An object file where a loaded program goes: load it first.
    let obj = fixture("chain_next");
    xdpctl(&fs, ["chain", "fw", obj.to_str().unwrap()])
        .fails_with(&["is a file, not a pinned program", "load it first"]);

    // fw2 attached over netlink on the a end: its chain shown all the same.
    xdpctl(
        &fs,
        [
            "attach",
            "fw2",
            &pair.dev_a,
            "--netns",
            pair.a.name(),
            "--mode",
            "generic",
            "--netlink",
        ],
    )
    .ok();
    let j = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_a, "--netns", pair.a.name()],
    )
    .ok()
    .json();
    let x = &j["devices"][0]["xdp"][0];
    assert_eq!(x["attach"], "netlink", "{j}");
    assert_eq!(x["chain"]["prog_name"], "next_a", "{j}");
    assert!(x["chain"]["map"].is_null(), "{j}");

    // prog run says the program behind decides what the firewall passes.
    let out = xdpctl(
        &fs,
        [
            "prog",
            "run",
            "fw2",
            "--packet",
            "udp src=192.0.2.1 dport=7777",
        ],
    )
    .ok();
    assert!(
        out.stderr.contains("behind it in its chain"),
        "{}",
        out.stderr
    );
}

#[test]
fn doctor_names_a_program_only_a_chain_holds() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let obj = fixture("xdp_drop");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "d"]).ok();
    xdpctl(&fs, ["chain", "fw", "d/xdp_drop"]).ok();
    let j = xdpctl(&fs, ["-j", "doctor", "--check"]).ok().json();
    let text = j.to_string();
    assert!(!text.contains("pinned nowhere"), "{j}");
    // The pin goes behind xdpctl's back; the chain still holds the program.
    std::fs::remove_file(fs.path().join("d/xdp_drop")).unwrap();
    let j = xdpctl(&fs, ["-j", "doctor", "--check"]).json();
    let text = j.to_string();
    assert!(
        text.contains("pinned nowhere") && text.contains("\"foreign\""),
        "{j}"
    );

    // Another tool puts the firewall in its own chain: a loop, a problem.
    let map = fs.path().join("fw/maps/chain");
    let prog = fs.path().join("fw/xdp_fw");
    xdpctl_tests::sh(
        "bpftool",
        &[
            "map",
            "update",
            "pinned",
            map.to_str().unwrap(),
            "key",
            "0",
            "0",
            "0",
            "0",
            "value",
            "pinned",
            prog.to_str().unwrap(),
        ],
    );
    let out = xdpctl(&fs, ["-j", "doctor", "--check"]);
    let text = out.json().to_string();
    assert!(text.contains("loops back to it"), "{text}");
    assert_ne!(out.code, 0, "a loop is a problem");
}
