//! `xdpctl map`: show, dump, lookup, update, delete and clear maps, with keys
//! and values printed and parsed by their BTF types.

use std::{
    collections::BinaryHeap,
    io::{self, Write},
    path::PathBuf,
};

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    cli::{DumpArgs, Handle, MapCommand, UpdateArgs},
    ctx::{Ctx, PinIndex},
    kernel::objects,
    kernel::sys::{self, IdKind},
    model::codec::{self, Shape},
    model::maptype::{self, Reading},
    ops::{
        mapedit::{self, Edited, UpdateOptions},
        openmap::{ENOTSUPP, Fold, LPM_TRIE, NotFound, OpenMap},
    },
    render::{self, Format, Tabular},
};

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
            let opts = UpdateOptions::from(args);
            edited(
                ctx,
                mapedit::indexed(ctx, &args.map, |arm| mapedit::update(ctx, &opts, arm))?,
            )
        }
        MapCommand::Delete { map, key, raw } => edited(
            ctx,
            mapedit::indexed(ctx, map, |arm| mapedit::delete(ctx, map, key, *raw, arm))?,
        ),
        MapCommand::Clear { map } => edited(
            ctx,
            mapedit::indexed(ctx, map, |arm| mapedit::clear(ctx, map, arm))?,
        ),
    }
}

impl From<&UpdateArgs> for UpdateOptions {
    fn from(a: &UpdateArgs) -> Self {
        UpdateOptions {
            map: a.map.clone(),
            key: a.key.clone(),
            value: a.value.clone(),
            from_file: a.from_file.clone(),
            if_exists: a.if_exists,
            if_absent: a.if_absent,
            raw: a.raw,
            every_cpu: a.every_cpu,
        }
    }
}

/// An edit's line on stderr, and its result under `-j`.
fn edited(ctx: &Ctx, e: Edited) -> Result<()> {
    ctx.out.note(e.note);
    render::print_json_or_nothing(ctx.format, &e.json)?;
    Ok(())
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
    /// The width a wide value wraps at (after its commas, under VALUE),
    /// where the view wraps.
    wrap_at: Option<usize>,
}

/// Wraps the value written at `text[at..]` (its line starting at
/// `line`) when the line is wider than `width`: broken after commas, the
/// lines after the first indented under the value. A value with no comma
/// to break at stays whole.
fn wrap_value(text: &mut Vec<u8>, line: usize, at: usize, width: usize) {
    if text.len() - line <= width {
        return;
    }
    let indent = at - line;
    let room = width.saturating_sub(indent).max(16);
    let value = text.split_off(at);
    let mut used = 0;
    for piece in value.split_inclusive(|&b| b == b',') {
        if used > 0 && used + piece.len() > room {
            text.push(b'\n');
            text.extend(std::iter::repeat_n(b' ', indent));
            used = 0;
        }
        text.extend_from_slice(piece);
        used += piece.len();
    }
}

/// Text gathered before it is written.
const FLUSH_AT: usize = 1 << 18;

/// Padding for the KEY column, sliced.
const SPACES: &[u8; 48] = b"                                                ";

impl<'a> Printer<'a> {
    fn new(map: &'a OpenMap, format: Format, sum: bool, view: &render::View) -> Self {
        let key_width = match map.key {
            Shape::Ipv4 => 15,
            Shape::Ipv6 => 39,
            Shape::Cidr { v6: false } => 18,
            Shape::Cidr { v6: true } => 43,
            Shape::Port => 5,
            Shape::Uint { size } | Shape::Int { size } => 3 * size,
            // Named keys (the firewall's `stats` and `ctl`): the longest
            // name, or a number that has none.
            Shape::Enum {
                size, ref values, ..
            } => values
                .iter()
                .map(|(name, _)| name.len())
                .max()
                .unwrap_or(0)
                .max(3 * size),
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
            wrap_at: view.wraps().then(|| view.width()),
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
                let at = text.len();
                self.map
                    .write_value_text(value, self.sum, text, &mut self.folded);
                if let Some(width) = self.wrap_at {
                    wrap_value(text, start, at, width);
                }
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
    let mut printer = Printer::new(&map, ctx.format, sum, ctx.out.view());
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

/// The prefix of an LPM trie's entries that the kernel matched for `key`:
/// the longest one holding it (`value` is its value).
fn longest_match(map: &OpenMap, key: &[u8], value: &[u8]) -> Option<String> {
    let len = |k: &[u8]| u32::from_ne_bytes(k.get(..4)?.try_into().ok()?).into();
    let holds = |prefix: &[u8]| -> bool {
        let (Some(plen), Some(klen)) = (len(prefix), len(key)) else {
            return false;
        };
        let plen: u32 = plen;
        let klen: u32 = klen;
        if plen > klen {
            return false;
        }
        let (p, k) = (&prefix[4..], &key[4..]);
        let full = (plen / 8) as usize;
        let rest = plen % 8;
        p[..full] == k[..full] && (rest == 0 || (p[full] ^ k[full]) & (0xffu8 << (8 - rest)) == 0)
    };
    let mut best: Option<(u32, Vec<u8>)> = None;
    map.for_each(|k, v| {
        if holds(k) && v == value {
            let l: u32 = len(k).unwrap_or(0);
            if best.as_ref().is_none_or(|(b, _)| l > *b) {
                best = Some((l, k.to_vec()));
            }
        }
        Ok(true)
    })
    .ok()?;
    best.map(|(_, k)| codec::to_text(&map.key, &k))
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
    // An LPM trie answers for the longest prefix that matches the key: the
    // entry of the key itself is what a lookup shows, the match a hint.
    let matched = if found && map.info().type_ == LPM_TRIE {
        let mut exact = false;
        map.for_each(|k, _| {
            exact = k == key_bytes.as_slice();
            Ok(!exact)
        })?;
        (!exact).then(|| longest_match(&map, &key_bytes, &value))
    } else {
        None
    };
    if !found || matched.is_some() {
        return Err(NotFound {
            message: format!(
                "key {key} not found in map {}{}",
                map.label,
                matched.flatten().map_or_else(String::new, |m| format!(
                    " (the longest prefix that holds it is {m}: `map lookup` of that shows it)"
                ))
            ),
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

#[cfg(test)]
mod tests {
    use super::wrap_value;

    #[test]
    fn a_wide_value_wraps_after_its_commas_under_the_value_column() {
        let mut text = b"HEADER\n".to_vec();
        let line = text.len();
        text.extend_from_slice(b"10.0.0.0/8  ");
        let at = text.len();
        text.extend_from_slice(
            br#"{"pps":1000,"burst":100,"bytes_per_sec":1000000,"per_prefix":1}"#,
        );
        wrap_value(&mut text, line, at, 40);
        let out = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = out.lines().skip(1).collect();
        assert!(lines.len() > 1, "{out}");
        assert!(lines.iter().all(|l| l.len() <= 40), "{out}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with(&" ".repeat(12))),
            "{out}"
        );
        let joined: String = lines.iter().map(|l| l.trim_start()).collect();
        assert_eq!(
            joined,
            r#"10.0.0.0/8  {"pps":1000,"burst":100,"bytes_per_sec":1000000,"per_prefix":1}"#
        );
        // A narrow line is left alone.
        let mut short = b"k  {\"a\":1}".to_vec();
        wrap_value(&mut short, 0, 3, 40);
        assert_eq!(short, b"k  {\"a\":1}");
    }
}
