//! The merged catalog: every server's tools, prompts and resources under one namespace.
//!
//! Each server's lists are kept as the server last reported them (after the configuration's
//! tool filters). Tools are addressed as `server.tool`; a bare tool name works when exactly one
//! server offers it. A tool index maps names to servers so that resolving a name on the call
//! path is a hash lookup.

use std::{collections::HashMap, sync::Arc};

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde::Serialize;
use switchboard_core::ServerName;

use crate::Error;

/// One server's lists, as last fetched.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerCatalog {
    pub(crate) tools: Vec<Arc<Tool>>,
    pub(crate) prompts: Vec<Prompt>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) templates: Vec<ResourceTemplate>,
    /// Why the last refresh failed, if it did.
    pub(crate) error: Option<String>,
}

/// A tool as the merged catalog shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolEntry {
    /// The qualified name, `server.tool`.
    pub name: String,
    /// The server offering it.
    pub server: ServerName,
    /// The tool as the server describes it (name, description, schemas, annotations).
    pub tool: Arc<Tool>,
}

impl ToolEntry {
    /// Whether the server declares the tool read-only (`readOnlyHint`, default false).
    pub fn is_read_only(&self) -> bool {
        self.tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false)
    }

    /// Whether the server declares the tool idempotent (`idempotentHint`, default false).
    pub fn is_idempotent(&self) -> bool {
        self.tool
            .annotations
            .as_ref()
            .and_then(|a| a.idempotent_hint)
            .unwrap_or(false)
    }
}

/// A prompt with the server offering it.
#[derive(Debug, Clone, Serialize)]
pub struct PromptEntry {
    /// The qualified name, `server.prompt`.
    pub name: String,
    /// The server.
    pub server: ServerName,
    /// The prompt as the server describes it.
    pub prompt: Prompt,
}

/// A resource with the server offering it.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceEntry {
    /// The server.
    pub server: ServerName,
    /// The resource as the server describes it.
    pub resource: Resource,
}

/// A resource template with the server offering it.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateEntry {
    /// The server.
    pub server: ServerName,
    /// The template as the server describes it.
    pub template: ResourceTemplate,
}

/// Name → tools index over every server, rebuilt when a server's tool list changes.
#[derive(Debug, Default)]
pub(crate) struct ToolIndex {
    /// Bare tool name → entries (one per server offering it), in server order.
    by_name: HashMap<String, Vec<ToolEntry>>,
}

impl ToolIndex {
    /// Builds the index from each server's tools, in server order.
    pub(crate) fn build<'a>(
        servers: impl Iterator<Item = (&'a ServerName, &'a [Arc<Tool>])>,
    ) -> Self {
        let mut by_name: HashMap<String, Vec<ToolEntry>> = HashMap::new();
        for (server, tools) in servers {
            for tool in tools {
                by_name
                    .entry(tool.name.to_string())
                    .or_default()
                    .push(ToolEntry {
                        name: format!("{server}.{}", tool.name),
                        server: server.clone(),
                        tool: Arc::clone(tool),
                    });
            }
        }
        Self { by_name }
    }

    /// Resolves `server.tool` or a bare unique `tool`.
    pub(crate) fn resolve(&self, name: &str) -> Result<&ToolEntry, Error> {
        if let Some((server, tool)) = name.split_once('.')
            && let Some(entry) = self
                .by_name
                .get(tool)
                .and_then(|entries| entries.iter().find(|e| e.server.as_str() == server))
        {
            return Ok(entry);
        }
        match self.by_name.get(name).map(Vec::as_slice) {
            Some([only]) => Ok(only),
            Some(many) if !many.is_empty() => Err(Error::AmbiguousTool {
                name: name.to_owned(),
                servers: many.iter().map(|e| e.server.to_string()).collect(),
            }),
            _ => Err(Error::UnknownTool {
                name: name.to_owned(),
                suggestion: self.suggest(name),
            }),
        }
    }

    fn suggest(&self, name: &str) -> Option<String> {
        let candidates = self.by_name.iter().flat_map(|(bare, entries)| {
            let unique = entries.len() == 1;
            entries.iter().map(move |e| {
                if unique {
                    (bare.as_str(), e.name.as_str())
                } else {
                    (e.name.as_str(), e.name.as_str())
                }
            })
        });
        candidates
            .flat_map(|(bare, qualified)| {
                [
                    (strsim::jaro_winkler(name, bare), bare),
                    (strsim::jaro_winkler(name, qualified), qualified),
                ]
            })
            .filter(|(score, _)| *score > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n.to_owned())
    }

    /// Every entry, sorted by qualified name.
    pub(crate) fn entries(&self) -> Vec<ToolEntry> {
        let mut all: Vec<ToolEntry> = self.by_name.values().flatten().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::JsonObject;

    use super::*;

    fn tool(name: &str) -> Arc<Tool> {
        Arc::new(Tool::new(name.to_owned(), "d", Arc::new(JsonObject::new())))
    }

    fn index() -> ToolIndex {
        let a = ServerName::new("a");
        let b = ServerName::new("b");
        let a_tools = vec![tool("echo"), tool("search")];
        let b_tools = vec![tool("echo"), tool("repos.list")];
        ToolIndex::build([(&a, a_tools.as_slice()), (&b, b_tools.as_slice())].into_iter())
    }

    #[test]
    fn qualified_and_unique_bare_names_resolve() {
        let idx = index();
        assert_eq!(
            idx.resolve("a.echo").map(|e| e.name.as_str()).ok(),
            Some("a.echo")
        );
        assert_eq!(
            idx.resolve("search").map(|e| e.name.as_str()).ok(),
            Some("a.search")
        );
        assert_eq!(
            idx.resolve("b.repos.list").map(|e| e.name.as_str()).ok(),
            Some("b.repos.list")
        );
        assert_eq!(
            idx.resolve("repos.list").map(|e| e.name.as_str()).ok(),
            Some("b.repos.list")
        );
    }

    #[test]
    fn shared_bare_names_are_ambiguous() {
        let err = index().resolve("echo").expect_err("ambiguous");
        assert_eq!(
            err.to_string(),
            "tool name \"echo\" is ambiguous: offered by a, b; qualify it as SERVER.echo"
        );
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let err = index().resolve("serch").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown tool \"serch\"; did you mean \"search\"?"
        );
    }
}
