//! The merged lists the gateway answers itself (tools/list, prompts/list, resources/list,
//! resources/templates/list): whole, or in pages of `gateway.page_size` entries with opaque,
//! tamper-checked cursors.
//!
//! A cursor is `c1.<position>.<tag>` (base64url). The position names the list, the offset of the
//! next entry and a digest of the entries of the list it pages; the tag (HMAC-SHA256 under the
//! gateway's state key, the one `state` seals `requestState` with) binds the position to the
//! caller's role and identity. A cursor that was edited or forged, or that is presented for another
//! list, by another role or by another caller, is refused with -32602 (in a 200, both eras). A
//! cursor whose list changed since it was issued (another digest) is refused the same way, saying
//! so: positions in a changed list mean nothing, and the spec's advice to a client whose cursor
//! fails is to list again from the start. A list whose entries did not change keeps its cursors
//! valid across catalog rebuilds, restarts and gateways that share `gateway.state_key`.
//!
//! The meta-tool mode's tools/list (three meta-tools) is never paged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sonic_rs::JsonValueTrait;

use super::dispatch::Exchange;
use super::state::StateKey;
use super::ClientEra;
use crate::catalog::{Catalog, ListBody, View};
use crate::error::{Error, ErrorKind};
use crate::policy::Principal;
use crate::shard::ShardCtx;

/// Which list a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools = 0,
    Prompts = 1,
    Resources = 2,
    Templates = 3,
}

/// Where a cursor points: the list, the next entry, the entries it was issued over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    kind: u8,
    offset: u32,
    digest: [u8; 8],
}

const PREFIX: &str = "c1.";
const POSITION_LEN: usize = 13;

impl Position {
    fn bytes(&self) -> [u8; POSITION_LEN] {
        let mut b = [0u8; POSITION_LEN];
        b[0] = self.kind;
        b[1..5].copy_from_slice(&self.offset.to_be_bytes());
        b[5..].copy_from_slice(&self.digest);
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Position> {
        if b.len() != POSITION_LEN {
            return None;
        }
        let mut offset = [0u8; 4];
        offset.copy_from_slice(&b[1..5]);
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&b[5..]);
        Some(Position {
            kind: b[0],
            offset: u32::from_be_bytes(offset),
            digest,
        })
    }
}

/// What a cursor's tag covers: its position and who it was issued to.
fn message(who: &Principal, position: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"switchyard-list-cursor-v1\0");
    m.extend_from_slice(&who.role.to_be_bytes());
    m.extend_from_slice(&who.owner.to_be_bytes());
    m.extend_from_slice(position);
    m
}

fn seal(key: &StateKey, who: &Principal, p: Position) -> String {
    let position = p.bytes();
    let tag = key.tag(&message(who, &position));
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(position),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    )
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Not one of ours for this list and this caller.
    Invalid,
    /// Ours, but the list changed since.
    Expired,
}

/// The offset a cursor resumes at, when it is ours for this list, this caller and these entries.
fn open(
    key: &StateKey,
    who: &Principal,
    kind: ListKind,
    body: &ListBody,
    cursor: &str,
) -> Result<usize, Refused> {
    let rest = cursor.strip_prefix(PREFIX).ok_or(Refused::Invalid)?;
    let (position, tag) = rest.split_once('.').ok_or(Refused::Invalid)?;
    let position = URL_SAFE_NO_PAD
        .decode(position)
        .map_err(|_| Refused::Invalid)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refused::Invalid)?;
    if !key.verify(&message(who, &position), &tag) {
        return Err(Refused::Invalid);
    }
    let p = Position::from_bytes(&position).ok_or(Refused::Invalid)?;
    if p.kind != kind as u8 {
        return Err(Refused::Invalid);
    }
    if p.digest != body.digest() || p.offset as usize > body.len() {
        return Err(Refused::Expired);
    }
    Ok(p.offset as usize)
}

/// Answer a list request from the caller's view of the catalog.
pub fn serve(
    ctx: &ShardCtx,
    ex: &Exchange<'_>,
    catalog: &Catalog,
    view: &View,
    kind: ListKind,
) -> Result<Vec<u8>, Error> {
    let (body, page_size) = match (kind, &catalog.meta_list) {
        (ListKind::Tools, Some(meta)) => (meta, 0),
        (ListKind::Tools, None) => (&view.tools_list, ctx.shared.config.gateway.page_size),
        (ListKind::Prompts, _) => (&view.prompts_list, ctx.shared.config.gateway.page_size),
        (ListKind::Resources, _) => (&view.resources_list, ctx.shared.config.gateway.page_size),
        (ListKind::Templates, _) => (&view.templates_list, ctx.shared.config.gateway.page_size),
    };
    let cursor = cursor_param(ex.frame.params_raw())?;
    let page = Page {
        key: &ctx.shared.state_key,
        who: &ex.who,
        kind,
        page_size,
    };
    let id = ex.frame.id_raw().unwrap_or(b"null");
    let mut out = Vec::with_capacity(body.bytes_hint() + id.len() + 64);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":");
    page.write(
        &mut out,
        body,
        ex.era == ClientEra::Modern,
        cursor.as_deref(),
    )?;
    out.push(b'}');
    Ok(out)
}

/// A 2026-07-28 `resources/read` answer whose server called it `public`, narrowed to `private`
/// when the gateway filters by caller (auth on): a shared cache must not hand a resource to a
/// caller whose role may not read it.
pub fn scoped_to_caller(ctx: &ShardCtx, ex: &Exchange<'_>, answer: Vec<u8>) -> Vec<u8> {
    if ex.era != ClientEra::Modern || !ctx.shared.policy.load().auth_required {
        return answer;
    }
    narrow_scope(answer)
}

/// `result.cacheScope` "public" → "private" in a response body.
fn narrow_scope(mut answer: Vec<u8>) -> Vec<u8> {
    let Ok(v) = sonic_rs::get(answer.as_slice(), ["result", "cacheScope"]) else {
        return answer;
    };
    if v.as_str() != Some("public") {
        return answer;
    }
    let raw = v.as_raw_str();
    let start = raw.as_ptr() as usize - answer.as_ptr() as usize;
    let end = start + raw.len();
    answer.splice(start..end, *b"\"private\"");
    answer
}

/// `params.cursor`: absent or null is the first page.
fn cursor_param(params: Option<&[u8]>) -> Result<Option<String>, Error> {
    let Some(v) = params.and_then(|p| sonic_rs::get(p, ["cursor"]).ok()) else {
        return Ok(None);
    };
    if v.is_null() {
        return Ok(None);
    }
    match v.as_str() {
        Some(s) => Ok(Some(s.to_owned())),
        None => Err(Error::downstream(
            ErrorKind::InvalidParams,
            "Invalid cursor: params.cursor must be a string",
        )),
    }
}

/// One list request's paging: whose, which list, how many entries a page holds.
pub struct Page<'a> {
    pub key: &'a StateKey,
    pub who: &'a Principal,
    pub kind: ListKind,
    /// 0: the rest of the list in one page.
    pub page_size: usize,
}

impl Page<'_> {
    /// The result object: the page at `cursor` (the first without one) and the next page's cursor
    /// when entries remain.
    #[cfg(test)]
    fn answer(
        &self,
        body: &ListBody,
        modern: bool,
        cursor: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.write(&mut out, body, modern, cursor)?;
        Ok(out)
    }

    /// `answer`, appended to `out`.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        body: &ListBody,
        modern: bool,
        cursor: Option<&str>,
    ) -> Result<(), Error> {
        let from = match cursor {
            None => 0,
            Some(c) => open(self.key, self.who, self.kind, body, c).map_err(|why| {
                let message = match why {
                    Refused::Invalid => {
                        "Invalid cursor: not issued by this gateway for this list and caller"
                    }
                    Refused::Expired => {
                        "Invalid cursor: the list changed since it was issued; list again without a cursor"
                    }
                };
                Error::downstream(ErrorKind::InvalidParams, message)
            })?,
        };
        let to = match self.page_size {
            0 => body.len(),
            n => from.saturating_add(n).min(body.len()),
        };
        let next = (to < body.len()).then(|| {
            seal(
                self.key,
                self.who,
                Position {
                    kind: self.kind as u8,
                    offset: to as u32,
                    digest: body.digest(),
                },
            )
        });
        body.write_page(out, modern, from, to, next.as_deref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Hint;
    use serde_json::{json, Value};

    fn body(n: usize) -> ListBody {
        let entries: Vec<Value> = (0..n).map(|i| json!({ "name": format!("t{i}") })).collect();
        ListBody::new("tools", &entries, Hint::NONE)
    }

    fn who(role: u16, owner: u64) -> Principal {
        Principal {
            key: None,
            role,
            owner,
        }
    }

    fn names(result: &[u8]) -> (Vec<String>, Option<String>) {
        let v: Value = serde_json::from_slice(result).unwrap();
        let names = v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        (names, v["nextCursor"].as_str().map(str::to_owned))
    }

    #[test]
    fn pages_walk_the_whole_list_once() {
        let key = StateKey::new(None).unwrap();
        let me = who(1, 42);
        let b = body(7);
        let page = Page {
            key: &key,
            who: &me,
            kind: ListKind::Tools,
            page_size: 3,
        };
        let mut all = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let (n, next) = names(&page.answer(&b, pages % 2 == 0, cursor.as_deref()).unwrap());
            all.extend(n);
            pages += 1;
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(all, (0..7).map(|i| format!("t{i}")).collect::<Vec<_>>());
        // page_size 0: everything at once, no cursor.
        let whole = Page {
            page_size: 0,
            ..page
        };
        let (n, next) = names(&whole.answer(&b, false, None).unwrap());
        assert_eq!((n.len(), next), (7, None));
    }

    #[test]
    fn foreign_tampered_and_stale_cursors_are_refused() {
        let key = StateKey::new(None).unwrap();
        let me = who(1, 42);
        let b = body(5);
        let c = seal(
            &key,
            &me,
            Position {
                kind: ListKind::Tools as u8,
                offset: 2,
                digest: b.digest(),
            },
        );
        assert_eq!(open(&key, &me, ListKind::Tools, &b, &c), Ok(2));
        // Another role, another caller, another list, another key.
        for (w, k) in [
            (who(2, 42), ListKind::Tools),
            (who(1, 43), ListKind::Tools),
            (who(1, 42), ListKind::Prompts),
        ] {
            assert_eq!(open(&key, &w, k, &b, &c), Err(Refused::Invalid));
        }
        let other = StateKey::new(None).unwrap();
        assert_eq!(
            open(&other, &me, ListKind::Tools, &b, &c),
            Err(Refused::Invalid)
        );
        // Every single-character edit fails.
        for i in 0..c.len() {
            let mut edited = c.clone().into_bytes();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).unwrap();
            assert!(
                open(&key, &me, ListKind::Tools, &b, &edited).is_err(),
                "{edited}"
            );
        }
        for junk in ["", "c1.", "c1..", "c1.!!.??", "abc", "c1.AAAA.AAAA"] {
            assert_eq!(
                open(&key, &me, ListKind::Tools, &b, junk),
                Err(Refused::Invalid)
            );
        }
        // The list changed: expired, not invalid.
        assert_eq!(
            open(&key, &me, ListKind::Tools, &body(6), &c),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn public_reads_narrow_to_private() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a","text":"\"cacheScope\":\"public\""}],"ttlMs":5,"cacheScope": "public"}}"#;
        let v: Value = serde_json::from_slice(&narrow_scope(body.to_vec())).unwrap();
        assert_eq!(v["result"]["cacheScope"], "private");
        assert_eq!(v["result"]["ttlMs"], 5);
        assert_eq!(
            v["result"]["contents"][0]["text"],
            "\"cacheScope\":\"public\""
        );
        for other in [
            &br#"{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"private"}}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"result":{"contents":[]}}"#,
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#,
        ] {
            assert_eq!(narrow_scope(other.to_vec()), other);
        }
    }

    #[test]
    fn cursor_param_shapes() {
        assert_eq!(cursor_param(None).unwrap(), None);
        assert_eq!(cursor_param(Some(b"{}")).unwrap(), None);
        assert_eq!(cursor_param(Some(br#"{"cursor":null}"#)).unwrap(), None);
        assert_eq!(
            cursor_param(Some(br#"{"cursor":"c1.x"}"#))
                .unwrap()
                .as_deref(),
            Some("c1.x")
        );
        assert!(cursor_param(Some(br#"{"cursor":7}"#)).is_err());
    }
}
