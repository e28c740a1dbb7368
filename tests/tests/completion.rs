//! The committed completion scripts, loaded into real shells, complete what
//! exists: the test's maps and devices, and subcommands. Completing changes
//! nothing.

use std::{path::PathBuf, process::Command};

use xdpctl_tests::{Bpffs, VethPair, require_privileges, xdpctl, xdpctl_bin};

fn completions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../completions")
}

/// Runs `shell -c script` with the binary under test first on PATH.
fn run_shell(shell: &str, script: &str, fs: &Bpffs) -> Vec<String> {
    // zsh's candidates are `value:description`, fish's `value<TAB>description`.
    let separators: &[char] = if shell == "zsh" {
        &['\t', ':']
    } else {
        &['\t']
    };
    let bin_dir = xdpctl_bin().parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(shell)
        .arg("-c")
        .arg(script)
        .env("PATH", path)
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
    let pinned = bash(&fs, &["xdpctl", "map", "dump", "xdpfw/maps/b"]);
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
