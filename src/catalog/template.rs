//! Matching a URI against an RFC 6570 URI template, enough to route `resources/read` of a templated
//! resource to the server that offers the template.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{var}` (stops at `/`), `{+var}`/`{#var}` (reserved: any characters), `{?q}`/`{&q}` (query).
    Var {
        reserved: bool,
        query: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub raw: String,
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(raw: &str) -> Option<Template> {
        let mut parts = Vec::new();
        let mut rest = raw;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}')? + open;
            let expr = &rest[open + 1..close];
            let op = expr.chars().next()?;
            parts.push(Part::Var {
                reserved: matches!(op, '+' | '#'),
                query: matches!(op, '?' | '&'),
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Some(Template {
            raw: raw.to_owned(),
            parts,
        })
    }

    pub fn matches(&self, uri: &str) -> bool {
        match_from(&self.parts, uri)
    }
}

fn match_from(parts: &[Part], uri: &str) -> bool {
    match parts.split_first() {
        None => uri.is_empty(),
        Some((Part::Literal(l), rest)) => uri
            .strip_prefix(l.as_str())
            .is_some_and(|u| match_from(rest, u)),
        Some((Part::Var { reserved, query }, rest)) => {
            if *query {
                // A query expansion may be absent, or take `?…` / `&…` up to the next literal.
                return match_from(rest, uri)
                    || ((uri.starts_with('?') || uri.starts_with('&'))
                        && (1..=uri.len())
                            .any(|i| uri.is_char_boundary(i) && match_from(rest, &uri[i..])));
            }
            // Try every split point; a simple variable does not cross `/`, `?` or `#`.
            for (i, c) in uri.char_indices() {
                if match_from(rest, &uri[i..]) {
                    return true;
                }
                if !reserved && matches!(c, '/' | '?' | '#') {
                    return false;
                }
            }
            match_from(rest, "")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let t = Template::parse("demo://resource/dynamic/text/{resourceId}").unwrap();
        assert!(t.matches("demo://resource/dynamic/text/42"));
        assert!(!t.matches("demo://resource/dynamic/text/4/2"));
        assert!(!t.matches("demo://resource/dynamic/blob/1"));
        let t = Template::parse("file:///{+path}").unwrap();
        assert!(t.matches("file:///a/b/c.txt"));
        let t = Template::parse("notes://note/{id}{?format}").unwrap();
        assert!(t.matches("notes://note/7"));
        assert!(t.matches("notes://note/7?format=md"));
        assert!(Template::parse("x://{unclosed").is_none());
    }
}
