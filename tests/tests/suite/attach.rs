//! attach, detach, net show and the hitless upgrade, on veth pairs between
//! network namespaces made by each test, with real traffic.

use std::{
    net::UdpSocket,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::Duration,
};

use aya::{
    Ebpf,
    programs::{FlowDissector, Xdp, XdpMode},
};
use serde_json::Value;
use xdpctl_tests::{Bpffs, VethPair, fixture, pins_below, require_privileges, sh, xdpctl};

fn net_show(fs: &Bpffs, ns: &str, dev: &str) -> Value {
    xdpctl(fs, ["-j", "net", "show", dev, "--netns", ns])
        .ok()
        .json()["devices"][0]
        .clone()
}

fn prog_id(fs: &Bpffs, path: &str) -> u64 {
    xdpctl(fs, ["-j", "prog", "show", path]).ok().json()[0]["id"]
        .as_u64()
        .unwrap()
}

fn icmp_drops(fs: &Bpffs) -> u64 {
    xdpctl(fs, ["-j", "map", "lookup", "icmp_drops", "0", "--sum"])
        .ok()
        .json()["value"]
        .as_u64()
        .unwrap()
}

#[test]
fn attached_firewall_outlives_xdpctl_and_drops_icmp_in_both_modes() {
    require_privileges!();
    // A mode has one name in every output, whichever name it was given by.
    for (mode, shown) in [
        ("generic", "generic"),
        ("native", "native"),
        ("driver", "native"),
    ] {
        let fs = Bpffs::new();
        let pair = VethPair::new();
        let ns = pair.b.name();
        assert_eq!(pair.ping_b_from_a(2), 2, "{mode}: baseline ping");
        xdpctl(&fs, ["load", "--pin", "fw"]).ok();
        let out = xdpctl(
            &fs,
            [
                "-j",
                "attach",
                "fw",
                &pair.dev_b,
                "--mode",
                mode,
                "--netns",
                ns,
            ],
        )
        .ok();
        let att = &out.json()[0];
        assert_eq!(att["mode"], shown, "{mode}: {att}");
        assert_eq!(att["attach"], "link");
        // Named after the device and its namespace's inode.
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(pair.b.path()).unwrap());
        let pin = fs
            .path()
            .join("fw/links")
            .join(format!("{}@{ino}", pair.dev_b));
        assert_eq!(att["link_pinned"][0], pin.to_str().unwrap());
        assert!(
            out.stderr.contains(&format!("in {shown} mode")),
            "{}",
            out.stderr
        );

        // xdpctl has exited; the program runs and, unconfigured, drops nothing.
        let dev = net_show(&fs, ns, &pair.dev_b);
        assert_eq!(
            dev["xdp"][0]["prog_id"].as_u64(),
            Some(prog_id(&fs, "fw/xdp_fw"))
        );
        assert_eq!(
            pair.ping_b_from_a(2),
            2,
            "{mode}: nothing dropped before configuring"
        );

        xdpctl(&fs, ["map", "update", "config", "0", r#"{"drop_icmp":1}"#]).ok();
        assert_eq!(pair.ping_b_from_a(4), 0, "{mode}: ICMP must be dropped");
        assert_eq!(icmp_drops(&fs), 4, "{mode}: one drop per echo request");

        let detached = xdpctl(&fs, ["-j", "detach", &pair.dev_b, "--netns", ns])
            .ok()
            .json();
        assert_eq!(detached["detached"][0]["attach"], "link");
        assert!(
            !pin.exists(),
            "{mode}: the link pin must go with the attachment"
        );
        assert_eq!(net_show(&fs, ns, &pair.dev_b)["xdp"], Value::Array(vec![]));
        assert_eq!(pair.ping_b_from_a(2), 2, "{mode}: detach restores traffic");
    }
}

#[test]
fn native_mode_on_a_device_without_it_fails_and_attaches_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    // Loopback has no native XDP (and every namespace has one).
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let before = fs.snapshot();
    xdpctl(&fs, ["attach", "fw", "lo", "--netns", pair.b.name()]).fails_with(&[
        "native XDP refused on lo: its driver has no native XDP (xdp-features: none)",
        "use generic mode (--mode generic)",
        "xdpctl net explain lo",
    ]);
    assert_eq!(fs.snapshot(), before, "no link pin may be left");
    assert_eq!(
        net_show(&fs, pair.b.name(), "lo")["xdp"],
        Value::Array(vec![])
    );
    // The way out the message names works.
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            "lo",
            "--netns",
            pair.b.name(),
            "--mode",
            "generic",
        ],
    )
    .ok();
}

#[test]
fn attaching_over_a_program_refuses_and_replace_swaps_it() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        [
            "load",
            fixture("user_xdp").to_str().unwrap(),
            "--pin",
            "other",
        ],
    )
    .ok();
    let first = xdpctl(
        &fs,
        [
            "-j",
            "attach",
            "fw",
            &pair.dev_b,
            "--mode",
            "generic",
            "--netns",
            ns,
        ],
    )
    .ok()
    .json();
    let link_id = first[0]["link_id"].clone();
    let fw_id = prog_id(&fs, "fw/xdp_fw");

    let err = xdpctl(
        &fs,
        [
            "attach",
            "other",
            &pair.dev_b,
            "--mode",
            "generic",
            "--netns",
            ns,
        ],
    )
    .fails_with(&["already has XDP program", "xdp_fw", "bpf_link", "--replace"]);
    assert!(err.stderr.contains(&fw_id.to_string()), "{}", err.stderr);

    let replaced = xdpctl(
        &fs,
        [
            "-j",
            "attach",
            "other",
            &pair.dev_b,
            "--mode",
            "generic",
            "--netns",
            ns,
            "--replace",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        replaced[0]["link_id"], link_id,
        "the same link now runs the new program"
    );
    let dev = net_show(&fs, ns, &pair.dev_b);
    assert_eq!(dev["xdp"][0]["prog_name"], "count_types");
    assert_eq!(dev["xdp"].as_array().unwrap().len(), 1);

    // Across modes there is nothing to swap atomically: refused.
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_b,
            "--mode",
            "native",
            "--netns",
            ns,
            "--replace",
        ],
    )
    .fails_with(&["generic mode", "detach it first"]);

    // Netlink attachments are swapped with XDP_FLAGS_REPLACE.
    let a = pair.a.name();
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_a,
            "--mode",
            "generic",
            "--netns",
            a,
            "--netlink",
        ],
    )
    .ok();
    xdpctl(
        &fs,
        [
            "attach",
            "other",
            &pair.dev_a,
            "--mode",
            "generic",
            "--netns",
            a,
            "--netlink",
            "--replace",
        ],
    )
    .ok();
    let dev_a = net_show(&fs, a, &pair.dev_a);
    assert_eq!(dev_a["xdp"][0]["attach"], "netlink");
    assert_eq!(dev_a["xdp"][0]["prog_name"], "count_types");
}

/// A replace moves the link to the new program's load: its pin moves to
/// that load's `links/`, `unload` of the replaced load leaves it attached,
/// and `unload` of the new one detaches it.
#[test]
fn replace_moves_the_link_to_the_new_programs_load() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    xdpctl(
        &fs,
        [
            "load",
            fixture("xdp_pass").to_str().unwrap(),
            "--pin",
            "other",
        ],
    )
    .ok();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let attach = |prog: &str, replace: bool| {
        let mut args = vec![
            "-j",
            "attach",
            prog,
            &pair.dev_b,
            "--netns",
            ns,
            "--mode",
            "generic",
        ];
        if replace {
            args.push("--replace");
        }
        xdpctl(&fs, args).ok().json()[0].clone()
    };
    let first = attach("other/xdp_pass", false);
    let link_id = first["link_id"].clone();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(pair.b.path()).unwrap());
    let name = format!("{}@{ino}", pair.dev_b);
    let fw_pin = fs.path().join("fw/links").join(&name);
    let other_links = fs.path().join("other/links");

    let replaced = attach("fw/xdp_fw", true);
    assert_eq!(replaced["link_id"], link_id, "the same link, updated");
    assert_eq!(replaced["link_pinned"], serde_json::json!([fw_pin]));
    let dev = net_show(&fs, ns, &pair.dev_b);
    assert_eq!(dev["xdp"][0]["prog_name"], "xdp_fw");
    assert_eq!(dev["xdp"][0]["link_pinned"], serde_json::json!([fw_pin]));
    assert!(fw_pin.exists());
    assert!(
        !other_links.exists(),
        "the replaced load's links/ is left empty and goes"
    );
    xdpctl(&fs, ["doctor", "--check"]).ok();

    // The replaced load is not the link's owner any more.
    let out = xdpctl(&fs, ["unload", "other"]).ok();
    assert!(!out.stderr.contains("detached"), "{}", out.stderr);
    let dev = net_show(&fs, ns, &pair.dev_b);
    assert_eq!(dev["xdp"][0]["prog_name"], "xdp_fw", "the firewall stays");
    assert_eq!(dev["xdp"][0]["link_id"], link_id);

    // The new one is: its unload detaches the firewall.
    let out = xdpctl(&fs, ["unload", "fw"]).ok();
    assert!(
        out.stderr.contains("detached program") && out.stderr.contains("(xdp_fw)"),
        "{}",
        out.stderr
    );
    assert!(
        net_show(&fs, ns, &pair.dev_b)["xdp"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(fs.snapshot().is_empty(), "{:?}", fs.snapshot());
}

#[test]
fn detach_removes_every_kind_of_attachment() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    let dev = pair.dev_b.as_str();
    let obj = fixture("user_xdp");
    let obj = obj.to_str().unwrap();

    // A link another program holds and never pinned.
    {
        let _inside = pair.b.enter();
        let mut ebpf = Ebpf::load_file(obj).unwrap();
        let prog: &mut Xdp = ebpf.program_mut("count_types").unwrap().try_into().unwrap();
        prog.load().unwrap();
        let ifindex = nix::net::if_::if_nametoindex(dev).unwrap();
        prog.attach_to_if_index(ifindex, XdpMode::Skb).unwrap();
        drop(_inside);
        let shown = net_show(&fs, ns, dev);
        assert_eq!(shown["xdp"][0]["attach"], "link", "{shown}");
        let out = xdpctl(&fs, ["-j", "detach", dev, "--netns", ns])
            .ok()
            .json();
        assert_eq!(out["detached"][0]["attach"], "link");
        assert_eq!(
            net_show(&fs, ns, dev)["xdp"],
            Value::Array(vec![]),
            "gone while its owner still holds it"
        );
    }

    // Netlink attachments made by iproute2, generic and driver mode.
    for (ip_mode, mode) in [("xdpgeneric", "generic"), ("xdpdrv", "native")] {
        pair.b.iproute2_with_obj(&[
            "ip", "link", "set", "dev", dev, ip_mode, "obj", obj, "sec", "xdp",
        ]);
        let shown = net_show(&fs, ns, dev);
        assert_eq!(shown["xdp"][0]["mode"], mode);
        assert_eq!(shown["xdp"][0]["attach"], "netlink");
        let out = xdpctl(&fs, ["-j", "detach", dev, "--netns", ns])
            .ok()
            .json();
        assert_eq!(out["detached"][0]["mode"], mode);
        assert_eq!(
            net_show(&fs, ns, dev)["xdp"],
            Value::Array(vec![]),
            "{mode}"
        );
        let link = pair.b.exec(&["ip", "link", "show", dev]);
        assert!(!link.contains("prog/xdp"), "{link}");
    }

    // Nothing attached: said, and not an error.
    let out = xdpctl(&fs, ["detach", dev, "--netns", ns]).ok();
    assert!(out.stderr.contains("nothing to detach"), "{}", out.stderr);
}

#[test]
fn net_show_lists_what_other_tools_attached() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    let dev = pair.dev_b.as_str();
    let xdp_obj = fixture("user_xdp");
    let tc_obj = fixture("tc_pass");

    pair.b.iproute2_with_obj(&[
        "ip",
        "link",
        "set",
        "dev",
        dev,
        "xdpgeneric",
        "obj",
        xdp_obj.to_str().unwrap(),
        "sec",
        "xdp",
    ]);
    sh("tc", &["-n", ns, "qdisc", "add", "dev", dev, "clsact"]);
    pair.b.tc_filter(dev, &tc_obj);
    // A tcx link, as Cilium makes them; held by this test.
    let _tcx = pair.b.tcx_link(dev, &tc_obj, true);
    // And a flow dissector on the namespace.
    let mut dissector_obj = Ebpf::load_file(fixture("dissect")).unwrap();
    let dissector: &mut FlowDissector = dissector_obj
        .program_mut("dissect")
        .unwrap()
        .try_into()
        .unwrap();
    dissector.load().unwrap();
    dissector
        .attach(std::fs::File::open(pair.b.path()).unwrap())
        .unwrap();

    let all = xdpctl(&fs, ["-j", "net", "show", "--netns", ns])
        .ok()
        .json();
    assert_eq!(all["netns"], ns);
    assert_eq!(all["flow_dissector"][0]["prog_name"], "dissect", "{all}");
    let devices = all["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "only the device with programs: {all}");
    let d = &devices[0];
    assert_eq!(d["name"], dev);
    assert_eq!(d["xdp"][0]["mode"], "generic");
    assert_eq!(d["xdp"][0]["attach"], "netlink");
    assert_eq!(d["xdp"][0]["prog_name"], "count_types");
    assert_eq!(d["tc_ingress"][0]["prog_name"], "tc_pass");
    assert_eq!(d["tc_ingress"][0]["direct_action"], true);
    assert_eq!(d["tc_ingress"][0]["protocol"], "all", "tc's default: {d}");
    assert!(
        d["tc_ingress"][0]["name"]
            .as_str()
            .unwrap()
            .contains("tc_pass"),
        "{d}"
    );
    assert_eq!(d["tcx_egress"][0]["prog_name"], "tc_pass");
    assert!(d["tcx_egress"][0]["link_id"].is_u64(), "{d}");
    assert_eq!(d["tcx_ingress"], Value::Array(vec![]));

    let text = xdpctl(&fs, ["net", "show", dev, "--netns", ns]).ok().stdout;
    for needle in [
        "xdp/generic",
        "count_types",
        "netlink",
        "clsact/ingress",
        "all direct-action",
        "tcx/egress",
        "link ",
    ] {
        assert!(text.contains(needle), "net show lacks {needle:?}:\n{text}");
    }
    drop(_tcx);
    drop(dissector_obj);

    xdpctl(&fs, ["net", "show", "nope0", "--netns", ns])
        .fails_with(&["no device named nope0 in network namespace"]);
    xdpctl(&fs, ["net", "show", "--netns", "no-such-ns"])
        .fails_with(&["network namespace no-such-ns"]);
}

#[test]
fn unload_detaches_links_and_netlink_attachments_everywhere() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    let id = prog_id(&fs, "fw/xdp_fw");
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_b,
            "--mode",
            "generic",
            "--netns",
            pair.b.name(),
        ],
    )
    .ok();
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_a,
            "--mode",
            "native",
            "--netns",
            pair.a.name(),
            "--netlink",
        ],
    )
    .ok();
    let out = xdpctl(&fs, ["-j", "unload", "fw"]).ok().json();
    let detached: Vec<&str> = out["detached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attach"].as_str().unwrap())
        .collect();
    assert_eq!(detached, ["link", "netlink"], "{out}");
    // Each with the mode it ran in, the link's too (one name per mode).
    let modes: Vec<&str> = out["detached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mode"].as_str().unwrap())
        .collect();
    assert!(
        modes.iter().all(|m| ["native", "generic"].contains(m)),
        "{out}"
    );
    assert_eq!(
        net_show(&fs, pair.b.name(), &pair.dev_b)["xdp"],
        Value::Array(vec![])
    );
    assert_eq!(
        net_show(&fs, pair.a.name(), &pair.dev_a)["xdp"],
        Value::Array(vec![])
    );
    assert_eq!(fs.snapshot(), Vec::<String>::new());
    xdpctl(&fs, ["prog", "show", &id.to_string()]).fails_with(&["no program has id"]);
}

#[test]
fn bad_attach_input_changes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        ["load", fixture("tc_pass").to_str().unwrap(), "--pin", "tc"],
    )
    .ok();
    let before = fs.snapshot();
    xdpctl(&fs, ["attach", "fw", "nope0", "--netns", ns])
        .fails_with(&["no device named nope0 in network namespace"]);
    xdpctl(&fs, ["attach", "fw/maps/pps", &pair.dev_b, "--netns", ns])
        .fails_with(&["is a pinned map, not a prog"]);
    xdpctl(&fs, ["attach", "tc/tc_pass", &pair.dev_b, "--netns", ns])
        .fails_with(&["sched_cls program, not XDP"]);
    xdpctl(&fs, ["attach", "fw", &pair.dev_b, "--netns", "no-such-ns"])
        .fails_with(&["network namespace no-such-ns"]);
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_b,
            "--netns",
            ns,
            "--mode",
            "offload",
        ],
    )
    .fails_with(&["offload"]);
    assert_eq!(fs.snapshot(), before);
    assert_eq!(net_show(&fs, ns, &pair.dev_b)["xdp"], Value::Array(vec![]));
}

/// Upgrading under a flood from a blocklisted source: not one of its
/// packets gets through, and the blocklist survives.
#[test]
fn hitless_upgrade_keeps_blocking_under_traffic() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    xdpctl(
        &fs,
        [
            "attach",
            "fw",
            &pair.dev_b,
            "--mode",
            "native",
            "--netns",
            pair.b.name(),
        ],
    )
    .ok();

    let receiver = {
        let _in_b = pair.b.enter();
        UdpSocket::bind((pair.ip_b.as_str(), 9000)).unwrap()
    };
    receiver
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let sender = {
        let _in_a = pair.a.enter();
        UdpSocket::bind((pair.ip_a.as_str(), 0)).unwrap()
    };
    sender.connect((pair.ip_b.as_str(), 9000)).unwrap();

    // The test can fail: before the source is blocked, packets arrive.
    for _ in 0..5 {
        sender.send(b"hello").unwrap();
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while receiver.recv(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 5, "baseline: unblocked packets must arrive");

    xdpctl(&fs, ["map", "update", "blocklist", &pair.ip_a, "1"]).ok();
    let old_id = prog_id(&fs, "fw/xdp_fw");

    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let rx = {
        let (stop, received) = (stop.clone(), received.clone());
        let receiver = receiver.try_clone().unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if receiver.recv(&mut buf).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let tx = {
        let (stop, sent) = (stop.clone(), sent.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if sender.send(b"flood").is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    thread::sleep(Duration::from_millis(200));
    // NB: checked once the flood stopped: a failed check must not leave
    // its threads flooding through the rest of the suite.
    let upgrades: Vec<_> = (0..3)
        .map(|_| xdpctl(&fs, ["load", "--pin", "fw", "--replace"]))
        .collect();
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    tx.join().unwrap();
    rx.join().unwrap();
    for out in upgrades {
        let out = out.ok();
        assert!(
            out.stderr.contains("1 attachment(s) switched"),
            "{}",
            out.stderr
        );
        // The blocklist is kept: not among the maps made new.
        assert!(
            out.stderr.contains("maps kept") && !out.stderr.contains("blocklist"),
            "{}",
            out.stderr
        );
    }

    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent > 1000,
        "the flood was too small to mean anything: {sent} packets"
    );
    assert_eq!(
        received.load(Ordering::Relaxed),
        0,
        "blocked packets got through during the upgrade ({sent} sent)"
    );
    let new_id = prog_id(&fs, "fw/xdp_fw");
    assert_ne!(new_id, old_id, "the program was replaced");
    assert_eq!(
        net_show(&fs, pair.b.name(), &pair.dev_b)["xdp"][0]["prog_id"].as_u64(),
        Some(new_id)
    );
    let entry = xdpctl(&fs, ["-j", "map", "lookup", "blocklist", &pair.ip_a])
        .ok()
        .json();
    assert_eq!(entry["value"], 1, "the blocklist survived the upgrade");
    let dropped = xdpctl(&fs, ["-j", "map", "lookup", "stats", "1"])
        .ok()
        .json()["value"]["packets"]
        .as_u64()
        .unwrap();
    assert!(
        dropped > sent / 2,
        "the firewall saw the flood: {dropped} of {sent} dropped"
    );
    // The load directory holds exactly the new load and the link.
    assert_eq!(
        pins_below(&fs.path().join("fw")).len(),
        xdp_progs::xdpfw::maps::ALL.len() + 3
    );
}

#[test]
fn upgrade_refuses_incompatible_maps_unless_reset() {
    require_privileges!();
    let fs = Bpffs::new();
    let obj = fixture("user_xdp");
    let obj = obj.to_str().unwrap();
    xdpctl(&fs, ["load", obj, "--pin", "u"]).ok();
    // A pin swapped by hand is not the load's: refused, never adopted.
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    std::fs::remove_file(fs.path().join("u/maps/ethertypes")).unwrap();
    let fd = pinfs::obj_get(&fs.path().join("fw/maps/udp_ports")).unwrap();
    use std::os::fd::AsFd;
    pinfs::obj_pin(fd.as_fd(), &fs.path().join("u/maps/ethertypes")).unwrap();
    let before = fs.snapshot();
    xdpctl(&fs, ["load", obj, "--pin", "u", "--replace"]).fails_with(&[
        "maps/ethertypes",
        "the manifest",
        "changed by hand",
    ]);
    assert_eq!(fs.snapshot(), before);

    // An object whose map of the same name has another shape.
    let fake = fixture("fake_fw");
    xdpctl(&fs, ["load", fake.to_str().unwrap(), "--pin", "f"]).ok();
    let before = fs.snapshot();
    xdpctl(&fs, ["load", "--pin", "f", "--replace"]).fails_with(&[
        "map blocklist",
        "value size is 8, the object wants 1",
        "--reset-maps",
    ]);
    assert_eq!(fs.snapshot(), before);
    let out = xdpctl(&fs, ["load", "--pin", "f", "--replace", "--reset-maps"]).ok();
    assert!(
        out.stderr.contains("maps reset: blocklist"),
        "{}",
        out.stderr
    );
    xdpctl(&fs, ["load", "--pin", "nothing-here", "--replace"])
        .fails_with(&["nothing is loaded at"]);
}
