//! 2026-07-28 `x-mcp-header` annotations (SEP-2243): a tool input property marked
//! `"x-mcp-header": "Region"` travels in an `Mcp-Param-Region` header as well as in the body. The
//! gateway checks the header on the way in (a mismatch is 400/-32020) and sets it on the way to an
//! HTTP upstream. Annotations are read once per catalog build.

use serde_json::Value;

use crate::upstream::http::{decode_header_value, encode_header_value};

/// One annotated property: header name (after `Mcp-Param-`) and the path of property names to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    pub name: String,
    pub path: Vec<String>,
}

/// The annotations of a tool's `inputSchema`, reachable only through chains of `properties` (as the
/// spec requires); `Err` when an annotation is invalid (the tool must then not be offered).
pub fn annotations(schema: &Value) -> Result<Vec<ParamHeader>, String> {
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out)?;
    let mut seen = std::collections::HashSet::new();
    for p in &out {
        if !seen.insert(p.name.to_ascii_lowercase()) {
            return Err(format!("x-mcp-header {:?} is used twice", p.name));
        }
    }
    Ok(out)
}

fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ParamHeader>) -> Result<(), String> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (key, prop) in props {
        path.push(key.clone());
        if let Some(h) = prop.get("x-mcp-header") {
            let name = h.as_str().unwrap_or_default();
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(format!("x-mcp-header {h} is not an HTTP header token"));
            }
            let ty = prop.get("type").and_then(Value::as_str);
            if !matches!(ty, Some("string" | "integer" | "boolean")) {
                return Err(format!(
                    "x-mcp-header {name:?} is on a property that is not a string, integer or boolean"
                ));
            }
            out.push(ParamHeader {
                name: name.to_owned(),
                path: path.clone(),
            });
        }
        walk(prop, path, out)?;
        path.pop();
    }
    Ok(())
}

/// The header value an argument travels as; `None` when the argument is absent or null.
pub fn header_value(args: &Value, p: &ParamHeader) -> Option<String> {
    let mut v = args;
    for k in &p.path {
        v = v.get(k)?;
    }
    match v {
        Value::Null => None,
        Value::String(s) => Some(encode_header_value(s)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(encode_header_value(&other.to_string())),
    }
}

/// Check the `Mcp-Param-*` headers of a request against its arguments. `headers` are (lower-case
/// name after `mcp-param-`, raw value). The error says what disagrees.
pub fn check(
    params: &[ParamHeader],
    args: &Value,
    headers: &[(String, String)],
) -> Result<(), String> {
    for p in params {
        let lower = p.name.to_ascii_lowercase();
        let got = headers
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, v)| v.as_str());
        let mut want = Some(args);
        for k in &p.path {
            want = want.and_then(|v| v.get(k));
        }
        let want = want.filter(|v| !v.is_null());
        match (want, got) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(format!("the Mcp-Param-{} header is missing", p.name));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "the Mcp-Param-{} header is set but the argument is absent",
                    p.name
                ));
            }
            (Some(w), Some(raw)) => {
                let decoded = decode_header_value(raw).ok_or_else(|| {
                    format!("the Mcp-Param-{} header value {raw:?} is not valid", p.name)
                })?;
                let same = match w {
                    Value::String(s) => *s == decoded,
                    Value::Bool(b) => decoded == b.to_string(),
                    Value::Number(n) => match (n.as_i64(), decoded.parse::<i64>()) {
                        (Some(a), Ok(b)) => a == b,
                        _ => n.to_string() == decoded,
                    },
                    _ => false, // annotations are only on string, integer and boolean properties
                };
                if !same {
                    return Err(format!(
                        "Header mismatch: Mcp-Param-{} header value {decoded:?} does not match body value {w}",
                        p.name
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_annotations_and_checks_headers() {
        let schema = json!({"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "opts":{"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"N"}}},
            "list":{"type":"array","items":{"type":"object","properties":{"x":{"type":"string","x-mcp-header":"X"}}}}
        }});
        let a = annotations(&schema).unwrap();
        assert_eq!(a.len(), 2);
        let args = json!({"region":"eu-west","opts":{"n":7}});
        let ok = vec![
            ("region".to_owned(), "eu-west".to_owned()),
            ("n".to_owned(), "7".to_owned()),
        ];
        assert!(check(&a, &args, &ok).is_ok());
        let wrong = vec![
            ("region".to_owned(), "us".to_owned()),
            ("n".to_owned(), "7".to_owned()),
        ];
        assert!(check(&a, &args, &wrong).is_err());
        let missing = vec![("n".to_owned(), "7".to_owned())];
        assert!(check(&a, &args, &missing).is_err());
        let bad_b64 = vec![
            ("region".to_owned(), "=?base64?SGVs!!!bG8=?=".to_owned()),
            ("n".to_owned(), "7".to_owned()),
        ];
        assert!(check(&a, &args, &bad_b64).is_err());
        let region = a.iter().find(|p| p.name == "Region").unwrap();
        assert_eq!(header_value(&args, region).as_deref(), Some("eu-west"));
    }

    #[test]
    fn invalid_annotations_are_refused() {
        let bad = json!({"properties":{"a":{"type":"number","x-mcp-header":"A"}}});
        assert!(annotations(&bad).is_err());
        let dup = json!({"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}});
        assert!(annotations(&dup).is_err());
        let space = json!({"properties":{"a":{"type":"string","x-mcp-header":"A B"}}});
        assert!(annotations(&space).is_err());
    }
}
