//! Incremental updates score exactly like a fresh build.

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchboard_registry::discovery::{LexicalConfig, LexicalIndex, Query, ToolDoc};

const WORDS: &[&str] = &[
    "read",
    "write",
    "file",
    "directory",
    "issue",
    "repository",
    "weather",
    "forecast",
    "time",
    "zone",
    "message",
    "channel",
    "search",
    "create",
    "delete",
    "user",
    "token",
    "image",
];
const SERVERS: &[&str] = &["alpha", "beta", "gamma"];
const QUERIES: &[&str] = &[
    "read a file",
    "create an issue in the repository",
    "weather forecast time zone",
    "delete user token",
    "search image message channel directory write",
];

#[derive(Clone, Debug)]
enum Op {
    Upsert {
        tool: usize,
        server: usize,
        name: Vec<usize>,
        description: Vec<usize>,
    },
    Remove {
        tool: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let words = || prop::collection::vec(0..WORDS.len(), 0..6);
    prop_oneof![
        3 => (0..10usize, 0..SERVERS.len(), words(), words()).prop_map(
            |(tool, server, name, description)| Op::Upsert { tool, server, name, description }
        ),
        1 => (0..10usize).prop_map(|tool| Op::Remove { tool }),
    ]
}

fn doc(tool: usize, server: usize, name: &[usize], description: &[usize]) -> ToolDoc {
    let text =
        |ids: &[usize], sep: &str| ids.iter().map(|&i| WORDS[i]).collect::<Vec<_>>().join(sep);
    let mut doc = ToolDoc::new(SERVERS[server], &format!("{}_{tool}", text(name, "_")));
    doc.key = format!("tool{tool}");
    doc.description = Some(text(description, " "));
    doc.input_schema = serde_json::json!({
        "properties": {text(&name[..name.len().min(1)], ""): {"description": text(description, " ")}}
    });
    doc
}

/// Every query's ranking, as (key, score) pairs.
fn rankings(index: &LexicalIndex) -> Vec<Vec<(String, f32)>> {
    QUERIES
        .iter()
        .map(|task| {
            index
                .search(&Query::new(task, 20))
                .into_iter()
                .map(|hit| (hit.key, hit.score))
                .collect()
        })
        .collect()
}

proptest! {
    #[test]
    fn incremental_updates_equal_a_fresh_build(ops in prop::collection::vec(op(), 1..40)) {
        let mut incremental = LexicalIndex::new(LexicalConfig::default());
        let mut live: BTreeMap<usize, ToolDoc> = BTreeMap::new();
        for op in &ops {
            match op {
                Op::Upsert { tool, server, name, description } => {
                    let doc = doc(*tool, *server, name, description);
                    prop_assert_eq!(incremental.upsert(&doc), live.contains_key(tool));
                    live.insert(*tool, doc);
                }
                Op::Remove { tool } => {
                    prop_assert_eq!(incremental.remove(&format!("tool{tool}")), live.remove(tool).is_some());
                }
            }
        }

        let mut fresh = LexicalIndex::new(LexicalConfig::default());
        for doc in live.values().rev() {
            fresh.upsert(doc);
        }
        prop_assert_eq!(incremental.len(), live.len());
        prop_assert_eq!(rankings(&incremental), rankings(&fresh));
    }
}
