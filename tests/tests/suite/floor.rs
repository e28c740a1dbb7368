//! `map dump` and guard's/top's interval against the floor of reading the
//! same map with raw `BPF_MAP_LOOKUP_BATCH` calls and doing nothing with
//! the entries, measured in the same run (the machine is shared, so only
//! ratios measured side by side mean anything).
//!
//! Ignored: it takes a minute and says how fast, not whether correct.
//! Run it with
//! `cargo test --release -p xdpctl-tests --test floor -- --ignored --nocapture`
//! (`XDPCTL_FLOOR_N` entries, default a million; `XDPCTL_FLOOR_RUNS`
//! rounds, default 7; `XDPCTL_FLOOR_VERBOSE` prints the floor of each batch
//! size; `XDPCTL_BIN` times another build, e.g. main's, in the same way).

use std::{
    fmt::Write as _,
    fs,
    os::fd::AsRawFd,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use xdpctl_tests::{Bpffs, command, require_privileges, xdpctl, xdpctl_bin};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user and system) of this thread, or of the children
/// waited for so far.
fn cpu(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(who, &mut u) }, 0);
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Reads every entry of the map pinned at `path` with `BPF_MAP_LOOKUP_BATCH`
/// into reused buffers, `batch` entries a call; seconds (wall and CPU),
/// and how many.
fn raw_batch_read(
    path: &Path,
    key_size: usize,
    value_len: usize,
    batch: usize,
) -> (f64, f64, usize) {
    let fd = pinfs::obj_get(path).expect("opening the map");
    let mut keys = vec![0u8; key_size * batch];
    let mut values = vec![0u8; value_len * batch];
    let mut token = vec![0u8; key_size.max(8)];
    let mut next = vec![0u8; key_size.max(8)];
    let mut total = 0;
    let (start, cpu0) = (Instant::now(), cpu(libc::RUSAGE_THREAD));
    let mut first = true;
    loop {
        let mut attr = xdpctl_tests::zeroed_attr();
        attr.batch.in_batch = if first { 0 } else { token.as_ptr() as u64 };
        attr.batch.out_batch = next.as_mut_ptr() as u64;
        attr.batch.keys = keys.as_mut_ptr() as u64;
        attr.batch.values = values.as_mut_ptr() as u64;
        attr.batch.count = batch as u32;
        attr.batch.map_fd = fd.as_raw_fd() as u32;
        // SAFETY: the buffers hold `batch` keys and values and the cursors a
        // key (and 8 bytes), and outlive the call.
        let r = unsafe {
            xdpctl_tests::raw_bpf(aya_obj::generated::bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr)
        };
        // SAFETY: the kernel wrote back how many it filled.
        total += unsafe { attr.batch.count } as usize;
        match r {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => panic!("BPF_MAP_LOOKUP_BATCH: {e}"),
        }
        std::mem::swap(&mut token, &mut next);
        first = false;
    }
    (
        start.elapsed().as_secs_f64(),
        cpu(libc::RUSAGE_THREAD) - cpu0,
        total,
    )
}

/// The best of the raw floors over a few batch sizes: wall and CPU seconds.
fn floor(path: &Path, key_size: usize, value_len: usize, n: usize) -> (f64, f64) {
    [4096, 16_384, 65_536]
        .into_iter()
        .map(|b| {
            let (t, c, got) = raw_batch_read(path, key_size, value_len, b);
            if std::env::var_os("XDPCTL_FLOOR_VERBOSE").is_some() {
                eprintln!("floor, {b} a batch: {t:.3}s wall, {c:.3}s CPU");
            }
            assert!(got + got / 50 >= n, "read {got} of about {n} entries");
            (t, c)
        })
        .fold((f64::INFINITY, f64::INFINITY), |a, b| {
            (a.0.min(b.0), a.1.min(b.1))
        })
}

/// Wall and CPU seconds of a command.
fn time(mut cmd: Command) -> (f64, f64) {
    let (start, cpu0) = (Instant::now(), cpu(libc::RUSAGE_CHILDREN));
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let t = start.elapsed().as_secs_f64();
    let c = cpu(libc::RUSAGE_CHILDREN) - cpu0;
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (t, c)
}

/// Peak RSS in KiB, under /usr/bin/time (not this large process's rusage).
fn peak_rss(args: &[&str], bpffs: &Bpffs) -> u64 {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(xdpctl_bin())
        .args(args)
        .env("XDPCTL_BPFFS", bpffs.path())
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time");
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines().last().unwrap().trim().parse().unwrap()
}

/// guard watching, changing nothing: one interval.
const GUARD: &[&str] = &[
    "guard",
    "fw",
    "--threshold",
    "1e12",
    "--interval",
    "10ms",
    "--count",
    "1",
    "--dry-run",
];

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture, in release"]
fn dump_and_interval_against_the_raw_batch_floor() {
    require_privileges!();
    let n = env_or("XDPCTL_FLOOR_N", 1_000_000);
    let runs = env_or("XDPCTL_FLOOR_RUNS", 7);
    let cpus = fs::read_to_string("/sys/devices/system/cpu/possible")
        .unwrap()
        .trim()
        .rsplit(['-', ','])
        .next()
        .unwrap()
        .parse::<usize>()
        .unwrap()
        + 1;
    let fs_ = Bpffs::new();
    let room = n.next_power_of_two().to_string();
    xdpctl(
        &fs_,
        [
            "load",
            "--pin",
            "fw",
            "--max-entries",
            &format!("blocklist={room}"),
            "--max-entries",
            &format!("pps={room}"),
        ],
    )
    .ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entries");
    let mut text = String::with_capacity(n * 20);
    for i in 0..n as u32 {
        let [a, b, c, d] = (0x0b00_0000u32 + i * 7).to_be_bytes();
        writeln!(text, "{a}.{b}.{c}.{d} {}", 1 + i % 200).unwrap();
    }
    fs::write(&file, text).unwrap();
    for map in ["fw/maps/blocklist", "fw/maps/pps"] {
        xdpctl(
            &fs_,
            ["map", "update", map, "--from-file", file.to_str().unwrap()],
        )
        .ok();
    }
    let block = fs_.path().join("fw/maps/blocklist");
    let pps = fs_.path().join("fw/maps/pps");
    let interval = 0.01;
    // Per round, xdpctl's wall and CPU time over the floor's.
    let mut ratios: Vec<[f64; 8]> = Vec::new();
    let (mut f_block, mut f_pps) = (vec![], vec![]);
    for _ in 0..runs {
        let fb = floor(&block, 4, 1, n);
        let dump = |json: bool| {
            let mut c = command(&fs_);
            if json {
                c.arg("-j");
            }
            c.args(["map", "dump", "fw/maps/blocklist"]);
            time(c)
        };
        let t = dump(false);
        let j = dump(true);
        let fp = floor(&pps, 4, 8 * cpus, n);
        // top and guard read the counters twice (a baseline and a sample).
        let per_read = |(w, c): (f64, f64)| ((w - interval) / 2.0, c / 2.0);
        let mut c = command(&fs_);
        c.args(["top", "fw", "--interval", "10ms", "--count", "1"]);
        let tp = per_read(time(c));
        let mut c = command(&fs_);
        c.args(GUARD);
        let g = per_read(time(c));
        eprintln!(
            "round (wall/cpu s): floor blocklist {:.3}/{:.3} table {:.3}/{:.3} json {:.3}/{:.3}; \
             floor pps {:.3}/{:.3} top read {:.3}/{:.3} guard read {:.3}/{:.3}",
            fb.0, fb.1, t.0, t.1, j.0, j.1, fp.0, fp.1, tp.0, tp.1, g.0, g.1
        );
        ratios.push([
            t.0 / fb.0,
            t.1 / fb.1,
            j.0 / fb.0,
            j.1 / fb.1,
            tp.0 / fp.0,
            tp.1 / fp.1,
            g.0 / fp.0,
            g.1 / fp.1,
        ]);
        f_block.push(fb.0);
        f_pps.push(fp.0);
    }
    let m = |i: usize| median(ratios.iter().map(|r| r[i]).collect());
    let rss_t = peak_rss(&["map", "dump", "fw/maps/blocklist"], &fs_);
    let rss_j = peak_rss(&["-j", "map", "dump", "fw/maps/blocklist"], &fs_);
    let rss_g = peak_rss(GUARD, &fs_);
    println!(
        "{n} entries, {runs} rounds, medians of per-round ratios to the raw floor (wall, CPU):\n\
         map dump (table) {:.2}x {:.2}x (floor {:.3}s)\n\
         map dump -j      {:.2}x {:.2}x\n\
         top interval     {:.2}x {:.2}x (floor {:.3}s)\n\
         guard interval   {:.2}x {:.2}x\n\
         peak RSS: dump {:.1} MB, dump -j {:.1} MB, guard {:.1} MB",
        m(0),
        m(1),
        median(f_block),
        m(2),
        m(3),
        m(4),
        m(5),
        median(f_pps),
        m(6),
        m(7),
        rss_t as f64 / 1024.0,
        rss_j as f64 / 1024.0,
        rss_g as f64 / 1024.0,
    );
}
