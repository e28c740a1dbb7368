//! The committed man pages render without warnings, and read as they should
//! in `man` on an 80-column terminal: option arguments in the SYNOPSIS,
//! examples one command a line as typed, ENVIRONMENT and FILES, the exit
//! status once.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use xdpctl_tests::xdpctl_bin;

/// Every page under `man/`.
fn pages() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../man");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "1"))
        .collect();
    pages.sort();
    assert!(
        pages.len() >= 17,
        "expected a page per command, found {}",
        pages.len()
    );
    pages
}

#[test]
fn man_pages_render_without_warnings() {
    for path in pages() {
        let out = Command::new("groff")
            .args(["-ww", "-man", "-Tutf8", "-z"])
            .arg(&path)
            .output()
            .expect("running groff (scripts/deps.sh installs groff-base)");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.is_empty(),
            "{}: {warnings}",
            path.display()
        );
    }
}

/// The page as `man -l` shows it on an 80-column terminal, as plain text.
fn render(path: &Path) -> String {
    let out = Command::new("man")
        .args(["--warnings=all", "-l"])
        .arg(path)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("running man (scripts/deps.sh installs man-db)");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.is_empty(),
        "man -l {}: {warnings}",
        path.display()
    );
    // Overstriking (`c\bc` bold, `_\bc` underline), should man keep it.
    let mut text = String::new();
    for c in String::from_utf8(out.stdout).unwrap().chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    text
}

/// The lines of section `name` (up to the next heading), trimmed.
fn section(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| *l != name)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `xdpctl-map-dump.1` -> `["map", "dump"]`.
fn command_of(path: &Path) -> Vec<String> {
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    stem.split('-').skip(1).map(str::to_owned).collect()
}

/// The examples `xdpctl ... --help` shows: its `Example:` line and its
/// `Examples:` block.
fn help_examples(command: &[String]) -> Vec<String> {
    let out = Command::new(xdpctl_bin())
        .args(command)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "xdpctl {command:?} --help failed");
    let help = String::from_utf8(out.stdout).unwrap();
    let mut examples: Vec<String> = help
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Example: "))
        .map(str::to_owned)
        .collect();
    let block = help
        .lines()
        .skip_while(|l| *l != "Examples:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned());
    for e in block {
        if !examples.contains(&e) {
            examples.push(e);
        }
    }
    examples
}

/// Collapses runs of white space, as filling does.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn man_pages_read_well_in_man() {
    let pages = pages();
    for path in &pages {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = render(path);

        // Hyphenation would break names and commands where they are copied.
        if let Some(line) = text.lines().find(|l| l.contains('\u{2010}')) {
            panic!("{name}: a hyphenated line: {line:?}");
        }

        // SYNOPSIS: every option that takes a value, with its value name, as
        // OPTIONS lists it (`--mode <MODE>` there, `[--mode MODE]` here).
        let synopsis = words(&section(&text, "SYNOPSIS").join(" "));
        let options: Vec<String> = ["OPTIONS", "GLOBAL OPTIONS"]
            .iter()
            .flat_map(|s| section(&text, s))
            .collect();
        let mut with_values = 0;
        for line in &options {
            let Some(flag) = line.split(", ").last().filter(|f| f.starts_with("--")) else {
                continue;
            };
            let mut parts = flag.split(' ');
            let (Some(long), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(value) = value.strip_prefix('<').and_then(|v| v.strip_suffix('>')) else {
                continue;
            };
            with_values += 1;
            let want = format!("{long} {value}");
            assert!(
                synopsis.contains(&want),
                "{name}: SYNOPSIS lacks `{want}`:\n{synopsis}"
            );
        }
        assert!(
            with_values > 0 && synopsis.contains("--bpffs DIR"),
            "{name}: no option with a value in SYNOPSIS:\n{synopsis}"
        );

        // EXAMPLES: each command one line, exactly as --help shows it, and
        // nothing else (a reflowed or broken line is neither).
        let examples = section(&text, "EXAMPLES");
        let command = command_of(path);
        let mut want = help_examples(&command);
        if want.is_empty() {
            // A group (map, net, prog): its subcommands' examples.
            let prefix = format!("{}-", path.file_stem().unwrap().to_string_lossy());
            for sub in pages.iter().filter(|p| {
                p.file_stem()
                    .is_some_and(|s| s.to_string_lossy().starts_with(&prefix))
            }) {
                want.extend(help_examples(&command_of(sub)));
            }
        }
        assert!(!want.is_empty(), "{name}: --help shows no examples");
        for e in &want {
            assert!(
                examples.contains(e),
                "{name}: EXAMPLES lacks `{e}` as one intact line:\n{examples:#?}"
            );
        }
        for line in &examples {
            assert!(
                want.contains(line),
                "{name}: an EXAMPLES line --help does not show (reflowed?): {line:?}\n{examples:#?}"
            );
            assert!(line.is_ascii(), "{name}: not ASCII: {line:?}");
        }

        // Sections.
        for heading in ["ENVIRONMENT", "FILES", "EXIT STATUS"] {
            let n = text.lines().filter(|l| *l == heading).count();
            assert_eq!(n, 1, "{name}: {heading} {n} times");
        }
        assert!(
            !text.contains("Exit status:"),
            "{name}: the exit status is listed outside EXIT STATUS too"
        );
        let environment = words(&section(&text, "ENVIRONMENT").join(" "));
        for var in [
            "XDPCTL_BPFFS",
            "XDPCTL_COMPLETE",
            "XDPCTL_FAILPOINT",
            "XDPCTL_FAILPOINT_WATCHER",
        ] {
            assert!(
                environment.contains(var),
                "{name}: ENVIRONMENT lacks {var}:\n{environment}"
            );
        }
        let files = words(&section(&text, "FILES").join(" "));
        for path in [
            "/sys/fs/bpf",
            "DIR/manifest",
            "DIR/maps/",
            "DIR/links/DEV@NETNS_INODE",
            "_xdpctl/",
            "journal/",
            "pending/",
            "stage/",
            "trash/",
            "rollback/",
        ] {
            assert!(files.contains(path), "{name}: FILES lacks {path}:\n{files}");
        }
    }
}
