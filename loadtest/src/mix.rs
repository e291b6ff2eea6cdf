//! The request mix: `tools/call:90,tools/list:10` parsed, and a smooth weighted round-robin over it.
//!
//! Syntax: comma-separated `METHOD[@TOOL][:WEIGHT]`. `WEIGHT` defaults to 1. `@TOOL` names the tool
//! of a `tools/call` entry; without it the run's `--tool` is called. The picker is deterministic
//! (nginx's smooth weighted round-robin): every window of `sum(weights)` requests holds each entry
//! exactly `weight` times, spread out rather than in runs, so short runs get the mix they asked for.

/// One entry of the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixEntry {
    /// The JSON-RPC method, e.g. `tools/call`.
    pub method: String,
    /// The tool, for `tools/call`.
    pub tool: Option<String>,
    /// Relative weight, at least 1.
    pub weight: u32,
}

const MAX_TOTAL_WEIGHT: u64 = 1_000_000;

/// Parses a mix; `default_tool` is the tool of `tools/call` entries that name none.
pub fn parse(spec: &str, default_tool: &str) -> Result<Vec<MixEntry>, String> {
    let mut entries = Vec::new();
    let mut total = 0u64;
    for raw in spec.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return Err(format!("mix {spec:?}: empty entry"));
        }
        let (name, weight) = match item.rsplit_once(':') {
            Some((name, w)) => {
                let weight = w
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("mix entry {item:?}: weight {w:?} is not a number"))?;
                (name.trim(), weight)
            }
            None => (item, 1),
        };
        if weight == 0 {
            return Err(format!("mix entry {item:?}: the weight must be at least 1"));
        }
        let (method, tool) = match name.split_once('@') {
            Some((m, t)) => (m, Some(t)),
            None => (name, None),
        };
        if method.is_empty() || !method.bytes().all(is_method_byte) {
            return Err(format!("mix entry {item:?}: bad method name {method:?}"));
        }
        let tool = match (method, tool) {
            ("tools/call", Some(t)) if !t.is_empty() && !t.bytes().any(is_unsafe_byte) => {
                Some(t.to_string())
            }
            ("tools/call", Some(t)) => return Err(format!("mix entry {item:?}: bad tool {t:?}")),
            ("tools/call", None) => Some(default_tool.to_string()),
            (_, Some(_)) => return Err(format!("mix entry {item:?}: only tools/call takes @TOOL")),
            (_, None) => None,
        };
        total += u64::from(weight);
        if total > MAX_TOTAL_WEIGHT {
            return Err(format!(
                "mix {spec:?}: weights add up to more than {MAX_TOTAL_WEIGHT}"
            ));
        }
        entries.push(MixEntry {
            method: method.to_string(),
            tool,
            weight,
        });
    }
    Ok(entries)
}

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.')
}

/// Bytes that cannot go into an HTTP header or a JSON string unescaped.
fn is_unsafe_byte(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b == b'"' || b == b'\\'
}

/// Smooth weighted round-robin over entry indices.
#[derive(Debug, Clone)]
pub struct Picker {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl Picker {
    /// A picker over `weights` (each at least 1; an empty list always answers 0).
    pub fn new(weights: &[u32]) -> Self {
        let weights: Vec<i64> = weights.iter().map(|&w| i64::from(w.max(1))).collect();
        let total = weights.iter().sum();
        Picker {
            current: vec![0; weights.len()],
            weights,
            total,
        }
    }

    /// The next entry's index.
    pub fn next_index(&mut self) -> usize {
        let mut best = 0;
        for i in 0..self.weights.len() {
            self.current[i] += self.weights[i];
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        if let Some(c) = self.current.get_mut(best) {
            *c -= self.total;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_methods_weights_and_tools() {
        let mix = parse("tools/call:90, tools/list:10", "echo").unwrap();
        assert_eq!(
            mix,
            vec![
                MixEntry {
                    method: "tools/call".into(),
                    tool: Some("echo".into()),
                    weight: 90
                },
                MixEntry {
                    method: "tools/list".into(),
                    tool: None,
                    weight: 10
                },
            ]
        );
        let mix = parse("tools/call@compute:3,tools/call,ping", "echo").unwrap();
        assert_eq!(mix[0].tool.as_deref(), Some("compute"));
        assert_eq!(mix[0].weight, 3);
        assert_eq!(mix[1].tool.as_deref(), Some("echo"));
        assert_eq!(mix[1].weight, 1);
        assert_eq!(mix[2].method, "ping");
        // A server-prefixed tool name keeps its separator.
        let mix = parse("tools/call@up__echo:1", "echo").unwrap();
        assert_eq!(mix[0].tool.as_deref(), Some("up__echo"));
    }

    #[test]
    fn refuses_bad_mixes() {
        for bad in [
            "",
            "tools/call:",
            "tools/call:0",
            "tools/call:-1",
            "tools/call:x",
            "tools/call:90,,ping",
            "tools list:1",
            "tools/list@echo:1",
            "tools/call@:1",
            "tools/call@a\"b:1",
            "tools/call:999999,ping:999999",
        ] {
            assert!(parse(bad, "echo").is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn picker_keeps_exact_proportions_in_every_window() {
        let mut p = Picker::new(&[90, 10]);
        for _ in 0..5 {
            let mut counts = [0; 2];
            for _ in 0..100 {
                counts[p.next_index()] += 1;
            }
            assert_eq!(counts, [90, 10]);
        }
    }

    #[test]
    fn picker_spreads_entries_out() {
        // nginx's documented sequence for weights a=5, b=1, c=1.
        let mut p = Picker::new(&[5, 1, 1]);
        let seq: Vec<usize> = (0..14).map(|_| p.next_index()).collect();
        assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
        let mut single = Picker::new(&[7]);
        assert!((0..10).all(|_| single.next_index() == 0));
        let mut empty = Picker::new(&[]);
        assert_eq!(empty.next_index(), 0);
    }
}
