//! `${VAR}` expansion in config strings: `${VAR}`, `${VAR:-default}`, `$$` for a literal `$`, and two
//! built-ins: `${SWITCHYARD_BIN}` (this binary, so a config can run its demo servers) and `${CONFIG_DIR}`.

use std::path::Path;

/// Expand `s`; an unset variable without a default is an error naming it.
pub fn expand(s: &str, config_path: &Path) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            out.push_str(&lookup(name, default, config_path)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(name: &str, default: Option<&str>, config_path: &Path) -> Result<String, String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("bad variable name {name:?}"));
    }
    match name {
        "SWITCHYARD_BIN" => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary's path: {e}"))?;
            Ok(exe.to_string_lossy().into_owned())
        }
        "CONFIG_DIR" => {
            let dir = config_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            Ok(dir.to_string_lossy().into_owned())
        }
        _ => match std::env::var(name) {
            Ok(v) => Ok(v),
            Err(_) => default.map(str::to_owned).ok_or_else(|| format!("environment variable {name} is not set (write ${{{name}:-default}} to give a default)")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = Path::new("/etc/sy/c.toml");
        assert_eq!(expand("a$$b", p).unwrap(), "a$b");
        assert_eq!(expand("${CONFIG_DIR}/x", p).unwrap(), "/etc/sy/x");
        assert_eq!(expand("${SWITCHYARD_UNSET_X:-dflt}", p).unwrap(), "dflt");
        assert_eq!(expand("cost $5", p).unwrap(), "cost $5");
        assert!(expand("${SWITCHYARD_UNSET_X}", p)
            .unwrap_err()
            .contains("SWITCHYARD_UNSET_X"));
        assert!(expand("${OPEN", p).is_err());
        assert!(!expand("${SWITCHYARD_BIN}", p).unwrap().is_empty());
    }
}
