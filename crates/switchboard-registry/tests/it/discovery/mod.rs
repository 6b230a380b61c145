//! Tool discovery: tokenizer, ranking, incremental updates, filters, fusion
//! and embedders.

mod embedder;
mod fusion;
#[cfg(feature = "http-embedder")]
mod http;
mod incremental;
mod ranking;
mod tokenizer;

use std::{
    hash::{DefaultHasher, Hasher},
    sync::Arc,
};

use serde_json::json;
use switchboard_registry::discovery::{
    Discovery, Embedder, LexicalConfig, SemanticConfig, ToolDoc,
};

/// A tool with a description and string parameters `(name, description)`.
fn tool(server: &str, name: &str, description: &str, params: &[(&str, &str)]) -> ToolDoc {
    let mut doc = ToolDoc::new(server, name);
    doc.description = Some(description.to_owned());
    let properties: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(p, d)| ((*p).to_owned(), json!({"type": "string", "description": d})))
        .collect();
    doc.input_schema = json!({"type": "object", "properties": properties});
    doc
}

/// A small catalog of tools from five servers, like a real deployment.
fn catalog() -> Vec<ToolDoc> {
    vec![
        tool(
            "filesystem",
            "read_text_file",
            "Read the complete contents of a file from the file system as text.",
            &[("path", "Path of the file to read")],
        ),
        tool(
            "filesystem",
            "write_file",
            "Create a new file or overwrite an existing file with new content.",
            &[("path", "Where to write"), ("content", "Text to write")],
        ),
        tool(
            "filesystem",
            "list_directory",
            "List the files and directories in a directory.",
            &[("path", "The directory")],
        ),
        tool(
            "github",
            "createIssue",
            "Create a new issue in a GitHub repository.",
            &[
                ("owner", "Repository owner"),
                ("repo", "Repository name"),
                ("title", "Issue title"),
            ],
        ),
        tool(
            "github",
            "search_repositories",
            "Search for GitHub repositories by keyword.",
            &[("query", "Search query")],
        ),
        tool(
            "weather",
            "get_forecast",
            "Weather forecast for the next days at a location.",
            &[("city", "City name"), ("days", "Number of days")],
        ),
        tool(
            "time",
            "get_current_time",
            "Current time in a given IANA timezone.",
            &[("timezone", "IANA timezone name, e.g. Europe/Paris")],
        ),
        tool(
            "slack",
            "chat.postMessage",
            "Post a message to a Slack channel.",
            &[("channel", "Channel id or name"), ("text", "Message text")],
        ),
    ]
}

/// A deterministic embedding: a hashed bag of words in 32 dimensions.
fn bag_of_words(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0; 32];
    for word in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut hasher = DefaultHasher::new();
        hasher.write(word.as_bytes());
        vector[(hasher.finish() % 32) as usize] += 1.0;
    }
    vector
}

/// A hybrid index of the [`catalog`] that embeds in batches of four.
fn hybrid(embedder: Arc<dyn Embedder>) -> Discovery {
    let semantic = SemanticConfig {
        batch_size: 4,
        ..SemanticConfig::default()
    };
    let mut discovery = Discovery::with_embedder(LexicalConfig::default(), semantic, embedder);
    for doc in catalog() {
        discovery.upsert(&doc);
    }
    discovery
}
