//! The merged catalog: every server's tools, prompts and resources under one namespace.
//!
//! Each server's lists are kept as the server last reported them (after the configuration's
//! tool filters). Tools are addressed as `server.tool`; a bare tool name works when exactly one
//! server offers it. A tool index maps names to servers so that resolving a name on the call
//! path is a hash lookup.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde::Serialize;
use switchboard_core::ServerName;

use crate::{Error, config::NamingPolicy, switchboard::GroupSlot};

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
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// One server (index into the switchboard's servers).
    Server(usize),
    /// A replica group, declared or detected.
    Group(Arc<GroupSlot>),
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Server(a), Self::Server(b)) => a == b,
            (Self::Group(a), Self::Group(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
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
    pub(crate) slot: &'a Arc<GroupSlot>,
    /// The exposed tool names the group offers; `None` for every tool of every member (a
    /// declared group).
    pub(crate) tools: Option<&'a BTreeSet<String>>,
}

/// Replica sets found in the catalogs: every exposed tool name that at least two servers
/// (among those `eligible`) offer with the same input schema. Servers offering the name with a
/// different schema are not replicas of each other; each set of two or more servers agreeing
/// on a schema is one replica set. Returns member set (server indices, ascending) → the tool
/// names its members share.
pub(crate) fn detect_replicas(
    servers: &[ServerTools<'_>],
    eligible: impl Fn(usize) -> bool,
) -> BTreeMap<Vec<usize>, BTreeSet<String>> {
    // Exposed name → [(server, schema)], in server order.
    let mut offers: BTreeMap<String, Vec<(usize, &rmcp::model::JsonObject)>> = BTreeMap::new();
    for (i, server) in servers.iter().enumerate() {
        if !eligible(i) {
            continue;
        }
        for tool in server.tools {
            offers
                .entry(server.exposed(tool))
                .or_default()
                .push((i, tool.input_schema.as_ref()));
        }
    }
    let mut sets: BTreeMap<Vec<usize>, BTreeSet<String>> = BTreeMap::new();
    for (name, mut offered) in offers {
        while let Some(&(_, schema)) = offered.first() {
            let (same, rest): (Vec<_>, Vec<_>) =
                offered.into_iter().partition(|(_, s)| *s == schema);
            offered = rest;
            if same.len() >= 2 {
                let members: Vec<usize> = same.iter().map(|(i, _)| *i).collect();
                sets.entry(members).or_default().insert(name.clone());
            }
        }
    }
    sets
}

impl ServerTools<'_> {
    /// The name the catalog exposes `tool` under (its rename, if any).
    fn exposed(&self, tool: &Tool) -> String {
        self.renames
            .get(tool.name.as_ref())
            .cloned()
            .unwrap_or_else(|| tool.name.to_string())
    }
}

impl ToolIndex {
    /// Builds the index from each server's tools (in server order) and the replica groups,
    /// whose tools are the union of their members' tools.
    pub(crate) fn build(
        servers: &[ServerTools<'_>],
        groups: &[GroupTools<'_>],
        naming: NamingPolicy,
    ) -> Self {
        let mut by_name: HashMap<String, Vec<Arc<ToolEntry>>> = HashMap::new();
        for (i, server) in servers.iter().enumerate() {
            for tool in server.tools {
                let name = server.exposed(tool);
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
        for group in groups {
            let slot = group.slot;
            let mut seen = std::collections::HashSet::new();
            for &m in &slot.members {
                let Some(server) = servers.get(m) else {
                    continue;
                };
                for tool in server.tools {
                    let name = server.exposed(tool);
                    if group.tools.is_some_and(|only| !only.contains(&name)) {
                        continue;
                    }
                    if seen.insert(name.clone()) {
                        by_name
                            .entry(name.clone())
                            .or_default()
                            .push(Arc::new(ToolEntry {
                                name: format!("{}.{name}", slot.name),
                                server: slot.name.clone(),
                                tool: Arc::clone(tool),
                                route: Route::Group(Arc::clone(slot)),
                            }));
                    }
                }
            }
        }
        let priority = servers
            .iter()
            .map(|s| (s.name.clone(), s.priority))
            .collect();
        Self {
            by_name,
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
        let Route::Group(slot) = &group.route else {
            return None;
        };
        entries
            .iter()
            .all(|e| match e.route {
                Route::Server(i) => slot.members.contains(&i),
                Route::Group(_) => true,
            })
            .then_some(group)
    }

    /// Resolves `server.tool` or a bare unique `tool`.
    pub(crate) fn resolve(&self, name: &str) -> Result<&Arc<ToolEntry>, Error> {
        if let Some((server, tool)) = name.split_once('.')
            && let Some(entries) = self.by_name.get(tool)
        {
            let mut matching = entries.iter().filter(|e| e.server.as_str() == server);
            if let Some(entry) = matching.next() {
                if matching.next().is_none() {
                    return Ok(entry);
                }
                // Detected replica groups share one name; two of them offer this tool with
                // different input schemas.
                return Err(Error::AmbiguousTool {
                    name: tool.to_owned(),
                    servers: entries
                        .iter()
                        .filter(|e| !e.is_group())
                        .map(|e| e.server.to_string())
                        .collect(),
                });
            }
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
        let pool = group("pool", vec![0, 1]);
        let groups = [GroupTools {
            slot: &pool,
            tools: None,
        }];
        let idx = build(
            &servers,
            &Default::default(),
            &groups,
            NamingPolicy::OnCollision,
        );
        let entry = idx.resolve("search").expect("group");
        assert_eq!(entry.name, "pool.search");
        assert_eq!(entry.route, Route::Group(Arc::clone(&pool)));
        assert_eq!(
            idx.resolve("pool.extra").map(|e| e.route.clone()).ok(),
            Some(Route::Group(Arc::clone(&pool)))
        );
        assert_eq!(
            idx.resolve("r1.search").map(|e| e.route.clone()).ok(),
            Some(Route::Server(0))
        );
    }

    fn group(name: &str, members: Vec<usize>) -> Arc<GroupSlot> {
        let replicas = members
            .iter()
            .map(|m| switchboard_registry::routing::ReplicaInfo::new(format!("s{m}")))
            .collect();
        Arc::new(GroupSlot {
            name: ServerName::new(name),
            members,
            router: switchboard_registry::routing::Router::new(
                switchboard_registry::routing::Strategy::P2c,
                replicas,
                0.5,
            ),
        })
    }

    fn tool_with_schema(name: &str, schema: serde_json::Value) -> Arc<Tool> {
        let serde_json::Value::Object(schema) = schema else {
            panic!("a schema is an object");
        };
        Arc::new(Tool::new(name.to_owned(), "d", Arc::new(schema)))
    }

    #[test]
    fn replicas_are_detected_by_name_and_input_schema() {
        let query = serde_json::json!({"type": "object", "properties": {"q": {"type": "string"}}});
        let other =
            serde_json::json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        let s0 = [tool_with_schema("search", query.clone()), tool("only0")];
        let s1 = [tool_with_schema("search", query.clone()), tool("shared")];
        let s2 = [tool_with_schema("search", other.clone()), tool("shared")];
        let s3 = [tool_with_schema("search", other), tool("shared")];
        let s4 = [tool_with_schema("search", query)];
        let names: Vec<ServerName> = (0..5).map(|i| ServerName::new(format!("s{i}"))).collect();
        let tools: [&[Arc<Tool>]; 5] = [&s0, &s1, &s2, &s3, &s4];
        let renames = std::collections::BTreeMap::new();
        let views: Vec<ServerTools<'_>> = names
            .iter()
            .zip(tools)
            .map(|(name, tools)| ServerTools {
                name,
                tools,
                renames: &renames,
                priority: 0,
            })
            .collect();
        let sets = detect_replicas(&views, |_| true);
        let expected: BTreeMap<Vec<usize>, BTreeSet<String>> = [
            (vec![0, 1, 4], ["search".to_owned()].into()),
            (vec![1, 2, 3], ["shared".to_owned()].into()),
            (vec![2, 3], ["search".to_owned()].into()),
        ]
        .into();
        assert_eq!(sets, expected);
        // Servers left out (members of a declared group) take no part.
        let sets = detect_replicas(&views, |i| i != 4 && i != 3);
        let expected: BTreeMap<Vec<usize>, BTreeSet<String>> = [
            (vec![0, 1], ["search".to_owned()].into()),
            (vec![1, 2], ["shared".to_owned()].into()),
        ]
        .into();
        assert_eq!(sets, expected);

        // Two detected groups share the bare name `search` (different schemas): it stays
        // ambiguous, while `shared` has one group and resolves to it.
        let a = group("replicas", vec![0, 1, 4]);
        let b = group("replicas", vec![2, 3]);
        let c = group("replicas", vec![1, 2, 3]);
        let search: BTreeSet<String> = ["search".to_owned()].into();
        let shared: BTreeSet<String> = ["shared".to_owned()].into();
        let groups = [
            GroupTools {
                slot: &a,
                tools: Some(&search),
            },
            GroupTools {
                slot: &b,
                tools: Some(&search),
            },
            GroupTools {
                slot: &c,
                tools: Some(&shared),
            },
        ];
        let idx = ToolIndex::build(&views, &groups, NamingPolicy::OnCollision);
        assert!(idx.resolve("search").is_err(), "two schemas, two groups");
        let err = idx.resolve("replicas.search").expect_err("two schemas");
        assert_eq!(
            err.to_string(),
            "tool name \"search\" is ambiguous: offered by s0, s1, s2, s3, s4; qualify it as \
             SERVER.search"
        );
        let entry = idx.resolve("shared").expect("one group");
        assert_eq!(entry.name, "replicas.shared");
        assert_eq!(entry.route, Route::Group(Arc::clone(&c)));
        assert_eq!(
            idx.resolve("replicas.shared").map(|e| e.route.clone()).ok(),
            Some(Route::Group(Arc::clone(&c)))
        );
        assert!(
            idx.resolve("replicas.only0").is_err(),
            "only the shared tools"
        );
        let _ = (&a, &b);
        assert_eq!(
            idx.resolve("s3.search").map(|e| e.route.clone()).ok(),
            Some(Route::Server(3)),
            "a qualified name still pins a server"
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
