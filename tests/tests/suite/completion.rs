//! The committed completion scripts, loaded into real shells, complete what
//! exists: the test's maps and devices, and subcommands. Completing changes
//! nothing.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use xdpctl_tests::{Bpffs, VethPair, fixture, require_privileges, xdpctl, xdpctl_bin};

fn completions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../completions")
}

/// PATH with the binary under test first.
fn path_env() -> String {
    let bin_dir = xdpctl_bin().parent().unwrap().to_owned();
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs `shell -c script` with the binary under test first on PATH.
fn run_shell(shell: &str, script: &str, fs: &Bpffs) -> Vec<String> {
    // zsh's candidates are `value:description`, fish's `value<TAB>description`.
    let separators: &[char] = if shell == "zsh" {
        &['\t', ':']
    } else {
        &['\t']
    };
    let out = Command::new(shell)
        .arg("-c")
        .arg(script)
        .env("PATH", path_env())
        .env("XDPCTL_BPFFS", fs.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("running {shell}: {e} (is it installed? scripts/deps.sh installs it)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shell} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| l.split(separators).next().unwrap().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Calls the committed bash script's function on `words`, as bash does for
/// a line of those words (words it would not split further: for `=` and
/// `:` in a word, see [`bash_tab`]).
fn bash(fs: &Bpffs, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "source {}/xdpctl.bash
         COMP_WORDS=({})
         COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
         COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; COMP_TYPE=9
         _clap_complete_xdpctl xdpctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        completions_dir().display(),
        quoted.join(" ")
    );
    run_shell("bash", &script, fs)
}

/// What an interactive bash does when TAB is pressed at the end of `line`:
/// the candidates the committed script gave it, and the line afterwards.
///
/// Unlike [`bash`], which hands the script words, this lets bash split the
/// line itself, as it does for a user: at the characters in
/// COMP_WORDBREAKS too (`--netns=blue` is `--netns`, `=`, `blue`, and
/// only `blue` is replaced). `script` gives bash a terminal; the test
/// types the line, TAB, and a key bound to save the line.
fn bash_tab(line: &str, bpffs: &Path) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let replies = dir.path().join("replies");
    let after = dir.path().join("line");
    let rc = dir.path().join("rc");
    std::fs::write(
        &rc,
        format!(
            r#"PS1='$ '
unset HISTFILE
bind 'set bell-style none'
source {completions}/xdpctl.bash
# Wrap the function the script registered, to see what it offers.
spec=$(complete -p xdpctl)
f=${{spec##*-F }}; f=${{f%% *}}
eval "_xdpctl_test() {{ $f \"\$@\"; printf '%s\\n' \"\${{COMPREPLY[@]}}\" > {replies}; }}"
eval "${{spec/-F $f/-F _xdpctl_test}}"
# C-x C-p saves the line and clears it.
_xdpctl_save() {{ printf '%s' "$READLINE_LINE" > {after}; READLINE_LINE=; }}
bind -x '"\C-x\C-p": _xdpctl_save'
"#,
            completions = completions_dir().display(),
            replies = replies.display(),
            after = after.display(),
        ),
    )
    .unwrap();
    let mut child = Command::new("timeout")
        .args(["60", "script", "-qec"])
        .arg(format!("bash --rcfile {} --noprofile -i", rc.display()))
        .arg("/dev/null")
        .env("PATH", path_env())
        .env("XDPCTL_BPFFS", bpffs)
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running script(1) (util-linux): {e}"));
    // NB: no key the terminal itself acts on (C-c, C-u...): the keys may
    // arrive before bash takes the terminal over.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{line}\t\x18\x10\nexit\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let after = std::fs::read_to_string(&after).unwrap_or_else(|e| {
        panic!(
            "bash did not get to the end of `{line}<TAB>` ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let replies = std::fs::read_to_string(&replies).unwrap_or_default();
    (
        replies
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        after,
    )
}

fn zsh(fs: &Bpffs, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    // Outside an interactive completion, stand in for the two zsh
    // completion-system functions the script calls.
    let script = format!(
        "compdef() {{ : }}
         _describe() {{ local name=$3; print -l -- \"${{(@P)name}}\" }}
         source {}/_xdpctl
         words=({}); CURRENT=${{#words}}
         _clap_dynamic_completer_xdpctl",
        completions_dir().display(),
        quoted.join(" ")
    );
    run_shell("zsh", &script, fs)
}

fn fish(fs: &Bpffs, line: &str) -> Vec<String> {
    let script = format!(
        "source {}/xdpctl.fish; complete -C '{line}'",
        completions_dir().display()
    );
    run_shell("fish", &script, fs)
}

#[test]
fn shells_complete_maps_devices_and_subcommands() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    let before = fs.snapshot();
    let maps = [
        "blocklist",
        "config",
        "icmp_drops",
        "pps",
        "stats",
        "udp_ports",
    ];
    let ns = pair.b.name();

    let bash_maps = bash(&fs, &["xdpctl", "map", "update", ""]);
    let zsh_maps = zsh(&fs, &["xdpctl", "map", "update", ""]);
    let fish_maps = fish(&fs, "xdpctl map update ");
    for (shell, got) in [
        ("bash", &bash_maps),
        ("zsh", &zsh_maps),
        ("fish", &fish_maps),
    ] {
        for m in maps {
            assert!(
                got.iter().any(|c| c == m),
                "{shell}: `map update <TAB>` lacks {m}: {got:?}"
            );
        }
    }
    let pinned = bash(&fs, &["xdpctl", "map", "dump", "xdpfw/maps/bloc"]);
    assert_eq!(pinned, ["xdpfw/maps/blocklist", "xdpfw/maps/blocklist6"]);

    for (shell, got) in [
        (
            "bash",
            bash(&fs, &["xdpctl", "attach", "--netns", ns, "xdpfw", ""]),
        ),
        (
            "zsh",
            zsh(&fs, &["xdpctl", "attach", "--netns", ns, "xdpfw", ""]),
        ),
        (
            "fish",
            fish(&fs, &format!("xdpctl attach --netns {ns} xdpfw ")),
        ),
    ] {
        assert!(
            got.contains(&pair.dev_b),
            "{shell}: devices of {ns}: {got:?}"
        );
        assert!(got.contains(&"lo".to_owned()), "{shell}: {got:?}");
        assert!(
            !got.contains(&pair.dev_a),
            "{shell}: {} is in another namespace: {got:?}",
            pair.dev_a
        );
    }

    assert_eq!(bash(&fs, &["xdpctl", "ma"]), ["map"]);
    assert!(zsh(&fs, &["xdpctl", "ma"]).contains(&"map".to_owned()));
    assert!(fish(&fs, "xdpctl ma").contains(&"map".to_owned()));
    assert_eq!(
        bash(&fs, &["xdpctl", "attach", "xdpfw", "lo", "--mode", ""]),
        ["native", "generic", "offload"]
    );
    let ids = bash(&fs, &["xdpctl", "prog", "show", "id:"]);
    let prog_id = xdpctl(&fs, ["-j", "prog", "show", "xdpfw/xdp_fw"])
        .ok()
        .json()[0]["id"]
        .clone();
    assert!(
        ids.contains(&format!("id:{prog_id}")),
        "program ids: {ids:?}"
    );
    let dirs = bash(&fs, &["xdpctl", "unload", ""]);
    assert!(dirs.contains(&"xdpfw".to_owned()), "{dirs:?}");

    assert_eq!(fs.snapshot(), before, "completion must not change anything");
}

#[test]
fn bash_completes_after_opt_equals() {
    require_privileges!();
    let fs = Bpffs::new();
    let pair = VethPair::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    let before = fs.snapshot();
    let ns = pair.b.name();
    let root = fs.path();

    // The value of every option that completes one, after `=`.
    let partial = &ns[..ns.len() - 1];
    for cmd in ["attach", "detach", "net show", "confirm"] {
        for typed in ["", partial] {
            let line = format!("xdpctl {cmd} --netns={typed}");
            let (got, _) = bash_tab(&line, root);
            assert!(
                got.contains(&ns.to_owned()) && got.iter().all(|c| c.starts_with(typed)),
                "bash: `{line}<TAB>` should offer {ns} (the part after `=`): {got:?}"
            );
        }
    }
    for (line, want) in [
        (
            "xdpctl attach xdpfw lo --mode=gen",
            "xdpctl attach xdpfw lo --mode=generic ",
        ),
        (
            "xdpctl map dump pps --sort-by=v",
            "xdpctl map dump pps --sort-by=value ",
        ),
    ] {
        let (got, after) = bash_tab(line, root);
        assert_eq!(after, want, "bash: `{line}<TAB>` (offered {got:?})");
    }
    // `--bpffs=DIR` on the line wins over XDPCTL_BPFFS, as it does for xdpctl.
    let elsewhere = tempfile::tempdir().unwrap();
    let line = format!("xdpctl --bpffs={} map dump blockl", root.display());
    let (got, after) = bash_tab(&line, elsewhere.path());
    assert_eq!(got, ["blocklist", "blocklist6"], "bash: `{line}<TAB>`");
    assert_eq!(after, format!("{line}ist"));
    let line = format!("xdpctl load --bpffs={} --replace --pin xd", root.display());
    let (_, after) = bash_tab(&line, elsewhere.path());
    assert_eq!(after, format!("{line}pfw "), "bash: `{line}<TAB>`");

    // What follows `--netns=NS` sees NS: the devices in it.
    let line = format!("xdpctl attach --netns={ns} xdpfw ");
    let (got, _) = bash_tab(&line, root);
    assert!(
        got.contains(&pair.dev_b) && got.contains(&"lo".to_owned()),
        "bash: `{line}<TAB>` should offer {} and lo: {got:?}",
        pair.dev_b
    );
    assert!(
        !got.contains(&pair.dev_a),
        "bash: `{line}<TAB>`: {} is in another namespace: {got:?}",
        pair.dev_a
    );
    let line = format!("xdpctl detach --netns={ns} {}", &pair.dev_b[..2]);
    let (_, after) = bash_tab(&line, root);
    assert_eq!(after, format!("xdpctl detach --netns={ns} {} ", pair.dev_b));

    // `id:` is split at the colon the same way.
    let prog_id = xdpctl(&fs, ["-j", "prog", "show", "xdpfw/xdp_fw"])
        .ok()
        .json()[0]["id"]
        .to_string();
    for typed in ["", &prog_id[..1]] {
        let line = format!("xdpctl prog show id:{typed}");
        let (got, _) = bash_tab(&line, root);
        assert!(
            got.contains(&prog_id) && got.iter().all(|c| c.starts_with(typed)),
            "bash: `{line}<TAB>` should offer {prog_id} (the part after `:`): {got:?}"
        );
    }
    // And zsh and fish, which take `--opt=value` as one word.
    let (zsh_got, fish_got) = (
        zsh(
            &fs,
            &["xdpctl", "attach", &format!("--netns={ns}"), "xdpfw", ""],
        ),
        fish(&fs, &format!("xdpctl attach --netns={ns} xdpfw ")),
    );
    for (shell, got) in [("zsh", zsh_got), ("fish", fish_got)] {
        assert!(
            got.contains(&pair.dev_b) && !got.contains(&pair.dev_a),
            "{shell}: devices of {ns} after --netns={ns}: {got:?}"
        );
    }

    assert_eq!(fs.snapshot(), before, "completion must not change anything");
}

#[test]
fn attach_offers_xdp_programs_only() {
    require_privileges!();
    let fs = Bpffs::new();
    let xdp_obj = fixture("user_xdp");
    let tc_obj = fixture("tc_pass");
    xdpctl(&fs, ["load", xdp_obj.to_str().unwrap(), "--pin", "xdpdir"]).ok();
    xdpctl(&fs, ["load", tc_obj.to_str().unwrap(), "--pin", "tcdir"]).ok();
    let id =
        |path: &str| xdpctl(&fs, ["-j", "prog", "show", path]).ok().json()[0]["id"].to_string();
    let (xdp_id, tc_id) = (id("xdpdir/count_types"), id("tcdir/tc_pass"));

    let xdp = ["xdpdir", "count_types"];
    let tc = ["tcdir", "tc_pass"];
    for (shell, got) in [
        ("bash", bash(&fs, &["xdpctl", "attach", ""])),
        ("zsh", zsh(&fs, &["xdpctl", "attach", ""])),
        ("fish", fish(&fs, "xdpctl attach ")),
    ] {
        for name in xdp {
            assert!(
                got.iter().any(|c| c == name),
                "{shell}: `attach <TAB>` lacks {name}: {got:?}"
            );
        }
        for name in tc {
            assert!(
                !got.iter().any(|c| c == name),
                "{shell}: `attach <TAB>` offers {name}, a tc program: {got:?}"
            );
        }
    }
    let paths = bash(&fs, &["xdpctl", "attach", "xdpdir/"]);
    assert_eq!(paths, ["xdpdir/count_types"]);
    assert!(bash(&fs, &["xdpctl", "attach", "tcdir/"]).is_empty());
    let ids = bash(&fs, &["xdpctl", "--json", "attach", "id:"]);
    assert!(
        ids.contains(&format!("id:{xdp_id}")) && !ids.contains(&format!("id:{tc_id}")),
        "`attach id:<TAB>`: XDP program {xdp_id} yes, tc program {tc_id} no: {ids:?}"
    );
    // Other commands take any program.
    let shown = bash(&fs, &["xdpctl", "prog", "show", ""]);
    for name in xdp.iter().chain(&tc) {
        assert!(
            shown.iter().any(|c| c == name),
            "`prog show <TAB>` lacks {name}: {shown:?}"
        );
    }
}

#[test]
fn load_pin_offers_directories_load_takes() {
    require_privileges!();
    let fs = Bpffs::new();
    xdpctl(&fs, ["load", "--pin", "xdpfw"]).ok();
    let root = fs.path();
    for dir in [
        "fresh",
        "group/inner",
        "xdpfw/sub",
        "_xdpctl/stage/x",
        "other",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    // Pins xdpctl did not make, in a directory of their own.
    let mut foreign = aya::Ebpf::load_file(fixture("tc_pass")).unwrap();
    let prog: &mut aya::programs::SchedClassifier =
        foreign.program_mut("tc_pass").unwrap().try_into().unwrap();
    prog.load().unwrap();
    prog.pin(root.join("other/tc_pass")).unwrap();
    let before = fs.snapshot();

    let want = ["fresh", "group/inner"];
    for (shell, got) in [
        ("bash", bash(&fs, &["xdpctl", "load", "--pin", ""])),
        ("zsh", zsh(&fs, &["xdpctl", "load", "--pin", ""])),
        ("fish", fish(&fs, "xdpctl load --pin ")),
    ] {
        assert_eq!(got, want, "{shell}: `load --pin <TAB>`");
    }
    let (got, _) = bash_tab("xdpctl load --pin=", root);
    assert_eq!(got, want, "bash: `load --pin=<TAB>`");
    let absolute = format!("{}/", root.display());
    assert_eq!(
        bash(&fs, &["xdpctl", "load", "--pin", &absolute]),
        want.map(|d| format!("{absolute}{d}"))
    );
    // With --replace, the load directories instead.
    assert_eq!(
        bash(&fs, &["xdpctl", "load", "--replace", "--pin", ""]),
        ["xdpfw"]
    );
    assert_eq!(fs.snapshot(), before, "completion must not change anything");

    // What is offered, load takes; what is not, it refuses.
    for dir in want {
        xdpctl(&fs, ["load", "--pin", dir]).ok();
    }
    for dir in ["xdpfw/sub", "other", "group"] {
        let run = xdpctl(&fs, ["load", "--pin", dir]);
        assert_eq!(run.code, 1, "load --pin {dir} should be refused: {run:?}");
    }
}
