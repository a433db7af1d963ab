//! Two pretty-printed values in two columns, differing lines marked.

use std::fmt::Write;

/// Lays out `expected` and `actual` in two columns; a `!` marks each line
/// where they differ.
pub(crate) fn side_by_side(expected: &str, actual: &str) -> String {
    let left: Vec<&str> = expected.lines().collect();
    let right: Vec<&str> = actual.lines().collect();
    let width = left
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max("expected".len());
    let mut out = format!("  {:width$} | actual\n", "expected");
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).copied().unwrap_or("");
        let r = right.get(i).copied().unwrap_or("");
        let mark = if l == r { ' ' } else { '!' };
        let _ = writeln!(out, "{mark} {l:width$} | {r}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::side_by_side;

    #[test]
    fn marks_only_differing_lines() {
        let table = side_by_side("a\nb", "a\nc\nd");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "  expected | actual");
        assert_eq!(lines[1], "  a        | a");
        assert_eq!(lines[2], "! b        | c");
        assert_eq!(lines[3], "!          | d");
    }
}
