//! Human tables fit the screen: every command's table fits 80 columns
//! without losing what a person needs (ids, names, types, pinned paths,
//! relative to the bpffs root), piped rows stay one line each, and in a
//! real 80-column terminal (tmux) `prog show` needs no wrapping by the
//! terminal.

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use xdpctl_tests::{Bpffs, Run, VethPair, command, fixture, require_privileges, run, sh, xdpctl};

const WIDTH: usize = 80;

/// The lines of `text` wider than `width` characters.
fn too_wide(text: &str, width: usize) -> Vec<String> {
    text.lines()
        .filter(|l| l.chars().count() > width)
        .map(|l| format!("{:>3}: {l}", l.chars().count()))
        .collect()
}

/// Runs xdpctl with `COLUMNS=80` and asserts that it succeeds and that
/// every line of its stdout fits.
#[track_caller]
fn fitted<const N: usize>(fs: &Bpffs, args: [&str; N]) -> Run {
    let mut cmd = command(fs);
    cmd.args(args).env("COLUMNS", WIDTH.to_string());
    let out = run(cmd).ok();
    let wide = too_wide(&out.stdout, WIDTH);
    assert!(
        wide.is_empty(),
        "`xdpctl {}` printed lines wider than {WIDTH} columns:\n{}\n--- stdout\n{}",
        out.args,
        wide.join("\n"),
        out.stdout
    );
    out
}

/// Runs xdpctl piped, without `COLUMNS` (as `xdpctl ... | grep` does).
#[track_caller]
fn piped<const N: usize>(fs: &Bpffs, args: [&str; N]) -> Run {
    let mut cmd = command(fs);
    cmd.args(args).env_remove("COLUMNS");
    run(cmd).ok()
}

/// The line of a table that starts with `first` (a row's first cell).
#[track_caller]
fn row<'a>(table: &'a str, first: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row starting with {first}:\n{table}"))
}

/// Asserts a table's header names exactly these columns.
#[track_caller]
fn header(table: &str, columns: &[&str]) {
    let first = table.lines().next().unwrap_or_default();
    assert_eq!(
        first.split_whitespace().collect::<Vec<_>>(),
        columns,
        "header:\n{table}"
    );
}

/// Asserts `line` holds every one of `cells` as a whole word.
#[track_caller]
fn has_cells(line: &str, cells: &[&str]) {
    let words: Vec<&str> = line.split_whitespace().collect();
    for cell in cells {
        assert!(words.contains(cell), "{cell:?} missing from row:\n{line}");
    }
}

fn id_of(fs: &Bpffs, kind: &str, handle: &str) -> String {
    xdpctl(fs, ["-j", kind, "show", handle]).ok().json()[0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id for {kind} {handle}"))
        .to_string()
}

#[test]
fn every_table_fits_80_columns_and_keeps_what_a_person_needs() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    let (ns, dev) = (pair.a.name(), pair.dev_a.as_str());
    let tc_obj = fixture("tc_pass");

    // load: the pins, relative to the bpffs root.
    let loaded = fitted(&fs, ["load", "--pin", "xdpfw"]).stdout;
    header(&loaded, &["KIND", "ID", "NAME", "TYPE", "PINNED"]);
    let prog = id_of(&fs, "prog", "xdpfw/xdp_fw");
    has_cells(
        row(&loaded, "prog"),
        &["prog", &prog, "xdp_fw", "xdp", "xdpfw/xdp_fw"],
    );
    assert!(
        !loaded.contains(&fs.path().display().to_string()),
        "paths are shown relative to the bpffs root:\n{loaded}"
    );
    // An object with a long path: doctor names it.
    fitted(&fs, ["load", tc_obj.to_str().unwrap(), "--pin", "tc"]);

    // prog show: id, type, name, load time, sizes, pinned path; the map
    // ids, tag and holders are left out.
    let shown = fitted(&fs, ["prog", "show", "xdpfw/xdp_fw"]).stdout;
    header(
        &shown,
        &[
            "ID", "TYPE", "NAME", "LOADED", "XLATED", "JITED", "MEMLOCK", "PINNED",
        ],
    );
    has_cells(
        row(&shown, &prog),
        &[&prog, "xdp", "xdp_fw", "xdpfw/xdp_fw"],
    );
    let all = fitted(&fs, ["prog", "show"]).stdout;
    has_cells(row(&all, &prog), &[&prog, "xdp", "xdp_fw", "xdpfw/xdp_fw"]);
    // Piped, every program is one line: a row starts with its id.
    let all = piped(&fs, ["prog", "show"]).stdout;
    assert!(too_wide(&all, WIDTH).is_empty(), "{all}");
    for line in all.lines().skip(1) {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a row split in two:\n{all}"
        );
    }
    // The JSON keeps everything the table leaves out.
    let json = xdpctl(&fs, ["-j", "prog", "show", "xdpfw/xdp_fw"])
        .ok()
        .json();
    assert!(!json[0]["map_ids"].as_array().unwrap().is_empty(), "{json}");
    assert_eq!(
        json[0]["pinned"][0],
        format!("{}/xdpfw/xdp_fw", fs.path().display())
    );

    // map show: id, type, name, entries, pinned path.
    let blocklist = id_of(&fs, "map", "xdpfw/maps/blocklist");
    let shown = fitted(&fs, ["map", "show"]).stdout;
    has_cells(
        row(&shown, &blocklist),
        &[&blocklist, "hash", "blocklist", "xdpfw/maps/blocklist"],
    );
    let one = fitted(&fs, ["map", "show", "xdpfw/maps/config"]).stdout;
    assert!(one.lines().next().unwrap().contains("ENTRIES"), "{one}");
    let all = piped(&fs, ["map", "show"]).stdout;
    for line in all.lines().skip(1) {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a row split in two:\n{all}"
        );
    }

    // attach, then XDP, tcx and tc on one device: net show.
    let attached = fitted(
        &fs,
        ["attach", "xdpfw", dev, "--netns", ns, "--mode", "generic"],
    )
    .stdout;
    has_cells(row(&attached, dev), &[dev, "generic", &prog, "xdp_fw"]);
    assert!(
        attached.contains(&format!("xdpfw/links/{dev}@")),
        "{attached}"
    );
    sh("tc", &["-n", ns, "qdisc", "add", "dev", dev, "clsact"]);
    pair.a.tc_filter(dev, &tc_obj);
    let tcx = pair.a.tcx_link(dev, &tc_obj, true);
    let net = fitted(&fs, ["net", "show", "--netns", ns]).stdout;
    assert!(net.contains(&format!("{dev} (ifindex ")), "{net}");
    has_cells(row(&net, "xdp/generic"), &["xdp/generic", &prog, "xdp_fw"]);
    has_cells(row(&net, "tcx/egress"), &["tcx/egress", "tc_pass"]);
    has_cells(row(&net, "clsact/ingress"), &["clsact/ingress", "tc_pass"]);
    // Piped, each attachment is one line, with all its details.
    let net = piped(&fs, ["net", "show", "--netns", ns]).stdout;
    has_cells(
        row(&net, "xdp/generic"),
        &["xdp/generic", &prog, "xdp_fw", "pinned"],
    );
    assert!(
        row(&net, "xdp/generic").contains(&format!(" xdpfw/links/{dev}@")),
        "{net}"
    );
    let tc = row(&net, "clsact/ingress");
    assert!(
        tc.contains("direct-action") && tc.contains("pref "),
        "{net}"
    );

    // map dump, with counts in words that agree with them.
    xdpctl(&fs, ["map", "update", "blocklist", "203.0.113.5", "1"]).ok();
    let dump = fitted(&fs, ["map", "dump", "blocklist"]);
    has_cells(row(&dump.stdout, "203.0.113.5"), &["203.0.113.5", "1"]);
    assert!(
        dump.stderr.contains("xdpctl: 1 entry of map "),
        "{}",
        dump.stderr
    );
    let dump = fitted(&fs, ["map", "dump", "pps"]);
    assert!(
        dump.stderr.contains("xdpctl: 0 entries of map "),
        "{}",
        dump.stderr
    );
    fitted(&fs, ["map", "dump", "stats"]);
    // A map named by id is not "map map id 7".
    let dump = fitted(&fs, ["map", "dump", &format!("id:{blocklist}")]);
    assert!(
        dump.stderr
            .contains(&format!("1 entry of map blocklist (id {blocklist})")),
        "{}",
        dump.stderr
    );
    assert!(!dump.stderr.contains("map map"), "{}", dump.stderr);

    // stats.
    let stats = fitted(&fs, ["stats", "xdpfw"]).stdout;
    has_cells(row(&stats, "passed"), &["passed"]);
    // stats --rules: a long IPv6 prefix fits too.
    xdpctl(
        &fs,
        [
            "map",
            "update",
            "cidr6",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ff00/120",
            "1",
        ],
    )
    .ok();
    let rules = fitted(&fs, ["stats", "xdpfw", "--rules"]).stdout;
    header(&rules, &["MAP", "RULE", "PACKETS", "BYTES", "LAST", "HIT"]);
    has_cells(row(&rules, "blocklist"), &["203.0.113.5", "0", "never"]);
    has_cells(
        row(&rules, "cidr6"),
        &["2001:db8:ffff:ffff:ffff:ffff:ffff:ff00/120", "never"],
    );

    // doctor: the loads, by path, in words that agree with their counts.
    let doctor = fitted(&fs, ["doctor"]).stdout;
    header(&doctor, &["STATUS", "PATH", "WHAT"]);
    for load in ["xdpfw", "tc"] {
        assert!(
            doctor
                .lines()
                .any(|l| l.split_whitespace().take(2).eq(["ok", load])),
            "{doctor}"
        );
    }
    assert!(doctor.contains("(1 program, "), "{doctor}");
    assert!(!doctor.contains("(s)"), "{doctor}");

    // detach and unload.
    let detached = fitted(&fs, ["detach", dev, "--netns", ns]).stdout;
    has_cells(row(&detached, dev), &[dev, "generic", &prog, "xdp_fw"]);
    drop(tcx);
    let unloaded = fitted(&fs, ["unload", "xdpfw"]);
    header(&unloaded.stdout, &["KIND", "ID", "UNPINNED"]);
    has_cells(
        row(&unloaded.stdout, "prog"),
        &["prog", &prog, "xdpfw/xdp_fw"],
    );
    assert!(
        unloaded.stderr.contains(" objects from ") && !unloaded.stderr.contains("(s)"),
        "{}",
        unloaded.stderr
    );
}

/// A tmux server on a private socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// Whether tmux is installed; says `skipping` when not, and fails under
/// `CI=true`, where the terminal test must run.
fn have_tmux(test: &str) -> bool {
    if Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "{test}: tmux is not installed; under CI=true the terminal test must run \
         (scripts/deps.sh installs it)"
    );
    eprintln!("skipping: {test}: tmux is not installed");
    false
}

#[test]
fn prog_show_fits_a_real_80_column_terminal() {
    require_privileges!();
    if !have_tmux(module_path!()) {
        return;
    }
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    let prog = id_of(&fs, "prog", "xdpfw/xdp_fw");

    // NB: the command goes in a script so that the line typed at the
    // prompt, which the pane shows too, stays short.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(
        &script,
        format!(
            "echo '<<<'\nenv -u COLUMNS XDPCTL_BPFFS={} {} prog show\necho '>>>'\n",
            fs.path().display(),
            xdpctl_tests::xdpctl_bin().display(),
        ),
    )
    .unwrap();
    let tmux = Tmux {
        socket: xdpctl_tests::unique("xdpctl-tables-"),
    };
    let started = tmux
        .cmd()
        .args(["new-session", "-d", "-x", "80", "-y", "40", "-s", "t", "sh"])
        .status()
        .unwrap();
    assert!(started.success(), "tmux new-session failed");
    let typed = tmux
        .cmd()
        .args([
            "send-keys",
            "-t",
            "t",
            &format!("sh {}", script.display()),
            "Enter",
        ])
        .status()
        .unwrap();
    assert!(typed.success(), "tmux send-keys failed");
    // NB: keys typed before the shell's first prompt are echoed by the
    // terminal, and the prompt then shares a line with the first marker
    // ("# <<<"): markers are matched at the end of a line.
    // NB: -J joins the lines the terminal wrapped, so a line too long for
    // the terminal shows as one line wider than 80.
    let capture = || {
        let out = tmux
            .cmd()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let pane = loop {
        let pane = capture();
        if pane.lines().any(|l| l.trim_end().ends_with(">>>")) {
            break pane;
        }
        assert!(
            Instant::now() < deadline,
            "xdpctl did not finish in the terminal:\n{pane}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let shown: Vec<&str> = pane
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("<<<"))
        .skip(1)
        .take_while(|l| !l.trim_end().ends_with(">>>"))
        .map(str::trim_end)
        .collect();
    let shown = shown.join("\n");
    assert!(!shown.is_empty(), "nothing between the markers:\n{pane}");
    let wide = too_wide(&shown, WIDTH);
    assert!(
        wide.is_empty(),
        "lines the terminal had to wrap:\n{}\n--- pane\n{shown}",
        wide.join("\n")
    );
    assert!(shown.starts_with("ID"), "{shown}");
    has_cells(
        row(&shown, &prog),
        &[&prog, "xdp", "xdp_fw", "xdpfw/xdp_fw"],
    );
}
