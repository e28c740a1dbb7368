//! Map edits (`map update`, `delete`, `clear`): a change to a map read by
//! its types, refused whole before its first write when the input is bad
//! (a missing key, `--if-absent` on a present one, a file line that does
//! not parse), and kept in step with the firewall's indexes.

use std::{
    collections::{HashMap, HashSet},
    fs,
    io::{self, BufRead},
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde_json::{Value, json};

use crate::{
    ctx::Ctx,
    kernel::{fwindex::Indexes, map::MapHandle, objects, sys::update_flags},
    model::{
        codec::{self, Shape},
        guard::Cidr,
        handle::Handle,
        manifest::MAPS_SUBDIR,
        policy::Entries,
        rate,
    },
    ops::openmap::{NotFound, OpenMap, is_array},
    render,
};

/// What an edit did: a line for stderr and the result for `-j`.
#[derive(Debug)]
pub struct Edited {
    /// The line.
    pub note: String,
    /// The result.
    pub json: Value,
}

/// `map update`'s options.
#[derive(Clone, Debug)]
pub struct UpdateOptions {
    /// The map.
    pub map: Handle,
    /// One key (with `value`).
    pub key: Option<String>,
    /// Its value.
    pub value: Option<String>,
    /// Or every entry of a file (`-` for stdin).
    pub from_file: Option<String>,
    /// Only keys that are there.
    pub if_exists: bool,
    /// Only keys that are not.
    pub if_absent: bool,
    /// Keys and values as raw bytes, not by their types.
    pub raw: bool,
    /// A per-CPU value is written on every CPU.
    pub every_cpu: bool,
}

/// Runs a change to the map `handle`; if it is a firewall's rule map an
/// index is derived from (`cidr4`, `udp_ports`, `tcp_ports`, ...), the
/// change goes through the indexes' one protocol (`fwindex::Target::begin`
/// right before its first write, `Change::finish` after it, whether the
/// write worked or not). A change refused before it writes (bad input, a
/// missing key) touches nothing, not even the index's words.
///
/// `change` gets `arm`, which it calls right before its first write with
/// the keys it will write (packed).
pub fn indexed<T>(
    ctx: &Ctx,
    handle: &Handle,
    change: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<T>,
) -> Result<T> {
    let Ok((fd, _)) = objects::resolve(&ctx.bpffs, handle, Kind::Map) else {
        // The change itself says what is wrong.
        return change(&mut |_| Ok(()));
    };
    let map = MapHandle::from_fd(fd)?;
    let pinned = match handle {
        Handle::Path(p) => Some(ctx.bpffs.join(p)),
        Handle::Name(n) if ctx.bpffs.join(n).exists() => Some(ctx.bpffs.join(n)),
        _ => None,
    };
    let indexes = Indexes::of(&ctx.bpffs, &map, pinned.as_deref())?;
    // Ports protected by SYN cookies: the host is checked first, and the
    // SYN-ACKs' settings taken from it.
    let syn = map.name() == xdp_progs::xdpfw::maps::SYN_PORTS;
    let armed = std::cell::Cell::new(false);
    let result = change(&mut |added| {
        if syn && !added.is_empty() && !armed.get() {
            for dir in indexes.load_dirs() {
                crate::ops::syncookie::prepare(ctx, &dir)?;
            }
        }
        if !armed.get() {
            indexes.begin(added)?;
            armed.set(true);
        }
        Ok(())
    });
    if armed.get() {
        let notes = indexes.finish()?;
        ctx.out.notes(notes);
        if result.is_ok()
            && let Some(note) = own_map_note(ctx, &map)
        {
            ctx.out.note(format_args!("{note}"));
        }
    }
    result
}

/// The note for a write by hand to one of a firewall's own maps (derived
/// from its rules, or kept by its datapath: `ctl`, `cidr4_l1`, ...), if
/// `map` is one: allowed, as bpftool allows it, but said.
fn own_map_note(ctx: &Ctx, map: &MapHandle) -> Option<String> {
    let name = map.name();
    if !xdp_progs::xdpfw::maps::INTERNAL.contains(&name.as_str()) {
        return None;
    }
    let dir = crate::ops::firewall::find_loads(&ctx.bpffs)
        .ok()?
        .into_iter()
        .find(|dir| {
            MapHandle::open_pinned(&dir.join(MAPS_SUBDIR).join(&name))
                .is_ok_and(|m| m.info().id == map.info().id)
        })?;
    Some(format!(
        "{name} is the firewall's own map in {}, derived from its rules or kept by its \
         datapath: an entry written by hand changes what the datapath does until the next \
         rule change or `xdpctl doctor` puts it back (write the rule maps instead)",
        dir.display()
    ))
}

/// Deletes `key` from the map `handle`; a missing key is refused before
/// anything is touched.
pub fn delete(
    ctx: &Ctx,
    handle: &Handle,
    key: &str,
    raw: bool,
    arm: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Edited> {
    let map = OpenMap::open(ctx, handle, raw)?;
    if is_array(map.info().type_) {
        bail!(
            "map {} is an array: its entries cannot be deleted; set one to zero with `xdpctl map update` or all with `xdpctl map clear`",
            map.label
        );
    }
    let key_bytes = map.parse_key(key)?;
    // A prefix with host bits names no entry of an LPM trie, whose delete
    // would take the prefix it masks to: refused, as an update is.
    if let Shape::Cidr { .. } = map.key
        && let Some(c) = Cidr::from_lpm_key(&key_bytes)
    {
        c.check_rule()
            .map_err(|e| anyhow::anyhow!("key for map {}: {e}", map.label))?;
    }
    // A missing key is refused before anything is touched (a map that
    // cannot be read is left to the delete to say).
    let mut probe = vec![0u8; map.value_len()];
    let there = map.handle().lookup(&key_bytes, &mut probe).unwrap_or(true);
    let found = there && {
        arm(&[])?;
        map.handle()
            .delete(&key_bytes)
            .with_context(|| format!("deleting {key} from map {}", map.label))?
    };
    if !found {
        return Err(NotFound {
            message: format!("key {key} not found in map {}", map.label),
            lookup: false,
        }
        .into());
    }
    Ok(Edited {
        note: format!("deleted {key} from map {}", map.label),
        json: json!({"map": map.name(), "deleted": 1}),
    })
}

/// Empties the map `handle` (an array: every entry set to zero).
pub fn clear(
    ctx: &Ctx,
    handle: &Handle,
    arm: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Edited> {
    let map = OpenMap::open(ctx, handle, true)?;
    let mut keys = Vec::new();
    map.for_each(|k, _| {
        keys.push(k.to_vec());
        Ok(true)
    })?;
    arm(&[])?;
    let mut n = 0u64;
    let note = if is_array(map.info().type_) {
        let zero = vec![0u8; map.value_len()];
        for k in &keys {
            map.handle()
                .update(k, &zero, update_flags::ANY)
                .map_err(|e| {
                    write_error(&map, e, update_flags::ANY, &codec::to_text(&map.key, k))
                })?;
            n += 1;
        }
        format!(
            "set {} of array map {} to zero",
            if n == 1 {
                "its one entry".to_owned()
            } else {
                format!("all {n} entries")
            },
            map.label
        )
    } else {
        for k in &keys {
            if map
                .handle()
                .delete(k)
                .with_context(|| format!("clearing map {}", map.label))?
            {
                n += 1;
            }
        }
        format!(
            "deleted {} from map {}",
            render::count(n, "entry", "entries"),
            map.label
        )
    };
    Ok(Edited {
        note,
        json: json!({"map": map.name(), "cleared": n}),
    })
}

/// Whether the map was made read-only for system calls: frozen, or
/// `BPF_F_RDONLY` (global `.rodata`).
fn read_only(map: &OpenMap) -> bool {
    const BPF_F_RDONLY: u32 = 1 << 3;
    map.info().map_flags & BPF_F_RDONLY != 0 || map.name().ends_with(".rodata")
}

/// Explains a failed write in terms of the map.
fn write_error(map: &OpenMap, e: io::Error, flags: u64, key: &str) -> anyhow::Error {
    let what = match (e.raw_os_error(), flags) {
        (Some(libc::E2BIG), _) if is_array(map.info().type_) => {
            format!(
                "index {key} is out of range for map {} ({} entries)",
                map.label,
                map.info().max_entries
            )
        }
        (Some(libc::E2BIG), _) => format!(
            "map {} is full ({} entries)",
            map.label,
            map.info().max_entries
        ),
        (Some(libc::EEXIST), update_flags::NOEXIST) => format!(
            "key {key} already exists in map {} (--if-absent)",
            map.label
        ),
        (Some(libc::ENOENT), update_flags::EXIST) => {
            format!("key {key} is not in map {} (--if-exists)", map.label)
        }
        // Frozen by its loader (global `const` data): no privilege helps.
        (Some(libc::EPERM), _) if read_only(map) => format!(
            "map {} is read-only: its loader froze it (a program's constants); it cannot be \
             written, only read",
            map.label
        ),
        _ => return anyhow::Error::new(e).context(format!("updating {key} in map {}", map.label)),
    };
    anyhow::anyhow!(what)
}

/// Writes one entry, or every entry of a file, to a map; `arm` gets the
/// keys it will write (packed), for the blocklist filter.
pub fn update(
    ctx: &Ctx,
    args: &UpdateOptions,
    arm: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Edited> {
    let mut map = OpenMap::open(ctx, &args.map, args.raw)?;
    if args.every_cpu && !map.per_cpu() {
        bail!(
            "map {} is not per-CPU: it holds one value per key, and --every-cpu is for per-CPU \
             maps; leave it out",
            map.label
        );
    }
    map.every_cpu = args.every_cpu;
    let flags = if args.if_exists {
        update_flags::EXIST
    } else if args.if_absent {
        update_flags::NOEXIST
    } else {
        update_flags::ANY
    };
    if let Some(file) = &args.from_file {
        return update_from_file(&map, file, flags, arm);
    }
    let (Some(key), Some(value)) = (&args.key, &args.value) else {
        bail!("give KEY and VALUE, or --from-file FILE");
    };
    let key_bytes = map.parse_key(key)?;
    map.check_rule_key(&key_bytes)
        .map_err(|e| anyhow::anyhow!("key for map {}: {e}", map.label))?;
    // A struct's fields (global data: the variables) not named keep their
    // values; a key not there yet has zeros for them.
    let mut base = vec![0u8; map.value_len()];
    let mask = codec::written_mask(&map.input(), value);
    if mask.contains(&0) && !map.lookup_exact(&key_bytes, &mut base)? {
        base.fill(0);
    }
    let mut value_bytes = map.parse_value_over(value, &base)?;
    if map.holds_rates() {
        rate::as_written(&mut value_bytes, Some(&mask));
    }
    map.check_rule_value(&value_bytes).map_err(|e| {
        // What a partial write kept may be what is wrong: say so.
        let kept = map.holds_rates() && mask.get(..rate::OWNER_AT).is_some_and(|m| m.contains(&0));
        anyhow::anyhow!(
            "value for map {} at {key}: {e}{}",
            map.label,
            if kept {
                " (the fields not given are the ones the limit there has)"
            } else {
                ""
            }
        )
    })?;
    // Refused before anything is written: a key that is there under
    // --if-absent, or missing under --if-exists.
    // (A map that cannot be read is left to the write to refuse.)
    let mut probe = vec![0u8; map.value_len()];
    if flags != update_flags::ANY
        && let Ok(there) = map.lookup_exact(&key_bytes, &mut probe)
        && there != (flags == update_flags::EXIST)
    {
        let errno = if there { libc::EEXIST } else { libc::ENOENT };
        return Err(write_error(
            &map,
            std::io::Error::from_raw_os_error(errno),
            flags,
            key,
        ));
    }
    arm(&added(&map, [(&key_bytes, &value_bytes)]))?;
    map.handle()
        .update(&key_bytes, &value_bytes, flags)
        .map_err(|e| write_error(&map, e, flags, key))?;
    // The entry as the map now holds it, not as typed (0x10 is port 16; a
    // struct's fields not given were kept); a limit in its own words.
    let shown = if map.holds_rates() {
        rate::rule_text(&value_bytes).unwrap_or_else(|| value.clone())
    } else if map.per_cpu() {
        value.clone()
    } else {
        let mut text = Vec::new();
        map.write_value_text(&value_bytes, false, &mut text, &mut Vec::new());
        String::from_utf8_lossy(&text).into_owned()
    };
    Ok(Edited {
        note: format!(
            "map {}: {} = {shown}",
            map.label,
            codec::to_text(&map.key, &key_bytes)
        ),
        json: map.entry_json(&key_bytes, &value_bytes, false),
    })
}

/// The keys (packed) of the entries a write adds as rules: all but those
/// of value 0 where 0 is no rule (a port "present, off"), which give the
/// indexes nothing to take in and the host nothing to check.
fn added<'a>(
    map: &OpenMap,
    entries: impl IntoIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>,
) -> Vec<u8> {
    let name = map.name();
    let mut keys = Vec::new();
    for (k, v) in entries {
        if crate::model::rulemaps::is_rule(&name, v) {
            keys.extend_from_slice(k);
        }
    }
    keys
}

/// A key and a whole (all-CPU) value, as bytes.
type Entry = (Vec<u8>, Vec<u8>);

/// One line of an update file, parsed.
/// A line's entry, and the mask of the value's bytes it gives when it
/// gives a struct in part (the others keep what the map holds).
type Line = (Entry, Option<Vec<u8>>);

fn parse_line(map: &OpenMap, line: &str) -> Result<Option<Line>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        return parse_json_entry(map, &v).map(Some);
    }
    // A comment may end a line: ` # ...`.
    let line = line
        .split_once(" #")
        .or_else(|| line.split_once("\t#"))
        .map_or(line, |(l, _)| l.trim_end());
    let (key, value) = line.split_once(char::is_whitespace).ok_or_else(|| {
        "expected KEY VALUE (or a JSON object with \"key\" and \"value\")".to_owned()
    })?;
    let value = value.trim();
    let k = codec::parse(&map.key, key).map_err(|e| format!("key: {e}"))?;
    map.check_rule_key(&k).map_err(|e| format!("key: {e}"))?;
    let input = map.input();
    let v = codec::parse(&input, value).map_err(|e| format!("value: {e}"))?;
    let mask = Some(codec::written_mask(&input, value)).filter(|m| m.contains(&0));
    Ok(Some(((k, map.spread(&v)), mask)))
}

fn parse_json_entry(map: &OpenMap, v: &Value) -> Result<Line, String> {
    let key = v.get("key").ok_or("no \"key\"")?;
    let k = codec::from_json(&map.key, key, "").map_err(|e| format!("key: {e}"))?;
    map.check_rule_key(&k).map_err(|e| format!("key: {e}"))?;
    // Per-CPU values, when given, are written exactly, CPU by CPU.
    if let (true, Some(Value::Array(values))) = (map.per_cpu(), v.get("values")) {
        if values.len() != map.cpus() {
            return Err(format!(
                "\"values\" has {} entries; this machine has {} possible CPUs",
                values.len(),
                map.cpus()
            ));
        }
        let mut out = vec![0u8; map.value_len()];
        for (cpu, one) in values.iter().enumerate() {
            let b = codec::from_json(&map.input(), one, "")
                .map_err(|e| format!("values[{cpu}]: {e}"))?;
            out[cpu * map.handle().stride()..cpu * map.handle().stride() + b.len()]
                .copy_from_slice(&b);
        }
        return Ok(((k, out), None));
    }
    let value = v.get("value").ok_or("no \"value\"")?;
    let input = map.input();
    let b = codec::from_json(&input, value, "").map_err(|e| format!("value: {e}"))?;
    let mask = Some(codec::written_mask_json(&input, value)).filter(|m| m.contains(&0));
    Ok(((k, map.spread(&b)), mask))
}

fn update_from_file(
    map: &OpenMap,
    file: &str,
    flags: u64,
    arm: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Edited> {
    let (name, reader): (&str, Box<dyn BufRead>) = if file == "-" {
        ("stdin", Box::new(io::stdin().lock()))
    } else {
        let f = fs::File::open(file).with_context(|| format!("cannot read {file}"))?;
        (file, Box::new(io::BufReader::new(f)))
    };
    // Validate everything before writing anything.
    let mut lines_read: Vec<Line> = Vec::new();
    let mut lines = reader.lines().enumerate().peekable();
    let whole_array = loop {
        match lines.peek() {
            Some((_, Ok(l))) if l.trim().is_empty() || l.trim_start().starts_with('#') => {
                lines.next();
            }
            Some((_, Ok(l))) => break l.trim_start().starts_with('['),
            _ => break false,
        }
    };
    if whole_array {
        // The output of `map dump -j`: one JSON array.
        let mut text = String::new();
        for (_, l) in lines {
            text.push_str(&l.with_context(|| format!("reading {name}"))?);
            text.push('\n');
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{name}: invalid JSON: {e}"))?;
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            lines_read.push(parse_json_entry(map, item).map_err(|e| {
                anyhow::anyhow!("{name}: element {}: {e}; nothing was written", i + 1)
            })?);
        }
    } else {
        let lines: Vec<(usize, String)> = lines
            .map(|(i, l)| Ok((i, l.with_context(|| format!("reading {name}"))?)))
            .collect::<Result<_>>()?;
        // NB: parsing a million lines is most of a bulk load's own time;
        // both cores share it, and the first bad line (by number) is said.
        let half = lines.len().div_ceil(2).max(1);
        let parsed: Vec<Result<Vec<Line>, (usize, String)>> = std::thread::scope(|s| {
            let workers: Vec<_> = lines
                .chunks(half)
                .map(|chunk| {
                    s.spawn(move || {
                        let mut out = Vec::with_capacity(chunk.len());
                        for (i, line) in chunk {
                            match parse_line(map, line) {
                                Ok(Some(e)) => out.push(e),
                                Ok(None) => {}
                                Err(e) => return Err((*i, e)),
                            }
                        }
                        Ok(out)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a parser thread does not panic"))
                .collect()
        });
        for part in parsed {
            match part {
                Ok(mut e) => lines_read.append(&mut e),
                Err((i, e)) => bail!("{name}:{}: {e}; nothing was written", i + 1),
            }
        }
    }
    let rates = map.holds_rates();
    let masks: Vec<(usize, Vec<u8>)> = lines_read
        .iter_mut()
        .enumerate()
        .filter_map(|(i, (_, m))| m.take().map(|m| (i, m)))
        .collect();
    let mut entries: Vec<Entry> = lines_read.into_iter().map(|(e, _)| e).collect();
    let max = u64::from(map.info().max_entries);
    if entries.len() as u64 > max {
        // A key given twice is one entry (the last line's value wins).
        let distinct = entries
            .iter()
            .map(|(k, _)| k.as_slice())
            .collect::<HashSet<_>>()
            .len();
        if distinct as u64 > max {
            bail!(
                "map {} is too small: {name} has {} distinct keys, the map holds at most {max}; \
                 nothing was written",
                map.label,
                distinct
            );
        }
    }
    // What the file's keys hold now: to check room and flags before writing
    // anything, and to put it back if a write fails anyway.
    let before = Before::read(map, &entries)?;
    before.check(map, &entries, name, flags)?;
    // A struct given in part keeps, in the fields it does not name, what
    // the map holds (zeros for a new key), as a single update does.
    let masked: HashSet<usize> = masks.iter().map(|(i, _)| *i).collect();
    for (i, mask) in masks {
        let (k, given) = &entries[i];
        let base = before
            .old
            .get(k)
            .cloned()
            .unwrap_or_else(|| vec![0u8; given.len()]);
        let stride = map.handle().stride();
        let mut value = base.clone();
        for cpu in 0..map.cpus() {
            let r = cpu * stride..cpu * stride + mask.len();
            let slot = codec::overlay(&base[r.clone()], &given[r.clone()], &mask);
            value[r].copy_from_slice(&slot);
        }
        if rates {
            rate::as_written(&mut value, Some(&mask));
        }
        entries[i].1 = value;
    }
    if rates {
        for (i, (_, v)) in entries.iter_mut().enumerate() {
            // Whole values: the buckets restart, the owner is as given.
            if !masked.contains(&i) {
                rate::as_written(v, None);
            }
        }
        for (k, v) in &entries {
            if let Err(e) = map.check_rule_value(v) {
                bail!(
                    "{name}: value for map {} at {}: {e}; nothing was written",
                    map.label,
                    codec::to_text(&map.key, k)
                );
            }
        }
    }
    arm(&added(map, entries.iter().map(|(k, v)| (k, v))))?;
    let written = match write_all(map, &entries, flags) {
        Ok(n) => n,
        Err((err, n)) => {
            let restored = before.restore(map, &entries[..n as usize]);
            return Err(match restored {
                Ok(()) => err.context(format!(
                    "{n} entries had been written before it and were put back: nothing changed"
                )),
                Err(e) => err.context(format!(
                    "{n} entries had been written before it, and putting them back failed too: {e:#}"
                )),
            });
        }
    };
    Ok(Edited {
        note: format!(
            "wrote {written} {} to map {} from {name}",
            if written == 1 { "entry" } else { "entries" },
            map.label
        ),
        json: json!({"map": map.name(), "written": written}),
    })
}

/// The values the keys of a file held before it is written, and how many
/// entries the map held.
struct Before {
    old: HashMap<Vec<u8>, Vec<u8>>,
    count: u64,
}

impl Before {
    fn read(map: &OpenMap, entries: &[Entry]) -> Result<Self> {
        // NB: the common bulk load goes into an empty map: one probe, and
        // no set of a million keys to build.
        let mut probe = vec![0u8; map.info().key_size as usize];
        if !map.handle().next_key(None, &mut probe)? {
            return Ok(Before {
                old: HashMap::new(),
                count: 0,
            });
        }
        let keys: HashSet<&[u8]> = entries.iter().map(|(k, _)| k.as_slice()).collect();
        let mut old = HashMap::new();
        let mut count = 0u64;
        map.for_each(|k, v| {
            count += 1;
            if keys.contains(k) {
                old.insert(k.to_vec(), v.to_vec());
            }
            Ok(true)
        })?;
        Ok(Before { old, count })
    }

    /// Refuses a file that cannot be written whole: no room for its new
    /// keys, a key that exists under --if-absent, one missing under
    /// --if-exists.
    fn check(&self, map: &OpenMap, entries: &[Entry], name: &str, flags: u64) -> Result<()> {
        let t = map.info().type_;
        let max = u64::from(map.info().max_entries);
        let lru = [
            aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LRU_HASH as u32,
            aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH as u32,
        ]
        .contains(&t);
        // Room: counted exactly only when the file's lines could overflow
        // the map (the common bulk load into an empty map does not).
        if !is_array(t) && !lru && self.count + entries.len() as u64 > max {
            let new: HashSet<&[u8]> = entries
                .iter()
                .map(|(k, _)| k.as_slice())
                .filter(|k| !self.old.contains_key(*k))
                .collect();
            if self.count + new.len() as u64 > max {
                bail!(
                    "map {} has room for {} more {}, and {name} adds {}; nothing was written",
                    map.label,
                    max.saturating_sub(self.count),
                    if max.saturating_sub(self.count) == 1 {
                        "entry"
                    } else {
                        "entries"
                    },
                    render::count(new.len() as u64, "new key", "new keys")
                );
            }
        }
        if flags == update_flags::NOEXIST
            && let Some((k, _)) = entries.iter().find(|(k, _)| self.old.contains_key(k))
        {
            bail!(
                "key {} already exists in map {} (--if-absent); nothing was written",
                codec::to_text(&map.key, k),
                map.label
            );
        }
        if flags == update_flags::EXIST
            && let Some((k, _)) = entries.iter().find(|(k, _)| !self.old.contains_key(k))
        {
            bail!(
                "key {} is not in map {} (--if-exists); nothing was written",
                codec::to_text(&map.key, k),
                map.label
            );
        }
        Ok(())
    }

    /// Puts back what `written` changed: old values where there were some,
    /// no entry where there was none.
    fn restore(&self, map: &OpenMap, written: &[Entry]) -> Result<()> {
        for (k, _) in written {
            match self.old.get(k) {
                Some(v) => map.handle().update(k, v, update_flags::ANY)?,
                None => {
                    map.handle().delete(k)?;
                }
            }
        }
        Ok(())
    }
}

/// Writes entries through [`MapHandle::put_all_with`] (in batches where the
/// map type allows). On failure, says how many were written before it.
fn write_all(map: &OpenMap, entries: &[Entry], flags: u64) -> Result<u64, (anyhow::Error, u64)> {
    let (ks, vs) = entries.first().map_or((0, 0), |(k, v)| (k.len(), v.len()));
    let mut packed = Entries::new(ks, vs);
    for (k, v) in entries {
        packed.push(k, v);
    }
    map.handle()
        .put_all_with(&packed, flags)
        .map(|()| entries.len() as u64)
        .map_err(|(e, at)| {
            let key = codec::to_text(&map.key, &entries[at].0);
            (write_error(map, e, flags, &key), at as u64)
        })
}
