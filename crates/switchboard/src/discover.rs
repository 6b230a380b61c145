//! Tool discovery over the merged catalog: which tools fit a task.
//!
//! Every tool of the catalog (after filters; replica groups once, under the group's name) is
//! kept in a lexical BM25F index (`switchboard_registry::discovery`), updated incrementally when
//! the catalog changes: only tools whose description changed are re-indexed.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError},
};

use rmcp::model::Tool;
use serde::Serialize;
use switchboard_registry::discovery::{
    Field, LexicalConfig, LexicalIndex, Query, ServerFilter, ToolDoc,
};

use crate::{Switchboard, catalog::ToolEntry};

/// The discovery index and what it was built from.
#[derive(Debug)]
pub(crate) struct DiscoveryIndex {
    index: LexicalIndex,
    /// Key → the tool description it holds (pointer identity says "unchanged").
    indexed: HashMap<String, Arc<Tool>>,
}

impl Default for DiscoveryIndex {
    fn default() -> Self {
        Self {
            index: LexicalIndex::new(LexicalConfig::default()),
            indexed: HashMap::new(),
        }
    }
}

impl DiscoveryIndex {
    /// Brings the index in step with the catalog's entries.
    pub(crate) fn sync(&mut self, entries: &[ToolEntry]) {
        let live: HashMap<&str, &ToolEntry> =
            entries.iter().map(|e| (e.name.as_str(), e)).collect();
        let gone: Vec<String> = self
            .indexed
            .keys()
            .filter(|k| !live.contains_key(k.as_str()))
            .cloned()
            .collect();
        for key in gone {
            self.index.remove(&key);
            self.indexed.remove(&key);
        }
        for (key, entry) in live {
            let unchanged = self
                .indexed
                .get(key)
                .is_some_and(|t| Arc::ptr_eq(t, &entry.tool));
            if unchanged {
                continue;
            }
            self.index.upsert(&ToolDoc {
                key: key.to_owned(),
                server: entry.server.to_string(),
                name: entry.tool.name.to_string(),
                title: entry.tool.title.clone(),
                description: entry.tool.description.as_deref().map(str::to_owned),
                input_schema: serde_json::Value::Object((*entry.tool.input_schema).clone()),
            });
            self.indexed.insert(key.to_owned(), Arc::clone(&entry.tool));
        }
    }
}

/// A tool that fits a task.
#[derive(Debug, Clone, Serialize)]
pub struct Discovered {
    /// The tool's qualified name, to call it with.
    pub name: String,
    /// The server (or replica group) offering it.
    pub server: String,
    /// Relevance (BM25F); comparable within one answer only.
    pub score: f32,
    /// Why: the task's words found in each field of the tool (`name: search, issues`).
    pub reason: Vec<String>,
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Only tools of these servers (none: all).
    pub servers: Vec<String>,
    /// Never tools of these servers.
    pub exclude_servers: Vec<String>,
    /// Drop hits scoring below this share of the best hit (0–1; 0 keeps all).
    pub min_relative: f32,
}

impl Switchboard {
    /// The `k` tools that fit `task` best, best first, with the reason for each.
    pub fn discover(&self, task: &str, k: usize, options: &DiscoverOptions) -> Vec<Discovered> {
        let mut query = Query::new(task, k);
        query.servers = ServerFilter {
            include: options.servers.clone(),
            exclude: options.exclude_servers.clone(),
        };
        query.threshold.min_relative = (options.min_relative > 0.0).then_some(options.min_relative);
        let discovery = self
            .inner
            .discovery
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        discovery
            .index
            .search(&query)
            .into_iter()
            .map(|hit| Discovered {
                name: hit.key,
                server: hit.server,
                score: hit.score,
                reason: hit
                    .reason
                    .matches
                    .iter()
                    .map(|m| format!("{}: {}", field_name(m.field), m.terms.join(", ")))
                    .collect(),
            })
            .collect()
    }
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::Name => "name",
        Field::Title => "title",
        Field::Description => "description",
        Field::ParamNames => "parameters",
        Field::ParamDescriptions => "parameter descriptions",
    }
}
