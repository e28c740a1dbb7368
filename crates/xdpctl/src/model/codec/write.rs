//! Typed values written: the one JSON writer ([`write_json`]), the text
//! people read, and the JSON value of one (parsed back from the writer).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::{Shape, bits_of, sint, uint};

/// The typed JSON form of `bytes`: what [`write_json`] writes, as a value
/// (for a lookup's one entry; one writer makes both).
pub fn to_json(shape: &Shape, bytes: &[u8]) -> Value {
    let mut out = Vec::new();
    write_json(shape, bytes, &mut out);
    serde_json::from_slice(&out).expect("write_json writes JSON")
}

/// The text people read: strings unquoted, everything else as compact JSON.
pub fn to_text(shape: &Shape, bytes: &[u8]) -> String {
    let mut s = Vec::new();
    write_text(shape, bytes, &mut s);
    String::from_utf8_lossy(&s).into_owned()
}

/// Appends the text of `bytes` to `out`: the JSON of [`write_json`], with a
/// string unquoted.
pub fn write_text(shape: &Shape, bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    write_json(shape, bytes, out);
    if out.get(start) == Some(&b'"') {
        // A string: its text, unescaped (names and addresses rarely hold
        // an escape; only then is it parsed back).
        let json = out.split_off(start);
        if json[1..json.len() - 1].contains(&b'\\') {
            let s: String = serde_json::from_slice(&json).expect("write_json writes JSON");
            out.extend_from_slice(s.as_bytes());
        } else {
            out.extend_from_slice(&json[1..json.len() - 1]);
        }
    }
}

/// Appends a JSON string.
fn push_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a vector");
}

/// Appends the compact JSON of `bytes`, typed by `shape`: the one JSON
/// writer of typed values (`map dump -j` prints millions of them, written
/// here without building a value).
pub fn write_json(shape: &Shape, bytes: &[u8], out: &mut Vec<u8>) {
    match shape {
        Shape::Ipv4 => {
            out.push(b'"');
            push_ipv4(out, bytes);
            out.push(b'"');
        }
        Shape::Ipv6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&bytes[..16]);
            push_str(out, &Ipv6Addr::from(a).to_string());
        }
        Shape::Port => push_int(out, u16::from_be_bytes([bytes[0], bytes[1]])),
        Shape::BigEndian { size } => {
            push_int(
                out,
                bytes[..*size]
                    .iter()
                    .fold(0u64, |v, b| (v << 8) | u64::from(*b)),
            );
        }
        Shape::Uint { .. } => push_int(out, uint(bytes)),
        Shape::Int { .. } => push_int(out, sint(bytes)),
        Shape::Bool => out.extend_from_slice(if bytes[0] != 0 { b"true" } else { b"false" }),
        Shape::Enum { signed, values, .. } => {
            let v = if *signed {
                sint(bytes)
            } else {
                uint(bytes) as i64
            };
            match values.iter().find(|(_, x)| *x == v) {
                Some((name, _)) => push_str(out, name),
                None => push_int(out, v),
            }
        }
        Shape::Struct { fields, .. } => {
            out.push(b'{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_str(out, &f.name);
                out.push(b':');
                write_json(&f.shape, &bytes[f.offset..f.offset + f.shape.size()], out);
            }
            out.push(b'}');
        }
        Shape::Array {
            elem,
            len,
            elem_size,
            chars,
        } => {
            if *chars {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                push_str(out, &String::from_utf8_lossy(&bytes[..end]));
                return;
            }
            out.push(b'[');
            for i in 0..*len {
                if i > 0 {
                    out.push(b',');
                }
                write_json(elem, &bytes[i * elem_size..(i + 1) * elem_size], out);
            }
            out.push(b']');
        }
        Shape::Cidr { v6 } => {
            let len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let addr = if *v6 {
                let mut a = [0u8; 16];
                a.copy_from_slice(&bytes[4..20]);
                Ipv6Addr::from(a).to_string()
            } else {
                Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]).to_string()
            };
            push_str(out, &format!("{addr}/{len}"));
        }
        Shape::Raw { .. } => {
            out.push(b'"');
            push_hex(out, bytes);
            out.push(b'"');
        }
        Shape::Bits {
            shift,
            bits,
            signed,
            span,
        } => {
            let v = bits_of(&bytes[..*span], *shift, *bits);
            if *signed && *bits < 128 && v >> (bits - 1) & 1 == 1 {
                push_int(out, (v | (u128::MAX << bits)) as i128 as i64);
            } else {
                push_int(out, v as u64);
            }
        }
    }
}

/// Each byte's decimal digits and a dot, left-aligned, and how many of
/// those bytes there are: `push_ipv4` copies four bytes a part.
const OCTETS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut b = 0;
    while b < 256 {
        let (d, n): ([u8; 3], u8) = if b >= 100 {
            (
                [
                    b'0' + (b / 100) as u8,
                    b'0' + (b / 10 % 10) as u8,
                    b'0' + (b % 10) as u8,
                ],
                3,
            )
        } else if b >= 10 {
            ([b'0' + (b / 10) as u8, b'0' + (b % 10) as u8, 0], 2)
        } else {
            ([b'0' + b as u8, 0, 0], 1)
        };
        let mut part = [0u8; 4];
        let mut i = 0;
        while i < n as usize {
            part[i] = d[i];
            i += 1;
        }
        part[n as usize] = b'.';
        t[b] = (part, n + 1);
        b += 1;
    }
    t
};

/// `a.b.c.d`, as `Ipv4Addr`'s `Display` writes it.
fn push_ipv4(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut buf = [0u8; 16];
    let mut n = 0;
    for &b in &bytes[..4] {
        let (part, len) = &OCTETS[usize::from(b)];
        buf[n..n + 4].copy_from_slice(part);
        n += usize::from(*len);
    }
    // Without the last part's dot.
    out.extend_from_slice(&buf[..n - 1]);
}

fn push_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends [`hex`] of `bytes`.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // NB: through a stack buffer, 16 bytes at a time: a push per character
    // costs more than the rest of a dump's line.
    let mut buf = [0u8; 48];
    for (c, chunk) in bytes.chunks(16).enumerate() {
        for (i, b) in chunk.iter().enumerate() {
            buf[3 * i] = b' ';
            buf[3 * i + 1] = DIGITS[usize::from(b >> 4)];
            buf[3 * i + 2] = DIGITS[usize::from(b & 15)];
        }
        let from = usize::from(c == 0);
        out.extend_from_slice(&buf[from..3 * chunk.len()]);
    }
}
