//! The fast path of `Frame::parse`: one validating walk of the whole message that records every
//! span the gateway reads (top level, `params`, `params._meta`, `result`) on the way.
//!
//! The sonic-rs path walked the top level, then `params`, `_meta` and `result` again, each walk with
//! its own parser and key buffer (~13k instructions for a tools/call and its reply). This walk takes
//! a subset of what that path takes: RFC 8259 grammar (JSON whitespace only, `\u` followed by four
//! hex digits, valid UTF-8), member names without escapes at the levels it reads, no duplicate
//! member it records, nesting up to 128. Anything else — every error included — hands the buffer
//! back and the sonic-rs path gives the message its exact answer; `tests` check the subset claim by
//! comparing both paths over mutated messages.

use bytes::Bytes;

use super::{Frame, Span};

/// Containers deeper than this go to the sonic-rs path (the open containers are bits of a `u128`).
const MAX_DEPTH: u32 = 128;

/// The walk of `buf`: the frame, or the buffer back when the sonic-rs path must answer.
pub(super) fn frame(buf: Bytes) -> Result<Frame, Bytes> {
    match walk(&buf) {
        Some(mut f) => {
            f.buf = buf;
            Ok(f)
        }
        None => Err(buf),
    }
}

fn walk(b: &[u8]) -> Option<Frame> {
    let mut s = Scan {
        b,
        i: 0,
        high: false,
    };
    if s.next()? != b'{' {
        return None;
    }
    let mut f = Frame::empty(Bytes::new());
    let mut version_ok = false;
    let mut seen = 0u8;
    let mut first = true;
    while let Some(key) = s.member(&mut first)? {
        let start = s.i;
        let bit = match key {
            b"jsonrpc" => {
                s.value()?;
                version_ok = &b[start..s.i] == b"\"2.0\"";
                1
            }
            b"id" => {
                s.value()?;
                2
            }
            b"method" => {
                if b.get(start) != Some(&b'"') {
                    return None;
                }
                s.value()?;
                4
            }
            b"params" => {
                if !s.open() {
                    return None; // "params must be an object"
                }
                params(&mut s, &mut f)?;
                8
            }
            b"result" => {
                if s.open() {
                    result(&mut s, &mut f)?;
                } else {
                    s.value()?;
                }
                16
            }
            b"error" => {
                s.value()?;
                32
            }
            _ => {
                s.value()?;
                0
            }
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        let span = Some(s.span(start));
        match bit {
            2 => f.id = span,
            4 => f.method = span,
            8 => f.params = span,
            16 => f.result = span,
            32 => f.error = span,
            _ => {}
        }
    }
    s.ws();
    if s.i != b.len() || (s.high && std::str::from_utf8(b).is_err()) {
        return None;
    }
    // With a valid kind, a `result` is a response's: its picks are those the sonic-rs path makes.
    f.classify(b, version_ok).ok()?;
    Some(f)
}

/// `frame::member` by the walk: the raw value of member `key` of the object `obj` (first
/// occurrence), or `Err` when the walk stops before an answer and sonic-rs must give it.
pub(super) fn member<'a>(obj: &'a [u8], key: &str) -> Result<Option<&'a [u8]>, ()> {
    let mut s = Scan {
        b: obj,
        i: 0,
        high: false,
    };
    if s.next() != Some(b'{') {
        return Err(());
    }
    let mut first = true;
    while let Some(name) = s.member(&mut first).ok_or(())? {
        let start = s.i;
        s.value().ok_or(())?;
        if name == key.as_bytes() {
            // sonic-rs answers nothing for a text that is not UTF-8, wherever the fault is.
            let utf8 = obj.is_ascii() || std::str::from_utf8(obj).is_ok();
            return Ok(utf8.then(|| &obj[start..s.i]));
        }
    }
    Ok(None)
}

/// The members of `params` (the scanner is past its `{`), and those of `params._meta`.
fn params(s: &mut Scan<'_>, f: &mut Frame) -> Option<()> {
    let mut first = true;
    while let Some(key) = s.member(&mut first)? {
        let start = s.i;
        let slot = match key {
            b"name" => &mut f.name,
            b"uri" => &mut f.uri,
            b"arguments" => &mut f.arguments,
            b"requestState" => &mut f.picked.request_state,
            b"inputResponses" => &mut f.picked.input_responses,
            b"_meta" => {
                if f.meta.is_some() {
                    return None;
                }
                if s.open() {
                    meta(s, f)?;
                } else {
                    s.value()?;
                }
                f.meta = Some(s.nested_span(start));
                continue;
            }
            _ => {
                s.value()?;
                continue;
            }
        };
        if slot.is_some() {
            return None;
        }
        s.value()?;
        *slot = Some(s.nested_span(start));
    }
    Some(())
}

/// The members of `params._meta` (the scanner is past its `{`).
fn meta(s: &mut Scan<'_>, f: &mut Frame) -> Option<()> {
    let mut first = true;
    while let Some(key) = s.member(&mut first)? {
        let start = s.i;
        s.value()?;
        let slot = match key {
            b"progressToken" => &mut f.picked.progress_token,
            b"io.modelcontextprotocol/protocolVersion" => &mut f.picked.meta_version,
            b"io.modelcontextprotocol/clientCapabilities" => &mut f.picked.meta_caps,
            b"io.modelcontextprotocol/logLevel" => &mut f.picked.log_level,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(s.nested_span(start));
    }
    Some(())
}

/// The members of `result` (the scanner is past its `{`).
fn result(s: &mut Scan<'_>, f: &mut Frame) -> Option<()> {
    let mut first = true;
    while let Some(key) = s.member(&mut first)? {
        let start = s.i;
        s.value()?;
        let slot = match key {
            b"resultType" => &mut f.picked.result_type,
            b"requestState" => &mut f.picked.result_state,
            b"ttlMs" => &mut f.picked.result_ttl,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(s.nested_span(start));
    }
    Some(())
}

/// A cursor over the message. Every method answers `None` for "not taken here".
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    /// A string held a byte >= 0x80: the message's UTF-8 is checked once at the end.
    high: bool,
}

impl<'a> Scan<'a> {
    fn span(&self, start: usize) -> Span {
        Span {
            start: start as u32,
            end: self.i as u32,
        }
    }

    /// The span of a member below the top level, as the sonic-rs path gives it: its unvalidated
    /// walk ends a number at the next `,` or `}`, whitespace included.
    fn nested_span(&mut self, start: usize) -> Span {
        if let Some(b'-' | b'0'..=b'9') = self.b.get(start) {
            self.ws();
        }
        self.span(start)
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte that is not whitespace, consumed.
    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// Consumes a `{` when one comes next (after whitespace).
    fn open(&mut self) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&b'{') {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// In an object (past `{` or a member's value): the next member's name, with the scanner on
    /// its value; `Some(None)` past the closing `}`.
    fn member(&mut self, first: &mut bool) -> Option<Option<&'a [u8]>> {
        let mut c = self.next()?;
        if c == b'}' {
            return Some(None);
        }
        if !*first {
            if c != b',' {
                return None;
            }
            c = self.next()?;
        }
        *first = false;
        if c != b'"' {
            return None;
        }
        let start = self.i;
        if self.string()? {
            return None; // an escaped name may spell a member we read
        }
        let key = &self.b[start..self.i - 1];
        if self.next()? != b':' {
            return None;
        }
        self.ws();
        Some(Some(key))
    }

    /// Past a string's opening quote: to just past its closing quote. `Some(true)` when it holds
    /// an escape.
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            let (n, high) = special(self.b.get(self.i..)?);
            self.high |= high;
            self.i += n;
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // a control character
            }
        }
    }

    /// One value of any kind, validated, with the scanner just past it. Containers are walked
    /// without recursion: bit `d` of `objects` says whether open container `d` is an object.
    fn value(&mut self) -> Option<()> {
        let mut objects: u128 = 0;
        let mut depth: u32 = 0;
        'value: loop {
            let c = self.next()?;
            match c {
                b'{' | b'[' => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    let object = c == b'{';
                    objects = (objects & !(1 << depth)) | (u128::from(object) << depth);
                    depth += 1;
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.b.get(self.i) == Some(&close) {
                        self.i += 1;
                        depth -= 1;
                    } else {
                        if object {
                            self.name()?;
                        }
                        continue 'value;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"rue")?,
                b'f' => self.literal(b"alse")?,
                b'n' => self.literal(b"ull")?,
                b'-' | b'0'..=b'9' => self.number(c)?,
                _ => return None,
            }
            // A value ended: close containers until one has another element.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let object = (objects >> (depth - 1)) & 1 == 1;
                match self.next()? {
                    b',' => {
                        if object {
                            self.name()?;
                        }
                        continue 'value;
                    }
                    b'}' if object => depth -= 1,
                    b']' if !object => depth -= 1,
                    _ => return None,
                }
            }
        }
    }

    /// A member name and its colon, inside a value being skipped.
    fn name(&mut self) -> Option<()> {
        if self.next()? != b'"' {
            return None;
        }
        self.string()?;
        (self.next()? == b':').then_some(())
    }

    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.i + rest.len();
        (self.b.get(self.i..end)? == rest).then(|| self.i = end)
    }

    /// Past a number's first byte `c`: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
    fn number(&mut self, mut c: u8) -> Option<()> {
        if c == b'-' {
            c = *self.b.get(self.i)?;
            self.i += 1;
        }
        match c {
            b'0' => {}
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        // `01`, `1.5x`: the byte after a number must end it (checked by the caller's grammar,
        // except for a digit after a leading zero).
        if let Some(b'0'..=b'9') = self.b.get(self.i) {
            return None;
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.b.get(self.i) {
            self.i += 1;
        }
        self.i - start
    }
}

/// In a string's bytes: the offset of the first `"`, `\\` or control character (`bytes.len()` when
/// there is none), and whether a byte >= 0x80 came before it.
#[inline(always)]
fn special(bytes: &[u8]) -> (usize, bool) {
    #[cfg(target_arch = "x86_64")]
    let (mut i, high) = match special_sse2(bytes) {
        Ok(found) => return found,
        Err(tail) => tail,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (mut i, high) = (0, false);
    let mut high = u8::from(high) << 7;
    while let Some(&c) = bytes.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        high |= c;
        i += 1;
    }
    (i, high >= 0x80)
}

/// `special` 16 bytes at a time: `Ok` with the answer when a block holds the byte, else `Err` with
/// where the last whole block ended (the caller finishes byte by byte).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_sse2(bytes: &[u8]) -> Result<(usize, bool), (usize, bool)> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut i = 0;
    let mut high = 0u32;
    while let Some(block) = bytes.get(i..i + 16) {
        // Safety: SSE2 is part of x86_64; the load reads the 16 bytes of `block`, unaligned.
        let (stop, h) = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // v <= 0x1f (unsigned) exactly when max(v, 0x1f) == 0x1f.
            let low = _mm_set1_epi8(0x1f);
            let control = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
            let stop = _mm_or_si128(_mm_or_si128(quote, slash), control);
            (_mm_movemask_epi8(stop) as u32, _mm_movemask_epi8(v) as u32)
        };
        if stop != 0 {
            let at = stop.trailing_zeros();
            high |= h & ((1 << at) - 1);
            return Ok((i + at as usize, high != 0));
        }
        high |= h;
        i += 16;
    }
    Err((i, high != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages of every kind the walk should take, including escapes, UTF-8, numbers of every
    /// form, nesting, whitespace and long strings (the 16-byte blocks).
    const TAKEN: &[&str] = &[
        r#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"up__echo","arguments":{"message":"hello 1"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p-1","io.modelcontextprotocol/logLevel":"info"}}}"#,
        r#"{"jsonrpc":"2.0","id":"a\"b","result":{"content":[{"type":"text","text":"h\u00e9llo \ud83d\ude00 \n\t\/\b\f\r\\ – ü 😀 a long enough text for blocks"}],"resultType":"complete","requestState":"s","ttlMs":1500,"isError":false}}"#,
        r#" {"id":-0.5e+10,"jsonrpc":"2.0","error":{"code":-32601,"message":"x","data":[1,-2,3.25,4E5,0,null,true,false,[],{},[[{}]]]}} "#,
        "{\n  \"jsonrpc\" : \"2.0\",\r\n\t\"method\" : \"notifications/progress\" ,\n  \"params\" : { \"progressToken\" : 1 , \"progress\" : 0.5 }\n}\n",
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":3,"result":[1,2]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a%20b","_meta":[1]}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","requestState":"abc","inputResponses":{"k":{"a":1}},"other":{"x\u0041":1}}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"ping","params":{},"x":1,"x":2}"#,
        r#"{"jsonrpc":"2.0","id":5,"result":{"s":"0123456789abcdef0123456789abcdef\"0123456789abcdef"}}"#,
    ];

    fn fast(s: &[u8]) -> Option<Frame> {
        frame(Bytes::copy_from_slice(s)).ok()
    }

    fn slow(s: &[u8]) -> Result<Frame, super::super::FrameError> {
        Frame::parse_sonic(Bytes::copy_from_slice(s))
    }

    /// Whatever the walk takes, the sonic-rs path takes too, with the same spans.
    fn agrees(s: &[u8]) {
        if let Some(f) = fast(s) {
            match slow(s) {
                Ok(g) => assert_eq!(f, g, "{:?}", String::from_utf8_lossy(s)),
                Err(e) => panic!(
                    "taken by the walk, refused by sonic-rs ({e}): {:?}",
                    String::from_utf8_lossy(s)
                ),
            }
        }
    }

    #[test]
    fn takes_the_usual_messages_with_the_same_spans() {
        for m in TAKEN {
            let f = fast(m.as_bytes()).unwrap_or_else(|| panic!("not taken: {m}"));
            assert_eq!(Ok(f), slow(m.as_bytes()));
        }
        let f = fast(TAKEN[0].as_bytes()).unwrap();
        assert_eq!(
            f.progress_token_span().map(|s| f.slice(s)),
            Some(&b"\"p-1\""[..])
        );
        assert!(f.wants_log_lines());
        let r = fast(TAKEN[1].as_bytes()).unwrap();
        assert_eq!(r.result_type_raw(), Some(&b"\"complete\""[..]));
        assert!(r.result_has_ttl());
    }

    #[test]
    fn leaves_unusual_and_bad_messages_to_sonic_rs() {
        for m in [
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"na\u006de":"a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"name":"a","name":"b"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[]}"#,
            r#"{"jsonrpc":"2\u002e0","id":1,"method":"x"}"#,
            "\u{c}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}",
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"s\":\"\u{1}\"}",
            "[]",
        ] {
            assert!(fast(m.as_bytes()).is_none(), "{m}");
        }
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{}{}}}"#,
            "[".repeat(129),
            "]".repeat(129)
        );
        assert!(fast(deep.as_bytes()).is_none());
        assert!(slow(deep.as_bytes()).is_ok());
        let bad_utf8 = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xc3\x28\"}";
        assert!(fast(bad_utf8).is_none());
        assert!(slow(bad_utf8).is_err());
    }

    /// `member` by the walk and by sonic-rs agree wherever the walk answers.
    fn members_agree(s: &[u8]) -> usize {
        let mut answered = 0;
        for key in [
            "jsonrpc", "id", "params", "result", "method", "ttlMs", "absent",
        ] {
            if let Ok(found) = member(s, key) {
                answered += 1;
                assert_eq!(
                    found,
                    super::super::member_sonic(s, key),
                    "{key} in {:?}",
                    String::from_utf8_lossy(s)
                );
            }
        }
        answered
    }

    /// Every truncation, deletion and replacement of one byte by a JSON-significant one: what the
    /// walk takes, sonic-rs takes the same way.
    #[test]
    fn mutated_messages_agree_with_sonic_rs() {
        let subs: &[u8] = b"\"\\{}[],: 0-+.eE9aut/\x01\x7f\xc3\xff";
        let mut taken = 0usize;
        let mut answered = 0usize;
        for m in TAKEN {
            let m = m.as_bytes();
            for i in 0..m.len() {
                agrees(&m[..i]);
                let mut d = m.to_vec();
                d.remove(i);
                agrees(&d);
                for &c in subs {
                    let mut r = m.to_vec();
                    r[i] = c;
                    taken += usize::from(fast(&r).is_some());
                    agrees(&r);
                    answered += members_agree(&r);
                    r.insert(i, c);
                    agrees(&r);
                    answered += members_agree(&r);
                }
            }
        }
        // The mutations reach the taken side too (a value changed, not only broken messages).
        assert!(taken > 1000, "{taken}");
        assert!(answered > 10_000, "{answered}");
    }
}
