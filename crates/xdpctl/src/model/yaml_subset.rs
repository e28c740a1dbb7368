//! A fast reader for the plain YAML that policies are written in: block
//! mappings and sequences, one-line flow sequences, plain and simply quoted
//! scalars, comments.
//!
//! Why: a policy with a million blocklist entries is an 18 MB file, and the
//! full YAML parser takes most of a second on it — more than writing the
//! entries into the kernel. This reader takes a tenth of that. It is
//! deliberately narrow: anything it does not know for certain (anchors,
//! tags, flow mappings, multi-line or escaped strings, documents) makes it
//! answer `None`, and the full parser reads the file instead; so do files
//! it reads but that do not make a valid policy, so that errors name their
//! line. Scalars follow YAML 1.2's core schema for what it accepts:
//! decimal integers and decimals are numbers, `true`/`false` booleans,
//! `null`/`~` null, everything else a string.

use serde_json::{Map, Number, Value};

/// A line: its indentation and its content without the comment.
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// Reads `text`, or `None` if it uses anything beyond the subset.
pub fn parse(text: &str) -> Option<Value> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.contains('\t') {
            return None;
        }
        let content = strip_comment(raw)?;
        let trimmed = content.trim_end();
        if trimmed.trim_start().is_empty() {
            continue;
        }
        if i == 0 && trimmed == "---" {
            continue;
        }
        if trimmed.starts_with("---") || trimmed.starts_with("...") || trimmed.starts_with('%') {
            return None;
        }
        let indent = trimmed.len() - trimmed.trim_start().len();
        lines.push(Line {
            indent,
            text: trimmed.trim_start(),
        });
    }
    let mut pos = 0;
    let value = block(&lines, &mut pos, 0)?;
    (pos == lines.len()).then_some(value)
}

/// The line without its comment, or `None` for a quote the subset does not
/// read.
fn strip_comment(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (Some(_), b'\\') => return None,
            (None, b'#') if i == 0 || bytes[i - 1] == b' ' => return Some(&line[..i]),
            _ => {}
        }
    }
    quote.is_none().then_some(line)
}

/// A block (mapping or sequence) whose lines are indented by `indent`.
fn block(lines: &[Line<'_>], pos: &mut usize, indent: usize) -> Option<Value> {
    let first = lines.get(*pos)?;
    if first.indent != indent {
        return None;
    }
    if first.text == "-" || first.text.starts_with("- ") {
        sequence(lines, pos, indent)
    } else {
        mapping(lines, pos, indent)
    }
}

fn sequence(lines: &[Line<'_>], pos: &mut usize, indent: usize) -> Option<Value> {
    let mut items = Vec::new();
    while let Some(line) = lines.get(*pos) {
        if line.indent < indent {
            break;
        }
        if line.indent > indent {
            return None;
        }
        if !(line.text == "-" || line.text.starts_with("- ")) {
            // The next key of a mapping whose sequence sat at its own
            // indentation; anywhere else the caller finds it out of place.
            break;
        }
        let rest = line.text[1..].trim_start();
        if rest.is_empty() {
            *pos += 1;
            let inner = lines.get(*pos)?.indent;
            if inner <= indent {
                return None;
            }
            items.push(block(lines, pos, inner)?);
        } else if key_value(rest).is_some() {
            // `- key: value`, more keys indented to the key's column.
            let column = indent + (line.text.len() - rest.len());
            items.push(mapping_from(lines, pos, column, Some(rest))?);
        } else {
            items.push(scalar_or_flow(rest)?);
            *pos += 1;
        }
    }
    Some(Value::Array(items))
}

fn mapping(lines: &[Line<'_>], pos: &mut usize, indent: usize) -> Option<Value> {
    mapping_from(lines, pos, indent, None)
}

/// A mapping at `indent`; `first` is a first entry already on a sequence
/// item's line.
fn mapping_from(
    lines: &[Line<'_>],
    pos: &mut usize,
    indent: usize,
    mut first: Option<&str>,
) -> Option<Value> {
    let mut map = Map::new();
    loop {
        let text = match first.take() {
            Some(t) => t,
            None => {
                let Some(line) = lines.get(*pos) else { break };
                if line.indent < indent {
                    break;
                }
                if line.indent > indent {
                    return None;
                }
                line.text
            }
        };
        let (key, value) = key_value(text)?;
        *pos += 1;
        let value = match value {
            Some(v) => scalar_or_flow(v)?,
            None => match lines.get(*pos) {
                Some(next) if next.indent > indent => block(lines, pos, next.indent)?,
                // A sequence may sit at the key's own indentation.
                Some(next)
                    if next.indent == indent
                        && (next.text == "-" || next.text.starts_with("- ")) =>
                {
                    sequence(lines, pos, indent)?
                }
                _ => Value::Null,
            },
        };
        if map.insert(key.to_owned(), value).is_some() {
            return None; // a duplicate key: the full parser says so
        }
    }
    Some(Value::Object(map))
}

/// `key: value` or `key:`, with a plain key.
fn key_value(text: &str) -> Option<(&str, Option<&str>)> {
    let (key, rest) = if let Some(k) = text.strip_suffix(':') {
        (k, "")
    } else {
        let at = text.find(": ")?;
        (&text[..at], &text[at + 2..])
    };
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let rest = rest.trim();
    Some((key, (!rest.is_empty()).then_some(rest)))
}

/// A scalar, or a one-line flow sequence of scalars.
fn scalar_or_flow(text: &str) -> Option<Value> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        if inner.trim().is_empty() {
            return Some(Value::Array(Vec::new()));
        }
        return inner
            .split(',')
            .map(|s| scalar(s.trim()))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array);
    }
    scalar(text)
}

fn scalar(text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q) {
            let inner = inner.strip_suffix(q)?;
            return (!inner.contains(q)).then(|| Value::String(inner.to_owned()));
        }
    }
    match text {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        "null" | "~" => return Some(Value::Null),
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().map(|n| Value::Number(n.into()));
    }
    if let Some((a, b)) = digits.split_once('.')
        && !a.is_empty()
        && !b.is_empty()
        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    // A plain string of the characters policies use; anything else (a
    // leading indicator, `: `, `{`, `&`, `*`, `!`, `|`, `>`...) is the full
    // parser's to read, and so is anything a YAML resolver might take for a
    // number, a boolean or null in another spelling (`1e3`, `0x10`, `.inf`,
    // `True`, `yes`, `NULL`).
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".:/_-+@".contains(&b));
    let starts_well = !text.starts_with(['-', '+', ':', '.', '@', '_']);
    let numeric_start = text.starts_with(|c: char| c.is_ascii_digit());
    let number_like = numeric_start
        && (text.contains(['e', 'E', '_'])
            || text.starts_with("0x")
            || text.starts_with("0o")
            || text.starts_with("0b"));
    let word = ["true", "false", "null", "yes", "no", "on", "off", "y", "n"]
        .iter()
        .any(|w| text.eq_ignore_ascii_case(w));
    (plain && starts_well && !number_like && !word).then(|| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subset reads what the full parser reads, the same way.
    #[test]
    fn agrees_with_the_full_parser() {
        let docs = [
            "version: 1\nload:\n  pin: xdpfw\n",
            "# policy\nversion: 1 # one\nload:\n  pin: xdpfw\n  object: builtin\n  max_entries:\n    blocklist: 1048576\n",
            "rules:\n  blocklist: [203.0.113.5, 2001:db8::5, '::1']\n  udp_ports: []\n",
            "devices:\n  - name: eth0\n    mode: native\n  - name: veth1\n    netns: blue\n",
            "devices:\n- name: eth0\n- name: eth1\n",
            "rules:\n  blocklist:\n  - 203.0.113.5\n  - \"2001:db8::5\"\n  drop_icmp: true\n",
            "guard:\n  threshold: 5000.5\n  interval: 1s\n  allow: [10.0.0.0/8]\ndrift: correct\n",
            "---\nversion: 1\nempty:\n",
        ];
        for doc in docs {
            let fast = parse(doc).unwrap_or_else(|| panic!("not read:\n{doc}"));
            let full: Value = serde_norway::from_str(doc).unwrap();
            assert_eq!(fast, full, "{doc}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_full_parser() {
        for doc in [
            "a: &x 1\nb: *x\n",
            "a: !tag 1\n",
            "a: {b: 1}\n",
            "a: |\n  text\n",
            "a: \"esc\\n\"\n",
            "a: 1\na: 2\n",
            "a: [1, [2]]\n",
            "---\na: 1\n---\nb: 2\n",
            "a:\n\t- 1\n",
            "a: yes: no\n",
            "- a\nb: 1\n",
            "a: 1e3\n",
            "a: 0x10\n",
            "a: .inf\n",
            "a: True\n",
            "a: yes\n",
            "a: ::1\n",
        ] {
            assert!(parse(doc).is_none(), "read:\n{doc}");
        }
    }
}
