//! Typed values read: what a person typed (`parse`), a JSON value
//! (`from_json`), raw bytes as bpftool takes them, and the mask of the
//! fields a value gives (`written_mask`, `overlay`).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::{Shape, bits_mask};

/// Parses `text` (what a person typed) into bytes of `shape`.
pub fn parse(shape: &Shape, text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    match shape {
        Shape::Struct { .. } | Shape::Array { chars: false, .. } => {
            let v: Value = serde_json::from_str(text).map_err(|_| {
                format!(
                    "'{text}' is not a JSON {}; write it like {}",
                    kind_word(shape),
                    example(shape)
                )
            })?;
            from_json(shape, &v, "")
        }
        Shape::Raw { size } => parse_raw(text, *size),
        _ => from_json(shape, &Value::String(text.to_owned()), ""),
    }
}

/// The bytes of a `shape` value that `text` (which [`parse`] accepts)
/// writes, as a mask: where it is a JSON object for a struct, the fields it
/// names (a bitfield: its bits), else every byte. An update lays them over
/// the value the map holds ([`overlay`]), so the fields (global data: the
/// variables) not named keep their values.
pub fn written_mask(shape: &Shape, text: &str) -> Vec<u8> {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(v) => written_mask_json(shape, &v),
        Err(_) => vec![0xff; shape.size()],
    }
}

/// [`written_mask`] of a value given as JSON (a `--from-file` line).
pub fn written_mask_json(shape: &Shape, v: &Value) -> Vec<u8> {
    let (Shape::Struct { fields, .. }, Value::Object(obj)) = (shape, v) else {
        return vec![0xff; shape.size()];
    };
    let mut mask = vec![0u8; shape.size()];
    for f in fields.iter().filter(|f| obj.contains_key(&f.name)) {
        let r = f.offset..f.offset + f.shape.size();
        let bits = match &f.shape {
            Shape::Bits {
                shift, bits, span, ..
            } => bits_mask(*shift, *bits, *span),
            _ => vec![0xff; r.len()],
        };
        for (m, b) in mask[r].iter_mut().zip(&bits) {
            *m |= b;
        }
    }
    mask
}

/// `base` with the bits of `mask` taken from `given`.
pub fn overlay(base: &[u8], given: &[u8], mask: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for ((o, g), m) in out.iter_mut().zip(given).zip(mask) {
        *o = (*o & !m) | (g & m);
    }
    out
}

fn kind_word(shape: &Shape) -> &'static str {
    match shape {
        Shape::Struct { .. } => "object",
        _ => "list",
    }
}

fn example(shape: &Shape) -> String {
    match shape {
        Shape::Struct { fields, .. } => format!(
            "'{{{}}}'",
            fields
                .iter()
                .map(|f| format!("\"{}\":{}", f.name, example_scalar(&f.shape)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Shape::Array { elem, len, .. } => format!("'[{}]' ({len} elements)", example_scalar(elem)),
        other => example_scalar(other),
    }
}

fn example_scalar(shape: &Shape) -> String {
    match shape {
        Shape::Ipv4 => "\"203.0.113.5\"".into(),
        Shape::Ipv6 => "\"2001:db8::1\"".into(),
        Shape::Cidr { v6: false } => "\"203.0.113.0/24\"".into(),
        Shape::Cidr { v6: true } => "\"2001:db8::/32\"".into(),
        Shape::Enum { values, .. } => values
            .first()
            .map_or("0".into(), |(n, _)| format!("\"{n}\"")),
        Shape::Struct { .. } | Shape::Array { .. } => example(shape),
        _ => "1".into(),
    }
}

/// bpftool-style bytes: `203 0 113 5`, `hex cb 00 71 05`, `0xcb 0x00 ...`.
pub fn parse_raw(text: &str, size: usize) -> Result<Vec<u8>, String> {
    let mut words = text.split_whitespace().peekable();
    let all_hex = words.peek() == Some(&"hex");
    if all_hex {
        words.next();
    }
    let mut out = Vec::new();
    for w in words {
        let parsed = if all_hex {
            u64::from_str_radix(w, 16).ok()
        } else if let Some(h) = w.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()
        } else {
            w.parse::<u64>().ok()
        };
        match parsed {
            Some(b) if b <= 255 => out.push(b as u8),
            Some(_) => return Err(format!("byte '{w}' is larger than 255")),
            None => {
                return Err(format!(
                    "'{w}' is not a byte (write bytes like '203 0 113 5' or 'hex cb 00 71 05')"
                ));
            }
        }
    }
    if out.len() != size {
        return Err(format!("got {} byte(s), expected {size}", out.len()));
    }
    Ok(out)
}

fn parse_uint(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        t.parse().ok()
    }
}

/// Why `text`, which `parse_uint`/`parse_int` refused, is not a number of
/// `what` (`a u64 (0 to ...)`, from `min` to `max`): too big or too small
/// (hex digits, or a whole number beyond the range, such as JSON's
/// 100000000000000000000, which serde reads as the float 1e+20), written
/// otherwise than in digits (1e2, -0: the number to write instead), not
/// whole (1.5), or not a number at all.
fn number_error(label: &str, text: &str, what: &str, min: f64, max: f64) -> String {
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    match t.parse::<f64>() {
        _ if hex => format!("{label}{t} is out of range for {what}"),
        Ok(f) if f.is_finite() && f.fract() == 0.0 && (min..=max).contains(&f) => {
            // NB: + 0.0 turns -0 into 0.
            format!(
                "{label}'{t}' is not written in digits: write {:.0}",
                f + 0.0
            )
        }
        // As digits: the number the user most likely typed.
        Ok(f) if f.is_finite() && f.fract() == 0.0 => {
            format!("{label}{f:.0} is out of range for {what}")
        }
        Ok(f) if f.is_finite() => format!("{label}{t} is not a whole number; {what} is wanted"),
        _ => format!("{label}'{t}' is not a number (decimal, or hex with 0x)"),
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim();
    match t.strip_prefix('-') {
        Some(rest) => parse_uint(rest)
            .and_then(|v| i64::try_from(v).ok())
            .map(|v| -v),
        None => parse_uint(t).and_then(|v| i64::try_from(v).ok()),
    }
}

fn field_label(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("field {path}: ")
    }
}

/// Parses a JSON value (from a struct field, a JSON line, or a typed
/// scalar given as a string) into bytes of `shape`. `path` names the field
/// in errors.
pub fn from_json(shape: &Shape, v: &Value, path: &str) -> Result<Vec<u8>, String> {
    let label = field_label(path);
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => u8::from(*b).to_string(),
        // null, a list or an object: named as given ('null' is not a number).
        other => other.to_string(),
    };
    match shape {
        Shape::Ipv4 => text
            .parse::<Ipv4Addr>()
            .map(|a| a.octets().to_vec())
            .map_err(|_| format!("{label}'{text}' is not an IPv4 address (like 203.0.113.5)")),
        Shape::Ipv6 => text
            .parse::<Ipv6Addr>()
            .map(|a| a.octets().to_vec())
            .map_err(|_| format!("{label}'{text}' is not an IPv6 address (like 2001:db8::1)")),
        Shape::Port => match parse_uint(&text) {
            Some(p) if p <= 65535 => Ok((p as u16).to_be_bytes().to_vec()),
            Some(_) => Err(format!(
                "{label}{text} is not a port (a number up to 65535)"
            )),
            None => Err(format!(
                "{label}'{text}' is not a port (a number up to 65535)"
            )),
        },
        Shape::BigEndian { size } => {
            let max = if *size >= 8 {
                u64::MAX
            } else {
                (1u64 << (size * 8)) - 1
            };
            match parse_uint(&text) {
                Some(x) if x <= max => Ok(x.to_be_bytes()[8 - size..].to_vec()),
                Some(_) => Err(format!(
                    "{label}{text} is out of range for a {}-bit unsigned number (0 to {max})",
                    size * 8
                )),
                None => Err(number_error(
                    &label,
                    &text,
                    &format!("a {}-bit unsigned number (0 to {max})", size * 8),
                    0.0,
                    max as f64,
                )),
            }
        }
        Shape::Uint { size } => {
            let max = if *size >= 8 {
                u64::MAX
            } else {
                (1u64 << (size * 8)) - 1
            };
            match parse_uint(&text) {
                Some(x) if x <= max => Ok(x.to_ne_bytes()[..*size].to_vec()),
                Some(_) => Err(format!(
                    "{label}{text} is out of range for a u{} (0 to {max})",
                    size * 8
                )),
                None => Err(number_error(
                    &label,
                    &text,
                    &format!("a u{} (0 to {max})", size * 8),
                    0.0,
                    max as f64,
                )),
            }
        }
        Shape::Int { size } => {
            let bits = size * 8;
            let (min, max) = if bits >= 64 {
                (i64::MIN, i64::MAX)
            } else {
                (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
            };
            match parse_int(&text) {
                Some(x) if x >= min && x <= max => Ok(x.to_ne_bytes()[..*size].to_vec()),
                Some(_) => Err(format!(
                    "{label}{text} is out of range for an s{bits} ({min} to {max})"
                )),
                None => Err(number_error(
                    &label,
                    &text,
                    &format!("an s{bits} ({min} to {max})"),
                    min as f64,
                    max as f64,
                )),
            }
        }
        Shape::Bool => match text.as_str() {
            "1" | "true" => Ok(vec![1]),
            "0" | "false" => Ok(vec![0]),
            _ => Err(format!(
                "{label}'{text}' is not a boolean (true, false, 1 or 0)"
            )),
        },
        Shape::Enum { size, values, .. } => {
            let v = values
                .iter()
                .find(|(n, _)| *n == text)
                .map(|(_, v)| *v)
                .or_else(|| parse_int(&text))
                .ok_or_else(|| {
                    format!(
                        "{label}'{text}' is not one of {}",
                        values
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            Ok(v.to_ne_bytes()[..*size].to_vec())
        }
        Shape::Cidr { v6 } => {
            let (addr, len) = text.split_once('/').ok_or_else(|| {
                format!("{label}'{text}' is not a CIDR (like {})", cidr_example(*v6))
            })?;
            let max = if *v6 { 128 } else { 32 };
            let len: u32 = len
                .parse()
                .map_err(|_| format!("{label}'{text}': '{len}' is not a prefix length"))?;
            // The family first: an IPv6 prefix for an IPv4 map is that,
            // not a prefix too long.
            let other = if *v6 {
                addr.parse::<Ipv4Addr>().is_ok()
            } else {
                addr.parse::<Ipv6Addr>().is_ok()
            };
            if len > max && !other {
                return Err(format!(
                    "{label}'{text}': prefix length {len} is longer than {max}"
                ));
            }
            let mut out = len.to_ne_bytes().to_vec();
            if *v6 {
                let a: Ipv6Addr = addr.parse().map_err(|_| {
                    if addr.parse::<Ipv4Addr>().is_ok() {
                        format!("{label}'{text}' is IPv4, but this map holds IPv6 prefixes")
                    } else {
                        format!("{label}'{addr}' is not an IPv6 address")
                    }
                })?;
                out.extend_from_slice(&a.octets());
            } else {
                let a: Ipv4Addr = addr.parse().map_err(|_| {
                    if addr.parse::<Ipv6Addr>().is_ok() {
                        format!("{label}'{text}' is IPv6, but this map holds IPv4 prefixes")
                    } else {
                        format!("{label}'{addr}' is not an IPv4 address")
                    }
                })?;
                out.extend_from_slice(&a.octets());
            }
            Ok(out)
        }
        Shape::Struct { size, fields } => {
            let Value::Object(obj) = v else {
                return Err(format!(
                    "{label}expected a JSON object like {}",
                    example(shape)
                ));
            };
            for key in obj.keys() {
                if !fields.iter().any(|f| &f.name == key) {
                    return Err(format!(
                        "{label}no field '{key}'; the fields are: {}",
                        fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            let mut out = vec![0u8; *size];
            // Which given field wrote each byte: union members share bytes,
            // and two that disagree are a mistake, not "last one wins".
            let mut owner: Vec<Option<&str>> = vec![None; *size];
            for f in fields {
                // Missing fields are zero.
                let Some(fv) = obj.get(&f.name) else { continue };
                let sub = if path.is_empty() {
                    f.name.clone()
                } else {
                    format!("{path}.{}", f.name)
                };
                let bytes = from_json(&f.shape, fv, &sub)?;
                if let Shape::Bits {
                    shift, bits, span, ..
                } = &f.shape
                {
                    // Bitfields share bytes with their neighbours.
                    let mask = bits_mask(*shift, *bits, *span);
                    for (i, (b, m)) in bytes.iter().zip(&mask).enumerate() {
                        let at = f.offset + i;
                        out[at] = (out[at] & !m) | b;
                    }
                    continue;
                }
                for (i, b) in bytes.iter().enumerate() {
                    let at = f.offset + i;
                    if let Some(other) = owner[at]
                        && out[at] != *b
                    {
                        return Err(format!(
                            "{label}fields '{other}' and '{}' share bytes (a union) and their \
                             values disagree; give one of them",
                            f.name
                        ));
                    }
                    out[at] = *b;
                    owner[at] = Some(&f.name);
                }
            }
            Ok(out)
        }
        Shape::Array {
            elem,
            len,
            elem_size,
            chars,
        } => {
            if *chars {
                // A label is text: a list, null or an object is a mistake,
                // not an empty label; NUL would cut it short when read.
                if !matches!(v, Value::String(_) | Value::Number(_)) {
                    return Err(format!(
                        "{label}expected a string of at most {} characters, not {}",
                        len - 1,
                        match v {
                            Value::Null => "null",
                            Value::Array(_) => "a list",
                            Value::Object(_) => "an object",
                            _ => "a boolean",
                        }
                    ));
                }
                if text.contains('\0') {
                    return Err(format!(
                        "{label}{:?} holds a NUL character, which would end the string",
                        text
                    ));
                }
                let s = text.as_bytes();
                if s.len() >= *len {
                    return Err(format!(
                        "{label}'{text}' is longer than {} characters",
                        len - 1
                    ));
                }
                let mut out = vec![0u8; *len];
                out[..s.len()].copy_from_slice(s);
                return Ok(out);
            }
            let Value::Array(items) = v else {
                return Err(format!("{label}expected a JSON list of {len} elements"));
            };
            if items.len() != *len {
                return Err(format!(
                    "{label}expected {len} elements, got {}",
                    items.len()
                ));
            }
            let mut out = Vec::with_capacity(len * elem_size);
            for (i, item) in items.iter().enumerate() {
                out.extend(from_json(elem, item, &format!("{path}[{i}]"))?);
            }
            Ok(out)
        }
        // A JSON string of raw bytes is read as xdpctl writes it (`map dump
        // -j --raw`): hex bytes, `10 20 30 40` being 0x10 0x20 0x30 0x40.
        Shape::Raw { size } => {
            let hex = matches!(v, Value::String(_))
                && !text.trim_start().starts_with("hex")
                && !text.contains("0x");
            let text = if hex { format!("hex {text}") } else { text };
            parse_raw(&text, *size).map_err(|e| format!("{label}{e}"))
        }
        Shape::Bits {
            shift,
            bits,
            signed,
            span,
        } => {
            let (lo, hi) = if *signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            let v = parse_i128(&text)
                .filter(|v| (lo..=hi).contains(v))
                .ok_or_else(|| {
                    format!("{label}'{text}' is not a {bits}-bit integer ({lo} to {hi})")
                })?;
            let raw = ((v as u128) << shift)
                & u128::from_le_bytes({
                    let mut m = [0u8; 16];
                    let b = bits_mask(*shift, *bits, *span);
                    m[..b.len()].copy_from_slice(&b);
                    m
                });
            Ok(raw.to_le_bytes()[..*span].to_vec())
        }
    }
}

/// An integer in decimal or `0x` hex, possibly negative.
fn parse_i128(text: &str) -> Option<i128> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => i128::from_str_radix(h, 16).ok()?,
        None => t.parse::<i128>().ok()?,
    };
    Some(if neg { -v } else { v })
}

fn cidr_example(v6: bool) -> &'static str {
    if v6 {
        "2001:db8::/32"
    } else {
        "203.0.113.0/24"
    }
}
