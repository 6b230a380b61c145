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

use crate::{Error, config::NamingPolicy};

/// One server's lists, as last fetched.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerCatalog {
    pub(crate) tools: Vec<Arc<Tool>>,
    pub(crate) prompts: Vec<Prompt>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) templates: Vec<ResourceTemplate>,
    /// Why the last refresh failed, if it did.
    pub(crate) error: Option<String>,
    /// When the tool list goes stale, if the server gave it a `ttlMs` (list-changed
    /// notifications refresh it earlier).
    pub(crate) tools_stale_at: Option<tokio::time::Instant>,
    /// Likewise for the prompt list.
    pub(crate) prompts_stale_at: Option<tokio::time::Instant>,
    /// Likewise for the resource list.
    pub(crate) resources_stale_at: Option<tokio::time::Instant>,
}

/// A tool as the merged catalog shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolEntry {
    /// The qualified name, `server.tool` (or `group.tool` for a replica group).
    pub name: String,
    /// The server offering it, or the replica group whose members offer it.
    pub server: ServerName,
    /// The tool as the server describes it (name, description, schemas, annotations).
    pub tool: Arc<Tool>,
    /// Where calls go.
    #[serde(skip)]
    pub(crate) route: Route,
}

/// Where calls of a tool go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// One server (index into the switchboard's servers).
    Server(usize),
    /// A replica group (index into the switchboard's groups).
    Group(usize),
}

impl ToolEntry {
    /// Whether calls are routed among the replicas of a group.
    pub fn is_group(&self) -> bool {
        matches!(self.route, Route::Group(_))
    }
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
    /// Bare tool name → entries (one per server or group offering it), in server order.
    by_name: HashMap<String, Vec<Arc<ToolEntry>>>,
    /// Group name → its member servers.
    members: HashMap<ServerName, Vec<ServerName>>,
    /// How bare names resolve.
    naming: NamingPolicy,
    /// Server → its naming priority (lower wins a bare name).
    priority: HashMap<ServerName, u32>,
}

/// One server's tools as the index sees them.
pub(crate) struct ServerTools<'a> {
    pub(crate) name: &'a ServerName,
    pub(crate) tools: &'a [Arc<Tool>],
    /// Exposed names of renamed tools (server's name → exposed name).
    pub(crate) renames: &'a std::collections::BTreeMap<String, String>,
    /// Naming priority; lower wins a shared bare name under `on-collision`.
    pub(crate) priority: u32,
}

/// A replica group as the index sees it.
pub(crate) struct GroupTools<'a> {
    pub(crate) name: &'a ServerName,
    /// Member server indices.
    pub(crate) members: &'a [usize],
}

impl ToolIndex {
    /// Builds the index from each server's tools (in server order) and the replica groups,
    /// whose tools are the union of their members' tools.
    pub(crate) fn build(
        servers: &[ServerTools<'_>],
        groups: &[GroupTools<'_>],
        naming: NamingPolicy,
    ) -> Self {
        let exposed = |server: &ServerTools<'_>, tool: &Tool| -> String {
            server
                .renames
                .get(tool.name.as_ref())
                .cloned()
                .unwrap_or_else(|| tool.name.to_string())
        };
        let mut by_name: HashMap<String, Vec<Arc<ToolEntry>>> = HashMap::new();
        for (i, server) in servers.iter().enumerate() {
            for tool in server.tools {
                let name = exposed(server, tool);
                by_name
                    .entry(name.clone())
                    .or_default()
                    .push(Arc::new(ToolEntry {
                        name: format!("{}.{name}", server.name),
                        server: server.name.clone(),
                        tool: Arc::clone(tool),
                        route: Route::Server(i),
                    }));
            }
        }
        let mut members = HashMap::new();
        for (g, group) in groups.iter().enumerate() {
            let mut seen = std::collections::HashSet::new();
            for &m in group.members {
                let Some(server) = servers.get(m) else {
                    continue;
                };
                for tool in server.tools {
                    let name = exposed(server, tool);
                    if seen.insert(name.clone()) {
                        by_name
                            .entry(name.clone())
                            .or_default()
                            .push(Arc::new(ToolEntry {
                                name: format!("{}.{name}", group.name),
                                server: group.name.clone(),
                                tool: Arc::clone(tool),
                                route: Route::Group(g),
                            }));
                    }
                }
            }
            members.insert(
                group.name.clone(),
                group
                    .members
                    .iter()
                    .filter_map(|&m| servers.get(m).map(|s| s.name.clone()))
                    .collect(),
            );
        }
        let priority = servers
            .iter()
            .map(|s| (s.name.clone(), s.priority))
            .collect();
        Self {
            by_name,
            members,
            naming,
            priority,
        }
    }

    /// Of several entries sharing a bare name, the one group whose members offer all the
    /// others: a bare name of a replica group's tool means the group.
    fn group_covering<'a>(&self, entries: &'a [Arc<ToolEntry>]) -> Option<&'a Arc<ToolEntry>> {
        let mut groups = entries.iter().filter(|e| e.is_group());
        let group = groups.next()?;
        if groups.next().is_some() {
            return None;
        }
        let members = self.members.get(&group.server)?;
        entries
            .iter()
            .filter(|e| !e.is_group())
            .all(|e| members.contains(&e.server))
            .then_some(group)
    }

    /// Resolves `server.tool` or a bare unique `tool`.
    pub(crate) fn resolve(&self, name: &str) -> Result<&Arc<ToolEntry>, Error> {
        if let Some((server, tool)) = name.split_once('.')
            && let Some(entry) = self
                .by_name
                .get(tool)
                .and_then(|entries| entries.iter().find(|e| e.server.as_str() == server))
        {
            return Ok(entry);
        }
        let entries = self
            .by_name
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if self.naming == NamingPolicy::Always
            && let Some(first) = entries.first()
        {
            // Only qualified names; say which one.
            return Err(Error::UnknownTool {
                name: name.to_owned(),
                suggestion: Some(first.name.clone()),
            });
        }
        if let [only] = entries {
            return Ok(only);
        }
        if let Some(group) = self.group_covering(entries) {
            return Ok(group);
        }
        if self.naming == NamingPolicy::Never && !entries.is_empty() {
            return Err(Error::NameCollision {
                name: name.to_owned(),
                servers: entries.iter().map(|e| e.server.to_string()).collect(),
            });
        }
        if let Some(winner) = self.lowest_priority(entries) {
            return Ok(winner);
        }
        if entries.is_empty() {
            return Err(Error::UnknownTool {
                name: name.to_owned(),
                suggestion: self.suggest(name),
            });
        }
        Err(Error::AmbiguousTool {
            name: name.to_owned(),
            servers: entries.iter().map(|e| e.server.to_string()).collect(),
        })
    }

    /// The one entry whose server has the lowest naming priority, if exactly one has it.
    fn lowest_priority<'a>(&self, entries: &'a [Arc<ToolEntry>]) -> Option<&'a Arc<ToolEntry>> {
        let priority = |e: &Arc<ToolEntry>| self.priority.get(&e.server).copied().unwrap_or(0);
        let best = entries.iter().map(priority).min()?;
        let mut winners = entries.iter().filter(|e| priority(e) == best);
        let winner = winners.next()?;
        winners.next().is_none().then_some(winner)
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
        let mut all: Vec<ToolEntry> = self
            .by_name
            .values()
            .flatten()
            .map(|e| ToolEntry::clone(e))
            .collect();
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

    fn build(
        servers: &[(ServerName, Vec<Arc<Tool>>, u32)],
        renames: &std::collections::BTreeMap<String, String>,
        groups: &[GroupTools<'_>],
        naming: NamingPolicy,
    ) -> ToolIndex {
        let views: Vec<ServerTools<'_>> = servers
            .iter()
            .map(|(name, tools, priority)| ServerTools {
                name,
                tools,
                renames,
                priority: *priority,
            })
            .collect();
        ToolIndex::build(&views, groups, naming)
    }

    fn index() -> ToolIndex {
        let servers = vec![
            (ServerName::new("a"), vec![tool("echo"), tool("search")], 0),
            (
                ServerName::new("b"),
                vec![tool("echo"), tool("repos.list")],
                0,
            ),
        ];
        build(
            &servers,
            &Default::default(),
            &[],
            NamingPolicy::OnCollision,
        )
    }

    #[test]
    fn a_group_owns_the_bare_names_of_its_members() {
        let servers = vec![
            (ServerName::new("r1"), vec![tool("search")], 0),
            (
                ServerName::new("r2"),
                vec![tool("search"), tool("extra")],
                0,
            ),
            (ServerName::new("solo"), vec![tool("other")], 0),
        ];
        let name = ServerName::new("pool");
        let groups = [GroupTools {
            name: &name,
            members: &[0, 1],
        }];
        let idx = build(
            &servers,
            &Default::default(),
            &groups,
            NamingPolicy::OnCollision,
        );
        let entry = idx.resolve("search").expect("group");
        assert_eq!(entry.name, "pool.search");
        assert_eq!(entry.route, Route::Group(0));
        assert_eq!(
            idx.resolve("pool.extra").map(|e| e.route).ok(),
            Some(Route::Group(0))
        );
        assert_eq!(
            idx.resolve("r1.search").map(|e| e.route).ok(),
            Some(Route::Server(0))
        );
    }

    #[test]
    fn naming_policies() {
        let servers = vec![
            (ServerName::new("a"), vec![tool("echo"), tool("only_a")], 1),
            (ServerName::new("b"), vec![tool("echo")], 0),
        ];
        let none = Default::default();
        let idx = build(&servers, &none, &[], NamingPolicy::OnCollision);
        assert_eq!(
            idx.resolve("echo").map(|e| e.name.as_str()).ok(),
            Some("b.echo"),
            "priority"
        );
        let idx = build(&servers, &none, &[], NamingPolicy::Always);
        let err = idx.resolve("only_a").expect_err("qualified only");
        assert_eq!(
            err.to_string(),
            "unknown tool \"only_a\"; did you mean \"a.only_a\"?"
        );
        assert!(idx.resolve("a.only_a").is_ok());
        let idx = build(&servers, &none, &[], NamingPolicy::Never);
        let err = idx.resolve("echo").expect_err("collision");
        assert!(err.to_string().contains("offered by a, b"), "{err}");
        assert!(idx.resolve("only_a").is_ok());
    }

    #[test]
    fn renamed_tools_are_exposed_under_their_new_name() {
        let servers = vec![(ServerName::new("a"), vec![tool("echo")], 0)];
        let mut renames = std::collections::BTreeMap::new();
        renames.insert("echo".to_owned(), "say".to_owned());
        let idx = build(&servers, &renames, &[], NamingPolicy::OnCollision);
        let entry = idx.resolve("a.say").expect("renamed");
        assert_eq!(entry.tool.name, "echo", "calls use the server's own name");
        assert!(idx.resolve("echo").is_err());
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
