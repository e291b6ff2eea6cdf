//! Globs over `server/name`: `*` matches any run of characters (slashes included), `?` one
//! character, everything else itself. Compiled into visibility sets when the catalog changes, so
//! requests never evaluate them.

/// Does `pattern` match all of `text`?
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`): linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Any of `patterns` matches.
pub fn any(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| matches(p, text))
}

/// The first of `patterns` that matches `text`.
pub fn first<'p>(patterns: &'p [String], text: &str) -> Option<&'p str> {
    patterns
        .iter()
        .find(|p| matches(p, text))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("*", "notes/add_note"));
        assert!(matches("notes/*", "notes/add_note"));
        assert!(!matches("notes/*", "util/echo"));
        assert!(matches("*/delete_*", "notes/delete_note"));
        assert!(matches("util/e?ho", "util/echo"));
        assert!(!matches("util/e?ho", "util/eecho"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("**", ""));
    }
}
