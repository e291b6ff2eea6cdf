//! Tests of the router as the gateway uses it: build, search with each strategy and a visibility
//! filter, publish through the handle, rebuild on the builder thread.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn docs() -> Vec<ToolDoc> {
    let tools = [
        (
            "github",
            json!({"name": "create_issue", "description": "Create a new issue in a GitHub repository",
            "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}, "body": {"type": "string"}}}}),
        ),
        (
            "github",
            json!({"name": "list_commits", "description": "Get list of commits of a branch in a GitHub repository"}),
        ),
        (
            "slack",
            json!({"name": "slack_post_message", "description": "Post a new message to a Slack channel",
            "inputSchema": {"type": "object", "properties": {"channel_id": {"type": "string", "description": "The ID of the channel to post to"}}}}),
        ),
        (
            "filesystem",
            json!({"name": "read_text_file", "description": "Read the complete contents of a file from the file system as text"}),
        ),
        (
            "filesystem",
            json!({"name": "move_file", "description": "Move or rename files and directories"}),
        ),
        (
            "time",
            json!({"name": "convert_time", "description": "Convert time between timezones",
            "inputSchema": {"type": "object", "properties": {"target_timezone": {"type": "string", "description": "IANA timezone name"}}}}),
        ),
    ];
    tools
        .iter()
        .map(|(server, t)| {
            let name = format!("{server}__{}", t["name"].as_str().unwrap_or(""));
            ToolDoc::from_tool(server, &name, t)
        })
        .collect()
}

fn top(index: &RouterIndex, q: &str, strategy: Strategy) -> Option<String> {
    let opts = SearchOptions {
        strategy,
        top_k: 3,
        min_score: 0.0,
    };
    let hits = index.search_with(q, &opts, |_| true);
    hits.first()
        .and_then(|h| index.name(h.tool))
        .map(str::to_owned)
}

#[test]
fn each_strategy_finds_the_obvious_tool() {
    let index = RouterIndex::build(1, &docs(), IndexConfig::default());
    for s in Strategy::ALL {
        assert_eq!(
            top(&index, "send a message to the team channel on slack", s).as_deref(),
            Some("slack__slack_post_message"),
            "{s}"
        );
        assert_eq!(
            top(&index, "rename this file", s).as_deref(),
            Some("filesystem__move_file"),
            "{s}"
        );
        assert_eq!(
            top(&index, "what time is it in Tokyo timezone", s).as_deref(),
            Some("time__convert_time"),
            "{s}"
        );
    }
    // Character n-grams match a word the keyword index has never seen whole.
    assert_eq!(
        top(&index, "commit history", Strategy::Semantic).as_deref(),
        Some("github__list_commits")
    );
}

#[test]
fn scores_are_ordered_and_bounded() {
    let index = RouterIndex::build(1, &docs(), IndexConfig::default());
    for s in [Strategy::Semantic, Strategy::Hybrid] {
        let opts = SearchOptions {
            strategy: s,
            top_k: 10,
            min_score: 0.0,
        };
        let hits = index.search_with("create an issue about the file", &opts, |_| true);
        assert!(!hits.is_empty());
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(
            hits.iter().all(|h| h.score > 0.0 && h.score <= 1.0 + 1e-5),
            "{hits:?}"
        );
    }
}

#[test]
fn visibility_filter_and_threshold() {
    let index = RouterIndex::build(1, &docs(), IndexConfig::default());
    let hidden = 2; // slack__slack_post_message
    let hits = index.search("post a slack message", 5, |t| t != hidden);
    assert!(hits.iter().all(|h| h.tool != hidden));
    let opts = SearchOptions {
        strategy: Strategy::Semantic,
        top_k: 5,
        min_score: 0.99,
    };
    assert!(index
        .search_with("post a slack message", &opts, |_| true)
        .is_empty());
}

#[test]
fn odd_queries_and_empty_index() {
    let index = RouterIndex::build(1, &docs(), IndexConfig::default());
    for q in ["", "   ", "the of and", "😀😀", &"x".repeat(100_000)] {
        for s in Strategy::ALL {
            let opts = SearchOptions {
                strategy: s,
                top_k: 5,
                min_score: 0.0,
            };
            let _ = index.search_with(q, &opts, |_| true);
        }
    }
    let empty = RouterIndex::build(0, &[], IndexConfig::default());
    assert!(empty.search("anything", 5, |_| true).is_empty());
    assert!(empty.is_empty());
}

#[test]
fn rrf_fusion_works_too() {
    let config = IndexConfig {
        fusion: Fusion::Rrf { k: 60.0, depth: 20 },
        ..IndexConfig::default()
    };
    let index = RouterIndex::build(1, &docs(), config);
    assert_eq!(
        top(&index, "rename this file", Strategy::Hybrid).as_deref(),
        Some("filesystem__move_file")
    );
}

#[test]
fn strategy_names() {
    for s in Strategy::ALL {
        assert_eq!(s.as_str().parse::<Strategy>(), Ok(s));
    }
    assert!("neural".parse::<Strategy>().is_err());
}

#[test]
fn handle_keeps_the_newest_generation() {
    let handle = RouterHandle::empty(IndexConfig::default());
    assert!(handle.publish(RouterIndex::build(3, &docs(), IndexConfig::default())));
    assert!(!handle.publish(RouterIndex::build(2, &[], IndexConfig::default())));
    assert_eq!(handle.load().generation(), 3);
    assert_eq!(handle.load().len(), docs().len());
}

#[test]
fn builder_swaps_in_whole_indexes_while_readers_read() {
    let handle = RouterHandle::empty(IndexConfig::default());
    let builder = match IndexBuilder::spawn(handle.clone()) {
        Ok(b) => b,
        Err(e) => panic!("spawn: {e}"),
    };
    // A reader that checks every index it sees is whole (generation g has g copies of the
    // docs) until it sees the last one.
    let reader = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            let per = docs().len();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut reads = 0u64;
            loop {
                let index = handle.load();
                assert_eq!(index.len(), per * index.generation() as usize);
                let hits = index.search("post a slack message", 3, |_| true);
                assert!(index.is_empty() || !hits.is_empty());
                reads += 1;
                if index.generation() == 20 || Instant::now() > deadline {
                    return (index.generation(), reads);
                }
            }
        })
    };
    for g in 1..=20u64 {
        let many: Vec<ToolDoc> = (0..g).flat_map(|_| docs()).collect();
        assert!(builder.rebuild(g, many).is_ok());
    }
    assert!(handle.wait_for(20, Duration::from_secs(10)));
    let (last, reads) = reader.join().unwrap_or((0, 0));
    assert_eq!(last, 20);
    assert!(reads >= 1);
    builder.shutdown();
}

#[test]
fn rebuild_with_changes_the_config() {
    let handle = RouterHandle::empty(IndexConfig::default());
    let builder = match IndexBuilder::spawn(handle.clone()) {
        Ok(b) => b,
        Err(e) => panic!("spawn: {e}"),
    };
    let config = IndexConfig {
        strategy: Strategy::Keyword,
        ..IndexConfig::default()
    };
    assert!(builder.rebuild_with(1, docs(), config).is_ok());
    assert!(handle.wait_for(1, Duration::from_secs(10)));
    assert_eq!(handle.load().config().strategy, Strategy::Keyword);
    drop(builder);
}
