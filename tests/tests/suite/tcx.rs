//! `attach --tcx` and `detach --tcx`: sched_cls programs at a device's tcx
//! hooks with pinned links owned by their load, placed with the kernel's
//! multi-program API, in the order the traffic then shows; a stale
//! revision refused; another tool's tcx link left alone; and SIGKILL at
//! every state change of an attach and a detach.

use serde_json::Value;
use xdpctl_tests::{
    Bpffs, VethPair, fixture, hook_args, kill_attach_and_detach, recorded, require_privileges,
    xdpctl,
};

/// The mark the recorder saw last: the digits of the programs that ran
/// before it, in their order.
fn seen(fs: &Bpffs) -> u64 {
    xdpctl(fs, ["-j", "map", "lookup", "tcx/maps/seen", "0"])
        .ok()
        .json()["value"]
        .as_u64()
        .expect("a number")
}

/// Pings b from a, then the order the programs ran in.
fn order(fs: &Bpffs, pair: &VethPair) -> u64 {
    assert_eq!(pair.ping_b_from_a(1), 1, "the pair passes traffic");
    seen(fs)
}

/// The tcx ingress programs of the pair's b end, in run order, by name.
fn shown(fs: &Bpffs, pair: &VethPair) -> Vec<String> {
    let j = xdpctl(
        fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    j["devices"][0]["tcx_ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prog_name"].as_str().unwrap().to_owned())
        .collect()
}

/// `xdpctl [-j] attach PROG DEV --netns NS --tcx ingress ARGS` (attach),
/// or `xdpctl [-j] detach DEV --netns NS --tcx ingress ARGS` (`prog`
/// None), for the pair's b end: the arguments.
fn tcx_args<'a>(pair: &'a VethPair, prog: Option<&'a str>, args: &[&'a str]) -> Vec<&'a str> {
    hook_args(pair, "--tcx", prog, args)
}

/// A tcx attach that works: its row.
fn attach(fs: &Bpffs, pair: &VethPair, prog: &str, place: &[&str]) -> Value {
    let mut args = vec!["-j"];
    args.extend(tcx_args(pair, Some(prog), place));
    xdpctl(fs, &args).ok().json()[0].clone()
}

#[test]
fn tcx_programs_run_in_the_order_asked_and_a_stale_revision_changes_nothing() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let empty = fs.snapshot();
    let obj = fixture("tcx_order");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "tcx"]).ok();

    // Appended, last, first, after another: 2, 1, 3, then the recorder.
    attach(&fs, &pair, "tcx/tcx_one", &[]);
    attach(&fs, &pair, "tcx/tcx_record", &["--last"]);
    attach(&fs, &pair, "tcx/tcx_two", &["--first"]);
    let row = attach(&fs, &pair, "tcx/tcx_three", &["--after", "tcx/tcx_one"]);
    assert_eq!(row["order"], 2, "{row}");
    assert_eq!(row["hook"], "tcx-ingress", "{row}");
    assert_eq!(order(&fs, &pair), 213);
    assert_eq!(
        shown(&fs, &pair),
        ["tcx_two", "tcx_one", "tcx_three", "tcx_record"]
    );
    let revision = row["revision"].as_u64().unwrap();

    // A program runs once a hook.
    xdpctl(&fs, tcx_args(&pair, Some("tcx/tcx_one"), &[]))
        .fails_with(&["already runs tcx_one at tcx-ingress", "detach it first"]);

    // Detached, then put back before the recorder at the revision the
    // last change reported; a revision one behind is refused and changes
    // nothing.
    let mut args = vec!["-j"];
    args.extend(tcx_args(&pair, None, &["--prog", "tcx/tcx_one"]));
    let gone = xdpctl(&fs, &args).ok().json();
    assert_eq!(gone[0]["prog_name"], "tcx_one", "{gone}");
    let now = gone[0]["revision"].as_u64().unwrap();
    assert!(now > revision, "{gone}");
    assert_eq!(order(&fs, &pair), 23);
    let before = (shown(&fs, &pair), fs.snapshot());
    let behind = (now - 1).to_string();
    xdpctl(
        &fs,
        tcx_args(
            &pair,
            Some("tcx/tcx_one"),
            &["--before", "tcx/tcx_record", "--expected-revision", &behind],
        ),
    )
    .fails_with(&[&format!(
        "is at revision {now}, not {}: it changed since",
        now - 1
    )]);
    assert_eq!(
        (shown(&fs, &pair), fs.snapshot()),
        before,
        "nothing changed"
    );
    attach(
        &fs,
        &pair,
        "tcx/tcx_one",
        &[
            "--before",
            "tcx/tcx_record",
            "--expected-revision",
            &now.to_string(),
        ],
    );
    assert_eq!(order(&fs, &pair), 231);

    // An XDP attach of a tc program says where it goes; a place that the
    // hook does not run is refused.
    xdpctl(
        &fs,
        [
            "attach",
            "tcx/tcx_one",
            &pair.dev_b,
            "--netns",
            pair.b.name(),
        ],
    )
    .fails_with(&["is a sched_cls program, not XDP", "--tcx ingress"]);

    // unload detaches every tcx link of the load, and the bpffs is as it
    // was before the load.
    let out = xdpctl(&fs, ["unload", "tcx"]).ok();
    assert!(out.stderr.contains("from tcx-ingress of"), "{}", out.stderr);
    assert!(shown(&fs, &pair).is_empty());
    assert_eq!(fs.snapshot(), empty);
}

#[test]
fn another_tools_tcx_link_is_ordered_around_and_left_alone() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    // Cilium's way: a tcx link held by its process (here, this test).
    let theirs = pair.b.tcx_link(&pair.dev_b, &fixture("tc_pass"), false);
    let obj = fixture("tcx_order");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "tcx"]).ok();
    let their_id = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json()["devices"][0]["tcx_ingress"][0]["prog_id"]
        .as_u64()
        .unwrap()
        .to_string();
    attach(&fs, &pair, "tcx/tcx_one", &["--before", &their_id]);
    attach(&fs, &pair, "tcx/tcx_record", &["--after", &their_id]);
    assert_eq!(shown(&fs, &pair), ["tcx_one", "tc_pass", "tcx_record"]);
    // tc_pass returns TC_ACT_OK, which ends the hook's run: the recorder
    // after it never sees a packet.
    assert_eq!(pair.ping_b_from_a(1), 1);
    xdpctl(&fs, ["unload", "tcx"]).ok();
    assert_eq!(shown(&fs, &pair), ["tc_pass"], "theirs stays");
    drop(theirs);
}

/// Whether xdpctl's tcx pins for the pair's b end and the links the
/// kernel runs there agree: (pinned, attached), by program name.
fn tcx_state(fs: &Bpffs, pair: &VethPair) -> (Vec<String>, Vec<String>) {
    let mut attached = shown(fs, pair);
    attached.sort();
    (recorded(fs, "tcx/links/tcx_ingress:"), attached)
}

#[test]
fn a_killed_tcx_attach_or_detach_leaves_before_or_after() {
    require_privileges!();
    kill_attach_and_detach("tcx", tcx_state, "a pin for every link, no other");
}

#[test]
fn policies_hold_tcx_links_and_a_gone_device_leaves_no_pins() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let obj = fixture("tcx_order");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "tcx"]).ok();
    let loaded = fs.snapshot();
    attach(&fs, &pair, "tcx/tcx_two", &[]);
    attach(&fs, &pair, "tcx/tcx_one", &[]);
    attach(&fs, &pair, "tcx/tcx_record", &[]);
    assert_eq!(order(&fs, &pair), 21);

    // Saved with its tcx links in run order; applied as saved, nothing
    // changes; applied where they are not, the same order again.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    let file = file.to_str().unwrap();
    let mut policy = xdpctl(&fs, ["-j", "save", "tcx"]).ok().json();
    let progs: Vec<&str> = policy["tcx"]
        .as_array()
        .expect("tcx in the policy")
        .iter()
        .map(|t| t["prog"].as_str().unwrap())
        .collect();
    assert_eq!(progs, ["tcx_two", "tcx_one", "tcx_record"], "{policy}");
    assert_eq!(policy["tcx"][0]["hook"], "ingress", "{policy}");
    assert_eq!(policy["tcx"][0]["netns"], pair.b.name(), "{policy}");
    std::fs::write(file, policy.to_string()).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "{plan}");
    xdpctl(&fs, tcx_args(&pair, None, &[])).ok();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 3, "{plan}");
    assert_eq!(order(&fs, &pair), 21);
    // Left out of a policy, the tcx links stay.
    let mut without = policy.clone();
    without.as_object_mut().unwrap().remove("tcx");
    std::fs::write(file, without.to_string()).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "{plan}");

    // tcx_one and tcx_two out of the policy, tcx_three in: two detached,
    // one appended.
    let entry = |prog: &str| serde_json::json!({"name": pair.dev_b, "netns": pair.b.name(), "hook": "ingress", "prog": prog});
    policy["tcx"] = serde_json::json!([entry("tcx_record"), entry("tcx_three")]);
    std::fs::write(file, policy.to_string()).unwrap();
    let text = xdpctl(&fs, ["apply", "-f", file]).ok().stdout;
    assert!(
        text.contains("tcx- ") && text.contains("tcx+ ") && text.contains("tcx_three"),
        "{text}"
    );
    assert_eq!(shown(&fs, &pair), ["tcx_record", "tcx_three"]);
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "a second apply: {plan}");

    // A program the load lacks, a device that is not there: refused,
    // nothing changes.
    let before = fs.snapshot();
    policy["tcx"] = serde_json::json!([entry("no_such")]);
    std::fs::write(file, policy.to_string()).unwrap();
    xdpctl(&fs, ["apply", "-f", file, "--dry-run"])
        .fails_with(&["tcx:", "has no tc program no_such"]);
    policy["tcx"] = serde_json::json!([entry("tcx_one"), entry("tcx_one")]);
    std::fs::write(file, policy.to_string()).unwrap();
    xdpctl(&fs, ["apply", "-f", file, "--dry-run"]).fails_with(&["tcx[1]", "listed twice"]);
    policy["tcx"] = serde_json::json!([{"name": "nodev0", "netns": pair.b.name(), "hook": "egress", "prog": "tcx_one"}]);
    std::fs::write(file, policy.to_string()).unwrap();
    xdpctl(&fs, ["apply", "-f", file]).fails_with(&["tcx: no device named nodev0"]);
    assert_eq!(fs.snapshot(), before);

    // The device goes, and its links with it: detach --tcx removes the pins
    // and the links directory it leaves empty.
    pair.b.exec(&["ip", "link", "del", &pair.dev_b]);
    let out = xdpctl(&fs, tcx_args(&pair, None, &[])).ok();
    assert!(out.stderr.contains("is gone"), "{}", out.stderr);
    assert_eq!(fs.snapshot(), loaded);
}

#[test]
fn unload_names_what_another_tool_attached_with_its_programs() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let obj = fixture("tc_pass");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "tcl"]).ok();
    // tc's own filter, running xdpctl's program by its pin.
    let pin = fs.path().join("tcl/tc_pass");
    pair.b
        .exec(&["tc", "qdisc", "add", "dev", &pair.dev_b, "clsact"]);
    pair.b.iproute2_with_obj(&[
        "tc",
        "filter",
        "add",
        "dev",
        &pair.dev_b,
        "ingress",
        "bpf",
        "da",
        "pinned",
        pin.to_str().unwrap(),
    ]);
    let out = xdpctl(&fs, ["unload", "tcl"]).ok();
    assert!(
        out.stderr
            .contains("still running, attached by another tool: program")
            && out.stderr.contains(&format!(
                "in a tc filter on {} in netns {} ingress",
                pair.dev_b,
                pair.b.name()
            )),
        "{}",
        out.stderr
    );
    // Named, and left alone: not xdpctl's.
    let shown = pair
        .b
        .exec(&["tc", "filter", "show", "dev", &pair.dev_b, "ingress"]);
    assert!(shown.contains("tc_pass"), "{shown}");
}

#[test]
fn a_tcx_link_another_tool_pinned_is_shown_with_its_pin_and_left_alone_both_ways() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    // Cilium's way: a tcx link its agent pins in the bpffs (here with
    // bpftool, under a directory of its own), outliving the process.
    let theirs = pair.b.tcx_link(&pair.dev_b, &fixture("tc_pass"), false);
    let show = || {
        xdpctl(
            &fs,
            ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
        )
        .ok()
        .json()["devices"][0]["tcx_ingress"]
            .clone()
    };
    let link_id = show()[0]["link_id"].as_u64().unwrap().to_string();
    std::fs::create_dir(fs.path().join("cilium")).unwrap();
    let pin = fs.path().join("cilium/tcx_ingress_link");
    xdpctl_tests::sh(
        "bpftool",
        &["link", "pin", "id", &link_id, pin.to_str().unwrap()],
    );
    drop(theirs);
    let shown = show();
    assert_eq!(shown[0]["prog_name"], "tc_pass", "{shown}");
    assert_eq!(
        shown[0]["link_pinned"][0].as_str(),
        Some(pin.to_str().unwrap()),
        "{shown}"
    );
    // xdpctl's own link before theirs; bpftool lists it; detach --tcx and
    // unload take xdpctl's off and leave theirs, pin and all.
    let obj = fixture("tcx_order");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "tcx"]).ok();
    let row = attach(&fs, &pair, "tcx/tcx_one", &["--first"]);
    let ours = row["link_id"].as_u64().unwrap().to_string();
    let listed = xdpctl_tests::sh("bpftool", &["link", "show", "id", &ours]);
    assert!(listed.starts_with(&format!("{ours}:")), "{listed}");
    assert_eq!(shown_names(&show()), ["tcx_one", "tc_pass"]);
    xdpctl(&fs, tcx_args(&pair, None, &[])).ok();
    assert_eq!(shown_names(&show()), ["tc_pass"]);
    attach(&fs, &pair, "tcx/tcx_two", &[]);
    xdpctl(&fs, ["unload", "tcx"]).ok();
    assert_eq!(shown_names(&show()), ["tc_pass"], "theirs stays");
    assert!(pin.exists(), "their pin stays");
    std::fs::remove_file(&pin).unwrap();
}

fn shown_names(rows: &Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["prog_name"].as_str().unwrap().to_owned())
        .collect()
}
