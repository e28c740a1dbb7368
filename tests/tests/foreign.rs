//! What other tools attached and pinned (ip, tc, bpftool, xdp-loader,
//! xdp-filter): net show tells it right and detach takes it off, each test
//! in its own namespaces, veth pair and private bpffs.

use std::path::Path;

use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode, tc::TcAttachOptions};
use serde_json::Value;
use xdpctl_tests::{Bpffs, NetNs, VethPair, fixture, require_privileges, sh, xdpctl};

fn net_show(fs: &Bpffs, ns: &str, dev: &str) -> Value {
    xdpctl(fs, ["-j", "net", "show", dev, "--netns", ns])
        .ok()
        .json()["devices"][0]
        .clone()
}

/// Runs a host command inside `ns` with nsenter, which (unlike `ip netns
/// exec`) keeps the test's bpffs mount visible.
#[track_caller]
fn in_ns(ns: &NetNs, cmd: &[&str]) -> String {
    let net = format!("--net={}", ns.path().display());
    let mut args = vec![net.as_str()];
    args.extend_from_slice(cmd);
    sh("nsenter", &args)
}

fn ifindex_in(ns: &NetNs, dev: &str) -> u32 {
    let _inside = ns.enter();
    nix::net::if_::if_nametoindex(dev).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A filter under the legacy `ingress` qdisc is one filter on ingress (the
/// qdisc answers a dump for clsact's egress parent with it too).
#[test]
fn legacy_ingress_qdisc_filter_is_shown_once_as_ingress() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    let dev = pair.dev_b.as_str();
    let obj = fixture("tc_pass");
    sh("tc", &["-n", ns, "qdisc", "add", "dev", dev, "ingress"]);
    pair.b.iproute2_with_obj(&[
        "tc",
        "filter",
        "add",
        "dev",
        dev,
        "ingress",
        "bpf",
        "da",
        "obj",
        s(&obj),
        "sec",
        "classifier",
    ]);
    let tc_says = sh("tc", &["-n", ns, "filter", "show", "dev", dev, "ingress"]);
    assert!(tc_says.contains("tc_pass"), "{tc_says}");

    let d = net_show(&fs, ns, dev);
    let ingress = d["tc_ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1, "one filter: {d}");
    assert_eq!(ingress[0]["qdisc"], "ingress", "{d}");
    assert_eq!(ingress[0]["prog_name"], "tc_pass", "{d}");
    assert_eq!(d["tc_egress"], Value::Array(vec![]), "not on egress: {d}");

    let text = xdpctl(&fs, ["net", "show", dev, "--netns", ns]).ok().stdout;
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("tc_pass")).collect();
    assert_eq!(rows.len(), 1, "one row:\n{text}");
    assert!(
        rows[0].trim_start().starts_with("ingress ") && !text.contains("clsact"),
        "shown as ingress, not clsact:\n{text}"
    );

    // The same filter under clsact says clsact/ingress.
    sh("tc", &["-n", ns, "qdisc", "del", "dev", dev, "ingress"]);
    sh("tc", &["-n", ns, "qdisc", "add", "dev", dev, "clsact"]);
    pair.b.iproute2_with_obj(&[
        "tc",
        "filter",
        "add",
        "dev",
        dev,
        "ingress",
        "bpf",
        "da",
        "obj",
        s(&obj),
        "sec",
        "classifier",
    ]);
    let d = net_show(&fs, ns, dev);
    assert_eq!(d["tc_ingress"][0]["qdisc"], "clsact", "{d}");
    assert_eq!(d["tc_ingress"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["tc_egress"], Value::Array(vec![]), "{d}");
    let text = xdpctl(&fs, ["net", "show", dev, "--netns", ns]).ok().stdout;
    assert!(text.contains("clsact/ingress"), "{text}");
}

/// Links another tool pinned (`bpftool link pin`, anywhere on the bpffs)
/// are shown with their pins; detach takes the XDP one off and leaves its
/// pin, which is not xdpctl's, where it is.
#[test]
fn links_other_tools_pinned_are_shown_with_their_pins() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let ns = pair.b.name();
    let dev = pair.dev_b.as_str();
    std::fs::create_dir(fs.path().join("other")).unwrap();
    let xdp_pin = fs.path().join("other/xdp_link");
    let tcx_pin = fs.path().join("tcx_link");
    {
        let _inside = pair.b.enter();
        let mut xdp_obj = aya::Ebpf::load_file(fixture("user_xdp")).unwrap();
        let prog: &mut Xdp = xdp_obj
            .program_mut("count_types")
            .unwrap()
            .try_into()
            .unwrap();
        prog.load().unwrap();
        prog.attach(dev, XdpMode::Skb).unwrap();
        let mut tc_obj = aya::Ebpf::load_file(fixture("tc_pass")).unwrap();
        let prog: &mut SchedClassifier = tc_obj.program_mut("tc_pass").unwrap().try_into().unwrap();
        prog.load().unwrap();
        prog.attach_with_options(
            dev,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .unwrap();
        drop(_inside);
        // bpftool pins the links; then the process that made them exits.
        let d = net_show(&fs, ns, dev);
        let xdp_link = d["xdp"][0]["link_id"].as_u64().unwrap().to_string();
        let tcx_link = d["tcx_ingress"][0]["link_id"].as_u64().unwrap().to_string();
        sh("bpftool", &["link", "pin", "id", &xdp_link, s(&xdp_pin)]);
        sh("bpftool", &["link", "pin", "id", &tcx_link, s(&tcx_pin)]);
    }

    let d = net_show(&fs, ns, dev);
    assert_eq!(d["xdp"][0]["attach"], "link", "{d}");
    assert_eq!(d["xdp"][0]["link_pinned"][0], s(&xdp_pin), "{d}");
    assert_eq!(d["tcx_ingress"][0]["link_pinned"][0], s(&tcx_pin), "{d}");
    let text = xdpctl(&fs, ["net", "show", dev, "--netns", ns]).ok().stdout;
    for needle in ["pinned other/xdp_link", "pinned tcx_link"] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }

    let before = fs.snapshot();
    let out = xdpctl(&fs, ["-j", "detach", dev, "--netns", ns]).ok();
    assert_eq!(out.json()["detached"][0]["attach"], "link");
    assert!(
        out.stderr.contains("stays pinned at") && out.stderr.contains(s(&xdp_pin)),
        "{}",
        out.stderr
    );
    assert_eq!(fs.snapshot(), before, "another tool's pins stay");
    assert_eq!(net_show(&fs, ns, dev)["xdp"], Value::Array(vec![]));
}

/// One program on two devices with the same ifindex in two namespaces: by
/// an unpinned link in one, over netlink in the other. Each side is shown
/// as what it is, and detach takes each off the right way.
#[test]
fn link_and_netlink_on_same_ifindex_in_two_namespaces_are_told_apart() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let (a, b) = (&pair.a, &pair.b);
    let (dev_a, dev_b) = (pair.dev_a.as_str(), pair.dev_b.as_str());
    let ifindex = ifindex_in(a, dev_a);
    assert_eq!(
        ifindex,
        ifindex_in(b, dev_b),
        "the test needs equal ifindexes"
    );

    let pin = fs.path().join("count");
    sh(
        "bpftool",
        &[
            "prog",
            "load",
            s(&fixture("user_xdp")),
            s(&pin),
            "type",
            "xdp",
        ],
    );
    in_ns(
        b,
        &[
            "ip",
            "link",
            "set",
            "dev",
            dev_b,
            "xdpgeneric",
            "pinned",
            s(&pin),
        ],
    );
    // The link side: held by this process, pinned nowhere.
    let inside = a.enter();
    let mut prog = Xdp::from_pin(&pin, aya_obj::programs::XdpAttachType::Interface).unwrap();
    prog.attach_to_if_index(ifindex, XdpMode::Skb).unwrap();
    drop(inside);

    let da = net_show(&fs, a.name(), dev_a);
    let db = net_show(&fs, b.name(), dev_b);
    assert_eq!(
        da["xdp"][0]["prog_id"], db["xdp"][0]["prog_id"],
        "{da} {db}"
    );
    assert_eq!(da["xdp"][0]["attach"], "link", "{da}");
    assert!(da["xdp"][0]["link_id"].is_u64(), "{da}");
    assert_eq!(db["xdp"][0]["attach"], "netlink", "{db}");
    let text = xdpctl(&fs, ["net", "show", dev_a, "--netns", a.name()])
        .ok()
        .stdout;
    assert!(
        text.contains(&format!("link {}", da["xdp"][0]["link_id"])),
        "{text}"
    );
    // Showing changed nothing.
    assert_eq!(net_show(&fs, b.name(), dev_b), db);

    let out = xdpctl(&fs, ["-j", "detach", dev_a, "--netns", a.name()]).ok();
    assert_eq!(
        out.json()["detached"][0]["attach"],
        "link",
        "{}",
        out.stdout
    );
    assert_eq!(
        net_show(&fs, a.name(), dev_a)["xdp"],
        Value::Array(vec![]),
        "off the link side while its owner still holds it"
    );
    assert_eq!(
        net_show(&fs, b.name(), dev_b),
        db,
        "the netlink side is untouched"
    );
    let out = xdpctl(&fs, ["-j", "detach", dev_b, "--netns", b.name()]).ok();
    assert_eq!(out.json()["detached"][0]["attach"], "netlink");
    assert_eq!(net_show(&fs, b.name(), dev_b)["xdp"], Value::Array(vec![]));
    drop(prog);
}
