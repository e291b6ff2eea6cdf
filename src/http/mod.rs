//! HTTP/1.1 for the front and for upstreams: request/response heads (httparse), Content-Length and
//! chunked bodies, SSE framing, the ownership-passing read/write helpers over monoio streams, and a
//! blocking client for the plain threads of legacy SSE upstreams.

pub mod blocking;
pub mod chunked;
pub mod client;
pub mod io;
pub mod response;
pub mod server;
pub mod sse;
pub mod tls;

/// Case-insensitive "does this comma-separated header list contain this media type".
pub fn has_media_type(header: &str, wanted: &str) -> bool {
    media_types(header).any(|t| t.eq_ignore_ascii_case(wanted))
}

/// The media types of a header value such as `Accept` or `Content-Type`, parameters dropped:
/// `"application/json; q=1, text/*"` → `application/json`, `text/*`. Byte scanning, no allocation
/// (this runs on every request).
pub fn media_types(header: &str) -> impl Iterator<Item = &str> {
    // Byte offsets, not `str::split`/`trim_matches` (char searchers cost ~1k instructions per
    // request): every cut is at an ASCII delimiter, so on a char boundary.
    let bytes = header.as_bytes();
    bytes.split(|&b| b == b',').map(move |part| {
        let at = part.as_ptr() as usize - bytes.as_ptr() as usize;
        let end = part.iter().position(|&b| b == b';').unwrap_or(part.len());
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = part[..end].iter().position(|b| !blank(b)).unwrap_or(end);
        let stop = part[..end]
            .iter()
            .rposition(|b| !blank(b))
            .map_or(start, |p| p + 1);
        header.get(at + start..at + stop).unwrap_or("")
    })
}

/// The reason phrase for the statuses the gateway writes.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert!(has_media_type(
            "application/json, text/event-stream",
            "text/event-stream"
        ));
        assert!(has_media_type(
            "Application/JSON; charset=utf-8",
            "application/json"
        ));
        assert!(!has_media_type("application/jsonx", "application/json"));
        let all: Vec<&str> =
            super::media_types(" text/html ;q=1,\t,application/json\t, ;x, é/ü ; a=b,").collect();
        assert_eq!(all, ["text/html", "", "application/json", "", "é/ü", ""]);
        assert_eq!(super::media_types("").collect::<Vec<_>>(), [""]);
    }
}
