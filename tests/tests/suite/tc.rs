//! `attach --tc` and `detach --tc`: sched_cls programs as legacy
//! direct-action `cls_bpf` filters at clsact (kernels without tcx), in
//! priority order as the traffic shows, seen by iproute2's `tc` and beside
//! its filters, deleted by `unload`; refusals that change nothing; and
//! SIGKILL at every state change of an attach and a detach.

use xdpctl_tests::{
    Bpffs, VethPair, fixture, hook_args, kill_at_each_step, kill_attach_and_detach, recorded,
    require_privileges, xdpctl,
};

/// The mark the recorder saw last: the digits of the programs that ran
/// before it, in their order.
fn order(fs: &Bpffs, pair: &VethPair) -> u64 {
    assert_eq!(pair.ping_b_from_a(1), 1, "the pair passes traffic");
    xdpctl(fs, ["-j", "map", "lookup", "tc/maps/seen", "0"])
        .ok()
        .json()["value"]
        .as_u64()
        .expect("a number")
}

/// `attach PROG DEV --netns NS --tc ingress ARGS` (`prog` Some) or
/// `detach DEV --netns NS --tc ingress ARGS`, for the pair's b end.
fn tc_args<'a>(pair: &'a VethPair, prog: Option<&'a str>, args: &[&'a str]) -> Vec<&'a str> {
    hook_args(pair, "--tc", prog, args)
}

/// tc's own filter at the pair's b end's ingress: `tc filter VERB ...
/// pref PREF [handle 1] bpf da pinned PIN`, running a program of xdpctl's
/// by its pin.
fn tc_own(fs: &Bpffs, pair: &VethPair, verb: &str, pref: &str, pin: &str) {
    let pin = fs.path().join(pin);
    let mut args = vec![
        "tc",
        "filter",
        verb,
        "dev",
        &pair.dev_b,
        "ingress",
        "pref",
        pref,
    ];
    if verb == "replace" {
        args.extend(["handle", "1"]);
    }
    args.extend(["bpf", "da", "pinned", pin.to_str().unwrap()]);
    pair.b.iproute2_with_obj(&args);
}

/// The pair's b end's ingress filters as `tc filter show` lists them:
/// (priority, program name), in priority order.
fn tc_says(pair: &VethPair) -> Vec<(u16, String)> {
    let out = pair
        .b
        .exec(&["tc", "filter", "show", "dev", &pair.dev_b, "ingress"]);
    out.lines()
        .filter(|l| l.contains(" id "))
        .map(|l| {
            let word = |after: &str| {
                l.split_whitespace()
                    .skip_while(|w| *w != after)
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned()
            };
            (word("pref").parse().unwrap(), word("name"))
        })
        .collect()
}

/// xdpctl's records under `tc/links/` and the filters that run: both as
/// program names, sorted.
fn tc_state(fs: &Bpffs, pair: &VethPair) -> (Vec<String>, Vec<String>) {
    let mut attached: Vec<String> = tc_says(pair).into_iter().map(|(_, n)| n).collect();
    attached.sort();
    (recorded(fs, "tc/links/tc_ingress:"), attached)
}

#[test]
fn tc_filters_run_in_priority_order_beside_tcs_own_and_unload_deletes_them() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let empty = fs.snapshot();
    let obj = fixture("tcx_order");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "tc"]).ok();

    // Explicit priorities and the default (after every filter there):
    // 10 one, 15 three, 20 two, 21 the recorder.
    let attach = |prog: &str, args: &[&str]| {
        let mut v = vec!["-j"];
        v.extend(tc_args(&pair, Some(prog), args));
        xdpctl(&fs, &v).ok().json()[0].clone()
    };
    attach("tc/tcx_two", &["--priority", "20"]);
    let rec = attach("tc/tcx_record", &[]);
    assert_eq!(rec["priority"], 21, "{rec}");
    assert_eq!(rec["hook"], "tc-ingress", "{rec}");
    let record = rec["pinned"].as_str().unwrap();
    assert!(
        record.contains(&format!(
            "/tc/links/tc_ingress:tcx_record:21:{}@",
            pair.dev_b
        )),
        "{rec}"
    );
    attach("tc/tcx_one", &["--priority", "10"]);
    attach("tc/tcx_three", &["--priority", "15"]);
    assert_eq!(order(&fs, &pair), 132);
    // iproute2 sees xdpctl's filters as its own kind.
    assert_eq!(
        tc_says(&pair),
        [
            (10, "tcx_one".to_owned()),
            (15, "tcx_three".to_owned()),
            (20, "tcx_two".to_owned()),
            (21, "tcx_record".to_owned())
        ]
    );
    let shown = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    let rows = shown["devices"][0]["tc_ingress"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rows.len(), 4, "{shown}");
    assert!(
        rows.iter()
            .all(|r| r["pinned"].as_array().unwrap().len() == 1),
        "each filter's record is shown: {shown}"
    );

    // load --replace: each filter runs the new program of its name (tc
    // filter replace, in place), and its record holds it.
    let id_of = |prog: &str| {
        xdpctl(&fs, ["-j", "prog", "show", prog]).ok().json()[0]["id"]
            .as_u64()
            .unwrap()
    };
    let old_one = id_of("tc/tcx_one");
    xdpctl(
        &fs,
        ["load", obj.to_str().unwrap(), "--pin", "tc", "--replace"],
    )
    .ok();
    let new_one = id_of("tc/tcx_one");
    assert_ne!(old_one, new_one);
    let shown = xdpctl(
        &fs,
        ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
    )
    .ok()
    .json();
    let first = &shown["devices"][0]["tc_ingress"][0];
    assert_eq!(first["prog_id"].as_u64(), Some(new_one), "{shown}");
    assert_eq!(first["priority"], 10, "{shown}");
    assert_eq!(first["pinned"].as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(order(&fs, &pair), 132);
    assert_eq!(xdpctl(&fs, ["doctor", "--check"]).code, 0);

    // Refused, changing nothing: a program twice on a hook, a priority in
    // use, egress under the legacy ingress qdisc (another pair).
    let before = (fs.snapshot(), tc_says(&pair));
    xdpctl(&fs, tc_args(&pair, Some("tc/tcx_one"), &[]))
        .fails_with(&["already runs tcx_one at tc-ingress", "detach it first"]);
    xdpctl(&fs, tc_args(&pair, Some("tc/tcx_two"), &[]))
        .fails_with(&["already runs tcx_two at tc-ingress"]);
    xdpctl(
        &fs,
        [
            "load",
            fixture("tc_pass").to_str().unwrap(),
            "--pin",
            "other",
        ],
    )
    .ok();
    let after_other = fs.snapshot();
    xdpctl(&fs, tc_args(&pair, Some("other"), &["--priority", "20"])).fails_with(&[
        "priority 20 at tc-ingress of",
        "holds the filter tcx_two",
        "give another --priority",
    ]);
    assert_eq!(
        (fs.snapshot(), tc_says(&pair)),
        (after_other, before.1.clone())
    );
    let legacy = VethPair::new();
    legacy
        .b
        .exec(&["tc", "qdisc", "add", "dev", &legacy.dev_b, "ingress"]);
    xdpctl(
        &fs,
        [
            "attach",
            "other",
            &legacy.dev_b,
            "--netns",
            legacy.b.name(),
            "--tc",
            "egress",
        ],
    )
    .fails_with(&["has the legacy `ingress` qdisc, which has no egress hook"]);
    xdpctl(&fs, ["unload", "other"]).ok();
    assert_eq!(fs.snapshot(), before.0, "nothing of the refusals is left");

    // Detached by program: its filter and its record go.
    let mut v = vec!["-j"];
    v.extend(tc_args(&pair, None, &["--prog", "tc/tcx_three"]));
    let gone = xdpctl(&fs, &v).ok().json();
    assert_eq!(gone[0]["prog_name"], "tcx_three", "{gone}");
    assert_eq!(gone[0]["priority"], 15, "{gone}");
    assert_eq!(order(&fs, &pair), 12);

    // Another tool replaces xdpctl's filter at priority 10 with its own
    // program: detach leaves theirs and says so; deleted by tc, doctor
    // finds the stale record and repairs it.
    tc_own(&fs, &pair, "replace", "10", "tc/tcx_two");
    let out = xdpctl(&fs, tc_args(&pair, None, &["--prog", "tc/tcx_one"])).ok();
    assert!(
        out.stderr.contains("is no longer xdpctl's")
            && out.stderr.contains("another tool replaced it"),
        "{}",
        out.stderr
    );
    assert_eq!(
        tc_says(&pair)[0],
        (10, "tcx_two".to_owned()),
        "theirs stays"
    );
    pair.b.exec(&[
        "tc",
        "filter",
        "del",
        "dev",
        &pair.dev_b,
        "ingress",
        "pref",
        "10",
    ]);
    pair.b.exec(&[
        "tc",
        "filter",
        "del",
        "dev",
        &pair.dev_b,
        "ingress",
        "pref",
        "20",
    ]);
    let check = xdpctl(&fs, ["doctor", "--check"]);
    assert_ne!(
        check.code, 0,
        "a record without its filter: {}",
        check.stdout
    );
    assert!(
        check.stdout.contains("tcx_two") && check.stdout.contains("is gone"),
        "{}",
        check.stdout
    );
    xdpctl(&fs, ["doctor"]).ok();
    assert_eq!(xdpctl(&fs, ["doctor", "--check"]).code, 0);
    xdpctl(
        &fs,
        tc_args(&pair, Some("tc/tcx_one"), &["--priority", "10"]),
    )
    .ok();
    assert_eq!(order(&fs, &pair), 1);

    // tc's own filter, running one of the load's programs by its pin,
    // first: it runs, and unload names it and leaves it.
    tc_own(&fs, &pair, "add", "5", "tc/tcx_three");
    assert_eq!(order(&fs, &pair), 31);
    let out = xdpctl(&fs, ["unload", "tc"]).ok();
    assert!(
        out.stderr.contains("from tc-ingress of") && out.stderr.contains("(tc filter)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("still running, attached by another tool")
            && out.stderr.contains("pref 5"),
        "{}",
        out.stderr
    );
    assert_eq!(
        tc_says(&pair),
        [(5, "tcx_three".to_owned())],
        "theirs stays"
    );
    assert_eq!(fs.snapshot(), empty);
}

#[test]
fn a_killed_tc_attach_or_detach_leaves_before_or_after() {
    require_privileges!();
    kill_attach_and_detach("tc", tc_state, "a record for every filter, no other");
}

#[test]
fn policies_hold_tc_filters_at_their_priorities_and_a_gone_device_leaves_no_records() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let obj = fixture("tcx_order");
    xdpctl(&fs, ["load", obj.to_str().unwrap(), "--pin", "tc"]).ok();
    let loaded = fs.snapshot();
    xdpctl(
        &fs,
        tc_args(&pair, Some("tc/tcx_two"), &["--priority", "4"]),
    )
    .ok();
    xdpctl(&fs, tc_args(&pair, Some("tc/tcx_one"), &[])).ok();
    xdpctl(&fs, tc_args(&pair, Some("tc/tcx_record"), &[])).ok();
    assert_eq!(order(&fs, &pair), 21);

    // Saved with their priorities; applied as saved, nothing changes;
    // applied where they are not, the same filters at the same places.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    let file = file.to_str().unwrap();
    let mut policy = xdpctl(&fs, ["-j", "save", "tc"]).ok().json();
    let saved: Vec<(String, u64)> = policy["tc"]
        .as_array()
        .expect("tc in the policy")
        .iter()
        .map(|t| {
            (
                t["prog"].as_str().unwrap().to_owned(),
                t["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        saved,
        [
            ("tcx_two".to_owned(), 4),
            ("tcx_one".to_owned(), 5),
            ("tcx_record".to_owned(), 6)
        ],
        "{policy}"
    );
    assert_eq!(policy["tc"][0]["netns"], pair.b.name(), "{policy}");
    assert!(policy.get("tcx").is_none(), "{policy}");
    std::fs::write(file, policy.to_string()).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "{plan}");
    xdpctl(&fs, tc_args(&pair, None, &[])).ok();
    assert!(tc_says(&pair).is_empty());
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 3, "{plan}");
    assert_eq!(
        tc_says(&pair),
        [
            (4, "tcx_two".to_owned()),
            (5, "tcx_one".to_owned()),
            (6, "tcx_record".to_owned())
        ]
    );
    assert_eq!(order(&fs, &pair), 21);

    // tcx_two moved before tcx_one, tcx_record left without a priority
    // (any will do), tcx_one out: one moved, one deleted.
    let entry = |prog: &str, prio: Option<u16>| {
        let mut e = serde_json::json!({"name": pair.dev_b, "netns": pair.b.name(), "hook": "ingress", "prog": prog});
        if let Some(p) = prio {
            e["priority"] = p.into();
        }
        e
    };
    policy["tc"] = serde_json::json!([entry("tcx_two", Some(2)), entry("tcx_record", None)]);
    std::fs::write(file, policy.to_string()).unwrap();
    let text = xdpctl(&fs, ["apply", "-f", file]).ok().stdout;
    assert!(
        text.contains("tc- ") && text.contains("tc+ ") && text.contains("(priority 2)"),
        "{text}"
    );
    assert_eq!(
        tc_says(&pair),
        [(2, "tcx_two".to_owned()), (6, "tcx_record".to_owned())]
    );
    assert_eq!(order(&fs, &pair), 2);
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "a second apply: {plan}");
    // Left out of a policy, the filters stay.
    let mut without = policy.clone();
    without.as_object_mut().unwrap().remove("tc");
    std::fs::write(file, without.to_string()).unwrap();
    let plan = xdpctl(&fs, ["-j", "apply", "-f", file]).ok().json();
    assert_eq!(plan["changes"], 0, "{plan}");

    // Refused, nothing changes: a program the load lacks, one listed twice,
    // priority 0, a device that is not there, a priority another tool's
    // filter holds (refused by the plan, before the load's filters go).
    tc_own(&fs, &pair, "add", "3", "tc/tcx_three");
    let before = (fs.snapshot(), tc_says(&pair));
    for (tc, says) in [
        (
            serde_json::json!([entry("no_such", None)]),
            "has no tc program no_such",
        ),
        (
            serde_json::json!([entry("tcx_one", None), entry("tcx_one", Some(9))]),
            "listed twice",
        ),
        (
            serde_json::json!([entry("tcx_one", Some(0))]),
            "0 is not a filter priority",
        ),
        (
            serde_json::json!([{"name": "nodev0", "netns": pair.b.name(), "hook": "egress", "prog": "tcx_one"}]),
            "tc: no device named nodev0",
        ),
        (
            serde_json::json!([entry("tcx_one", Some(3))]),
            "tc: priority 3 at ingress of",
        ),
    ] {
        policy["tc"] = tc;
        std::fs::write(file, policy.to_string()).unwrap();
        xdpctl(&fs, ["apply", "-f", file]).fails_with(&[says]);
    }
    assert_eq!((fs.snapshot(), tc_says(&pair)), before);

    // The device goes, and its filters with it: detach --tc removes the
    // records and the links directory it leaves empty.
    pair.b.exec(&["ip", "link", "del", &pair.dev_b]);
    let out = xdpctl(&fs, tc_args(&pair, None, &[])).ok();
    assert!(out.stderr.contains("is gone"), "{}", out.stderr);
    assert_eq!(fs.snapshot(), loaded);
}

#[test]
fn a_killed_replace_leaves_tcx_links_and_tc_filters_on_the_loads_programs() {
    require_privileges!();
    let obj = fixture("tcx_order");
    let obj = obj.to_str().unwrap();
    let points = kill_at_each_step(
        "replace with tcx and tc",
        |fs, pair| {
            xdpctl(fs, ["load", obj, "--pin", "tc"]).ok();
            // tcx_one at tcx, then tc filters: tcx_two, the recorder.
            xdpctl(fs, hook_args(pair, "--tcx", Some("tc/tcx_one"), &[])).ok();
            xdpctl(fs, tc_args(pair, Some("tc/tcx_two"), &[])).ok();
            xdpctl(fs, tc_args(pair, Some("tc/tcx_record"), &[])).ok();
        },
        |_| {
            ["load", obj, "--pin", "tc", "--replace"]
                .map(str::to_owned)
                .to_vec()
        },
        |fs, pair, (), n, _| {
            // Every hook runs a program pinned in the load (all old or all
            // new), each filter has its record, and the traffic takes them
            // in order.
            let pinned: Vec<u64> = ["tcx_one", "tcx_two", "tcx_record"]
                .iter()
                .map(|p| {
                    xdpctl(fs, ["-j", "prog", "show", &format!("tc/{p}")])
                        .ok()
                        .json()[0]["id"]
                        .as_u64()
                        .unwrap()
                })
                .collect();
            let shown = xdpctl(
                fs,
                ["-j", "net", "show", &pair.dev_b, "--netns", pair.b.name()],
            )
            .ok()
            .json();
            let dev = &shown["devices"][0];
            let running: Vec<u64> = [
                &dev["tcx_ingress"][0],
                &dev["tc_ingress"][0],
                &dev["tc_ingress"][1],
            ]
            .iter()
            .map(|r| r["prog_id"].as_u64().unwrap_or(0))
            .collect();
            assert_eq!(running, pinned, "N={n}: {shown}");
            assert!(
                dev["tc_ingress"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["pinned"].as_array().unwrap().len() == 1),
                "N={n}: a record for each filter: {shown}"
            );
            assert_eq!(xdpctl(fs, ["doctor", "--check"]).code, 0, "N={n}");
            assert_eq!(order(fs, pair), 12, "N={n}");
        },
    );
    assert!(points > 5, "{points}");
}

#[test]
fn load_replace_after_a_device_went_drops_its_links_and_records() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let obj = fixture("tcx_order");
    let obj = obj.to_str().unwrap();
    xdpctl(&fs, ["load", obj, "--pin", "tc"]).ok();
    xdpctl(&fs, hook_args(&pair, "--tcx", Some("tc/tcx_one"), &[])).ok();
    xdpctl(&fs, tc_args(&pair, Some("tc/tcx_two"), &[])).ok();
    pair.b.exec(&["ip", "link", "del", &pair.dev_b]);
    let out = xdpctl(&fs, ["load", obj, "--pin", "tc", "--replace"]).ok();
    assert!(
        out.stderr.contains("attached to nothing") && out.stderr.contains("dropped its record"),
        "{}",
        out.stderr
    );
    assert_eq!(xdpctl(&fs, ["doctor", "--check"]).code, 0);
    let links: Vec<String> = fs
        .snapshot()
        .into_iter()
        .filter(|e| e.contains("/links/"))
        .collect();
    assert!(links.is_empty(), "{links:?}");
    xdpctl(&fs, ["unload", "tc"]).ok();
}
