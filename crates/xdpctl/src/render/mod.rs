//! Rendering: every command builds serialisable rows once; this module turns
//! them into a table for people or JSON for programs, and is the only place
//! that writes to stdout and stderr. Commands hand their results and
//! messages to an [`Out`] (a sink, like ripgrep's printer) and never branch
//! on the format.
//!
//! Tables fit the screen (see [`View`]): paths below the bpffs root are
//! shown relative to it, columns a person can do without are left out
//! when a table is too wide, and in a terminal a cell still too long wraps
//! within its column. JSON always has everything.

pub mod pcapng;
pub mod prometheus;

use std::{
    io::{self, IsTerminal, Write},
    path::{Path, PathBuf},
};

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
use serde::Serialize;

/// The width tables fit when nothing says otherwise: a pipe, or a terminal
/// that does not tell its size.
pub const DEFAULT_WIDTH: usize = 80;

/// Spaces between two columns.
const GAP: usize = 2;

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

impl Format {
    /// The format `-j`/`--json` and `-p`/`--pretty` ask for: pretty wins.
    pub fn of(json: bool, pretty: bool) -> Self {
        match (json, pretty) {
            (_, true) => Format::PrettyJson,
            (true, false) => Format::Json,
            (false, false) => Format::Human,
        }
    }
}

/// A row of a table: the same struct is serialised for JSON.
pub trait Tabular: Serialize {
    /// Column headers.
    const HEADERS: &'static [&'static str];
    /// Headers of the columns a narrow screen may do without, the first
    /// given up first.
    const OPTIONAL: &'static [&'static str] = &[];
    /// The cells of this row, one per header.
    fn cells(&self, view: &View) -> Vec<String>;
}

/// How tables are laid out for where stdout goes, and how paths are shown.
///
/// The width is `COLUMNS` when it is set (nothing exports it but a person
/// or a tool such as `watch` that means it), else the terminal's when stdout
/// is one, else [`DEFAULT_WIDTH`]. Optional columns are left out until a
/// table fits. What still does not fit wraps within its column in a
/// terminal or when `COLUMNS` asks for a width, and otherwise (a pipe) runs
/// past the width: piped, every row stays one line, for grep and sort.
#[derive(Clone, Debug)]
pub struct View {
    /// Paths below it are shown relative to it.
    root: Option<PathBuf>,
    /// Characters a line may take.
    width: usize,
    /// Whether a cell too long for its column wraps onto more lines.
    wrap: bool,
}

impl View {
    /// A view with everything given.
    pub fn new(root: Option<&Path>, width: usize, wrap: bool) -> Self {
        View {
            root: root.map(Path::to_owned),
            width,
            wrap,
        }
    }

    /// The view for this process's stdout, with paths relative to `root`.
    pub fn for_stdout(root: &Path) -> Self {
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0);
        let (width, wrap) = match columns {
            Some(c) => (c, true),
            None if io::stdout().is_terminal() => (terminal_width().unwrap_or(DEFAULT_WIDTH), true),
            None => (DEFAULT_WIDTH, false),
        };
        View::new(Some(root), width, wrap)
    }

    /// The same view for a table printed `by` characters in.
    pub fn indented(&self, by: usize) -> Self {
        View {
            width: self.width.saturating_sub(by).max(1),
            ..self.clone()
        }
    }

    /// A path for a table cell: relative to the bpffs root when below it
    /// (as xdpctl takes paths), else as it is.
    pub fn path(&self, path: &Path) -> String {
        match self.root.as_deref().and_then(|r| path.strip_prefix(r).ok()) {
            Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => path.display().to_string(),
        }
    }

    /// Paths for a table cell: `a,b` or `-` for none.
    pub fn paths(&self, paths: &[PathBuf]) -> String {
        list(&paths.iter().map(|p| self.path(p)).collect::<Vec<_>>())
    }

    /// Characters a line may take.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether what does not fit wraps (a terminal, or `COLUMNS` set);
    /// piped, a row stays one line.
    pub fn wraps(&self) -> bool {
        self.wrap
    }

    /// Rows as an aligned table without borders, fitted to this view.
    pub fn table<R: Tabular>(&self, rows: &[R]) -> String {
        let cells: Vec<Vec<String>> = rows.iter().map(|r| r.cells(self)).collect();
        layout(R::HEADERS, R::OPTIONAL, &cells, self.width, self.wrap)
    }
}

/// The width of the terminal on stdout.
fn terminal_width() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(terminal_size::Width(w), _)| usize::from(w))
        .filter(|w| *w > 0)
}

/// Lays out a table: leaves out `optional` columns, in order, until it fits
/// `width`, then wraps what still does not fit if `wrap`.
fn layout(
    headers: &[&str],
    optional: &[&str],
    rows: &[Vec<String>],
    width: usize,
    wrap: bool,
) -> String {
    let chars = |s: &str| s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let natural: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| chars(c))
                .fold(chars(h), usize::max)
        })
        .collect();
    let mut shown = vec![true; headers.len()];
    let line_width = |shown: &[bool]| {
        let widths: Vec<usize> = (0..headers.len())
            .filter(|&i| shown[i])
            .map(|i| natural[i])
            .collect();
        widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1)
    };
    for name in optional {
        if line_width(&shown) <= width {
            break;
        }
        if let Some(i) = headers.iter().position(|h| h == name) {
            shown[i] = false;
        }
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_header(headers.iter().copied());
    for row in rows {
        t.add_row(row.clone());
    }
    let last = shown.iter().rposition(|&s| s);
    for (i, column) in t.column_iter_mut().enumerate() {
        // NB: the preset pads both sides; the gap goes after each column
        // but the last, so a line is exactly as wide as its text.
        let after = if Some(i) == last { 0 } else { GAP as u16 };
        column.set_padding((0, after));
        if !shown[i] {
            column.set_constraint(ColumnConstraint::Hidden);
        }
    }
    if wrap && line_width(&shown) > width {
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(u16::try_from(width).unwrap_or(u16::MAX));
    } else {
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` as lines of at most `width` characters (a word longer than that
/// on a line of its own), the lines after the first indented by `indent`;
/// ends with a newline. Prose for the terminal, under a table.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let room = width.saturating_sub(if out.is_empty() { 0 } else { indent.len() });
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            out.push_str(if out.is_empty() { "" } else { indent });
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(if out.is_empty() { "" } else { indent });
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `1 entry`, `2 entries`: a count and the word for that many.
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: Copy + PartialEq + From<u8> + std::fmt::Display,
{
    format!("{n} {}", if n == N::from(1) { one } else { many })
}

/// Something with a human rendering; its JSON rendering is its `Serialize`.
pub trait Human: Serialize {
    /// The text for people, ending with a newline (or empty).
    fn human(&self, view: &View) -> String;
}

impl<R: Tabular> Human for Vec<R> {
    fn human(&self, view: &View) -> String {
        view.table(self)
    }
}

/// Where commands send what they have to say.
#[derive(Debug)]
pub struct Out {
    format: Format,
    view: View,
}

impl Out {
    /// A sink for this format, for stdout as it is, showing paths below
    /// `bpffs` relative to it.
    pub fn new(format: Format, bpffs: &Path) -> Self {
        Out {
            format,
            view: View::for_stdout(bpffs),
        }
    }

    /// How tables are laid out, for renderers that stream (`stats`, `top`).
    pub fn view(&self) -> &View {
        &self.view
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
        print(self.format, &self.view, value)
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

    /// One refresh of a live view (`top`, `prog top`): a header line and
    /// the table, redrawn in place in a terminal and appended elsewhere;
    /// with JSON, `json` as one line (JSON lines).
    pub fn frame<R: Tabular>(
        &self,
        header: &str,
        rows: &[R],
        json: impl FnOnce() -> serde_json::Value,
    ) -> io::Result<()> {
        use std::io::IsTerminal;
        let mut out = io::stdout().lock();
        match self.format {
            Format::Human => {
                if io::stdout().is_terminal() {
                    // Refresh in place: home the cursor and clear the screen.
                    out.write_all(b"\x1b[H\x1b[2J")?;
                }
                writeln!(out, "{header}")?;
                out.write_all(self.view.table(rows).as_bytes())?;
            }
            _ => writeln!(out, "{}", json())?,
        }
        out.flush()
    }
}

/// An error and its causes, `: `-separated, skipping a cause whose text its
/// parent already includes (libraries often repeat their source's message).
pub fn chain_text(err: &anyhow::Error) -> String {
    crate::model::error_text::chain(err.as_ref())
}

/// A failure whose result was already written to stdout (a report that
/// found problems): the exit status says so and stderr has the line, but
/// no JSON error document follows the result (`-j` prints one document).
#[derive(Debug)]
pub struct Reported(pub String);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// Under `-j`, a failure is a JSON document on stdout too, so that stdout
/// always holds JSON: `{"error": {"message", "hint", "exit_code"}}` (one
/// more line for the commands that print JSON lines).
pub fn json_error(format: Format, message: &str, hint: Option<&str>, exit_code: u8) {
    if format == Format::Human {
        return;
    }
    let doc = serde_json::json!({
        "error": {"message": message, "hint": hint, "exit_code": exit_code}
    });
    // NB: a closed stdout has nobody to tell.
    let _ = print_json(format, &doc);
}

/// Stdout, for renderers that stream (a dump, guard's events).
pub fn stdout() -> io::StdoutLock<'static> {
    io::stdout().lock()
}

/// Prints a result to stdout in the chosen format.
fn print<T: Human>(format: Format, view: &View, value: &T) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Human => out.write_all(value.human(view).as_bytes())?,
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

    #[test]
    fn prose_wraps_within_the_width() {
        let text =
            "veth0: native XDP yes: its driver (veth) runs XDP (xdp-features: basic, rx-sg).";
        let w = wrap(text, 30, "  ");
        assert!(w.lines().all(|l| l.chars().count() <= 30), "{w}");
        assert!(w.lines().skip(1).all(|l| l.starts_with("  ")), "{w}");
        assert_eq!(w.split_whitespace().collect::<Vec<_>>().join(" "), text);
    }

    #[derive(Serialize)]
    struct R {
        id: u32,
        name: &'static str,
    }

    impl Tabular for R {
        const HEADERS: &'static [&'static str] = &["ID", "NAME"];
        fn cells(&self, _view: &View) -> Vec<String> {
            vec![self.id.to_string(), self.name.to_owned()]
        }
    }

    #[test]
    fn tables_align_columns_without_borders() {
        let out = View::new(None, 80, false).table(&[
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

    /// A row like `prog show`'s: a long optional column, a long path.
    #[derive(Serialize)]
    struct Wide {
        id: u32,
        maps: &'static str,
        pinned: PathBuf,
    }

    impl Tabular for Wide {
        const HEADERS: &'static [&'static str] = &["ID", "NAME", "MAPS", "TAG", "PINNED"];
        const OPTIONAL: &'static [&'static str] = &["MAPS", "TAG"];
        fn cells(&self, view: &View) -> Vec<String> {
            vec![
                self.id.to_string(),
                "xdp_fw".into(),
                self.maps.into(),
                "896f68a63f4a2dd8".into(),
                view.path(&self.pinned),
            ]
        }
    }

    fn wide(pinned: &str) -> Vec<Wide> {
        vec![
            Wide {
                id: 4864,
                maps: "12836,12838,12837,12834,12844,12847,12858,12846,12845,12833,12835",
                pinned: PathBuf::from(pinned),
            },
            Wide {
                id: 7,
                maps: "-",
                pinned: PathBuf::from("/elsewhere/x"),
            },
        ]
    }

    fn widest(text: &str) -> usize {
        text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
    }

    #[test]
    fn optional_columns_go_first_and_only_as_many_as_needed() {
        let root = Path::new("/sys/fs/bpf");
        let rows = wide("/sys/fs/bpf/xdpfw/xdp_fw");
        let out = View::new(Some(root), 80, false).table(&rows);
        assert!(widest(&out) <= 80, "{out}");
        let header = out.lines().next().unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["ID", "NAME", "TAG", "PINNED"],
            "{out}"
        );
        assert!(
            out.contains(" xdpfw/xdp_fw\n"),
            "relative to the root: {out}"
        );
        assert!(out.contains(" /elsewhere/x\n"), "outside it, whole: {out}");
        let out = View::new(Some(root), 200, false).table(&rows);
        assert!(out.lines().next().unwrap().contains("MAPS"), "{out}");
        let out = View::new(Some(root), 40, false).table(&rows);
        assert!(!out.contains("TAG"), "{out}");
    }

    #[test]
    fn piped_rows_stay_one_line_each_even_when_too_wide() {
        let long = format!("/sys/fs/bpf/{}/xdp_fw", "d".repeat(90));
        let out = View::new(Some(Path::new("/sys/fs/bpf")), 80, false).table(&wide(&long));
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(out.contains(&long[12..]), "{out}");
    }

    #[test]
    fn in_a_terminal_what_does_not_fit_wraps_within_the_width() {
        let long = format!("/sys/fs/bpf/{}/xdp_fw", "d ".repeat(60));
        for width in [30, 50, 80, 120] {
            let out = View::new(Some(Path::new("/sys/fs/bpf")), width, true).table(&wide(&long));
            assert!(widest(&out) <= width, "{width} columns:\n{out}");
            assert!(out.lines().count() > 3, "{width} columns:\n{out}");
            assert!(out.starts_with("ID"), "{out}");
        }
        // What fits is left as it is.
        let out = View::new(None, 80, true).table(&[R { id: 1, name: "x" }]);
        assert_eq!(out, "ID  NAME\n1   x\n");
    }

    #[test]
    fn nested_tables_are_narrower() {
        let view = View::new(None, 80, true).indented(2);
        assert_eq!(view.width, 78);
        assert_eq!(View::new(None, 1, true).indented(2).width, 1);
    }

    #[test]
    fn the_root_itself_is_shown_whole() {
        let view = View::new(Some(Path::new("/sys/fs/bpf")), 80, false);
        assert_eq!(view.path(Path::new("/sys/fs/bpf")), "/sys/fs/bpf");
        assert_eq!(view.path(Path::new("/sys/fs/bpf/a/b")), "a/b");
        assert_eq!(view.path(Path::new("/sys/fs/bpfx/a")), "/sys/fs/bpfx/a");
        assert_eq!(
            view.paths(&[PathBuf::from("/sys/fs/bpf/a"), PathBuf::from("/b")]),
            "a,/b"
        );
    }

    #[test]
    fn counts_take_the_word_for_that_many() {
        assert_eq!(count(1u64, "entry", "entries"), "1 entry");
        assert_eq!(count(0usize, "entry", "entries"), "0 entries");
        assert_eq!(count(2u32, "map", "maps"), "2 maps");
    }
}
