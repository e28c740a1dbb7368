//! Rendering: every command builds serialisable rows once; this module turns
//! them into a table for people or JSON for programs, and is the only place
//! that writes to stdout and stderr. Commands hand their results and
//! messages to an [`Out`] (a sink, like ripgrep's printer) and never branch
//! on the format.

use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tables and lines for people.
    Human,
    /// Compact JSON.
    Json,
    /// Indented JSON.
    PrettyJson,
}

/// A row of a table: the same struct is serialised for JSON.
pub trait Tabular: Serialize {
    /// Column headers.
    const HEADERS: &'static [&'static str];
    /// The cells of this row, one per header.
    fn cells(&self) -> Vec<String>;
}

/// Something with a human rendering; its JSON rendering is its `Serialize`.
pub trait Human: Serialize {
    /// The text for people, ending with a newline (or empty).
    fn human(&self) -> String;
}

impl<R: Tabular> Human for Vec<R> {
    fn human(&self) -> String {
        table(self)
    }
}

/// Renders rows as a plain, aligned table (easy to read and to grep).
pub fn table<R: Tabular>(rows: &[R]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(R::HEADERS.iter().copied());
    for row in rows {
        t.add_row(row.cells());
    }
    // comfy-table pads every line with a leading space in this preset.
    let mut out = String::new();
    for line in t.to_string().lines() {
        out.push_str(line.strip_prefix(' ').unwrap_or(line).trim_end());
        out.push('\n');
    }
    out
}

/// Where commands send what they have to say.
#[derive(Debug)]
pub struct Out {
    format: Format,
}

impl Out {
    /// A sink for this format.
    pub fn new(format: Format) -> Self {
        Out { format }
    }

    /// A message for the person at the terminal (stderr), prefixed with
    /// `xdpctl: `.
    pub fn note(&self, message: impl std::fmt::Display) {
        eprintln!("xdpctl: {message}");
    }

    /// Several messages.
    pub fn notes(&self, messages: impl IntoIterator<Item = String>) {
        for m in messages {
            self.note(m);
        }
    }

    /// The result, in the chosen format, on stdout.
    pub fn result<T: Human>(&self, value: &T) -> io::Result<()> {
        print(self.format, value)
    }

    /// A JSON result only when JSON was asked for (the human rendering of
    /// such commands is their notes).
    pub fn json_or_nothing(&self, value: &serde_json::Value) -> io::Result<()> {
        print_json_or_nothing(self.format, value)
    }

    /// Text as it is on stdout (a stream of lines or a text format).
    pub fn text(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// Stdout, for renderers that stream (a million-entry dump).
    pub fn stdout(&self) -> io::StdoutLock<'static> {
        io::stdout().lock()
    }
}

/// Stdout, for renderers that stream (a dump, guard's events).
pub fn stdout() -> io::StdoutLock<'static> {
    io::stdout().lock()
}

/// Prints a result to stdout in the chosen format.
pub fn print<T: Human>(format: Format, value: &T) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Human => out.write_all(value.human().as_bytes())?,
        Format::Json => {
            serde_json::to_writer(&mut out, value)?;
            out.write_all(b"\n")?;
        }
        Format::PrettyJson => {
            serde_json::to_writer_pretty(&mut out, value)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()
}

/// Prints a JSON value (compact or indented by the format).
pub fn print_json(format: Format, value: &serde_json::Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if format == Format::PrettyJson {
        serde_json::to_writer_pretty(&mut out, value)?;
    } else {
        serde_json::to_writer(&mut out, value)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// For commands whose human output is a message on stderr: prints the JSON
/// result only when JSON was asked for.
pub fn print_json_or_nothing(format: Format, value: &serde_json::Value) -> io::Result<()> {
    match format {
        Format::Human => Ok(()),
        _ => print_json(format, value),
    }
}

/// Pinned paths for a table cell.
pub fn pinned_cell(paths: &[std::path::PathBuf]) -> String {
    list(
        &paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    )
}

/// `a, b, c` or `-` for nothing.
pub fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct R {
        id: u32,
        name: &'static str,
    }

    impl Tabular for R {
        const HEADERS: &'static [&'static str] = &["ID", "NAME"];
        fn cells(&self) -> Vec<String> {
            vec![self.id.to_string(), self.name.to_owned()]
        }
    }

    #[test]
    fn tables_align_columns_without_borders() {
        let out = table(&[
            R {
                id: 1,
                name: "xdp_fw",
            },
            R { id: 100, name: "x" },
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("ID"), "{out}");
        let col = lines[0].find("NAME").unwrap();
        assert_eq!(&lines[1][col..], "xdp_fw");
        assert_eq!(&lines[2][col..], "x");
    }

    #[test]
    fn lists_render_dash_when_empty() {
        assert_eq!(list::<u32>(&[]), "-");
        assert_eq!(list(&[1, 2]), "1,2");
    }
}
