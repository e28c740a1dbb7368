//! The README's main command: the sandboxed demo runs the whole workflow,
//! passes its own checks, and leaves nothing behind, even when interrupted.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
};

use xdpctl_tests::{require_privileges, sh, xdpctl_bin};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo.sh")
}

/// Namespaces and mounts the demo run with this pid would have made.
fn leftovers(pid: u32) -> Vec<String> {
    let mut left: Vec<String> = sh("ip", &["netns", "list"])
        .lines()
        .filter(|l| {
            l.contains(&format!("xdpctl-demo-a-{pid}"))
                || l.contains(&format!("xdpctl-demo-b-{pid}"))
        })
        .map(str::to_owned)
        .collect();
    let links = sh("ip", &["-o", "link", "show"]);
    left.extend(
        links
            .lines()
            .filter(|l| l.contains(&format!("demo-a-{pid}")))
            .map(str::to_owned),
    );
    left
}

fn demo() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .env("XDPCTL_BIN", xdpctl_bin())
        .env_remove("XDPCTL_BPFFS");
    cmd
}

#[test]
fn demo_runs_the_whole_workflow_and_cleans_up() {
    require_privileges!();
    let child = demo()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for needle in [
        "0% packet loss",
        "100% packet loss",
        "icmp_drops = 4",
        "xdp/generic",
        "{\"packets\":5,",
        "demo passed",
        "sandbox removed",
    ] {
        assert!(
            stdout.contains(needle),
            "demo output lacks {needle:?}:\n{stdout}"
        );
    }
    assert_eq!(leftovers(pid), Vec::<String>::new());
    // Its own sandbox (the other demo test may have one up meanwhile).
    let sandbox = stdout
        .lines()
        .find_map(|l| l.find("bpffs at ").map(|at| l[at + 9..].trim().to_owned()))
        .expect("the demo names its sandbox");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&sandbox),
        "bpffs {sandbox} left mounted:\n{mounts}"
    );
    assert!(!PathBuf::from(&sandbox).exists(), "{sandbox} left behind");
}

#[test]
fn interrupted_demo_still_cleans_up() {
    require_privileges!();
    let mut child = demo()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut sandbox = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find("bpffs at ") {
            sandbox = Some(PathBuf::from(line[at + 9..].trim()));
        }
        if line.contains("switch ICMP dropping on") {
            break;
        }
    }
    let sandbox = sandbox.expect("the demo names its sandbox");
    assert!(
        !leftovers(pid).is_empty(),
        "the demo should be mid-way, with its namespaces up"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "an interrupted demo must not report success"
    );
    assert!(
        rest.iter().any(|l| l.contains("sandbox removed")),
        "{rest:?}"
    );
    assert_eq!(leftovers(pid), Vec::<String>::new());
    assert!(!sandbox.exists(), "{} left behind", sandbox.display());
}
