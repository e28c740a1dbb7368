//! The end-to-end test harness: runs the built `xdpctl` binary against the
//! real kernel, each test in its own sandbox.
//!
//! Every test gets a private bpffs mounted in a temporary directory and,
//! where it needs devices, its own network namespaces and veth pair. All of
//! it is torn down by guards on drop, panics included, and every name is
//! unique per process and test so tests run in parallel. Nothing here
//! touches the host's devices or its /sys/fs/bpf.
//!
//! A test that lacks the privileges it needs says `skipping: <reason>` and
//! returns; under `CI=true` it fails instead.

pub mod flood;
pub mod model;
pub mod prefixes;

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

/// A unique suffix for names made by this process.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether this process may do what the tests need (root, BPF, mounts).
/// Prints `skipping: <reason>` and returns false when not; panics instead
/// under `CI=true`, where a test that cannot run is a failure.
pub fn privileged(test: &str) -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)".to_owned())
    } else {
        match Bpffs::try_new() {
            Ok(_) => None,
            Err(e) => Some(format!("cannot mount a private bpffs: {e}")),
        }
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {reason}; under CI=true privileged tests must run")
        }
        Some(reason) => {
            eprintln!("skipping: {test}: {reason}");
            false
        }
    }
}

/// Returns from the test when it cannot get the privileges it needs.
#[macro_export]
macro_rules! require_privileges {
    () => {
        if !$crate::privileged(module_path!()) {
            return;
        }
    };
}

/// A private bpffs mounted on a temporary directory, unmounted on drop.
pub struct Bpffs {
    dir: tempfile::TempDir,
}

impl Bpffs {
    /// Mounts a fresh bpffs; panics if that fails.
    pub fn new() -> Self {
        Self::try_new().expect("mounting a private bpffs")
    }

    fn try_new() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("xdpctl-bpffs-").tempdir()?;
        nix::mount::mount(
            Some("bpf"),
            dir.path(),
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )?;
        Ok(Self { dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every entry below the mount (`d name` for directories, `f name id`
    /// for pins), sorted: two equal snapshots mean nothing changed. The
    /// kernel's own `maps.debug` and `progs.debug` are left out.
    pub fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.retain(|e| !e.ends_with(".debug") && !e.contains(".debug "));
        out.sort();
        out
    }
}

impl Default for Bpffs {
    fn default() -> Self {
        Self::new()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        if entry.file_type().unwrap().is_dir() {
            out.push(format!("d {rel}"));
            walk(root, &path, out);
        } else {
            let id = pinfs::pin_info(&path)
                .map_or_else(|_| "?".to_owned(), |p| format!("{} {}", p.kind, p.id));
            out.push(format!("f {rel} {id}"));
        }
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        // Detach: a test that panicked may still hold fds below the mount.
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The `xdpctl` binary under test: `$XDPCTL_BIN`, or the one cargo built
/// next to this test executable (`make test` builds it first).
pub fn xdpctl_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("XDPCTL_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // Tests run from target/<profile>/deps/, binaries from target/<profile>/.
    let dir = exe.parent().expect("the executable's directory");
    [
        dir.join("xdpctl"),
        dir.parent().map_or_else(PathBuf::new, |d| d.join("xdpctl")),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| {
        panic!(
            "no xdpctl next to {}: build it first with `cargo build -p xdpctl` (`make test` does), \
                 or point XDPCTL_BIN at it",
            exe.display()
        )
    })
}

/// What a run of xdpctl printed.
#[derive(Debug)]
pub struct Run {
    /// The arguments, for messages.
    pub args: String,
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(args: String, out: Output) -> Self {
        Run {
            args,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit code 0; returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "`xdpctl {}` failed\n--- stdout\n{}--- stderr\n{}",
            self.args, self.stdout, self.stderr
        );
        self
    }

    /// Asserts exit code 1 and that stderr contains every one of `needles`.
    #[track_caller]
    pub fn fails_with(self, needles: &[&str]) -> Self {
        assert_eq!(
            self.code, 1,
            "`xdpctl {}` should fail with exit code 1\n--- stdout\n{}--- stderr\n{}",
            self.args, self.stdout, self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "`xdpctl {}`: stderr lacks {needle:?}\n--- stderr\n{}",
                self.args,
                self.stderr
            );
        }
        self
    }

    /// Stdout parsed as JSON (panics with the text if it is not JSON).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`xdpctl {}` printed invalid JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

/// Runs `xdpctl ARGS` with the given bpffs as its root.
pub fn xdpctl<I, S>(bpffs: &Bpffs, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command(bpffs);
    cmd.args(args);
    run(cmd)
}

/// `xdpctl attach PIN DEV --netns NS --mode generic` on the pair's B
/// side, which must succeed.
pub fn attach_generic(bpffs: &Bpffs, pin: &str, pair: &VethPair) -> Run {
    xdpctl(
        bpffs,
        [
            "attach",
            pin,
            &pair.dev_b,
            "--netns",
            pair.b.name(),
            "--mode",
            "generic",
        ],
    )
    .ok()
}

/// A `Command` for xdpctl with `XDPCTL_BPFFS` set to the private mount.
pub fn command(bpffs: &Bpffs) -> Command {
    let mut cmd = Command::new(xdpctl_bin());
    cmd.env("XDPCTL_BPFFS", bpffs.path());
    if !DEFAULT_SIZES.load(std::sync::atomic::Ordering::Relaxed) {
        cmd.env("XDPCTL_MAX_ENTRIES", TEST_SIZES);
    }
    cmd
}

/// The flow tables' sizes for the tests' loads (XDPCTL_MAX_ENTRIES): a
/// per-CPU LRU map of the default million entries takes the kernel about
/// two seconds to create here, most of a firewall load; no test but the
/// ones that say so needs that room.
pub const TEST_SIZES: &str = "pps=65536,pps6=16384";

static DEFAULT_SIZES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, this process's xdpctl runs load with the objects' own
/// sizes (the bench measures the default load).
pub fn use_default_sizes() {
    DEFAULT_SIZES.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Runs a prepared command.
pub fn run(mut cmd: Command) -> Run {
    let args = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running xdpctl {args}: {e}"));
    Run::from(args, out)
}

/// The firewall loaded at `dir`'s count of packets with `outcome`
/// (`xdpctl stats -j`).
pub fn fw_outcome(fs: &Bpffs, dir: &str, outcome: &str) -> u64 {
    let stats = xdpctl(fs, ["-j", "stats", dir]).ok().json();
    stats
        .as_array()
        .and_then(|rows| rows.iter().find(|o| o["outcome"] == outcome))
        .and_then(|o| o["packets"].as_u64())
        .unwrap_or_else(|| panic!("no outcome {outcome} in {stats}"))
}

/// Word `word` of the `ctl` map of the firewall loaded at `dir` (under
/// the bpffs), read with `xdpctl map lookup`.
pub fn fw_ctl(fs: &Bpffs, dir: &str, word: u32) -> u64 {
    let out = xdpctl(
        fs,
        [
            "-j",
            "map",
            "lookup",
            &format!("{dir}/maps/ctl"),
            &word.to_string(),
        ],
    )
    .ok()
    .json();
    out["value"].as_u64().unwrap()
}

/// A compiled test fixture from `tests/bpf/<stem>.bpf.c`.
pub fn fixture(stem: &str) -> PathBuf {
    PathBuf::from(env!("OUT_DIR")).join(format!("{stem}.bpf.o"))
}

/// Runs a host command, panicking with its output if it fails.
#[track_caller]
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace of this test, deleted on drop (with its devices).
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a namespace with a unique name and brings its loopback up.
    pub fn new() -> Self {
        let ns = Self::bare();
        ns.ip(&["link set lo up"]);
        ns
    }

    /// Creates a namespace with a unique name, its loopback still down.
    fn bare() -> Self {
        let name = unique("xdpt");
        sh("ip", &["netns", "add", &name]);
        NetNs { name }
    }

    /// Runs `ip` commands (one a line, without the `ip`) inside the
    /// namespace in one process (`ip -n NS -batch -`); panics if one fails.
    ///
    /// NB: a process for each would cost the suite about a minute: namespaces
    /// are made and set up some thousand times.
    #[track_caller]
    pub fn ip(&self, lines: &[&str]) {
        use std::io::Write as _;
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running ip: {e}"));
        let script = lines.join("\n") + "\n";
        child
            .stdin
            .take()
            .expect("ip's stdin")
            .write_all(script.as_bytes())
            .expect("writing to ip -batch");
        let out = child.wait_with_output().expect("waiting for ip");
        assert!(
            out.status.success(),
            "`ip -n {} -batch -` of {lines:?} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Its name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its bind-mounted file, for `setns(2)` and `--netns PATH`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Moves the calling thread into the namespace until the guard drops
    /// (setns(2), like xdpctl's --netns: mounts stay as they are).
    pub fn enter(&self) -> Entered {
        use nix::sched::{CloneFlags, setns};
        let original = fs::File::open("/proc/thread-self/ns/net").expect("opening own netns");
        let target = fs::File::open(self.path()).expect("opening the test netns");
        setns(&target, CloneFlags::CLONE_NEWNET).expect("setns into the test netns");
        Entered { original }
    }

    /// Runs a command inside the namespace; panics if it fails.
    ///
    /// NB: `ip netns exec` remounts /sys, hiding bpffs pins: use it only
    /// for plain networking commands, never for xdpctl.
    #[track_caller]
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(cmd);
        sh("ip", &args)
    }

    /// Runs iproute2 (`ip` or `tc`) inside the namespace for a command that
    /// loads a BPF object, with a throwaway bpffs at /sys/fs/bpf.
    ///
    /// NB: iproute2 pins into the first bpffs it finds in /proc/mounts when
    /// /sys/fs/bpf is not one, creating `tc/globals` and `xdp/globals` in it:
    /// that could be another test's private mount. So it runs in a private
    /// mount namespace with its own bpffs at /sys/fs/bpf, entered with
    /// nsenter (which, unlike `ip netns exec`, keeps that mount visible).
    #[track_caller]
    pub fn iproute2_with_obj(&self, cmd: &[&str]) {
        let script = format!(
            "mount -t bpf bpf /sys/fs/bpf && exec nsenter --net={} {}",
            self.path().display(),
            cmd.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        sh(
            "unshare",
            &["--mount", "--propagation", "private", "sh", "-c", &script],
        );
    }

    /// A tc filter on `dev`'s ingress hook by `tc filter add ... bpf da`,
    /// the program of `obj`'s section `classifier` (the qdisc, `ingress`
    /// or `clsact`, is the caller's).
    pub fn tc_filter(&self, dev: &str, obj: &Path) {
        self.iproute2_with_obj(&[
            "tc",
            "filter",
            "add",
            "dev",
            dev,
            "ingress",
            "bpf",
            "da",
            "obj",
            obj.to_str().expect("a UTF-8 path"),
            "sec",
            "classifier",
        ]);
    }

    /// A tcx link on `dev` (egress, or ingress), as Cilium makes them: the
    /// program `tc_pass` of `obj`, attached from inside the namespace. The
    /// link lives as long as what this returns.
    pub fn tcx_link(&self, dev: &str, obj: &Path, egress: bool) -> aya::Ebpf {
        use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, tc::TcAttachOptions};
        let _inside = self.enter();
        let mut ebpf = aya::Ebpf::load_file(obj).expect("loading the tc object");
        let prog: &mut SchedClassifier = ebpf
            .program_mut("tc_pass")
            .expect("tc_pass")
            .try_into()
            .expect("a classifier");
        prog.load().expect("loading tc_pass");
        let hook = if egress {
            TcAttachType::Egress
        } else {
            TcAttachType::Ingress
        };
        prog.attach_with_options(dev, hook, TcAttachOptions::TcxOrder(LinkOrder::default()))
            .expect("attaching a tcx link");
        ebpf
    }

    /// Runs a command inside the namespace and returns its exit status and
    /// stdout, without asserting success.
    pub fn try_exec(&self, cmd: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .expect("running ip netns exec");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// The calling thread is in a test namespace while this lives.
pub struct Entered {
    original: fs::File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        use nix::sched::{CloneFlags, setns};
        setns(&self.original, CloneFlags::CLONE_NEWNET).expect("setns back");
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Two namespaces joined by a veth pair: `a` (10.X.Y.1/24 on `dev_a`) and
/// `b` (10.X.Y.2/24 on `dev_b`), both up. Dropped with the namespaces.
pub struct VethPair {
    /// The first namespace.
    pub a: NetNs,
    /// The second namespace.
    pub b: NetNs,
    /// Device name in `a`.
    pub dev_a: String,
    /// Device name in `b`.
    pub dev_b: String,
    /// Address of `a`.
    pub ip_a: String,
    /// Address of `b`.
    pub ip_b: String,
}

impl VethPair {
    /// Creates the namespaces, the pair and the addresses.
    pub fn new() -> Self {
        static SUBNET: AtomicU32 = AtomicU32::new(0);
        let a = NetNs::bare();
        let b = NetNs::bare();
        let dev_a = unique("va");
        let dev_b = unique("vb");
        // A /24 per pair in 10.250.0.0/16 (test-private, inside the namespaces).
        let n = (std::process::id() + SUBNET.fetch_add(1, Ordering::Relaxed)) % 250;
        let ip_a = format!("10.250.{n}.1");
        let ip_b = format!("10.250.{n}.2");
        sh(
            "ip",
            &[
                "link",
                "add",
                &dev_a,
                "netns",
                a.name(),
                "type",
                "veth",
                "peer",
                "name",
                &dev_b,
                "netns",
                b.name(),
            ],
        );
        for (ns, dev, ip) in [(&a, &dev_a, &ip_a), (&b, &dev_b, &ip_b)] {
            ns.ip(&[
                "link set lo up",
                &format!("addr add {ip}/24 dev {dev}"),
                &format!("link set {dev} up"),
            ]);
        }
        VethPair {
            a,
            b,
            dev_a,
            dev_b,
            ip_a,
            ip_b,
        }
    }

    /// Adds IPv6 addresses `2001:db8:ffNN::1` (A) and `::2` (B), `NN` the
    /// low byte of `n` in hex, without duplicate address detection (so
    /// they work at once); returns them.
    pub fn add_v6(&self, n: u32) -> (String, String) {
        let a = format!("2001:db8:ff{:02x}::1", n & 0xff);
        let b = format!("2001:db8:ff{:02x}::2", n & 0xff);
        for (ns, dev, addr) in [(&self.a, &self.dev_a, &a), (&self.b, &self.dev_b, &b)] {
            ns.exec(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                dev,
                "nodad",
            ]);
        }
        (a, b)
    }

    /// Pings `b` from `a` `count` times (0.2 s apart); returns replies received.
    pub fn ping_b_from_a(&self, count: u32) -> u32 {
        let count = count.to_string();
        let (_, out) = self.a.try_exec(&[
            "ping", "-n", "-q", "-c", &count, "-i", "0.2", "-W", "1", &self.ip_b,
        ]);
        parse_received(&out).unwrap_or_else(|| panic!("unexpected ping output:\n{out}"))
    }
}

impl Default for VethPair {
    fn default() -> Self {
        Self::new()
    }
}

/// `N received` from ping's summary line.
pub fn parse_received(out: &str) -> Option<u32> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    line.split(',')
        .find_map(|part| part.trim().strip_suffix(" received")?.parse().ok())
}

/// Pins and ids of objects below a path, by relative path (for assertions).
pub fn pins_below(path: &Path) -> BTreeMap<String, (String, u32)> {
    // As xdpctl lists pins: without its state directory.
    pinfs::keep_private("_xdpctl");
    pinfs::list(path)
        .unwrap_or_else(|e| panic!("listing {}: {e}", path.display()))
        .into_iter()
        .map(|p| {
            let rel = p.path.strip_prefix(path).unwrap().display().to_string();
            (rel, (p.kind.to_string(), p.id))
        })
        .collect()
}

/// `bpf(cmd, attr)`, raw, for the tests and the bench that time the
/// kernel's own calls (the floor of a figure).
///
/// # Safety
///
/// Every pointer in `attr` that `cmd` reads must be valid for the reads and
/// writes the kernel makes for `cmd`.
pub unsafe fn raw_bpf(
    cmd: aya_obj::generated::bpf_cmd,
    attr: &mut aya_obj::generated::bpf_attr,
) -> std::io::Result<libc::c_long> {
    // SAFETY: the caller vouches for the pointers in `attr`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut aya_obj::generated::bpf_attr as *mut libc::c_void,
            size_of::<aya_obj::generated::bpf_attr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An all-zero `bpf_attr`.
pub fn zeroed_attr() -> aya_obj::generated::bpf_attr {
    // SAFETY: bpf_attr is plain old data; all-zero is a valid value.
    unsafe { std::mem::MaybeUninit::zeroed().assume_init() }
}

/// Kills `args` (an xdpctl command on a fresh bpffs and veth pair made
/// ready by `setup`) before each of its state changes in turn
/// (`XDPCTL_FAILPOINT=1, 2, ...`, a failpoints build), lets the next
/// ordinary command settle what it left, and hands `check` the bpffs, the
/// pair, what `setup` returned, the crash point and whether the command
/// was killed there; stops at the first run that was not killed. Returns
/// the number of runs.
pub fn kill_at_each_step<T>(
    what: &str,
    setup: impl Fn(&Bpffs, &VethPair) -> T,
    args: impl Fn(&VethPair) -> Vec<String>,
    check: impl Fn(&Bpffs, &VethPair, &T, usize, bool),
) -> usize {
    for n in 1.. {
        assert!(n < 200, "{what}: more than 200 crash points?");
        let fs = Bpffs::new();
        let pair = VethPair::new();
        let ready = setup(&fs, &pair);
        let mut cmd = command(&fs);
        cmd.env("XDPCTL_FAILPOINT", n.to_string());
        cmd.args(args(&pair));
        let out = cmd.output().expect("running xdpctl");
        let killed = std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(9);
        assert!(
            killed || out.status.success(),
            "{what} N={n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The next ordinary command settles it.
        xdpctl(&fs, ["prog", "show"]).ok();
        check(&fs, &pair, &ready, n, killed);
        if !killed {
            assert!(
                n > 2,
                "{what}: only {n} crash points: is the build's failpoint on?"
            );
            eprintln!("{what}: crash points: {n}");
            return n;
        }
    }
    unreachable!()
}

/// `attach PROG DEV --netns NS HOOK ingress ARGS` (`prog` Some) or
/// `detach DEV --netns NS HOOK ingress ARGS`, for the pair's b end; `hook`
/// is `--tc` or `--tcx`.
pub fn hook_args<'a>(
    pair: &'a VethPair,
    hook: &'a str,
    prog: Option<&'a str>,
    args: &[&'a str],
) -> Vec<&'a str> {
    let mut v = match prog {
        Some(p) => vec!["attach", p],
        None => vec!["detach"],
    };
    v.extend([
        pair.dev_b.as_str(),
        "--netns",
        pair.b.name(),
        hook,
        "ingress",
    ]);
    v.extend_from_slice(args);
    v
}

/// The programs xdpctl's records under `prefix` (a load's
/// `links/<hook>_ingress:`) name, sorted.
pub fn recorded(fs: &Bpffs, prefix: &str) -> Vec<String> {
    let mut pinned: Vec<String> = fs
        .snapshot()
        .into_iter()
        .filter_map(|e| {
            e.split(' ')
                .nth(1)
                .and_then(|p| p.strip_prefix(prefix))
                .map(|r| r.split(':').next().unwrap().to_owned())
        })
        .collect();
    pinned.sort();
    pinned
}

/// What a tc or tcx hook holds of `tcx_order`'s programs: xdpctl's
/// records and what runs, by program name, sorted.
pub type HookState = (Vec<String>, Vec<String>);

/// SIGKILL at each state change of attaching `tcx_order`'s `tcx_one`
/// beside `tcx_two` at the pair's b end's ingress `hook` (`tc` or `tcx`,
/// the load pinned under that name), and of detaching it from both: after
/// each, the hook is as before or as after, `state` (xdpctl's records,
/// what runs) agrees with itself (`records`: what the message calls a
/// record), and `doctor --check` is ok.
pub fn kill_attach_and_detach(
    hook: &str,
    state: fn(&Bpffs, &VethPair) -> HookState,
    records: &str,
) {
    let obj = fixture("tcx_order");
    let flag = format!("--{hook}");
    let (one, two) = (format!("{hook}/tcx_one"), format!("{hook}/tcx_two"));
    for (what, detach) in [
        (format!("{hook} attach"), false),
        (format!("{hook} detach"), true),
    ] {
        let what = what.as_str();
        kill_at_each_step(
            what,
            |fs, pair| {
                xdpctl(fs, ["load", obj.to_str().unwrap(), "--pin", hook]).ok();
                xdpctl(fs, hook_args(pair, &flag, Some(&two), &[])).ok();
                if detach {
                    xdpctl(fs, hook_args(pair, &flag, Some(&one), &[])).ok();
                }
                state(fs, pair)
            },
            |pair| {
                let args = if detach {
                    hook_args(pair, &flag, None, &["--prog", &one])
                } else {
                    hook_args(pair, &flag, Some(&one), &[])
                };
                args.into_iter().map(str::to_owned).collect()
            },
            |fs, pair, before, n, _| {
                let now = state(fs, pair);
                let after = if detach {
                    (vec!["tcx_two".to_owned()], vec!["tcx_two".to_owned()])
                } else {
                    let both = vec!["tcx_one".to_owned(), "tcx_two".to_owned()];
                    (both.clone(), both)
                };
                assert!(
                    now == *before || now == after,
                    "{what}, killed before state change {n}: {now:?}, before {before:?}, \
                     after {after:?}"
                );
                assert_eq!(now.0, now.1, "{what} N={n}: {records}");
                assert_eq!(xdpctl(fs, ["doctor", "--check"]).code, 0, "{what} N={n}");
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary_parses() {
        let out = "--- 10.0.0.2 ping statistics ---\n4 packets transmitted, 0 received, 100% packet loss, time 3062ms\n";
        assert_eq!(parse_received(out), Some(0));
        let out = "2 packets transmitted, 2 received, 0% packet loss, time 1001ms\n";
        assert_eq!(parse_received(out), Some(2));
    }

    /// The harness itself: a veth pair between two namespaces carries
    /// traffic, and everything is gone after drop.
    #[test]
    fn veth_pair_carries_traffic_and_cleans_up() {
        require_privileges!();
        let names;
        {
            let pair = VethPair::new();
            names = (pair.a.name().to_owned(), pair.b.name().to_owned());
            assert_eq!(pair.ping_b_from_a(2), 2, "ping between fresh namespaces");
        }
        let list = sh("ip", &["netns", "list"]);
        assert!(
            !list.contains(&names.0) && !list.contains(&names.1),
            "namespaces left: {list}"
        );
    }

    #[test]
    fn bpffs_guard_unmounts() {
        require_privileges!();
        let path;
        {
            let fs = Bpffs::new();
            path = fs.path().to_owned();
            assert!(pinfs::is_bpffs(&path).unwrap());
            assert!(fs.snapshot().is_empty(), "{:?}", fs.snapshot());
        }
        assert!(!path.exists(), "{} left behind", path.display());
    }
}
