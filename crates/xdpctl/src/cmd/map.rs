//! `xdpctl map`: show, dump, lookup, update, delete and clear maps, with keys
//! and values printed and parsed by their BTF types.

use std::{
    collections::{BinaryHeap, HashMap, HashSet},
    fs,
    io::{self, BufRead, Write},
    path::PathBuf,
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    cli::{DumpArgs, Handle, MapCommand, UpdateArgs},
    ctx::{Ctx, PinIndex},
    kernel::fwindex::Indexes,
    kernel::map::MapHandle,
    kernel::objects,
    kernel::sys::{self, IdKind, update_flags},
    model::codec::{self, Shape},
    model::maptype::{self, Reading},
    ops::openmap::{ENOTSUPP, Fold, OpenMap, is_array},
    render::{self, Format, Tabular},
};

/// A lookup or delete that found nothing: exit status 3.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NotFound {
    /// The one line for stderr.
    pub message: String,
    /// A lookup: under `-j` stdout holds `null`, the value of no entry,
    /// rather than an error document.
    pub lookup: bool,
}

/// One map, as `map show` prints it.
#[derive(Debug, Serialize)]
pub struct MapRow {
    /// Kernel id.
    pub id: u32,
    /// Map type (`hash`, `lru_percpu_hash`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// The kernel's name (15 characters at most).
    pub name: String,
    /// Key type, from BTF (`ipv4`, `u32`, ...), or its size.
    pub key: String,
    /// Value type, from BTF, or its size.
    pub value: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Entries in use (null where counting is not possible).
    pub entries: Option<u64>,
    /// Capacity.
    pub max_entries: u32,
    /// `map_flags` as given at creation.
    pub flags: u32,
    /// BTF object id, 0 if none.
    pub btf_id: u32,
    /// Where it is pinned under the bpffs root.
    pub pinned: Vec<PathBuf>,
}

impl Tabular for MapRow {
    const HEADERS: &'static [&'static str] =
        &["ID", "TYPE", "NAME", "KEY", "VALUE", "ENTRIES", "PINNED"];
    // NB: a struct value's type alone can take 40 characters.
    const OPTIONAL: &'static [&'static str] = &["VALUE", "KEY"];
    fn cells(&self, view: &render::View) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.type_.clone(),
            self.name.clone(),
            self.key.clone(),
            self.value.clone(),
            format!(
                "{}/{}",
                self.entries
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                self.max_entries
            ),
            view.paths(&self.pinned),
        ]
    }
}

fn row(map: &OpenMap, pins: &PinIndex) -> MapRow {
    let info = map.info();
    MapRow {
        id: info.id,
        type_: sys::map_type_name(info.type_),
        name: map.name(),
        key: map.key.describe(),
        value: map.value.describe(),
        key_size: info.key_size,
        value_size: info.value_size,
        entries: map.entries().ok(),
        max_entries: info.max_entries,
        flags: info.map_flags,
        btf_id: info.btf_id,
        pinned: pins.get(&(Kind::Map, info.id)).cloned().unwrap_or_default(),
    }
}

/// `xdpctl map ...`.
pub fn run(ctx: &Ctx, cmd: &MapCommand) -> Result<()> {
    match cmd {
        MapCommand::Show { handle } => show(ctx, handle.as_ref()),
        MapCommand::Dump(args) => dump(ctx, args),
        MapCommand::Lookup {
            map,
            key,
            per_cpu,
            sum,
            raw,
        } => lookup(ctx, map, key, Fold::of(*sum, *per_cpu), *raw),
        MapCommand::Update(args) => {
            indexed(ctx, &args.map, |keys, arm| update(ctx, args, keys, arm))
        }
        MapCommand::Delete { map, key, raw } => {
            indexed(ctx, map, |_, arm| delete(ctx, map, key, *raw, arm))
        }
        MapCommand::Clear { map } => indexed(ctx, map, |_, arm| clear(ctx, map, arm)),
    }
}

/// Runs a change to the map `handle`; if it is a firewall's rule map an
/// index is derived from (`cidr4`, `udp_ports`, `tcp_ports`, ...), the
/// index is turned off right before the change's first write and rebuilt
/// after it (see `kernel::fwindex`), whether the write worked or not. A
/// change refused before it writes (bad input, a missing key) touches
/// nothing, not even the index's words.
///
/// `change` gets a buffer for the keys it writes (packed), for the
/// blocklist filter, and `arm`, which it calls before its first write.
fn indexed(
    ctx: &Ctx,
    handle: &Handle,
    change: impl FnOnce(&mut Vec<u8>, &mut dyn FnMut() -> Result<()>) -> Result<()>,
) -> Result<()> {
    let mut written = Vec::new();
    let Ok((fd, _)) = objects::resolve(&ctx.bpffs, handle, Kind::Map) else {
        // The change itself says what is wrong.
        return change(&mut written, &mut || Ok(()));
    };
    let map = MapHandle::from_fd(fd)?;
    let pinned = match handle {
        Handle::Path(p) => Some(ctx.bpffs.join(p)),
        Handle::Name(n) if ctx.bpffs.join(n).exists() => Some(ctx.bpffs.join(n)),
        _ => None,
    };
    let indexes = Indexes::of(&ctx.bpffs, &map, pinned.as_deref())?;
    let armed = std::cell::Cell::new(false);
    let result = change(&mut written, &mut || {
        if !armed.get() {
            indexes.suspend()?;
            armed.set(true);
        }
        Ok(())
    });
    if armed.get() {
        let notes = indexes.sync(&written)?;
        ctx.out.notes(notes);
    }
    result
}

fn show(ctx: &Ctx, handle: Option<&Handle>) -> Result<()> {
    let pins = ctx.pin_index()?;
    let rows = match handle {
        Some(handle) => vec![row(&OpenMap::open(ctx, handle, false)?, &pins)],
        None => {
            let mut rows = Vec::new();
            for id in sys::ids(IdKind::Map)? {
                let Ok(fd) = sys::fd_by_id(IdKind::Map, id) else {
                    continue;
                };
                rows.push(row(
                    &OpenMap::from_fd(fd, format!("map id {id}"), false)?,
                    &pins,
                ));
            }
            rows
        }
    };
    ctx.out.result(&rows)?;
    Ok(())
}

/// Streams entries to stdout: a JSON array, or aligned `KEY VALUE` lines.
struct Printer<'a> {
    map: &'a OpenMap,
    format: Format,
    /// Per-CPU values summed.
    sum: bool,
    /// NB: no `BufWriter`: `text` is the buffer, and a large write goes
    /// through stdout's own line buffering without a copy.
    out: io::StdoutLock<'static>,
    count: u64,
    key_width: usize,
    /// Reused: text of many entries, written to `out` in one go.
    text: Vec<u8>,
    /// Reused: a value summed over CPUs.
    folded: Vec<u8>,
}

/// Text gathered before it is written.
const FLUSH_AT: usize = 1 << 18;

/// Padding for the KEY column, sliced.
const SPACES: &[u8; 48] = b"                                                ";

impl<'a> Printer<'a> {
    fn new(map: &'a OpenMap, format: Format, sum: bool) -> Self {
        let key_width = match map.key {
            Shape::Ipv4 => 15,
            Shape::Ipv6 => 39,
            Shape::Cidr { v6: false } => 18,
            Shape::Cidr { v6: true } => 43,
            Shape::Port => 5,
            Shape::Uint { size } | Shape::Int { size } => 3 * size,
            _ => 0,
        };
        Printer {
            map,
            format,
            sum,
            out: render::stdout(),
            count: 0,
            key_width,
            text: Vec::with_capacity(2 * FLUSH_AT),
            folded: Vec::new(),
        }
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let text = &mut self.text;
        match self.format {
            Format::Human => {
                if self.count == 0 {
                    let value = match (self.map.per_cpu(), self.sum) {
                        (false, _) => "VALUE".to_owned(),
                        (true, true) => format!("VALUE (sum of {} CPUs)", self.map.cpus()),
                        (true, false) => {
                            format!("VALUE PER CPU (CPU 0 to {})", self.map.cpus() - 1)
                        }
                    };
                    text.extend_from_slice(
                        format!("{:<w$}  {value}\n", "KEY", w = self.key_width).as_bytes(),
                    );
                }
                let start = text.len();
                codec::write_text(&self.map.key, key, text);
                let pad = self.key_width.saturating_sub(text.len() - start) + 2;
                match SPACES.get(..pad) {
                    Some(spaces) => text.extend_from_slice(spaces),
                    None => text.extend(std::iter::repeat_n(b' ', pad)),
                }
                self.map
                    .write_value_text(value, self.sum, text, &mut self.folded);
                text.push(b'\n');
            }
            Format::Json => {
                text.push(if self.count == 0 { b'[' } else { b',' });
                self.map
                    .write_entry_json(key, value, self.sum, text, &mut self.folded);
            }
            Format::PrettyJson => {
                text.extend_from_slice(if self.count == 0 { b"[\n" } else { b",\n" });
                let pretty =
                    serde_json::to_string_pretty(&self.map.entry_json(key, value, self.sum))?;
                for (i, line) in pretty.lines().enumerate() {
                    if i > 0 {
                        text.push(b'\n');
                    }
                    text.extend_from_slice(b"  ");
                    text.extend_from_slice(line.as_bytes());
                }
            }
        }
        self.count += 1;
        if text.len() >= FLUSH_AT {
            self.out.write_all(text)?;
            text.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<u64> {
        let end: &[u8] = match (self.format, self.count) {
            (Format::Human, _) => b"",
            (_, 0) => b"[]\n",
            (Format::Json, _) => b"]\n",
            (Format::PrettyJson, _) => b"\n]\n",
        };
        self.text.extend_from_slice(end);
        self.out.write_all(&self.text)?;
        self.out.flush()?;
        Ok(self.count)
    }
}

/// An entry ranked for `--top` / `--sort-by value`.
struct Ranked {
    rank: u64,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank && self.key == other.key
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    // Reversed, so the BinaryHeap is a min-heap: the smallest is evicted.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.key.cmp(&self.key))
    }
}

/// One entry of a map that holds kernel objects: a program array, a map of
/// maps, a devmap or a cpumap.
#[derive(Debug, Serialize)]
struct SlotRow {
    /// The index or key.
    key: Value,
    /// What the slot holds, by name.
    value: Value,
    #[serde(skip)]
    text: String,
}

impl Tabular for SlotRow {
    const HEADERS: &'static [&'static str] = &["KEY", "VALUE"];
    fn cells(&self, _: &render::View) -> Vec<String> {
        vec![
            match &self.key {
                Value::String(s) => s.clone(),
                k => k.to_string(),
            },
            self.text.clone(),
        ]
    }
}

fn u32_at(v: &[u8], at: usize) -> Option<u32> {
    v.get(at..at + 4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// The program or map with this id, by name.
fn object_json(kind: Kind, id: u32) -> (Value, String) {
    let what = if kind == Kind::Prog { "prog" } else { "map" };
    match objects::describe(kind, id) {
        Ok(d) => (
            json!({format!("{what}_id"): id, format!("{what}_name"): d.name, format!("{what}_type"): d.type_}),
            format!("{what} {id} {} ({})", d.name, d.type_),
        ),
        Err(_) => (json!({format!("{what}_id"): id}), format!("{what} {id}")),
    }
}

/// What a slot of a special map holds.
fn slot(reading: &Reading, value: &[u8]) -> (Value, String) {
    let first = u32_at(value, 0).unwrap_or(0);
    let prog = u32_at(value, 4).filter(|id| *id != 0);
    let with_prog = |mut v: Value, mut text: String| {
        if let Some(id) = prog {
            let (p, t) = object_json(Kind::Prog, id);
            if let (Value::Object(o), Value::Object(p)) = (&mut v, p) {
                o.extend(p);
            }
            text.push_str(&format!(", then {t}"));
        }
        (v, text)
    };
    match reading {
        Reading::ProgIds => object_json(Kind::Prog, first),
        Reading::MapIds => object_json(Kind::Map, first),
        Reading::Devices => {
            let dev = sys::ifname(first);
            let text = format!(
                "ifindex {first} ({})",
                dev.as_deref().unwrap_or("not in this netns")
            );
            with_prog(json!({"ifindex": first, "dev": dev}), text)
        }
        _ => with_prog(json!({"qsize": first}), format!("queue of {first}")),
    }
}

/// `map dump` of the map types that are not plain keys and values; false
/// for those that are.
fn dump_special(ctx: &Ctx, map: &OpenMap, limit: u64) -> Result<bool> {
    let info = *map.info();
    let reading = maptype::reading(info.type_, &map.label, info.value_size);
    match &reading {
        Reading::Entries => Ok(false),
        Reading::Refused(why) => bail!("{why}"),
        Reading::Membership => bail!(
            "{}: a Bloom filter cannot be listed: it keeps hashes of its values, not the values; \
             test one with `xdpctl map lookup MAP VALUE`",
            map.label
        ),
        Reading::Peek => {
            let mut value = vec![0u8; map.value_len()];
            let found = map
                .handle()
                .peek(&mut value)
                .with_context(|| format!("peeking at map {}", map.label))?;
            let head = found.then(|| codec::to_json(&map.value, &value));
            let kind = sys::map_type_name(info.type_);
            render::print_json_or_nothing(
                ctx.format,
                &json!({"map": map.name(), "type": kind, "max_entries": info.max_entries, "head": head}),
            )?;
            if ctx.format == Format::Human {
                let mut out = ctx.out.stdout();
                match found {
                    true => writeln!(out, "HEAD  {}", codec::to_text(&map.value, &value))?,
                    false => writeln!(out, "(empty)")?,
                }
            }
            ctx.out.note(format_args!(
                "map {} is a {kind}: only its next element can be read without taking it \
                 (shown: peeked, left in place)",
                map.label
            ));
            Ok(true)
        }
        Reading::Ring => {
            let (consumer, producer) = map
                .handle()
                .ring_positions()
                .with_context(|| format!("reading the positions of ring buffer {}", map.label))?;
            let pending = producer.saturating_sub(consumer);
            render::print_json_or_nothing(
                ctx.format,
                &json!({"map": map.name(), "type": sys::map_type_name(info.type_), "size": info.max_entries,
                        "consumer_pos": consumer, "producer_pos": producer, "pending_bytes": pending}),
            )?;
            if ctx.format == Format::Human {
                writeln!(
                    ctx.out.stdout(),
                    "{pending} of {} bytes wait to be read (producer at {producer}, consumer at {consumer})",
                    info.max_entries
                )?;
            }
            ctx.out.note(format_args!(
                "map {} is a ring buffer: reading a record consumes it, so xdpctl only measures it",
                map.label
            ));
            Ok(true)
        }
        _ => {
            let mut rows = Vec::new();
            map.for_each(|k, v| {
                let (value, text) = slot(&reading, v);
                rows.push(SlotRow {
                    key: codec::to_json(&map.key, k),
                    value,
                    text,
                });
                Ok((rows.len() as u64) < limit)
            })?;
            ctx.out.result(&rows)?;
            Ok(true)
        }
    }
}

/// Says why reading failed when the kernel does not support it for this
/// map type, instead of a bare errno.
fn unsupported(map: &OpenMap, e: anyhow::Error) -> anyhow::Error {
    let errno = e
        .chain()
        .find_map(|c| c.downcast_ref::<io::Error>())
        .and_then(io::Error::raw_os_error);
    match errno {
        Some(n @ (libc::EOPNOTSUPP | ENOTSUPP)) => anyhow::anyhow!(
            "{}: a {} map cannot be read from user space (the kernel returns {})",
            map.label,
            sys::map_type_name(map.info().type_),
            if n == ENOTSUPP {
                "ENOTSUPP"
            } else {
                "EOPNOTSUPP"
            }
        ),
        _ => e,
    }
}

fn dump(ctx: &Ctx, args: &DumpArgs) -> Result<()> {
    let map = OpenMap::open(ctx, &args.map, args.raw)?;
    if dump_special(ctx, &map, args.limit.unwrap_or(u64::MAX)).map_err(|e| unsupported(&map, e))? {
        return Ok(());
    }
    let ranked = args.top.is_some() || args.sort_by.is_some();
    // Ranking a per-CPU map ranks by the sum, and shows it.
    let fold = match Fold::of(args.sum, args.per_cpu) {
        Fold::Auto if ranked => Fold::Sum,
        f => f,
    };
    if ranked && map.per_cpu() && !map.value.summable() {
        bail!(
            "map {}: its values ({}) are not integers, so they cannot be ranked by their sum over CPUs",
            map.label,
            map.value.describe()
        );
    }
    let sum = map.sums(fold)?;
    let mut printer = Printer::new(&map, ctx.format, sum);
    let limit = args.limit.unwrap_or(u64::MAX);
    if ranked {
        // Ranking needs all entries, but --top keeps only N of them.
        let keep = args.top.unwrap_or(usize::MAX);
        let mut heap = BinaryHeap::new();
        map.for_each(|k, v| {
            let rank = codec::rank(&map.value, &map.folded(v));
            heap.push(Ranked {
                rank,
                key: k.to_vec(),
                value: v.to_vec(),
            });
            if heap.len() > keep {
                heap.pop();
            }
            Ok(true)
        })
        .map_err(|e| unsupported(&map, e))?;
        // into_sorted_vec is ascending by Ord, i.e. descending by rank.
        for r in heap
            .into_sorted_vec()
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
        {
            printer.entry(&r.key, &r.value)?;
        }
    } else {
        let mut n = 0u64;
        map.for_each_batch(|batch| {
            for (k, v) in batch.iter() {
                if n >= limit {
                    return Ok(false);
                }
                printer.entry(k, v)?;
                n += 1;
            }
            Ok(n < limit)
        })
        .map_err(|e| unsupported(&map, e))?;
    }
    let count = printer.finish()?;
    if ctx.format == Format::Human {
        ctx.out.note(format_args!(
            "{} of map {}",
            render::count(count, "entry", "entries"),
            map.label
        ));
    }
    Ok(())
}

fn lookup(ctx: &Ctx, handle: &Handle, key: &str, fold: Fold, raw: bool) -> Result<()> {
    let map = OpenMap::open(ctx, handle, raw)?;
    let sum = map.sums(fold)?;
    let reading = maptype::reading(map.info().type_, &map.label, map.info().value_size);
    match &reading {
        Reading::Refused(why) => bail!("{why}"),
        Reading::Membership => return bloom_test(ctx, &map, key),
        Reading::Peek | Reading::Ring => bail!(
            "map {} is a {}: it has no keys to look up; `xdpctl map dump` shows what can be \
             read of it",
            map.label,
            sys::map_type_name(map.info().type_)
        ),
        _ => {}
    }
    let key_bytes = map.parse_key(key)?;
    let mut value = vec![0u8; map.value_len()];
    let found = map
        .handle()
        .lookup(&key_bytes, &mut value)
        .with_context(|| format!("looking up {key} in map {}", map.label))
        .map_err(|e| unsupported(&map, e))?;
    if !found {
        return Err(NotFound {
            message: format!("key {key} not found in map {}", map.label),
            lookup: true,
        }
        .into());
    }
    if matches!(
        reading,
        Reading::ProgIds | Reading::MapIds | Reading::Devices | Reading::Cpus
    ) {
        let (value, text) = slot(&reading, &value);
        match ctx.format {
            Format::Human => writeln!(ctx.out.stdout(), "{text}")?,
            _ => render::print_json(
                ctx.format,
                &json!({"key": codec::to_json(&map.key, &key_bytes), "value": value}),
            )?,
        }
        return Ok(());
    }
    match ctx.format {
        Format::Human => {
            let mut out = ctx.out.stdout();
            writeln!(out, "{}", map.value_text(&value, sum))?;
            if sum {
                ctx.out.note(format_args!(
                    "the sum of {} CPUs' values (--per-cpu shows each)",
                    map.cpus()
                ));
            }
        }
        _ => render::print_json(ctx.format, &map.entry_json(&key_bytes, &value, sum))?,
    }
    Ok(())
}

/// `map lookup` of a Bloom filter: whether `text`, a value, may be in it.
fn bloom_test(ctx: &Ctx, map: &OpenMap, text: &str) -> Result<()> {
    let mut value = codec::parse(&map.value, text)
        .map_err(|e| anyhow::anyhow!("value for Bloom filter {}: {e}", map.label))?;
    // NB: for a Bloom filter the kernel reads the value and writes nothing.
    let maybe = map
        .handle()
        .peek(&mut value)
        .with_context(|| format!("testing {text} in Bloom filter {}", map.label))?;
    if !maybe {
        return Err(NotFound {
            message: format!("{text} is not in Bloom filter {}", map.label),
            lookup: true,
        }
        .into());
    }
    match ctx.format {
        Format::Human => writeln!(
            ctx.out.stdout(),
            "maybe present (a Bloom filter errs on yes, never on no)"
        )?,
        _ => render::print_json(
            ctx.format,
            &json!({"value": codec::to_json(&map.value, &value), "maybe_present": true}),
        )?,
    }
    Ok(())
}

fn delete(
    ctx: &Ctx,
    handle: &Handle,
    key: &str,
    raw: bool,
    arm: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let map = OpenMap::open(ctx, handle, raw)?;
    if is_array(map.info().type_) {
        bail!(
            "map {} is an array: its entries cannot be deleted; set one to zero with `xdpctl map update` or all with `xdpctl map clear`",
            map.label
        );
    }
    let key_bytes = map.parse_key(key)?;
    // A missing key is refused before anything is touched (a map that
    // cannot be read is left to the delete to say).
    let mut probe = vec![0u8; map.value_len()];
    let there = map.handle().lookup(&key_bytes, &mut probe).unwrap_or(true);
    let found = there && {
        arm()?;
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
    ctx.out
        .note(format_args!("deleted {key} from map {}", map.label));
    render::print_json_or_nothing(ctx.format, &json!({"map": map.name(), "deleted": 1}))?;
    Ok(())
}

fn clear(ctx: &Ctx, handle: &Handle, arm: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let map = OpenMap::open(ctx, handle, true)?;
    let mut keys = Vec::new();
    map.for_each(|k, _| {
        keys.push(k.to_vec());
        Ok(true)
    })?;
    arm()?;
    let mut n = 0u64;
    if is_array(map.info().type_) {
        let zero = vec![0u8; map.value_len()];
        for k in &keys {
            map.handle()
                .update(k, &zero, update_flags::ANY)
                .with_context(|| format!("zeroing map {}", map.label))?;
            n += 1;
        }
        ctx.out.note(format_args!(
            "set {} of array map {} to zero",
            if n == 1 {
                "its one entry".to_owned()
            } else {
                format!("all {n} entries")
            },
            map.label
        ));
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
        ctx.out.note(format_args!(
            "deleted {} from map {}",
            render::count(n, "entry", "entries"),
            map.label
        ));
    }
    render::print_json_or_nothing(ctx.format, &json!({"map": map.name(), "cleared": n}))?;
    Ok(())
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
        _ => return anyhow::Error::new(e).context(format!("updating {key} in map {}", map.label)),
    };
    anyhow::anyhow!(what)
}

fn update(
    ctx: &Ctx,
    args: &UpdateArgs,
    written: &mut Vec<u8>,
    arm: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let mut map = OpenMap::open(ctx, &args.map, args.raw)?;
    map.every_cpu = args.every_cpu;
    let flags = if args.if_exists {
        update_flags::EXIST
    } else if args.if_absent {
        update_flags::NOEXIST
    } else {
        update_flags::ANY
    };
    if let Some(file) = &args.from_file {
        return update_from_file(ctx, &map, file, flags, written, arm);
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
    if codec::written_mask(&map.value, value).contains(&0)
        && !map
            .handle()
            .lookup(&key_bytes, &mut base)
            .with_context(|| format!("reading map {}", map.label))?
    {
        base.fill(0);
    }
    let value_bytes = map.parse_value_over(value, &base)?;
    // Refused before anything is written: a key that is there under
    // --if-absent, or missing under --if-exists.
    // (A map that cannot be read is left to the write to refuse.)
    let mut probe = vec![0u8; map.value_len()];
    if flags != update_flags::ANY
        && let Ok(there) = map.handle().lookup(&key_bytes, &mut probe)
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
    written.extend_from_slice(&key_bytes);
    arm()?;
    map.handle()
        .update(&key_bytes, &value_bytes, flags)
        .map_err(|e| write_error(&map, e, flags, key))?;
    ctx.out
        .note(format_args!("map {}: {key} = {value}", map.label));
    render::print_json_or_nothing(ctx.format, &map.entry_json(&key_bytes, &value_bytes, false))?;
    Ok(())
}

/// A key and a whole (all-CPU) value, as bytes.
type Entry = (Vec<u8>, Vec<u8>);

/// One line of an update file, parsed.
fn parse_line(map: &OpenMap, line: &str) -> Result<Option<Entry>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        return parse_json_entry(map, &v).map(Some);
    }
    let (key, value) = line.split_once(char::is_whitespace).ok_or_else(|| {
        "expected KEY VALUE (or a JSON object with \"key\" and \"value\")".to_owned()
    })?;
    let k = codec::parse(&map.key, key).map_err(|e| format!("key: {e}"))?;
    map.check_rule_key(&k).map_err(|e| format!("key: {e}"))?;
    let v = codec::parse(&map.value, value).map_err(|e| format!("value: {e}"))?;
    Ok(Some((k, map.spread(&v))))
}

fn parse_json_entry(map: &OpenMap, v: &Value) -> Result<Entry, String> {
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
            let b =
                codec::from_json(&map.value, one, "").map_err(|e| format!("values[{cpu}]: {e}"))?;
            out[cpu * map.handle().stride()..cpu * map.handle().stride() + b.len()]
                .copy_from_slice(&b);
        }
        return Ok((k, out));
    }
    let value = v.get("value").ok_or("no \"value\"")?;
    let b = codec::from_json(&map.value, value, "").map_err(|e| format!("value: {e}"))?;
    Ok((k, map.spread(&b)))
}

fn update_from_file(
    ctx: &Ctx,
    map: &OpenMap,
    file: &str,
    flags: u64,
    written_keys: &mut Vec<u8>,
    arm: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let (name, reader): (&str, Box<dyn BufRead>) = if file == "-" {
        ("stdin", Box::new(io::stdin().lock()))
    } else {
        let f = fs::File::open(file).with_context(|| format!("cannot read {file}"))?;
        (file, Box::new(io::BufReader::new(f)))
    };
    // Validate everything before writing anything.
    let mut entries: Vec<Entry> = Vec::new();
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
            entries.push(
                parse_json_entry(map, item)
                    .map_err(|e| anyhow::anyhow!("{name}: element {i}: {e}"))?,
            );
        }
    } else {
        let lines: Vec<(usize, String)> = lines
            .map(|(i, l)| Ok((i, l.with_context(|| format!("reading {name}"))?)))
            .collect::<Result<_>>()?;
        // NB: parsing a million lines is most of a bulk load's own time;
        // both cores share it, and the first bad line (by number) is said.
        let half = lines.len().div_ceil(2).max(1);
        let parsed: Vec<Result<Vec<Entry>, (usize, String)>> = std::thread::scope(|s| {
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
                Ok(mut e) => entries.append(&mut e),
                Err((i, e)) => bail!("{name}:{}: {e}; nothing was written", i + 1),
            }
        }
    }
    if entries.len() as u64 > u64::from(map.info().max_entries) {
        bail!(
            "map {} is too small: {name} has {} entries, the map holds at most {}; nothing was written",
            map.label,
            entries.len(),
            map.info().max_entries
        );
    }
    // What the file's keys hold now: to check room and flags before writing
    // anything, and to put it back if a write fails anyway.
    let before = Before::read(map, &entries)?;
    before.check(map, &entries, name, flags)?;
    for (k, _) in &entries {
        written_keys.extend_from_slice(k);
    }
    arm()?;
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
    ctx.out.note(format_args!(
        "wrote {written} {} to map {} from {name}",
        if written == 1 { "entry" } else { "entries" },
        map.label
    ));
    render::print_json_or_nothing(ctx.format, &json!({"map": map.name(), "written": written}))?;
    Ok(())
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
        // Into an empty map every key is new: the file's length bounds
        // their count, and the exact count is needed only past the room.
        let new: HashSet<&[u8]> = if self.old.is_empty() && entries.len() as u64 <= max {
            entries
                .first()
                .map(|(k, _)| k.as_slice())
                .into_iter()
                .collect()
        } else {
            entries
                .iter()
                .map(|(k, _)| k.as_slice())
                .filter(|k| !self.old.contains_key(*k))
                .collect()
        };
        let adds = if self.old.is_empty() && entries.len() as u64 <= max {
            entries.len() as u64
        } else {
            new.len() as u64
        };
        let lru = [
            aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LRU_HASH as u32,
            aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH as u32,
        ]
        .contains(&t);
        if !is_array(t) && !lru && self.count + adds > max {
            bail!(
                "map {} has room for {} more entries, and {name} adds {} new keys; nothing was written",
                map.label,
                max.saturating_sub(self.count),
                new.len()
            );
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
            && let Some(k) = new.iter().next()
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

/// Writes entries with `BPF_MAP_UPDATE_BATCH`, one element at a time where
/// the map type has no batch support. On failure, says how many were
/// written before it.
fn write_all(map: &OpenMap, entries: &[Entry], flags: u64) -> Result<u64, (anyhow::Error, u64)> {
    const CHUNK: usize = 8192;
    let mut written = 0u64;
    let mut batch = true;
    for chunk in entries.chunks(CHUNK) {
        if batch {
            let keys: Vec<u8> = chunk.iter().flat_map(|(k, _)| k.iter().copied()).collect();
            let values: Vec<u8> = chunk.iter().flat_map(|(_, v)| v.iter().copied()).collect();
            let (n, result) = map
                .handle()
                .update_batch(&keys, &values, chunk.len() as u32, flags);
            match result {
                Ok(()) => {
                    written += chunk.len() as u64;
                    continue;
                }
                Err(e)
                    if written == 0
                        && n == 0
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
                        ) =>
                {
                    batch = false;
                }
                Err(e) => {
                    let at = written + u64::from(n);
                    let key = codec::to_text(&map.key, &chunk[n as usize].0);
                    return Err((write_error(map, e, flags, &key), at));
                }
            }
        }
        for (k, v) in chunk {
            if let Err(e) = map.handle().update(k, v, flags) {
                return Err((
                    write_error(map, e, flags, &codec::to_text(&map.key, k)),
                    written,
                ));
            }
            written += 1;
        }
    }
    Ok(written)
}
