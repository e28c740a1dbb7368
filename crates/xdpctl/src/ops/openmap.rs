//! A map opened for reading and writing by its types: keys and values
//! parsed from and printed as text and JSON by their BTF (raw bytes
//! without), per-CPU values spread and folded. `map`, `stats`, `top` and
//! `guard` all read and write maps through it.

use std::os::fd::OwnedFd;

use anyhow::{Context as _, Result, bail};
use pinfs::Kind;
use serde_json::Value;

use crate::{
    ctx::Ctx,
    kernel::map::{Batch, MapHandle},
    kernel::objects,
    model::codec::{self, Shape},
    model::handle::Handle,
    model::{guard::Cidr, policy, rate},
};

/// Map types that always hold max_entries values (keys are indexes).
pub(crate) fn is_array(map_type: u32) -> bool {
    use aya_obj::generated::bpf_map_type::*;
    map_type == BPF_MAP_TYPE_ARRAY as u32 || map_type == BPF_MAP_TYPE_PERCPU_ARRAY as u32
}

pub(crate) use crate::kernel::map::LPM_TRIE;

/// The kernel-internal "not supported" errno that batch operations on map
/// types without batch support return to userspace.
pub(crate) const ENOTSUPP: i32 = 524;

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

/// An open map and how to read and write its keys and values.
pub struct OpenMap {
    pub(crate) map: MapHandle,
    /// The name as the user gave it (path, or name and id).
    pub(crate) label: String,
    pub(crate) key: Shape,
    pub(crate) value: Shape,
    /// A value written to a per-CPU map goes on every CPU
    /// (`--every-cpu`), not on CPU 0 alone.
    pub(crate) every_cpu: bool,
}

/// How per-CPU values are shown (`--sum`, `--per-cpu`, neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fold {
    /// Summed if the value is a counter ([`Shape::is_counter`]), else CPU
    /// by CPU.
    Auto,
    /// Summed (integers only).
    Sum,
    /// CPU by CPU.
    PerCpu,
}

impl Fold {
    pub(crate) fn of(sum: bool, per_cpu: bool) -> Self {
        match (sum, per_cpu) {
            (true, _) => Fold::Sum,
            (_, true) => Fold::PerCpu,
            _ => Fold::Auto,
        }
    }
}

/// Map types whose keys are u32 indexes, BTF or not.
pub(crate) fn u32_indexed(map_type: u32) -> bool {
    use aya_obj::generated::bpf_map_type::*;
    [
        BPF_MAP_TYPE_ARRAY,
        BPF_MAP_TYPE_PERCPU_ARRAY,
        BPF_MAP_TYPE_PROG_ARRAY,
        BPF_MAP_TYPE_PERF_EVENT_ARRAY,
        BPF_MAP_TYPE_CGROUP_ARRAY,
        BPF_MAP_TYPE_ARRAY_OF_MAPS,
        BPF_MAP_TYPE_DEVMAP,
        BPF_MAP_TYPE_CPUMAP,
        BPF_MAP_TYPE_XSKMAP,
        BPF_MAP_TYPE_SOCKMAP,
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
    ]
    .iter()
    .any(|t| *t as u32 == map_type)
}

/// The names of the keys of the built-in firewall's `stats` (outcomes, as
/// `xdpctl stats` names them) and `ctl` (control words): their C keys are
/// `__u32` (an array's key must be an integer), the enums are xdpfw.h's.
/// Recognised by their name, type and the firewall's own structs in the
/// map's BTF; other objects' maps are never renamed.
fn firewall_key_names(
    name: &str,
    map_type: u32,
    btf: &crate::model::btf::Btf,
) -> Option<Vec<(String, i64)>> {
    use xdp_progs::xdpfw::{Ctl, Outcome};
    let array = map_type == aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32;
    let per_cpu_array =
        map_type == aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY as u32;
    match name {
        "stats" if per_cpu_array && btf.has_struct("xdpfw_counter") => Some(
            Outcome::ALL
                .iter()
                .map(|o| (o.name().to_owned(), i64::from(o.index())))
                .collect(),
        ),
        "ctl" if array && btf.has_struct("xdpfw_sketch_hdr") => Some(
            Ctl::ALL
                .iter()
                .map(|c| (c.name().to_owned(), i64::from(*c as u32)))
                .collect(),
        ),
        _ => None,
    }
}

impl OpenMap {
    /// The map pinned at `path`.
    pub(crate) fn at(path: &std::path::Path) -> Result<Self> {
        let fd = objects::open_pinned(path, Kind::Map)?;
        Self::from_fd(fd, path.display().to_string(), false)
    }

    pub(crate) fn open(ctx: &Ctx, handle: &Handle, raw: bool) -> Result<Self> {
        let (fd, label) = objects::resolve(&ctx.bpffs, handle, Kind::Map)?;
        Self::from_fd(fd, label, raw)
    }

    pub(crate) fn from_fd(fd: OwnedFd, label: String, raw: bool) -> Result<Self> {
        let map = MapHandle::from_fd(fd).with_context(|| format!("reading map {label}"))?;
        let info = *map.info();
        let key_size = info.key_size as usize;
        let value_size = info.value_size as usize;
        let (mut key, mut value) = (
            Shape::Raw { size: key_size },
            Shape::Raw { size: value_size },
        );
        if !raw && info.btf_id != 0 {
            // Without usable BTF, keys and values are raw bytes; that is
            // not an error.
            if let Ok(b) = crate::kernel::btf::load(info.btf_id) {
                if info.btf_key_type_id != 0 {
                    key =
                        Shape::from_btf(&b, info.btf_key_type_id, key_size, info.type_ == LPM_TRIE);
                }
                if info.btf_value_type_id != 0 {
                    value = Shape::from_btf(&b, info.btf_value_type_id, value_size, false);
                }
                if let Some(names) = firewall_key_names(&map.name(), info.type_, &b) {
                    key = Shape::Enum {
                        size: 4,
                        signed: false,
                        values: names,
                    };
                }
            }
        }
        if !raw && key_size == 4 && matches!(key, Shape::Raw { .. }) && u32_indexed(info.type_) {
            // Global data and fd arrays carry no key type: it is an index.
            key = Shape::Uint { size: 4 };
        }
        // NB: the messages say "map {label}"; labels from `objects::resolve`
        // ("map .rodata (id 5)", "map id 5") would say it twice.
        let label = label
            .strip_prefix("map ")
            .map(str::to_owned)
            .unwrap_or(label);
        let label = if label.contains(&map.name()) {
            label
        } else {
            format!("{} ({label})", map.name())
        };
        Ok(OpenMap {
            map,
            label,
            key,
            value,
            every_cpu: false,
        })
    }

    /// The typed handle, for element access.
    pub(crate) fn handle(&self) -> &MapHandle {
        &self.map
    }

    pub(crate) fn info(&self) -> &aya_obj::generated::bpf_map_info {
        self.map.info()
    }

    pub(crate) fn name(&self) -> String {
        self.map.name()
    }

    /// Possible CPUs, for per-CPU maps (1 otherwise).
    pub(crate) fn cpus(&self) -> usize {
        self.map.cpus()
    }

    /// Bytes of a whole value (all CPUs).
    pub(crate) fn value_len(&self) -> usize {
        self.map.value_len()
    }

    pub(crate) fn per_cpu(&self) -> bool {
        self.map.per_cpu()
    }

    /// Whether values are shown summed over CPUs, as `fold` asks.
    pub(crate) fn sums(&self, fold: Fold) -> Result<bool> {
        if !self.per_cpu() {
            return Ok(false);
        }
        match fold {
            Fold::PerCpu => Ok(false),
            Fold::Auto => Ok(self.value.is_counter()),
            Fold::Sum if self.value.summable() => Ok(true),
            Fold::Sum => bail!(
                "map {}: its values ({}) are not integers and cannot be summed over CPUs; \
                 drop --sum to see each CPU's",
                self.label,
                self.value.describe()
            ),
        }
    }

    pub(crate) fn parse_key(&self, text: &str) -> Result<Vec<u8>> {
        codec::parse(&self.key, text)
            .map_err(|e| anyhow::anyhow!("key for map {}: {e}", self.label))
    }

    /// The rules `apply` keeps for the keys it writes, kept by every write:
    /// an LPM-trie prefix without host bits, a port of the firewall's port
    /// maps from 1.
    pub(crate) fn check_rule_key(&self, key: &[u8]) -> Result<(), String> {
        match self.key {
            Shape::Cidr { .. } => Cidr::from_lpm_key(key).map_or(Ok(()), |c| c.check_rule()),
            Shape::Port if policy::PORT_MAPS.contains(&self.name().as_str()) => {
                policy::check_rule_port(u16::from_be_bytes([key[0], key[1]]))
            }
            _ => Ok(()),
        }
    }

    /// The rule of the values `apply` writes, kept by every write: a rate
    /// limit of the firewall's `rate4`/`rate6` that limits something, with
    /// rates and bursts the datapath computes with.
    pub(crate) fn check_rule_value(&self, value: &[u8]) -> Result<(), String> {
        if self.holds_rates()
            && let Some(r) = value.get(..rate::VALUE_LEN).and_then(rate::decode)
        {
            return rate::check(&r);
        }
        Ok(())
    }

    /// The value of exactly `key`, into `value`; false if the map has no
    /// such key. (A lookup of an LPM trie finds the longest prefix that
    /// covers the key, which may be another entry's: a trie is searched
    /// key by key.)
    pub(crate) fn lookup_exact(&self, key: &[u8], value: &mut [u8]) -> Result<bool> {
        if self.info().type_ != crate::kernel::map::LPM_TRIE {
            return self
                .handle()
                .lookup(key, value)
                .with_context(|| format!("reading map {}", self.label));
        }
        let mut found = false;
        self.for_each(|k, v| {
            if k == key {
                value.copy_from_slice(&v[..value.len()]);
                found = true;
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok(found)
    }

    /// Whether its values are the firewall's rate limits.
    pub(crate) fn holds_rates(&self) -> bool {
        matches!(self.key, Shape::Cidr { .. })
            && !self.per_cpu()
            && self.value_len() == rate::VALUE_LEN
            && ["rate4", "rate6"].contains(&self.name().as_str())
    }

    /// The shape of a value as a person writes it: the map's own, but for
    /// a rate limit, whose datapath state (`owner`, the buckets) no write
    /// gives: its fields are the rule's alone, in messages and examples
    /// too, and a write naming another is refused.
    pub(crate) fn input(&self) -> std::borrow::Cow<'_, Shape> {
        match &self.value {
            Shape::Struct { size, fields } if self.holds_rates() => {
                std::borrow::Cow::Owned(Shape::Struct {
                    size: *size,
                    fields: fields
                        .iter()
                        .filter(|f| rate::RULE_FIELDS.contains(&f.name.as_str()))
                        .cloned()
                        .collect(),
                })
            }
            shape => std::borrow::Cow::Borrowed(shape),
        }
    }

    /// A value as written: for a per-CPU map, on CPU 0 and zero on the
    /// others, so that the sum reads what was written (`5` to a per-CPU
    /// counter reads 5 with `--sum`, not 5 times the CPUs). Per-CPU values
    /// CPU by CPU are written exactly from `--from-file` ("values").
    /// With `--every-cpu`, the same value on every CPU.
    pub(crate) fn spread(&self, one: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.value_len()];
        let cpus = if self.every_cpu { self.cpus() } else { 1 };
        let stride = self.map.stride();
        for cpu in 0..cpus {
            out[cpu * stride..cpu * stride + one.len()].copy_from_slice(one);
        }
        out
    }

    /// A value as written over `base`, the whole value the map holds for
    /// the key (zeros for none): a struct given as a JSON object sets the
    /// fields it names, and the others keep their values.
    pub(crate) fn parse_value_over(&self, text: &str, base: &[u8]) -> Result<Vec<u8>> {
        let input = self.input();
        let one = codec::parse(&input, text)
            .map_err(|e| anyhow::anyhow!("value for map {}: {e}", self.label))?;
        let mask = codec::written_mask(&input, text);
        let given = self.spread(&one);
        let stride = self.map.stride();
        let mut out = base.to_vec();
        for cpu in 0..self.cpus() {
            let r = cpu * stride..cpu * stride + one.len();
            let slot = codec::overlay(&base[r.clone()], &given[r.clone()], &mask);
            out[r].copy_from_slice(&slot);
        }
        Ok(out)
    }

    /// The slots of a whole value, one per CPU.
    pub(crate) fn slots<'a>(&self, value: &'a [u8]) -> Vec<&'a [u8]> {
        let stride = self.map.stride();
        (0..self.cpus())
            .map(|c| &value[c * stride..c * stride + self.info().value_size as usize])
            .collect()
    }

    /// The value to show: summed over CPUs where that means something.
    pub(crate) fn folded(&self, value: &[u8]) -> Vec<u8> {
        let slots = self.slots(value);
        if self.per_cpu() && self.value.summable() {
            codec::sum(&self.value, &slots)
        } else {
            slots[0].to_vec()
        }
    }

    /// [`Self::folded`] into a reused buffer: no allocation for the
    /// integer values `map dump` prints millions of.
    pub(crate) fn fold_into(&self, value: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let size = self.info().value_size as usize;
        match self.value {
            Shape::Uint { size: n } | Shape::Int { size: n } if self.per_cpu() && n <= 8 => {
                let total = value
                    .chunks_exact(self.map.stride())
                    .map(|s| {
                        let mut b = [0u8; 8];
                        b[..n].copy_from_slice(&s[..n]);
                        u64::from_ne_bytes(b)
                    })
                    .fold(0u64, u64::wrapping_add);
                out.extend_from_slice(&total.to_ne_bytes()[..n]);
            }
            _ if self.per_cpu() => out.extend_from_slice(&self.folded(value)),
            _ => out.extend_from_slice(&value[..size]),
        }
    }

    /// Appends one entry as compact JSON: `key`, `value` (folded over CPUs
    /// unless per-CPU and not summed), `summed`, `values` (per CPU: always,
    /// so a dump loads back exactly), `key_hex`, `value_hex`.
    pub(crate) fn write_entry_json(
        &self,
        key: &[u8],
        value: &[u8],
        sum: bool,
        out: &mut Vec<u8>,
        folded: &mut Vec<u8>,
    ) {
        out.extend_from_slice(b"{\"key\":");
        codec::write_json(&self.key, key, out);
        if !self.per_cpu() || sum {
            self.fold_into(value, folded);
            out.extend_from_slice(b",\"value\":");
            codec::write_json(&self.value, folded, out);
        }
        if self.per_cpu() {
            if sum {
                out.extend_from_slice(b",\"summed\":true");
            }
            out.extend_from_slice(b",\"values\":[");
            for (i, slot) in self.slots(value).iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                codec::write_json(&self.value, slot, out);
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"key_hex\":\"");
        codec::push_hex(out, key);
        out.push(b'"');
        if !self.per_cpu() {
            out.extend_from_slice(b",\"value_hex\":\"");
            codec::push_hex(out, folded);
            out.push(b'"');
        }
        out.push(b'}');
    }

    /// The JSON of one entry, as a value: what [`Self::write_entry_json`]
    /// writes (one writer for both).
    pub(crate) fn entry_json(&self, key: &[u8], value: &[u8], sum: bool) -> Value {
        let mut out = Vec::new();
        self.write_entry_json(key, value, sum, &mut out, &mut Vec::new());
        serde_json::from_slice(&out).expect("write_entry_json writes JSON")
    }

    pub(crate) fn value_text(&self, value: &[u8], sum: bool) -> String {
        let mut out = Vec::new();
        self.write_value_text(value, sum, &mut out, &mut Vec::new());
        String::from_utf8_lossy(&out).into_owned()
    }

    pub(crate) fn write_value_text(
        &self,
        value: &[u8],
        sum: bool,
        out: &mut Vec<u8>,
        folded: &mut Vec<u8>,
    ) {
        if !sum && self.per_cpu() {
            out.push(b'[');
            for (i, slot) in self.slots(value).iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                codec::write_text(&self.value, slot, out);
            }
            out.push(b']');
        } else if self.per_cpu() {
            self.fold_into(value, folded);
            codec::write_text(&self.value, folded, out);
        } else {
            codec::write_text(&self.value, &value[..self.info().value_size as usize], out);
        }
    }

    /// Calls `f` for every entry, in batches where the map type allows.
    /// `f` returns false to stop.
    pub(crate) fn for_each(&self, f: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()> {
        self.map
            .for_each(f)
            .with_context(|| format!("reading map {}", self.label))
    }

    /// Calls `f` for every batch of entries, read on a second thread while
    /// `f` works; `f` returns false to stop.
    pub(crate) fn for_each_batch(&self, f: impl FnMut(&Batch) -> Result<bool>) -> Result<()> {
        self.map
            .for_each_batch(f)
            .with_context(|| format!("reading map {}", self.label))
    }

    pub(crate) fn entries(&self) -> Result<u64> {
        if is_array(self.info().type_) {
            return Ok(u64::from(self.info().max_entries));
        }
        let mut n = 0;
        self.for_each(|_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }
}
