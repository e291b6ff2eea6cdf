//! The target endpoint: an `http://HOST:PORT/PATH` URL on a loopback address, nothing else.
//!
//! Only loopback hosts are accepted (`127.0.0.0/8`, `[::1]`, `localhost`): this tool is for
//! measuring a gateway on the machine it runs on, and a host name is never resolved, so a typo
//! cannot send load anywhere else. Plain HTTP/1.1 only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A parsed target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (for reports).
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header value.
    pub host: String,
    /// The request path, starting with `/`.
    pub path: String,
}

/// Parses `http://HOST[:PORT][/PATH]`; `HOST` must be a loopback address or `localhost`.
pub fn parse(url: &str) -> Result<Target, String> {
    let rest = match url.strip_prefix("http://") {
        Some(rest) => rest,
        None if url.starts_with("https://") => {
            return Err(format!(
                "{url}: https is not supported (plain HTTP/1.1 only)"
            ))
        }
        None => return Err(format!("{url}: the URL must start with http://")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    if authority.contains('@') {
        return Err(format!("{url}: credentials in the URL are not supported"));
    }
    let (host, port) = split_host_port(authority).map_err(|e| format!("{url}: {e}"))?;
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| format!("{url}: the host must be a loopback IP address or localhost"))?
    };
    if !ip.is_loopback() {
        return Err(format!(
            "{url}: only loopback targets (127.0.0.0/8, [::1], localhost) may be load-tested"
        ));
    }
    Ok(Target {
        url: url.to_string(),
        addr: SocketAddr::new(ip, port),
        host: authority.to_string(),
        path: path.to_string(),
    })
}

fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or("unclosed [ in the host")?;
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("junk after the IPv6 host".into()),
        };
        (&v6[..end], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        None => 80,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_parse() {
        let t = parse("http://127.0.0.1:3100/mcp").unwrap();
        assert_eq!(t.addr, "127.0.0.1:3100".parse().unwrap());
        assert_eq!(t.host, "127.0.0.1:3100");
        assert_eq!(t.path, "/mcp");
        let t = parse("http://localhost:8080").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.path, "/");
        let t = parse("http://[::1]:9/x/y?z=1").unwrap();
        assert_eq!(t.addr, "[::1]:9".parse().unwrap());
        assert_eq!(t.path, "/x/y?z=1");
        assert_eq!(parse("http://127.8.9.10/").unwrap().addr.port(), 80);
    }

    #[test]
    fn other_hosts_are_refused() {
        for url in [
            "http://10.0.0.1:3100/mcp",
            "http://192.168.1.1/mcp",
            "http://example.com/mcp",
            "http://8.8.8.8/",
            "https://127.0.0.1/mcp",
            "127.0.0.1:3100/mcp",
            "http://127.0.0.1:99999/",
            "http:///mcp",
            "http://user@127.0.0.1/",
        ] {
            assert!(parse(url).is_err(), "{url} should be refused");
        }
    }
}
