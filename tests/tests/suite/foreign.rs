//! What other tools attached and pinned (ip, tc, bpftool, xdp-loader,
//! xdp-filter): net show tells it right and detach takes it off, each test
//! in its own namespaces, veth pair and private bpffs.

use std::path::Path;

use aya::programs::{Xdp, XdpMode};
use serde_json::Value;
use xdpctl_tests::{Bpffs, NetNs, VethPair, fixture, require_privileges, sh, xdpctl};

fn net_show(fs: &Bpffs, ns: &str, dev: &str) -> Value {
    xdpctl(fs, ["-j", "net", "show", dev, "--netns", ns])
        .ok()
        .json()["devices"][0]
        .clone()
}

/// Runs another tool inside `ns` with the test's bpffs at /sys/fs/bpf.
///
/// NB: iproute2, xdp-filter and libxdp pin under /sys/fs/bpf, or when that
/// is no bpffs into the first one in /proc/mounts: another test's. So the
/// tool runs in a private mount namespace with the test's bpffs bound at
/// /sys/fs/bpf, entered with nsenter (`ip netns exec` would remount /sys).
#[track_caller]
fn in_ns(fs: &Bpffs, ns: &NetNs, cmd: &[&str]) -> String {
    let mut args = vec![
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount --bind \"$0\" /sys/fs/bpf && net=\"$1\" && shift && exec nsenter --net=\"$net\" \"$@\"",
    ];
    let root = s(fs.path()).to_owned();
    let net = ns.path().display().to_string();
    args.push(&root);
    args.push(&net);
    args.extend_from_slice(cmd);
    sh("unshare", &args)
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
    pair.b.tc_filter(dev, &obj);
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
    pair.b.tc_filter(dev, &obj);
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
        drop(_inside);
        let _tc_obj = pair.b.tcx_link(dev, &fixture("tc_pass"), false);
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
        &fs,
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

const DISPATCHER_OBJ: &str = "/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o";

/// `struct xdp_dispatcher_config` as the installed libxdp's dispatcher
/// object declares it (its BTF, dumped by bpftool): size and byte offset
/// of each member. The test fills the configuration from this, not from
/// xdpctl's idea of the layout.
fn dispatcher_layout() -> (usize, std::collections::HashMap<String, usize>) {
    let dump: Value = serde_json::from_str(&sh(
        "bpftool",
        &["-j", "btf", "dump", "file", DISPATCHER_OBJ],
    ))
    .unwrap();
    let config = dump["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "xdp_dispatcher_config")
        .expect("xdp_dispatcher_config in the dispatcher's BTF");
    let offsets = config["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["bits_offset"].as_u64().unwrap() as usize / 8,
            )
        })
        .collect();
    (config["size"].as_u64().unwrap() as usize, offsets)
}

/// libxdp's dispatcher, as xdp-loader leaves it: the real dispatcher
/// program from the installed libxdp, with a configuration for two
/// programs, attached over netlink, and its programs pinned where libxdp
/// pins them. net show lists each program with its priority and chain
/// actions, as `xdp-loader status` does.
///
/// NB: this kernel refuses freplace programs (lockdown), so libxdp cannot
/// build a dispatcher here (xdp-loader with two programs fails, with one it
/// falls back to a plain program). The programs pinned in the slots are
/// plain XDP programs and no `progN-link` exists; the dispatcher's stubs
/// are not replaced.
#[test]
fn libxdp_dispatcher_programs_are_shown_with_priorities_and_actions() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let (ns, dev) = (&pair.b, pair.dev_b.as_str());

    let (size, at) = dispatcher_layout();
    let mut conf = vec![0u8; size];
    conf[at["magic"]] = 236;
    conf[at["dispatcher_version"]] = 2;
    conf[at["num_progs_enabled"]] = 2;
    let put = |conf: &mut Vec<u8>, field: &str, slot: usize, v: u32| {
        let o = at[field] + 4 * slot;
        conf[o..o + 4].copy_from_slice(&v.to_ne_bytes());
    };
    let retval = 1 << 31;
    put(&mut conf, "chain_call_actions", 0, (1 << 2) | retval); // XDP_PASS
    put(
        &mut conf,
        "chain_call_actions",
        1,
        (1 << 1) | (1 << 2) | retval,
    );
    put(&mut conf, "run_prios", 0, 10);
    put(&mut conf, "run_prios", 1, 20);

    let mut obj = aya::EbpfLoader::new()
        .override_global("conf", conf.as_slice(), true)
        .load_file(DISPATCHER_OBJ)
        .unwrap();
    let disp: &mut Xdp = obj
        .program_mut("xdp_dispatcher")
        .unwrap()
        .try_into()
        .unwrap();
    disp.load().unwrap();
    let disp_pin = fs.path().join("disp");
    disp.pin(&disp_pin).unwrap();
    drop(obj);
    in_ns(
        &fs,
        ns,
        &[
            "ip",
            "link",
            "set",
            "dev",
            dev,
            "xdpgeneric",
            "pinned",
            s(&disp_pin),
        ],
    );
    let d = net_show(&fs, ns.name(), dev);
    let did = d["xdp"][0]["prog_id"].as_u64().unwrap();
    let ifindex = ifindex_in(ns, dev);
    let dir = fs.path().join(format!("xdp/dispatch-{ifindex}-{did}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ids = Vec::new();
    for (slot, stem) in [(0, "user_xdp"), (1, "xdp_pass")] {
        let pin = dir.join(format!("prog{slot}-prog"));
        sh(
            "bpftool",
            &["prog", "load", s(&fixture(stem)), s(&pin), "type", "xdp"],
        );
        ids.push(
            xdpctl(&fs, ["-j", "prog", "show", s(&pin)]).ok().json()[0]["id"]
                .as_u64()
                .unwrap(),
        );
    }

    let d = net_show(&fs, ns.name(), dev);
    let x = &d["xdp"][0];
    assert_eq!(x["prog_name"], "xdp_dispatcher", "{d}");
    assert_eq!(x["attach"], "netlink", "{d}");
    let disp = &x["dispatcher"];
    assert_eq!(disp["version"], 2, "{d}");
    assert_eq!(disp["pinned"], s(&dir), "{d}");
    let progs = disp["programs"].as_array().unwrap();
    assert_eq!(progs.len(), 2, "{d}");
    assert_eq!(progs[0]["slot"], 0);
    assert_eq!(progs[0]["prog_id"], ids[0], "{d}");
    assert_eq!(progs[0]["prog_name"], "count_types", "{d}");
    assert_eq!(progs[0]["priority"], 10, "{d}");
    assert_eq!(
        progs[0]["chain_call_actions"],
        serde_json::json!(["XDP_PASS"])
    );
    assert_eq!(progs[1]["prog_id"], ids[1], "{d}");
    assert_eq!(progs[1]["priority"], 20, "{d}");
    assert_eq!(
        progs[1]["chain_call_actions"],
        serde_json::json!(["XDP_DROP", "XDP_PASS"])
    );
    assert_eq!(progs[1]["link_id"], Value::Null);

    let text = xdpctl(&fs, ["net", "show", dev, "--netns", ns.name()])
        .ok()
        .stdout;
    for needle in [
        "libxdp dispatcher v2, 2 programs",
        "prog0",
        "count_types",
        "prio 10, chain XDP_PASS",
        "prio 20, chain XDP_DROP,XDP_PASS",
    ] {
        assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
    }

    // libxdp reads the same: xdp-loader status lists the programs in the
    // same order with the same priorities.
    let status = in_ns(&fs, ns, &["xdp-loader", "status", dev]);
    let rows: Vec<&str> = status
        .lines()
        .filter(|l| l.contains("count_types") || l.contains("xdp_pass"))
        .collect();
    assert_eq!(rows.len(), 2, "{status}");
    assert!(
        rows[0].contains("count_types") && rows[0].contains(" 10 "),
        "{status}"
    );
    assert!(rows[1].contains(" 20 "), "{status}");

    // Detach takes the dispatcher off; libxdp's pins are not xdpctl's.
    let before = fs.snapshot();
    let out = xdpctl(&fs, ["detach", dev, "--netns", ns.name()]).ok();
    assert!(
        out.stderr
            .contains(&format!("dispatcher's programs stay at {}", dir.display())),
        "{}",
        out.stderr
    );
    assert_eq!(net_show(&fs, ns.name(), dev)["xdp"], Value::Array(vec![]));
    assert_eq!(fs.snapshot(), before);
    // The way out the note names works.
    assert!(out.stderr.contains(&format!("xdp-loader clean {dev}")));
    in_ns(&fs, ns, &["xdp-loader", "clean", dev]);
    assert!(!dir.exists(), "xdp-loader clean removes libxdp's pins");
}

/// What xdp-filter does on this kernel: with freplace refused it loads its
/// program without a dispatcher, over netlink (and where freplace works,
/// behind a dispatcher). Either way net show names xdp-filter's program,
/// and detach takes it off.
#[test]
fn xdp_filter_program_is_shown_and_detached() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let (ns, dev) = (&pair.b, pair.dev_b.as_str());
    in_ns(&fs, ns, &["xdp-filter", "load", dev, "-m", "skb"]);
    let d = net_show(&fs, ns.name(), dev);
    let x = &d["xdp"][0];
    let names: Vec<&str> = match x.get("dispatcher") {
        Some(disp) => disp["programs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["prog_name"].as_str().unwrap_or("?"))
            .collect(),
        None => vec![x["prog_name"].as_str().unwrap()],
    };
    assert!(
        names.len() == 1 && names[0].starts_with("xdpfilt_"),
        "xdp-filter's one program: {d}"
    );
    assert_eq!(x["mode"], "generic", "{d}");
    xdpctl(&fs, ["detach", dev, "--netns", ns.name()]).ok();
    assert_eq!(net_show(&fs, ns.name(), dev)["xdp"], Value::Array(vec![]));
    // xdp-filter's own pins (its maps, under xdp-filter/) are its own.
    assert!(fs.path().join("xdp-filter").is_dir());
}

/// A program another tool pinned gets its link pinned in xdpctl's own
/// `_xdpctl/links/`, never in that tool's directory, and detach leaves the
/// bpffs as it was. A program of a load gets it in that load's `links/`,
/// which goes with the last link; a directory above a load is no load.
#[test]
fn link_pins_live_with_their_load_or_in_xdpctls_own_directory() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let (ns, dev) = (&pair.b, pair.dev_b.as_str());
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(ns.path()).unwrap());
    std::fs::create_dir(fs.path().join("bt")).unwrap();
    let prog = fs.path().join("bt/count");
    sh(
        "bpftool",
        &[
            "prog",
            "load",
            s(&fixture("user_xdp")),
            s(&prog),
            "type",
            "xdp",
        ],
    );
    let before = fs.snapshot();

    let att = xdpctl(
        &fs,
        [
            "-j",
            "attach",
            "bt/count",
            dev,
            "--netns",
            ns.name(),
            "--mode",
            "generic",
        ],
    )
    .ok()
    .json();
    let pin = fs.path().join(format!("_xdpctl/links/{dev}@{ino}"));
    assert_eq!(att[0]["attach"], "link", "{att}");
    assert_eq!(att[0]["link_pinned"][0], s(&pin), "{att}");
    assert!(pin.exists());
    assert!(
        !fs.path().join("bt/links").exists(),
        "nothing in bpftool's directory"
    );
    let d = net_show(&fs, ns.name(), dev);
    assert_eq!(d["xdp"][0]["link_pinned"][0], s(&pin), "{d}");
    assert_eq!(d["xdp"][0]["link_id"], att[0]["link_id"], "{d}");

    let out = xdpctl(&fs, ["-j", "detach", dev, "--netns", ns.name()]).ok();
    assert_eq!(out.json()["detached"][0]["link_pinned"][0], s(&pin));
    assert_eq!(net_show(&fs, ns.name(), dev)["xdp"], Value::Array(vec![]));
    assert_eq!(fs.snapshot(), before, "detach removes what attach made");

    // A load below a plain directory: the directory is not the load.
    xdpctl(&fs, ["load", "--pin", "par/child"]).ok();
    let loaded = fs.snapshot();
    xdpctl(
        &fs,
        [
            "attach",
            "par",
            dev,
            "--netns",
            ns.name(),
            "--mode",
            "generic",
        ],
    )
    .fails_with(&["par is not an xdpctl load directory"]);
    assert_eq!(fs.snapshot(), loaded);
    let att = xdpctl(
        &fs,
        [
            "-j",
            "attach",
            "par/child",
            dev,
            "--netns",
            ns.name(),
            "--mode",
            "generic",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        att[0]["link_pinned"][0],
        s(&fs.path().join(format!("par/child/links/{dev}@{ino}")))
    );
    xdpctl(&fs, ["detach", dev, "--netns", ns.name()]).ok();
    assert_eq!(fs.snapshot(), loaded, "links/ goes with its last link");
    xdpctl(
        &fs,
        [
            "attach",
            "par/child",
            dev,
            "--netns",
            ns.name(),
            "--mode",
            "generic",
        ],
    )
    .ok();
    xdpctl(&fs, ["unload", "par/child"]).ok();
    assert_eq!(
        net_show(&fs, ns.name(), dev)["xdp"],
        Value::Array(vec![]),
        "unload detaches its load's link"
    );
}
