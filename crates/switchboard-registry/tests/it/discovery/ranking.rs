//! Ranking sanity, reasons, thresholds and server filters.

use switchboard_registry::discovery::{
    Field, FieldMatch, FieldWeights, LexicalConfig, LexicalIndex, Query, ServerFilter, Threshold,
};

use super::catalog;

fn index() -> LexicalIndex {
    let mut index = LexicalIndex::new(LexicalConfig::default());
    for doc in catalog() {
        index.upsert(&doc);
    }
    index
}

/// The keys of the hits for `query`, best first.
fn keys(index: &LexicalIndex, query: &Query<'_>) -> Vec<String> {
    index.search(query).into_iter().map(|hit| hit.key).collect()
}

#[track_caller]
fn check_first(task: &str, expected: &str) {
    let hits = keys(&index(), &Query::new(task, 3));
    assert_eq!(
        hits.first().map(String::as_str),
        Some(expected),
        "{task:?} gave {hits:?}"
    );
}

#[test]
fn the_obviously_right_tool_comes_first() {
    check_first(
        "read what is in the file notes.txt",
        "filesystem.read_text_file",
    );
    check_first("save this text to a new file", "filesystem.write_file");
    check_first(
        "which files are in my home directory?",
        "filesystem.list_directory",
    );
    check_first(
        "open an issue about the crash in our repo",
        "github.createIssue",
    );
    check_first(
        "find repositories about rust web frameworks",
        "github.search_repositories",
    );
    check_first(
        "will it rain in Lyon in the next days?",
        "weather.get_forecast",
    );
    check_first("what time is it in Tokyo timezone", "time.get_current_time");
    check_first(
        "post a message to the #general channel",
        "slack.chat.postMessage",
    );
}

#[test]
fn hits_explain_what_matched() {
    let hits = index().search(&Query::new("post a slack message to a channel", 1));
    let hit = &hits[0];
    assert_eq!(
        (hit.server.as_str(), hit.name.as_str()),
        ("slack", "chat.postMessage")
    );
    assert_eq!(
        hit.reason.matches,
        vec![
            FieldMatch {
                field: Field::Name,
                terms: vec!["post".into(), "message".into()]
            },
            FieldMatch {
                field: Field::Description,
                terms: vec![
                    "post".into(),
                    "slack".into(),
                    "message".into(),
                    "channel".into()
                ],
            },
            FieldMatch {
                field: Field::ParamNames,
                terms: vec!["channel".into()]
            },
            FieldMatch {
                field: Field::ParamDescriptions,
                terms: vec!["message".into(), "channel".into()],
            },
        ]
    );
    let lexical = hit
        .reason
        .lexical
        .expect("a lexical hit has a lexical rank");
    assert_eq!((lexical.rank, lexical.score), (1, hit.score));
    assert!(hit.reason.semantic.is_none());
}

#[test]
fn returns_at_most_k_best_first_and_nothing_for_unknown_words() {
    let index = index();
    let hits = index.search(&Query::new("file", 2));
    assert_eq!(hits.len(), 2);
    assert!(hits[0].score >= hits[1].score);
    assert!(index.search(&Query::new("zebra quantum", 5)).is_empty());
    assert!(index.search(&Query::new("", 5)).is_empty());
    assert!(index.search(&Query::new("file", 0)).is_empty());
}

#[test]
fn field_weights_apply() {
    // "path" is a parameter name of three tools and a word of none of their
    // names or descriptions; with parameter fields weighted zero nothing scores.
    let mut config = LexicalConfig::default();
    config.weights = FieldWeights {
        param_names: 0.0,
        param_descriptions: 0.0,
        ..config.weights
    };
    let mut index = LexicalIndex::new(config);
    for doc in catalog() {
        index.upsert(&doc);
    }
    assert!(index.search(&Query::new("path", 5)).is_empty());
    assert_eq!(self::index().search(&Query::new("path", 5)).len(), 3);
}

#[test]
fn threshold_drops_weak_hits() {
    let index = index();
    let all = index.search(&Query::new("read a file in a directory", 10));
    assert!(all.len() >= 3, "{all:?}");
    let best = all[0].score;

    let mut query = Query::new("read a file in a directory", 10);
    query.threshold = Threshold {
        min_score: Some(best),
        min_relative: None,
    };
    assert_eq!(keys(&index, &query), vec![all[0].key.clone()]);

    query.threshold = Threshold {
        min_score: None,
        min_relative: Some(0.5),
    };
    let kept = index.search(&query);
    assert!(!kept.is_empty() && kept.len() < all.len());
    assert!(kept.iter().all(|hit| hit.score >= 0.5 * best));
    assert!(all[kept.len()].score < 0.5 * best);

    query.threshold = Threshold {
        min_score: Some(f32::MAX),
        min_relative: None,
    };
    assert!(index.search(&query).is_empty());
}

#[test]
fn server_filters_include_and_exclude() {
    let index = index();
    let task = "create a new issue or a new file";
    let mut query = Query::new(task, 10);
    let servers = |q: &Query<'_>| {
        let mut s: Vec<String> = index.search(q).into_iter().map(|h| h.server).collect();
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(servers(&query), ["filesystem", "github"]);

    query.servers = ServerFilter {
        include: vec!["github".into()],
        exclude: vec![],
    };
    assert_eq!(servers(&query), ["github"]);

    query.servers = ServerFilter {
        include: vec![],
        exclude: vec!["github".into()],
    };
    assert_eq!(servers(&query), ["filesystem"]);

    query.servers = ServerFilter {
        include: vec!["github".into()],
        exclude: vec!["github".into()],
    };
    assert!(index.search(&query).is_empty());

    query.servers = ServerFilter {
        include: vec!["unknown".into()],
        exclude: vec![],
    };
    assert!(index.search(&query).is_empty());
}

#[test]
fn upsert_replaces_and_remove_forgets() {
    let mut index = index();
    assert_eq!(index.len(), 8);
    let mut renamed = super::tool("weather", "get_forecast", "Tide tables for a harbour.", &[]);
    assert!(index.upsert(&renamed));
    assert_eq!(index.len(), 8);
    // The name still says "forecast"; the description no longer says "weather".
    let hits = index.search(&Query::new("weather forecast", 5));
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].reason.matches,
        [FieldMatch {
            field: Field::Name,
            terms: vec!["forecast".into()]
        }]
    );
    assert_eq!(
        keys(&index, &Query::new("tide tables", 5)),
        ["weather.get_forecast"]
    );

    assert!(index.remove("weather.get_forecast"));
    assert!(!index.remove("weather.get_forecast"));
    assert!(!index.contains("weather.get_forecast"));
    assert_eq!(index.len(), 7);
    assert!(index.search(&Query::new("tide tables", 5)).is_empty());

    renamed.key = "weather.tides".into();
    assert!(!index.upsert(&renamed));
    assert_eq!(
        keys(&index, &Query::new("tide tables", 5)),
        ["weather.tides"]
    );
}
