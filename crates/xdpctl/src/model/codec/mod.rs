//! Keys and values as people write them: `203.0.113.5`, `2001:db8::1`,
//! `203.0.113.0/24`, ports, integers, enums by name, structs as JSON.
//!
//! A [`Shape`] is derived once per map from its BTF (or from its size, for
//! raw bytes), then used to print and to parse. Byte order is the tool's
//! business: `__be32` addresses and `__be16` ports are stored in network
//! order, plain integers in host order.

use std::fmt::Write as _;

use crate::model::btf::{Btf, Type};

mod parse;
mod write;

pub use parse::{from_json, overlay, parse, written_mask, written_mask_json};
pub use write::{push_hex, to_json, to_text, write_json, write_text};

/// How to read and write one key or value.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// IPv4 address in network order (`__be32`, `struct in_addr`).
    Ipv4,
    /// IPv6 address (`struct in6_addr`).
    Ipv6,
    /// Port in network order (`__be16`).
    Port,
    /// Integer in network order, other than the above (`__be64`).
    BigEndian { size: usize },
    /// Unsigned integer, host order.
    Uint { size: usize },
    /// Signed integer, host order.
    Int { size: usize },
    /// `_Bool`.
    Bool,
    /// An enum: printed by name where a variant matches.
    Enum {
        size: usize,
        signed: bool,
        values: Vec<(String, i64)>,
    },
    /// A struct: a JSON object.
    Struct { size: usize, fields: Vec<Field> },
    /// An array: a JSON list (a string for `char[]`).
    Array {
        elem: Box<Shape>,
        len: usize,
        elem_size: usize,
        chars: bool,
    },
    /// An LPM trie key `{ __u32 prefixlen; <address> }`: `addr/len`.
    Cidr { v6: bool },
    /// A bitfield: `bits` bits from bit `shift` of the first of `span`
    /// bytes (little-endian bit order, as BTF numbers them).
    Bits {
        shift: u32,
        bits: u32,
        signed: bool,
        span: usize,
    },
    /// Bytes without type information.
    Raw { size: usize },
}

/// A struct field.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Name (`_N` for anonymous members).
    pub name: String,
    /// Byte offset.
    pub offset: usize,
    /// Its shape.
    pub shape: Shape,
}

impl Shape {
    /// Bytes this shape occupies.
    pub fn size(&self) -> usize {
        match self {
            Shape::Ipv4 => 4,
            Shape::Ipv6 => 16,
            Shape::Port => 2,
            Shape::Bool => 1,
            Shape::Cidr { v6 } => 4 + if *v6 { 16 } else { 4 },
            Shape::BigEndian { size }
            | Shape::Uint { size }
            | Shape::Int { size }
            | Shape::Enum { size, .. }
            | Shape::Struct { size, .. }
            | Shape::Raw { size } => *size,
            Shape::Bits { span, .. } => *span,
            Shape::Array { len, elem_size, .. } => len * elem_size,
        }
    }

    /// A short name for the type, as `map show` prints it.
    pub fn describe(&self) -> String {
        match self {
            Shape::Ipv4 => "ipv4".into(),
            Shape::Ipv6 => "ipv6".into(),
            Shape::Port => "port".into(),
            Shape::BigEndian { size } => format!("be{}", size * 8),
            Shape::Uint { size } => format!("u{}", size * 8),
            Shape::Int { size } => format!("s{}", size * 8),
            Shape::Bool => "bool".into(),
            Shape::Enum { .. } => "enum".into(),
            Shape::Struct { fields, .. } => {
                format!(
                    "{{{}}}",
                    fields
                        .iter()
                        .map(|f| format!("{}:{}", f.name, f.shape.describe()))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
            Shape::Array {
                elem, len, chars, ..
            } => {
                if *chars {
                    format!("char[{len}]")
                } else {
                    format!("{}[{len}]", elem.describe())
                }
            }
            Shape::Cidr { v6: false } => "ipv4 cidr".into(),
            Shape::Cidr { v6: true } => "ipv6 cidr".into(),
            Shape::Raw { size } => format!("{size} bytes"),
            Shape::Bits { bits, signed, .. } => {
                format!("{}{bits}", if *signed { "s" } else { "u" })
            }
        }
    }

    /// Whether values of this shape add up (per-CPU values are summed).
    pub fn summable(&self) -> bool {
        match self {
            Shape::Uint { .. } | Shape::Int { .. } => true,
            // Union members that alias one counter add up; differently
            // shaped views of the same bytes do not.
            Shape::Struct { fields, .. } => fields.iter().enumerate().all(|(i, f)| {
                f.shape.summable()
                    && fields[..i].iter().all(|g| {
                        let apart = g.offset + g.shape.size() <= f.offset
                            || f.offset + f.shape.size() <= g.offset;
                        apart || (g.offset == f.offset && g.shape == f.shape)
                    })
            }),
            Shape::Array { elem, chars, .. } => !chars && elem.summable(),
            _ => false,
        }
    }

    /// Whether per-CPU values of this shape are counters, summed without
    /// being asked: a struct whose every integer is unsigned and named like
    /// a counter (see [`COUNTER_WORDS`]). A bare integer has no name to
    /// tell a counter from a flag, so it is not one.
    pub fn is_counter(&self) -> bool {
        fn leaf_ok(name: &str, shape: &Shape) -> bool {
            match shape {
                Shape::Uint { .. } => counter_name(name),
                Shape::Array {
                    elem, chars: false, ..
                } => matches!(**elem, Shape::Uint { .. }) && counter_name(name),
                Shape::Struct { fields, .. } => {
                    !fields.is_empty() && fields.iter().all(|f| leaf_ok(&f.name, &f.shape))
                }
                _ => false,
            }
        }
        matches!(self, Shape::Struct { .. }) && leaf_ok("", self) && self.summable()
    }

    /// Derives the shape of BTF type `id`, checked against the size the
    /// kernel reports; falls back to raw bytes when they disagree.
    pub fn from_btf(btf: &Btf, id: u32, size: usize, lpm_key: bool) -> Shape {
        let shape = if lpm_key {
            lpm(btf, id)
        } else {
            shape_of(btf, id, 0)
        };
        match shape {
            Some(s) if s.size() == size => s,
            _ => Shape::Raw { size },
        }
    }
}

/// Words that make a field a counter, alone or as part of a name split
/// at `_` (`packets`, `rx_bytes`, `drop_count`).
pub const COUNTER_WORDS: &[&str] = &[
    "packets", "pkts", "bytes", "count", "cnt", "counter", "drops", "dropped", "hits", "misses",
    "errors", "errs", "events", "calls",
];

fn counter_name(name: &str) -> bool {
    name.split('_')
        .any(|w| COUNTER_WORDS.contains(&w.to_ascii_lowercase().as_str()))
}

fn strip(btf: &Btf, mut id: u32) -> (u32, Option<String>) {
    // Follow modifiers and typedefs, remembering the first typedef name.
    let mut name = None;
    for _ in 0..32 {
        match btf.get(id) {
            Some(Type::Modifier { ty }) => id = *ty,
            Some(Type::Typedef { name: n, ty }) => {
                if name.is_none() {
                    name = Some(n.clone());
                }
                id = *ty;
            }
            _ => break,
        }
    }
    (id, name)
}

fn shape_of(btf: &Btf, id: u32, depth: u32) -> Option<Shape> {
    if depth > 16 {
        return None;
    }
    let (base, typedef) = strip(btf, id);
    let ty = btf.get(base)?;
    let named = typedef.as_deref();
    Some(match ty {
        Type::Int {
            size, signed, bool, ..
        } => {
            let size = *size as usize;
            match (named, size) {
                (Some("__be32"), 4) => Shape::Ipv4,
                (Some("__be16"), 2) => Shape::Port,
                (Some(n), _) if n.starts_with("__be") => Shape::BigEndian { size },
                _ if *bool => Shape::Bool,
                _ if *signed => Shape::Int { size },
                _ => Shape::Uint { size },
            }
        }
        Type::Ptr => Shape::Uint { size: 8 },
        Type::Enum {
            size,
            signed,
            values,
            ..
        } => Shape::Enum {
            size: *size as usize,
            signed: *signed,
            values: values.clone(),
        },
        Type::Struct {
            name,
            size,
            members,
            ..
        } => {
            if name == "in_addr" && *size == 4 {
                return Some(Shape::Ipv4);
            }
            if name == "in6_addr" && *size == 16 {
                return Some(Shape::Ipv6);
            }
            // NB: bitfields without BTF's kind flag keep their size in the
            // INT type, which this reader does not keep: raw bytes.
            if members
                .iter()
                .any(|m| m.bitfield_size == 0 && m.bit_offset % 8 != 0)
            {
                return Some(Shape::Raw {
                    size: *size as usize,
                });
            }
            let mut fields = Vec::new();
            for (i, m) in members.iter().enumerate() {
                let offset = (m.bit_offset / 8) as usize;
                let shape = if m.bitfield_size != 0 {
                    let signed = match btf.get(strip(btf, m.ty).0) {
                        Some(Type::Int { signed, .. } | Type::Enum { signed, .. }) => *signed,
                        _ => return None,
                    };
                    let shift = m.bit_offset % 8;
                    Shape::Bits {
                        shift,
                        bits: m.bitfield_size,
                        signed,
                        span: (shift + m.bitfield_size).div_ceil(8) as usize,
                    }
                } else {
                    shape_of(btf, m.ty, depth + 1)?
                };
                // An anonymous struct or union's members are the parent's,
                // as in C (`rec.packets`): bpftool prints them under "".
                if m.name.is_empty()
                    && let Shape::Struct { fields: inner, .. } = &shape
                    && matches!(btf.get(strip(btf, m.ty).0), Some(Type::Struct { .. }))
                {
                    fields.extend(inner.iter().map(|f| Field {
                        offset: f.offset + offset,
                        ..f.clone()
                    }));
                    continue;
                }
                fields.push(Field {
                    name: if m.name.is_empty() {
                        format!("_{i}")
                    } else {
                        m.name.clone()
                    },
                    offset,
                    shape,
                });
            }
            // NB: a union's members all start at 0; every one is decoded,
            // as bpftool does, and they share bytes (see `from_json`).
            Shape::Struct {
                size: *size as usize,
                fields,
            }
        }
        Type::Datasec { size, vars, .. } => {
            // Global data: one field per variable, by name.
            let mut fields = Vec::new();
            for v in vars {
                let Some(Type::Var { name, ty }) = btf.get(v.ty) else {
                    continue;
                };
                let size = v.size as usize;
                let shape = match shape_of(btf, *ty, depth + 1) {
                    Some(s) if s.size() == size => s,
                    _ => Shape::Raw { size },
                };
                fields.push(Field {
                    name: name.clone(),
                    offset: v.offset as usize,
                    shape,
                });
            }
            Shape::Struct {
                size: *size as usize,
                fields,
            }
        }
        Type::Var { ty, .. } => return shape_of(btf, *ty, depth + 1),
        Type::Array { elem, len } => {
            let (elem_base, _) = strip(btf, *elem);
            // NB: clang marks `char` by its name, not with BTF's CHAR encoding.
            let chars = matches!(
                btf.get(elem_base),
                Some(Type::Int { size: 1, char, name, .. }) if *char || name == "char"
            );
            let elem_shape = shape_of(btf, *elem, depth + 1)?;
            Shape::Array {
                elem_size: elem_shape.size(),
                elem: Box::new(elem_shape),
                len: *len as usize,
                chars,
            }
        }
        Type::Float { size } => Shape::Raw {
            size: *size as usize,
        },
        Type::Void | Type::Typedef { .. } | Type::Modifier { .. } => return None,
    })
}

/// An LPM trie key: a struct whose first member is the 32-bit prefix length
/// and whose second is a 4- or 16-byte address.
fn lpm(btf: &Btf, id: u32) -> Option<Shape> {
    let (base, _) = strip(btf, id);
    let Some(Type::Struct { size, members, .. }) = btf.get(base) else {
        return None;
    };
    if members.len() != 2 || members[0].bit_offset != 0 || members[1].bit_offset != 32 {
        return None;
    }
    match size {
        8 => Some(Shape::Cidr { v6: false }),
        20 => Some(Shape::Cidr { v6: true }),
        _ => None,
    }
}

pub(super) fn uint(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    u64::from_ne_bytes(buf)
}

pub(super) fn sint(bytes: &[u8]) -> i64 {
    let v = uint(bytes);
    let bits = bytes.len() * 8;
    if bits >= 64 {
        v as i64
    } else {
        ((v << (64 - bits)) as i64) >> (64 - bits)
    }
}

/// The `bits` bits at bit `shift` of `bytes` (at most 16 of them).
pub(super) fn bits_of(bytes: &[u8], shift: u32, bits: u32) -> u128 {
    let mut buf = [0u8; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    let v = u128::from_le_bytes(buf) >> shift;
    if bits >= 128 {
        v
    } else {
        v & ((1u128 << bits) - 1)
    }
}

/// The bytes a bitfield of this shape covers, set where its bits are.
pub(super) fn bits_mask(shift: u32, bits: u32, span: usize) -> Vec<u8> {
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    } << shift;
    mask.to_le_bytes()[..span].to_vec()
}

/// Lowercase hex, space-separated bytes (`cb 00 71 05`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Adds per-CPU values of a summable shape.
pub fn sum(shape: &Shape, values: &[&[u8]]) -> Vec<u8> {
    let size = shape.size();
    let mut out = vec![0u8; size];
    add_into(shape, &mut out, values);
    out
}

fn add_into(shape: &Shape, out: &mut [u8], values: &[&[u8]]) {
    match shape {
        Shape::Uint { size } | Shape::Int { size } => {
            let total = values
                .iter()
                .fold(0u64, |acc, v| acc.wrapping_add(uint(&v[..*size])));
            out[..*size].copy_from_slice(&total.to_ne_bytes()[..*size]);
        }
        Shape::Struct { fields, .. } => {
            for f in fields {
                let sub: Vec<&[u8]> = values
                    .iter()
                    .map(|v| &v[f.offset..f.offset + f.shape.size()])
                    .collect();
                add_into(
                    &f.shape,
                    &mut out[f.offset..f.offset + f.shape.size()],
                    &sub,
                );
            }
        }
        Shape::Array {
            elem,
            len,
            elem_size,
            ..
        } => {
            for i in 0..*len {
                let r = i * elem_size..(i + 1) * elem_size;
                let sub: Vec<&[u8]> = values.iter().map(|v| &v[r.clone()]).collect();
                add_into(elem, &mut out[r], &sub);
            }
        }
        _ => out.copy_from_slice(&values[0][..out.len()]),
    }
}

/// A number to sort and rank values by: the value itself for integers,
/// the first integer field for structs (`packets` in `stats`).
pub fn rank(shape: &Shape, bytes: &[u8]) -> u64 {
    match shape {
        Shape::Uint { size } | Shape::Int { size } => uint(&bytes[..*size]),
        Shape::Struct { fields, .. } => fields
            .iter()
            .find(|f| matches!(f.shape, Shape::Uint { .. } | Shape::Int { .. }))
            .map_or(0, |f| rank(&f.shape, &bytes[f.offset..])),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
