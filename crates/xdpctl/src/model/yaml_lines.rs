//! Where a field of a YAML document is: the line of a value, found by
//! walking the path's keys (`rules.udp_ports[3]`), for errors that point a
//! person at it.

/// The line of a field's value (`rules.udp_ports[3]`: the fourth port's
/// line, in a block or a flow sequence), found by walking the path's keys
/// from the top (good enough to point a person at it).
pub fn line_of(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for part in field.split('.') {
        at = line_of_part(&lines, part, at)?;
    }
    Some(at + 1)
}

/// From the `from`th line (0-based) on, the line of one part of a field's
/// path (`name` or `name[i]`).
pub fn line_of_from(text: &str, field: &str, from: usize) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let last = field.rsplit('.').next()?;
    line_of_part(&lines, last, from.saturating_sub(1)).map(|l| l + 1)
}

fn line_of_part(lines: &[&str], part: &str, from: usize) -> Option<usize> {
    let (key, index) = match part.split_once('[') {
        Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
        None => (part, None),
    };
    let bare = |l: &str| l.trim_start().trim_start_matches("- ").to_owned();
    let at = if key.is_empty() {
        from
    } else {
        (from..lines.len()).find(|&i| bare(lines[i]).starts_with(&format!("{key}:")))?
    };
    let Some(index) = index else {
        return Some(at);
    };
    let after = bare(lines[at]);
    let after = after.split_once(':').map_or("", |(_, v)| v).trim_start();
    if after.starts_with('[') {
        return Some(flow_item(lines, at, index).unwrap_or(at));
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let items = lines[at + 1..]
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .take_while(|(_, l)| indent(l) > indent(lines[at]) || l.trim_start().starts_with('-'))
        .filter(|(_, l)| l.trim_start().starts_with('-'));
    let first = items.clone().next().map(|(_, l)| indent(l));
    items
        .filter(|(_, l)| Some(indent(l)) == first)
        .nth(index)
        .map(|(i, _)| at + 1 + i)
        .or(Some(at))
}

/// The line of the `index`th item of the flow sequence that starts on line
/// `at` (`[53, 0]`, across lines too).
fn flow_item(lines: &[&str], at: usize, index: usize) -> Option<usize> {
    let (mut depth, mut commas) = (0usize, 0usize);
    let start = lines[at].find('[')?;
    for (n, line) in lines.iter().enumerate().skip(at) {
        let text = if n == at { &line[start..] } else { line };
        for c in text.chars() {
            match c {
                '#' => break,
                '[' | '{' => depth += 1,
                ']' | '}' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return None;
                    }
                }
                ',' if depth == 1 => commas += 1,
                c if depth == 1 && commas == index && !c.is_whitespace() => return Some(n),
                _ => {}
            }
        }
    }
    None
}
