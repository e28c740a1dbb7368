//! `map dump` and guard's/top's interval against the floor of reading the
//! same map with raw `BPF_MAP_LOOKUP_BATCH` calls and doing nothing with
//! the entries, measured in the same run (the machine is shared, so only
//! ratios measured side by side mean anything).
//!
//! Ignored: it takes a minute and says how fast, not whether correct.
//! Run it with
//! `cargo test --release -p xdpctl-tests --test floor -- --ignored --nocapture`
//! (`XDPCTL_FLOOR_N` entries, default a million; `XDPCTL_FLOOR_RUNS`
//! rounds, default 7).

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Reads every entry of the map pinned at `path` with `BPF_MAP_LOOKUP_BATCH`
/// into reused buffers, `batch` entries a call; seconds, and how many.
fn raw_batch_read(path: &Path, key_size: usize, value_len: usize, batch: usize) -> (f64, usize) {
    let fd = pinfs::obj_get(path).expect("opening the map");
    let mut keys = vec![0u8; key_size * batch];
    let mut values = vec![0u8; value_len * batch];
    let mut token = vec![0u8; key_size.max(8)];
    let mut next = vec![0u8; key_size.max(8)];
    let mut total = 0;
    let start = Instant::now();
    let mut first = true;
    loop {
        let mut attr = pinfs::zeroed_attr();
        attr.batch.in_batch = if first { 0 } else { token.as_ptr() as u64 };
        attr.batch.out_batch = next.as_mut_ptr() as u64;
        attr.batch.keys = keys.as_mut_ptr() as u64;
        attr.batch.values = values.as_mut_ptr() as u64;
        attr.batch.count = batch as u32;
        attr.batch.map_fd = fd.as_raw_fd() as u32;
        // SAFETY: the buffers hold `batch` keys and values and the cursors a
        // key (and 8 bytes), and outlive the call.
        let r = unsafe { pinfs::bpf(aya_obj::generated::bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr) };
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
    (start.elapsed().as_secs_f64(), total)
}

/// The best of the raw floors over a few batch sizes.
fn floor(path: &Path, key_size: usize, value_len: usize, n: usize) -> f64 {
    [16_384, 65_536]
        .into_iter()
        .map(|b| {
            let (t, got) = raw_batch_read(path, key_size, value_len, b);
            assert!(got + got / 50 >= n, "read {got} of about {n} entries");
            t
        })
        .fold(f64::INFINITY, f64::min)
}

fn time(mut cmd: Command) -> f64 {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let t = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t
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
        xdpctl(&fs_, ["map", "update", map, "--from-file", file.to_str().unwrap()]).ok();
    }
    let block = fs_.path().join("fw/maps/blocklist");
    let pps = fs_.path().join("fw/maps/pps");
    let interval = 0.01;
    let (mut table, mut json, mut top, mut guard) = (vec![], vec![], vec![], vec![]);
    let (mut f_block, mut f_pps) = (vec![], vec![]);
    for _ in 0..runs {
        let fb = floor(&block, 4, 1, n);
        let fp = floor(&pps, 4, 8 * cpus, n);
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
        let mut c = command(&fs_);
        c.args(["top", "fw", "--interval", "10ms", "--count", "1"]);
        // top reads the counters twice (a baseline and a sample).
        let tp = (time(c) - interval) / 2.0;
        let mut c = command(&fs_);
        c.args([
            "guard",
            "fw",
            "--threshold",
            "1e12",
            "--interval",
            "10ms",
            "--count",
            "1",
            "--dry-run",
        ]);
        let g = (time(c) - interval) / 2.0;
        eprintln!(
            "round: floor blocklist {fb:.3}s table {t:.3}s ({:.2}x) json {j:.3}s ({:.2}x); \
             floor pps {fp:.3}s top read {tp:.3}s ({:.2}x) guard read {g:.3}s ({:.2}x)",
            t / fb,
            j / fb,
            tp / fp,
            g / fp
        );
        table.push(t / fb);
        json.push(j / fb);
        top.push(tp / fp);
        guard.push(g / fp);
        f_block.push(fb);
        f_pps.push(fp);
    }
    let rss_t = peak_rss(&["map", "dump", "fw/maps/blocklist"], &fs_);
    let rss_j = peak_rss(&["-j", "map", "dump", "fw/maps/blocklist"], &fs_);
    let rss_g = peak_rss(
        &[
            "guard",
            "fw",
            "--threshold",
            "1e12",
            "--interval",
            "10ms",
            "--count",
            "1",
            "--dry-run",
        ],
        &fs_,
    );
    println!(
        "{n} entries, {runs} rounds, medians of per-round ratios:\n\
         map dump (table) {:.2}x floor {:.3}s\n\
         map dump -j      {:.2}x\n\
         top interval     {:.2}x floor {:.3}s\n\
         guard interval   {:.2}x\n\
         peak RSS: dump {:.1} MB, dump -j {:.1} MB, guard {:.1} MB",
        median(table),
        median(f_block),
        median(json),
        median(top),
        median(f_pps),
        median(guard),
        rss_t as f64 / 1024.0,
        rss_j as f64 / 1024.0,
        rss_g as f64 / 1024.0,
    );
}
