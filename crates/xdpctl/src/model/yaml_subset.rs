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

use serde::de::{self, IntoDeserializer, Visitor};

/// What the reader reads: scalars borrowed from the text (a million-entry
/// blocklist is then a million slices, not a million strings).
#[derive(Clone, Debug, PartialEq)]
pub enum Node<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A decimal.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`, `~`, or nothing.
    Null,
    /// A sequence.
    Seq(Vec<Node<'a>>),
    /// A mapping, in order.
    Map(Vec<(&'a str, Node<'a>)>),
}

impl Node<'_> {
    /// As JSON (for comparing with the full parser).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Str(s) => Value::String((*s).to_owned()),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => Value::from(*f),
            Node::Bool(b) => Value::Bool(*b),
            Node::Null => Value::Null,
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl<'de> de::Deserializer<'de> for &'de Node<'de> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self {
            Node::Str(s) => v.visit_borrowed_str(s),
            Node::Int(i) => v.visit_i64(*i),
            Node::Float(f) => v.visit_f64(*f),
            Node::Bool(b) => v.visit_bool(*b),
            Node::Null => v.visit_unit(),
            Node::Seq(items) => v.visit_seq(de::value::SeqDeserializer::new(items.iter())),
            Node::Map(entries) => v.visit_map(de::value::MapDeserializer::new(
                entries.iter().map(|(k, n)| (*k, n)),
            )),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        match self {
            Node::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Node::Str(s) => v.visit_enum((*s).into_deserializer()),
            _ => Err(de::Error::custom("expected a string")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, de::value::Error> for &'de Node<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A line: its indentation and its content without the comment.
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// Reads `text`, or `None` if it uses anything beyond the subset.
pub fn parse(text: &str) -> Option<Node<'_>> {
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
fn block<'a>(lines: &[Line<'a>], pos: &mut usize, indent: usize) -> Option<Node<'a>> {
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

fn sequence<'a>(lines: &[Line<'a>], pos: &mut usize, indent: usize) -> Option<Node<'a>> {
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
    Some(Node::Seq(items))
}

fn mapping<'a>(lines: &[Line<'a>], pos: &mut usize, indent: usize) -> Option<Node<'a>> {
    mapping_from(lines, pos, indent, None)
}

/// A mapping at `indent`; `first` is a first entry already on a sequence
/// item's line.
fn mapping_from<'a>(
    lines: &[Line<'a>],
    pos: &mut usize,
    indent: usize,
    mut first: Option<&'a str>,
) -> Option<Node<'a>> {
    let mut map: Vec<(&'a str, Node<'a>)> = Vec::new();
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
                _ => Node::Null,
            },
        };
        if map.iter().any(|(k, _)| *k == key) {
            return None; // a duplicate key: the full parser says so
        }
        map.push((key, value));
    }
    Some(Node::Map(map))
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
fn scalar_or_flow(text: &str) -> Option<Node<'_>> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        if inner.trim().is_empty() {
            return Some(Node::Seq(Vec::new()));
        }
        return inner
            .split(',')
            .map(|s| scalar(s.trim()))
            .collect::<Option<Vec<_>>>()
            .map(Node::Seq);
    }
    scalar(text)
}

fn scalar(text: &str) -> Option<Node<'_>> {
    if text.is_empty() {
        return None;
    }
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q) {
            let inner = inner.strip_suffix(q)?;
            return (!inner.contains(q)).then_some(Node::Str(inner));
        }
    }
    match text {
        "true" => return Some(Node::Bool(true)),
        "false" => return Some(Node::Bool(false)),
        "null" | "~" => return Some(Node::Null),
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().map(Node::Int);
    }
    if let Some((a, b)) = digits.split_once('.')
        && !a.is_empty()
        && !b.is_empty()
        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    {
        return text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Node::Float);
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
    (plain && starts_well && !number_like && !word).then_some(Node::Str(text))
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
            let full: serde_json::Value = serde_norway::from_str(doc).unwrap();
            assert_eq!(fast.to_value(), full, "{doc}");
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
