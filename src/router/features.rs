//! Features of a text: hashed character n-grams and whole words for the semantic index, stemmed
//! word tokens for the keyword index; each with a field weight.

use super::lexicon::{concepts, implied_concepts};
use super::text::{is_stop, stem, words, ToolDoc};

/// How much each field of a tool counts (the same weights for both indexes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldWeights {
    /// The tool's own name, split into words.
    pub name: f32,
    /// The server's name.
    pub server: f32,
    /// The description's first sentence (with the title): the summary most authors write.
    pub lead: f32,
    /// The rest of the description.
    pub description: f32,
    /// Parameter names.
    pub param_name: f32,
    /// Parameter descriptions (and enum values).
    pub param_description: f32,
}

impl Default for FieldWeights {
    fn default() -> Self {
        FieldWeights {
            name: 3.0,
            server: 1.5,
            lead: 1.0,
            description: 1.0,
            param_name: 0.6,
            param_description: 0.3,
        }
    }
}

/// The shape of the semantic (character n-gram) features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NgramShape {
    /// Shortest and longest n-gram, in characters of `<word>` (with boundary marks).
    pub min_n: usize,
    pub max_n: usize,
    /// Weight of one n-gram relative to the whole (stemmed) word.
    pub gram_weight: f32,
    /// Weight of a thesaurus concept (`lexicon`) relative to the word; 0 turns it off.
    pub concept_weight: f32,
    /// Weight of a pair of adjacent words (stop words skipped) relative to one word.
    pub bigram_weight: f32,
    /// A query skips character n-grams found in more than this share of the tools (word
    /// features are always kept): 1 keeps all.
    pub max_df: f32,
}

impl Default for NgramShape {
    fn default() -> Self {
        NgramShape {
            min_n: 3,
            max_n: 4,
            gram_weight: 0.5,
            concept_weight: 1.0,
            bigram_weight: 0.0,
            max_df: 0.2,
        }
    }
}

const KIND_WORD: u8 = b'W';
const KIND_GRAM: u8 = b'G';
const KIND_TOKEN: u8 = b'K';
const KIND_CONCEPT: u8 = b'C';
const KIND_BIGRAM: u8 = b'B';

/// Calls `f` for each thesaurus concept of `word`.
fn word_concepts(word: &str, weight: f32, f: &mut impl FnMut(u32, f32)) {
    if weight > 0.0 {
        for g in concepts(word) {
            f(hash(KIND_CONCEPT, &g.to_le_bytes()), weight);
        }
    }
}

/// FNV-1a over a kind byte and the text, folded to 32 bits: deterministic across runs and
/// processes, so an index built anywhere hashes a query the same way.
fn hash(kind: u8, text: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&kind).chain(text) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // The low bit says whether this is a character n-gram (1) or a word-level feature (0): a
    // query may skip common n-grams, never words.
    let h = (h ^ (h >> 32)) as u32;
    if kind == KIND_GRAM {
        h | 1
    } else {
        h & !1
    }
}

/// Whether a feature is a character n-gram (see [`hash`]).
#[inline]
pub fn is_gram(feature: u32) -> bool {
    feature & 1 == 1
}

/// Calls `f(feature, weight)` for the n-gram features of one (lowercased) word.
pub fn word_ngrams(word: &str, shape: &NgramShape, weight: f32, f: &mut impl FnMut(u32, f32)) {
    if is_stop(word) {
        return;
    }
    f(hash(KIND_WORD, stem(word).as_bytes()), weight);
    word_concepts(word, weight * shape.concept_weight, f);
    // `<word>` as chars (byte n-grams would split UTF-8 sequences).
    let mut marked: Vec<char> = Vec::with_capacity(word.len() + 2);
    marked.push('<');
    marked.extend(word.chars());
    marked.push('>');
    let mut buf = [0u8; 64];
    let gw = weight * shape.gram_weight;
    for n in shape.min_n..=shape.max_n {
        if n > marked.len() || (n == marked.len() && n > shape.min_n) {
            // The whole marked word is already the word feature.
            continue;
        }
        for window in marked.windows(n) {
            let mut len = 0;
            for c in window {
                len += c.encode_utf8(&mut buf[len..]).len();
                if len + 4 > buf.len() {
                    break;
                }
            }
            f(hash(KIND_GRAM, &buf[..len]), gw);
        }
    }
}

/// Calls `f(key)` for the identity of one (lowercased, non-stop) word: its stemmed word feature
/// and, with `concepts`, its thesaurus concepts. Two words match when they share a key.
pub fn word_keys(word: &str, concepts: bool, f: &mut impl FnMut(u32)) {
    if is_stop(word) {
        return;
    }
    f(hash(KIND_WORD, stem(word).as_bytes()));
    if concepts {
        word_concepts(word, 1.0, &mut |k, _| f(k));
    }
}

/// The keys of the concepts `text` implies by its shape (a ticket key means "issue"), appended.
pub fn implied_keys(text: &str, out: &mut Vec<u32>) {
    implied_concepts(text, |g| out.push(hash(KIND_CONCEPT, &g.to_le_bytes())));
}

/// The keys (see [`word_keys`]) of every word of `text`, and its implied concepts, appended.
pub fn text_keys(text: &str, concepts: bool, out: &mut Vec<u32>) {
    if concepts {
        implied_keys(text, out);
    }
    words(text, |w| word_keys(w, concepts, &mut |k| out.push(k)));
}

/// Calls `f(feature, weight)` for the keyword token of one (lowercased) word, and its thesaurus
/// concepts at `concept_weight`.
pub fn word_token(word: &str, weight: f32, concept_weight: f32, f: &mut impl FnMut(u32, f32)) {
    if is_stop(word) {
        return;
    }
    f(hash(KIND_TOKEN, stem(word).as_bytes()), weight);
    word_concepts(word, weight * concept_weight, f);
}

/// Every field of a tool with its weight, and whether it is in the tool's head (its name, its
/// server, the first sentence of its description).
pub fn doc_fields<'a>(doc: &'a ToolDoc, w: &FieldWeights, mut f: impl FnMut(&'a str, f32, bool)) {
    f(&doc.tool, w.name, true);
    f(&doc.server, w.server, true);
    let (lead, rest) = split_lead(&doc.description);
    f(lead, w.lead, true);
    f(rest, w.description, false);
    for (name, desc) in &doc.params {
        f(name, w.param_name, false);
        f(desc, w.param_description, false);
    }
}

/// The first sentence (at most ~30 words) and the rest.
fn split_lead(text: &str) -> (&str, &str) {
    let mut words = 0;
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            prev_space = true;
            continue;
        }
        if prev_space {
            words += 1;
            prev_space = false;
            if words > 30 {
                return text.split_at(i);
            }
        }
        let end = matches!(c, '.' | '!' | '?' | '\n' | ':')
            && text[i + c.len_utf8()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace);
        if end && words >= 3 {
            return text.split_at(i + c.len_utf8());
        }
    }
    (text, "")
}

/// Sparse vector builder: sums weights per feature (features sorted and merged at the end).
#[derive(Debug, Default)]
pub struct Bag {
    items: Vec<(u32, f32)>,
}

impl Bag {
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Entries pushed so far (before merging).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The features pushed since the bag held `from` entries.
    pub fn features_since(&self, from: usize) -> impl Iterator<Item = u32> + '_ {
        self.items
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|&(k, _)| k)
    }

    pub fn push(&mut self, feature: u32, weight: f32) {
        self.items.push((feature, weight));
    }

    /// Merge duplicates: the result is sorted by feature with summed weights.
    pub fn merged(&mut self) -> &mut Vec<(u32, f32)> {
        self.items.sort_unstable_by_key(|&(k, _)| k);
        let mut out = 0;
        for i in 0..self.items.len() {
            if out > 0 && self.items[out - 1].0 == self.items[i].0 {
                self.items[out - 1].1 += self.items[i].1;
            } else {
                self.items[out] = self.items[i];
                out += 1;
            }
        }
        self.items.truncate(out);
        &mut self.items
    }
}

/// The semantic features of a text: each word's n-grams, and pairs of adjacent words.
pub fn text_ngrams(text: &str, shape: &NgramShape, weight: f32, f: &mut impl FnMut(u32, f32)) {
    if shape.concept_weight > 0.0 {
        implied_concepts(text, |g| {
            f(
                hash(KIND_CONCEPT, &g.to_le_bytes()),
                weight * shape.concept_weight,
            )
        });
    }
    let mut prev = [0u8; 48];
    let mut prev_len = 0usize;
    words(text, |w| {
        if is_stop(w) {
            return;
        }
        word_ngrams(w, shape, weight, f);
        if shape.bigram_weight > 0.0 {
            let s = stem(w).as_bytes();
            if prev_len > 0 && prev_len + 1 + s.len() <= prev.len() {
                prev[prev_len] = b' ';
                prev[prev_len + 1..prev_len + 1 + s.len()].copy_from_slice(s);
                f(
                    hash(KIND_BIGRAM, &prev[..prev_len + 1 + s.len()]),
                    weight * shape.bigram_weight,
                );
            }
            prev_len = s.len().min(prev.len() / 2);
            prev[..prev_len].copy_from_slice(&s[..prev_len]);
        }
    });
}

/// The keyword tokens of a free text (a query), into `bag`.
pub fn text_tokens(text: &str, concept_weight: f32, bag: &mut Bag) {
    text_tokens_weighted(text, 1.0, concept_weight, bag);
}

/// The keyword tokens of a text at `weight` (a field of a tool), into `bag`.
pub fn text_tokens_weighted(text: &str, weight: f32, concept_weight: f32, bag: &mut Bag) {
    if concept_weight > 0.0 {
        implied_concepts(text, |g| {
            bag.push(
                hash(KIND_CONCEPT, &g.to_le_bytes()),
                weight * concept_weight,
            )
        });
    }
    words(text, |w| {
        word_token(w, weight, concept_weight, &mut |k, v| bag.push(k, v))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngrams_of_a_word() {
        let shape = NgramShape::default();
        let shape = NgramShape {
            concept_weight: 0.0,
            ..shape
        };
        let mut n = 0;
        word_ngrams("issue", &shape, 1.0, &mut |_, _| n += 1);
        // word + "<is","iss","ssu","sue","ue>" + "<iss","issu","ssue","sue>"
        assert_eq!(n, 1 + 5 + 4);
        let mut stop = 0;
        word_ngrams("the", &shape, 1.0, &mut |_, _| stop += 1);
        assert_eq!(stop, 0);
        let mut tiny = 0;
        word_ngrams("k8", &shape, 1.0, &mut |_, _| tiny += 1);
        // word + "<k8", "k8>" + "<k8>" is the whole word: skipped
        assert_eq!(tiny, 3);
    }

    #[test]
    fn bag_merges() {
        let mut b = Bag::default();
        b.push(3, 1.0);
        b.push(1, 1.0);
        b.push(3, 0.5);
        assert_eq!(b.merged().as_slice(), &[(1, 1.0), (3, 1.5)]);
    }

    #[test]
    fn stems_share_tokens() {
        let mut a = Bag::default();
        let mut b = Bag::default();
        text_tokens("Creating issues", 1.0, &mut a);
        text_tokens("create an issue", 1.0, &mut b);
        assert_eq!(a.merged(), b.merged());
    }
}
