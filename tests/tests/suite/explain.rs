//! `xdpctl net explain` and the error of a refused native attach: on
//! veth, bridge, vxlan, macvlan and ifb in the test's namespaces, what the
//! explanation says native XDP will do is what the kernel then does.

use serde_json::Value;
use xdpctl_tests::{Bpffs, NetNs, VethPair, command, require_privileges, run, xdpctl};

/// `net explain DEV` in `ns`, as JSON: the device's object.
fn explained(fs: &Bpffs, ns: &NetNs, dev: &str) -> Value {
    let out = xdpctl(fs, ["-j", "net", "explain", dev, "--netns", ns.name()])
        .ok()
        .json();
    let devices = out["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1, "{out}");
    devices[0].clone()
}

/// `xdpctl attach fw/xdp_fw ARGS`, whether it succeeds or not.
fn attach(fs: &Bpffs, args: &[&str]) -> xdpctl_tests::Run {
    let mut c = command(fs);
    c.args(["attach", "fw/xdp_fw"]).args(args);
    run(c)
}

#[test]
fn each_kind_is_explained_as_the_kernel_then_decides() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let a = &pair.a;
    let ns = a.name();
    xdpctl(&fs, ["load", "--pin", "fw"]).ok();
    // Devices of every kind this kernel has, beside the pair's end.
    for cmd in [
        "ip link add xbr0 type bridge",
        "ip link add xvx0 type vxlan id 42 dstport 4789 local 10.99.0.1",
        "ip link add xifb0 type ifb",
        // A veth pair inside `a` whose ends' MTUs straddle the largest
        // frame a program without frags takes: veth checks the peer's.
        "ip link add xvj type veth peer name xvk",
        "ip link set xvj mtu 3506",
        "ip link set xvk mtu 3507",
    ] {
        a.exec(&cmd.split(' ').collect::<Vec<_>>());
    }
    a.exec(&[
        "ip",
        "link",
        "add",
        "link",
        &pair.dev_a,
        "name",
        "xmv0",
        "type",
        "macvlan",
    ]);
    for d in ["xbr0", "xvx0", "xifb0", "xvj", "xvk", "xmv0"] {
        a.exec(&["ip", "link", "set", d, "up"]);
    }

    let expect = [
        ("xbr0", "no", "bridge"),
        ("xvx0", "no", "vxlan"),
        ("xifb0", "no", "ifb"),
        ("xmv0", "no", "macvlan"),
        ("xvj", "frags-only", "veth"),
        ("xvk", "yes", "veth"),
        (pair.dev_a.as_str(), "yes", "veth"),
    ];
    for (dev, native, kind) in expect {
        let e = explained(&fs, a, dev);
        assert_eq!(e["native"], native, "{dev}: {e}");
        assert_eq!(e["kind"], kind, "{dev}: {e}");
        let why = e["why"].as_str().expect("why").to_owned();
        // What the kernel then does with a native attach.
        let tried = attach(&fs, &[dev, "--netns", ns]);
        if native == "yes" {
            tried.ok();
            xdpctl(&fs, ["detach", dev, "--netns", ns]).ok();
        } else {
            // Refused, with the same reason, in one line.
            tried.fails_with(&[
                &format!("native XDP refused on {dev}: {why}"),
                "net explain",
            ]);
            assert!(e["fix"].is_string(), "{dev}: {e}");
        }
    }
    // Where the macvlan's frames can be filtered natively: its lower device.
    let mv = explained(&fs, a, "xmv0");
    assert!(
        mv["fix"]
            .as_str()
            .unwrap()
            .starts_with(&format!("attach to {}", pair.dev_a)),
        "{mv}"
    );

    // An upper device (the macvlan) running a program takes its lower
    // device in any mode: explained, and the refusal says so.
    let generic = xdpctl(
        &fs,
        [
            "attach",
            "fw/xdp_fw",
            "xmv0",
            "--netns",
            ns,
            "--mode",
            "generic",
        ],
    )
    .ok();
    assert!(
        generic.stderr.contains("generic mode on xmv0")
            && generic
                .stderr
                .contains("Generic mode on xmv0 sees this one's only"),
        "{}",
        generic.stderr
    );
    let e = explained(&fs, a, &pair.dev_a);
    assert_eq!(e["native"], "no", "{e}");
    assert!(
        e["why"]
            .as_str()
            .unwrap()
            .contains("upper device xmv0 runs XDP program"),
        "{e}"
    );
    for mode in ["native", "generic"] {
        attach(&fs, &[&pair.dev_a, "--netns", ns, "--mode", mode]).fails_with(&[
            &format!("XDP refused on {}: its upper device xmv0", pair.dev_a),
            &format!("xdpctl detach xmv0 --netns {ns}"),
            &format!("see `xdpctl net explain {} --netns {ns}`", pair.dev_a),
        ]);
    }
    xdpctl(&fs, ["detach", "xmv0", "--netns", ns]).ok();

    // The pair's other end is in another namespace: its MTU is read there.
    pair.b
        .exec(&["ip", "link", "set", &pair.dev_b, "mtu", "9000"]);
    let e = explained(&fs, a, &pair.dev_a);
    assert_eq!(e["native"], "frags-only", "{e}");
    assert!(
        e["why"].as_str().unwrap().contains("peer's MTU 9000"),
        "{e}"
    );
    attach(&fs, &[&pair.dev_a, "--netns", ns]).fails_with(&["peer's MTU 9000", "lower the MTU"]);
    // Generic mode runs everywhere.
    xdpctl(
        &fs,
        [
            "attach",
            "fw/xdp_fw",
            &pair.dev_a,
            "--netns",
            ns,
            "--mode",
            "generic",
        ],
    )
    .ok();
    let e = explained(&fs, a, &pair.dev_a);
    assert_eq!(e["attached"][0]["mode"], "generic", "{e}");
    assert!(
        e["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("one mode at a time")),
        "{e}"
    );
}

#[test]
fn the_whole_namespace_in_80_columns_and_json() {
    require_privileges!();
    let fs = Bpffs::new();
    let ns = NetNs::new();
    ns.exec(&["ip", "link", "add", "xbr1", "type", "bridge"]);
    ns.exec(&[
        "ip", "link", "add", "xveth1", "type", "veth", "peer", "name", "xveth2",
    ]);
    let out = xdpctl(&fs, ["net", "explain", "--netns", ns.name()]).ok();
    for line in out.stdout.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line:?}");
    }
    assert!(out.stdout.starts_with("DEVICE"), "{}", out.stdout);
    for d in ["lo", "xbr1", "xveth1", "xveth2"] {
        assert!(
            out.stdout.contains(&format!("\n{d}: native XDP ")),
            "{d}: {}",
            out.stdout
        );
    }
    let j = xdpctl(&fs, ["-j", "net", "explain", "--netns", ns.name()])
        .ok()
        .json();
    assert_eq!(j["devices"].as_array().unwrap().len(), 4, "{j}");
    // The JIT's sysctl is the first namespace's, read before entering.
    let jit: u64 = std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(j["bpf_jit_enable"], jit, "{j}");
    // Bad input: one line naming the device and the way out.
    xdpctl(&fs, ["net", "explain", "nosuchdev0", "--netns", ns.name()])
        .fails_with(&["no device named nosuchdev0", ns.name()]);
}
