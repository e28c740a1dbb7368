//! The layers of xdpctl and what each may use, checked by a test over the
//! sources (the README's *Architecture* draws the same table):
//!
//! | layer | is | may use |
//! |---|---|---|
//! | `model` | pure logic: formats, grammars, plans, the reference of every rule; no syscalls | `model` |
//! | `kernel` | the kernel: `bpf(2)`, netlink, namespaces, bpffs layout | `model` |
//! | `render` | tables, JSON, Prometheus text: the only writer | `model` |
//! | `ctx` | what every operation is given (format, bpffs root) | `kernel`, `model`, `render` |
//! | `ops` | the operations, typed options in, typed results out, journaled | `ctx`, `kernel`, `model`, `render` |
//! | `cmd` | one thin file per command: clap arguments to options, one operation, its result to the renderer; never another command | `cli` (its arguments), `ctx`, `kernel`, `model`, `ops`, `render` |
//! | `cli` | the command line (clap), completion, generated docs | `ctx`, `kernel`, `model`, `render` |
//!
//! `main.rs` wires them together.

#[cfg(test)]
mod tests {
    use std::{
        collections::{BTreeMap, BTreeSet},
        fs,
        path::Path,
    };

    /// Layer → the layers it may use (besides itself).
    const MAY_USE: &[(&str, &[&str])] = &[
        ("model", &[]),
        ("kernel", &["model"]),
        ("render", &["model"]),
        ("ctx", &["kernel", "model", "render"]),
        ("ops", &["ctx", "kernel", "model", "render"]),
        ("cmd", &["cli", "ctx", "kernel", "model", "ops", "render"]),
        (
            "cli",
            &["ctx", "kernel", "model", "render", "completion_script"],
        ),
    ];

    /// The code of a file, without comments and tests.
    fn code(text: &str) -> String {
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn ident(s: &str) -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    }

    /// The first names after every `prefix` (`crate::`, `super::`),
    /// groups (`crate::{a::x, b}`) included.
    fn used(code: &str, prefix: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            if !rest.starts_with('{') {
                out.insert(ident(rest));
                continue;
            }
            let (mut depth, mut item) = (0, true);
            for (j, c) in rest.char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        item = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item = true,
                    c if c.is_whitespace() => {}
                    _ if depth == 1 && item => {
                        out.insert(ident(&rest[j..]));
                        item = false;
                    }
                    _ => {}
                }
            }
        }
        out.remove("");
        out.remove("self");
        out
    }

    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn each_layer_uses_only_the_layers_below_and_no_command_another() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let may: BTreeMap<&str, &[&str]> = MAY_USE.iter().copied().collect();
        let mut wrong = Vec::new();
        for file in &files {
            let rel = file.strip_prefix(&src).unwrap();
            let layer = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            let Some(allowed) = may.get(layer.as_str()) else {
                continue; // main.rs, this file
            };
            let code = code(&fs::read_to_string(file).unwrap());
            for used in used(&code, "crate::") {
                if used != layer && !allowed.contains(&used.as_str()) {
                    wrong.push(format!("{}: {layer} uses {used}", rel.display()));
                }
            }
            // A command file is a leaf: `super::` would be another command.
            if layer == "cmd" && rel != Path::new("cmd/mod.rs") {
                for used in used(&code, "super::") {
                    wrong.push(format!("{}: a command uses command {used}", rel.display()));
                }
            }
        }
        assert!(files.len() > 50, "{} sources found", files.len());
        assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_checker_sees_groups_and_paths() {
        let code =
            "use crate::{\n    cli::X,\n    ops::{a, b},\n};\nfn f() { crate::kernel::x(); }";
        let got: Vec<String> = used(code, "crate::").into_iter().collect();
        assert_eq!(got, ["cli", "kernel", "ops"]);
    }
}
