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
    // The usual header is the type alone.
    header.eq_ignore_ascii_case(wanted)
        || media_types(header).any(|t| t.eq_ignore_ascii_case(wanted))
}

/// The media types of a header value such as `Accept` or `Content-Type`, parameters dropped:
/// `"application/json; q=1, text/*"` → `application/json`, `text/*`. Byte scanning, no allocation
/// (this runs on every request; `str::split` and `trim_matches` cost ~1k instructions here).
pub fn media_types(header: &str) -> MediaTypes<'_> {
    MediaTypes {
        header,
        at: Some(0),
    }
}

/// The iterator of `media_types`.
pub struct MediaTypes<'a> {
    header: &'a str,
    /// Where the next element starts; `None` after the last.
    at: Option<usize>,
}

impl<'a> Iterator for MediaTypes<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.header.as_bytes();
        let start = self.at?;
        let mut end = start;
        let mut semi = None;
        while let Some(&c) = b.get(end) {
            match c {
                b',' => break,
                b';' if semi.is_none() => semi = Some(end),
                _ => {}
            }
            end += 1;
        }
        self.at = (end < b.len()).then_some(end + 1);
        let blank = |c: u8| c == b' ' || c == b'\t';
        let mut stop = semi.unwrap_or(end);
        let mut first = start;
        while first < stop && blank(b[first]) {
            first += 1;
        }
        while stop > first && blank(b[stop - 1]) {
            stop -= 1;
        }
        // Every cut is next to an ASCII byte, so on a char boundary.
        Some(self.header.get(first..stop).unwrap_or(""))
    }
}

/// A header value as text, trimmed as `str::trim` trims it; invalid UTF-8 replaced. ASCII (nearly
/// every value) is neither validated nor copied.
pub fn header_text(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    if raw.is_ascii() {
        // `char::is_whitespace` on ASCII: tab, LF, VT, FF, CR and space.
        let white = |c: &u8| matches!(c, b'\t'..=b'\r' | b' ');
        let first = raw.iter().position(|c| !white(c)).unwrap_or(raw.len());
        let stop = raw.iter().rposition(|c| !white(c)).map_or(first, |p| p + 1);
        // Safety: every byte is ASCII, so the bytes are UTF-8.
        std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(&raw[first..stop]) })
    } else {
        std::borrow::Cow::Owned(String::from_utf8_lossy(raw).trim().to_owned())
    }
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
        assert_eq!(super::media_types(",").collect::<Vec<_>>(), ["", ""]);
        assert_eq!(super::media_types("a;b;c").collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn header_text_trims_like_str_trim() {
        for raw in [
            &b" \t\x0b\x0c a b \r"[..],
            b"",
            b"   ",
            b"x",
            "\u{a0}é\u{a0}".as_bytes(),
            b"\xff ok ",
        ] {
            let old = match std::str::from_utf8(raw) {
                Ok(v) => v.trim().to_owned(),
                Err(_) => String::from_utf8_lossy(raw).trim().to_owned(),
            };
            assert_eq!(header_text(raw), old, "{raw:?}");
        }
    }
}
