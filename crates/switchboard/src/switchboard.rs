//! The [`Switchboard`]: many servers, one client.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, PoisonError, RwLock, Weak},
    time::Duration,
};

use futures::future::join_all;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, GetPromptRequestParams, JsonObject, ReadResourceResult,
};
use serde::Serialize;
use switchboard_core::{ErrorClass, Provenance, ServerName};
use switchboard_transport::{
    Connection, ConnectionState, ConnectionStatus, ServerEventKind, ServerSpec, TransportError,
};
use tokio::{sync::broadcast::error::RecvError, task::JoinHandle, time::Instant};

use crate::{
    Error,
    catalog::{PromptEntry, ResourceEntry, ServerCatalog, TemplateEntry, ToolEntry, ToolIndex},
    config::{Config, ServerConfig, ToolSettings},
};

/// The answer of a tool call, with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutput {
    /// The tool's result as the server sent it.
    pub result: CallToolResult,
    /// Which server answered, after how long and how many attempts.
    pub provenance: Provenance,
}

impl CallOutput {
    /// Whether the tool reported a failure (`isError: true`).
    pub fn is_tool_error(&self) -> bool {
        self.result.is_error.unwrap_or(false)
    }
}

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Deadline of this call; the configured one (tool, then server, then default) when absent.
    pub timeout: Option<Duration>,
}

/// One server as [`Switchboard::servers`] reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    /// The configured name.
    pub name: ServerName,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// Whether the configuration disables it.
    pub disabled: bool,
    /// Connection state; absent for disabled servers.
    pub connection: Option<ConnectionStatus>,
    /// Number of tools it offers (after filters).
    pub tools: usize,
    /// Why the last catalog refresh failed, if it did.
    pub catalog_error: Option<String>,
}

impl ServerStatus {
    /// The state as a word: `disabled`, or the connection state.
    pub fn state(&self) -> &'static str {
        match &self.connection {
            None => "disabled",
            Some(c) => c.state.as_str(),
        }
    }
}

struct ServerSlot {
    config: ServerConfig,
    connection: Option<Connection>,
    catalog: RwLock<ServerCatalog>,
}

struct Inner {
    config: Config,
    servers: Vec<ServerSlot>,
    by_name: HashMap<ServerName, usize>,
    index: RwLock<Arc<ToolIndex>>,
    watchers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for slot in &self.servers {
            if let Some(connection) = &slot.connection {
                connection.start_shutdown();
            }
        }
        for watcher in self
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            watcher.abort();
        }
    }
}

/// One client for many MCP servers. Cheap to clone; all clones share the connections.
///
/// Build it from a configuration file ([`Switchboard::load`]), a [`Config`]
/// ([`Switchboard::connect`]) or a [`SwitchboardBuilder`]. Call [`Switchboard::shutdown`] when
/// done: it stops stdio processes in an orderly way (dropping the last clone also stops them,
/// abruptly).
#[derive(Clone)]
pub struct Switchboard {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Switchboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchboard")
            .field("servers", &self.inner.servers.len())
            .finish()
    }
}

/// Builds a [`Switchboard`] in code.
#[derive(Debug, Clone, Default)]
pub struct SwitchboardBuilder {
    config: Config,
}

impl SwitchboardBuilder {
    /// An empty builder with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a server.
    pub fn server(mut self, spec: ServerSpec) -> Self {
        self.config.servers.push(ServerConfig {
            spec,
            disabled: false,
            call_timeout: None,
            tools: ToolSettings::default(),
        });
        self
    }

    /// Adds a server with its Switchboard settings.
    pub fn server_config(mut self, server: ServerConfig) -> Self {
        self.config.servers.push(server);
        self
    }

    /// The default deadline of every call (default 60 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.config.defaults.call_timeout = timeout;
        self
    }

    /// Connects to every server concurrently; see [`Switchboard::connect`].
    ///
    /// # Errors
    /// See [`Switchboard::connect`].
    pub async fn build(self) -> Result<Switchboard, Error> {
        Switchboard::connect(self.config).await
    }
}

impl Switchboard {
    /// A builder.
    pub fn builder() -> SwitchboardBuilder {
        SwitchboardBuilder::new()
    }

    /// Reads a configuration file and connects to its servers.
    ///
    /// # Errors
    /// An unreadable or invalid configuration file.
    pub async fn load(path: &Path) -> Result<Self, Error> {
        Self::connect(Config::load(path)?).await
    }

    /// Connects to every enabled server concurrently and fetches their catalogs. Returns once
    /// every server's first connection attempt has finished: a server that fails to connect
    /// does not stop the others; it is reported by [`Switchboard::servers`] and keeps being
    /// retried in the background.
    ///
    /// # Errors
    /// Two servers with the same name.
    pub async fn connect(config: Config) -> Result<Self, Error> {
        let mut by_name = HashMap::new();
        let mut servers = Vec::with_capacity(config.servers.len());
        for (i, server) in config.servers.iter().enumerate() {
            if by_name.insert(server.spec.name.clone(), i).is_some() {
                return Err(Error::InvalidArguments {
                    tool: "configuration".to_owned(),
                    message: format!("server {} is defined twice", server.spec.name),
                });
            }
            let connection = (!server.disabled).then(|| Connection::start(server.spec.clone()));
            servers.push(ServerSlot {
                config: server.clone(),
                connection,
                catalog: RwLock::new(ServerCatalog::default()),
            });
        }
        let inner = Arc::new(Inner {
            config,
            servers,
            by_name,
            index: RwLock::new(Arc::new(ToolIndex::default())),
            watchers: std::sync::Mutex::new(Vec::new()),
        });
        for (i, slot) in inner.servers.iter().enumerate() {
            if let Some(connection) = &slot.connection {
                let watcher =
                    tokio::spawn(watch_server(Arc::downgrade(&inner), i, connection.events()));
                inner
                    .watchers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(watcher);
            }
        }
        let switchboard = Self { inner };
        let first_attempts = switchboard
            .inner
            .servers
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let switchboard = switchboard.clone();
                let wait = slot.config.spec.handshake_timeout + Duration::from_secs(1);
                async move {
                    let Some(connection) = &switchboard.inner.servers[i].connection else {
                        return;
                    };
                    let status = connection.wait_first_attempt(wait).await;
                    if status.state == ConnectionState::Ready {
                        switchboard.refresh_server(i).await;
                    }
                }
            });
        join_all(first_attempts).await;
        Ok(switchboard)
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Every configured server with its state, in configuration order.
    pub fn servers(&self) -> Vec<ServerStatus> {
        self.inner
            .servers
            .iter()
            .map(|slot| {
                let catalog = slot.catalog.read().unwrap_or_else(PoisonError::into_inner);
                ServerStatus {
                    name: slot.config.spec.name.clone(),
                    transport: slot.config.spec.transport_kind(),
                    disabled: slot.config.disabled,
                    connection: slot.connection.as_ref().map(Connection::status),
                    tools: catalog.tools.len(),
                    catalog_error: catalog.error.clone(),
                }
            })
            .collect()
    }

    /// The connection to one server, for direct rmcp access.
    ///
    /// # Errors
    /// An unknown or disabled server.
    pub fn connection(&self, server: &str) -> Result<&Connection, Error> {
        let slot = self.slot(server)?;
        slot.connection.as_ref().ok_or_else(|| Error::Disabled {
            server: slot.config.spec.name.clone(),
        })
    }

    fn slot(&self, server: &str) -> Result<&ServerSlot, Error> {
        self.inner
            .by_name
            .get(server)
            .map(|&i| &self.inner.servers[i])
            .ok_or_else(|| Error::UnknownServer {
                name: server.to_owned(),
            })
    }

    /// Every tool of every server, sorted by qualified name.
    pub fn tools(&self) -> Vec<ToolEntry> {
        self.index().entries()
    }

    /// Resolves a tool name (`server.tool`, or a bare name offered by one server only).
    ///
    /// # Errors
    /// Unknown or ambiguous names.
    pub fn tool(&self, name: &str) -> Result<ToolEntry, Error> {
        self.resolve(&self.index(), name).cloned()
    }

    /// Resolves a tool name; an unknown `server.tool` of a server that is not connected is
    /// reported as that server's unavailability, not as an unknown tool.
    fn resolve<'a>(&self, index: &'a ToolIndex, name: &str) -> Result<&'a ToolEntry, Error> {
        index.resolve(name).map_err(|error| {
            let unavailable = name
                .split_once('.')
                .and_then(|(server, _)| self.connection(server).ok())
                .and_then(|connection| connection.ensure_ready().err());
            match (&error, unavailable) {
                (Error::UnknownTool { .. }, Some(not_ready)) => Error::Transport(not_ready),
                _ => error,
            }
        })
    }

    fn index(&self) -> Arc<ToolIndex> {
        Arc::clone(
            &self
                .inner
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Calls a tool with the configured deadline.
    ///
    /// # Errors
    /// Unknown tool, server unavailable, transport or protocol failure, or timeout. A tool that
    /// reports a failure returns `Ok` with [`CallOutput::is_tool_error`].
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallOutput, Error> {
        self.call_with(name, arguments, CallOptions::default())
            .await
    }

    /// Calls a tool with per-call options.
    ///
    /// # Errors
    /// See [`Switchboard::call`].
    pub async fn call_with(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        options: CallOptions,
    ) -> Result<CallOutput, Error> {
        let index = self.index();
        let entry = self.resolve(&index, name)?;
        let connection = self.connection(&entry.server)?;
        let timeout = options.timeout.unwrap_or_else(|| {
            self.inner
                .config
                .call_timeout(&entry.server, &entry.tool.name)
        });
        let mut params = CallToolRequestParams::new(entry.tool.name.clone());
        params.arguments = arguments;
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, connection.call_tool(params)).await;
        match result {
            Ok(Ok(result)) => Ok(CallOutput {
                result,
                provenance: Provenance::new(entry.server.clone(), started.elapsed()),
            }),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => Err(Error::Timeout {
                server: entry.server.clone(),
                operation: format!("tools/call {}", entry.tool.name),
                after: timeout,
            }),
        }
    }

    /// Every prompt of every server.
    pub fn prompts(&self) -> Vec<PromptEntry> {
        self.each_catalog(|server, catalog| {
            catalog
                .prompts
                .iter()
                .map(|p| PromptEntry {
                    name: format!("{server}.{}", p.name),
                    server: server.clone(),
                    prompt: p.clone(),
                })
                .collect()
        })
    }

    /// Every resource of every server.
    pub fn resources(&self) -> Vec<ResourceEntry> {
        self.each_catalog(|server, catalog| {
            catalog
                .resources
                .iter()
                .map(|r| ResourceEntry {
                    server: server.clone(),
                    resource: r.clone(),
                })
                .collect()
        })
    }

    /// Every resource template of every server.
    pub fn resource_templates(&self) -> Vec<TemplateEntry> {
        self.each_catalog(|server, catalog| {
            catalog
                .templates
                .iter()
                .map(|t| TemplateEntry {
                    server: server.clone(),
                    template: t.clone(),
                })
                .collect()
        })
    }

    fn each_catalog<T>(&self, f: impl Fn(&ServerName, &ServerCatalog) -> Vec<T>) -> Vec<T> {
        self.inner
            .servers
            .iter()
            .flat_map(|slot| {
                let catalog = slot.catalog.read().unwrap_or_else(PoisonError::into_inner);
                f(&slot.config.spec.name, &catalog)
            })
            .collect()
    }

    /// Gets a prompt (`server.prompt`, or a bare name offered by one server only).
    ///
    /// # Errors
    /// Unknown or ambiguous name, server failure or timeout.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<rmcp::model::GetPromptResult, Error> {
        let prompts = self.prompts();
        let matches: Vec<&PromptEntry> = match prompts.iter().find(|p| p.name == name) {
            Some(exact) => vec![exact],
            None => prompts.iter().filter(|p| p.prompt.name == name).collect(),
        };
        let entry = match matches.as_slice() {
            [one] => *one,
            [] => {
                return Err(Error::UnknownPrompt {
                    name: name.to_owned(),
                });
            }
            many => {
                return Err(Error::AmbiguousTool {
                    name: name.to_owned(),
                    servers: many.iter().map(|p| p.server.to_string()).collect(),
                });
            }
        };
        let mut params = GetPromptRequestParams::new(entry.prompt.name.clone());
        if let Some(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let connection = self.connection(&entry.server)?;
        let timeout = self.inner.config.call_timeout(&entry.server, "");
        self.with_deadline(
            &entry.server,
            "prompts/get",
            timeout,
            connection.get_prompt(params),
        )
        .await
    }

    /// Reads a resource from the server that lists it (or whose template matches it); when
    /// none does, asks each server with resources in turn.
    ///
    /// # Errors
    /// No server has it, or a server failure or timeout.
    pub async fn read_resource(&self, uri: &str) -> Result<Outcome<ReadResourceResult>, Error> {
        let mut candidates: Vec<usize> = Vec::new();
        let mut push = |i: usize| {
            if !candidates.contains(&i) {
                candidates.push(i);
            }
        };
        for (i, slot) in self.inner.servers.iter().enumerate() {
            let catalog = slot.catalog.read().unwrap_or_else(PoisonError::into_inner);
            if catalog.resources.iter().any(|r| r.uri == uri) {
                push(i);
            }
        }
        for (i, slot) in self.inner.servers.iter().enumerate() {
            let catalog = slot.catalog.read().unwrap_or_else(PoisonError::into_inner);
            if catalog
                .templates
                .iter()
                .any(|t| template_prefix(&t.uri_template).is_some_and(|p| uri.starts_with(p)))
            {
                push(i);
            }
        }
        for (i, slot) in self.inner.servers.iter().enumerate() {
            let catalog = slot.catalog.read().unwrap_or_else(PoisonError::into_inner);
            if !catalog.resources.is_empty() || !catalog.templates.is_empty() {
                push(i);
            }
        }
        let mut last_error = None;
        for i in candidates {
            let slot = &self.inner.servers[i];
            let server = &slot.config.spec.name;
            let Some(connection) = &slot.connection else {
                continue;
            };
            let timeout = self.inner.config.call_timeout(server, "");
            let started = Instant::now();
            match self
                .with_deadline(
                    server,
                    "resources/read",
                    timeout,
                    connection.read_resource(uri),
                )
                .await
            {
                Ok(result) => {
                    return Ok(Outcome {
                        value: result,
                        provenance: Provenance::new(server.clone(), started.elapsed()),
                    });
                }
                Err(error) if error.class() == ErrorClass::NotFound => {
                    last_error = Some(error.to_string());
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::ResourceNotFound {
            uri: uri.to_owned(),
            detail: last_error,
        })
    }

    async fn with_deadline<T>(
        &self,
        server: &ServerName,
        operation: &str,
        timeout: Duration,
        future: impl Future<Output = Result<T, TransportError>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(timeout, future).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::Timeout {
                server: server.clone(),
                operation: operation.to_owned(),
                after: timeout,
            }),
        }
    }

    /// Re-fetches one server's lists now (normally done on connection and on `list_changed`).
    ///
    /// # Errors
    /// An unknown server.
    pub async fn refresh(&self, server: &str) -> Result<(), Error> {
        let i = *self
            .inner
            .by_name
            .get(server)
            .ok_or_else(|| Error::UnknownServer {
                name: server.to_owned(),
            })?;
        self.refresh_server(i).await;
        Ok(())
    }

    async fn refresh_server(&self, i: usize) {
        refresh_lists(&self.inner, i, Lists::ALL).await;
    }

    /// Stops every server: in-flight calls fail, stdio processes (whole process groups) are
    /// stopped. Bounded by each server's shutdown timeout; servers stop concurrently.
    pub async fn shutdown(&self) {
        join_all(
            self.inner
                .servers
                .iter()
                .filter_map(|s| s.connection.as_ref())
                .map(Connection::shutdown),
        )
        .await;
        for watcher in self
            .inner
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            watcher.abort();
        }
    }
}

pub use switchboard_core::Outcome;

/// The literal part of a URI template before its first variable.
fn template_prefix(template: &str) -> Option<&str> {
    let prefix = template.split('{').next()?;
    (!prefix.is_empty()).then_some(prefix)
}

/// Which lists to refresh.
#[derive(Clone, Copy)]
struct Lists {
    tools: bool,
    prompts: bool,
    resources: bool,
}

impl Lists {
    const ALL: Self = Self {
        tools: true,
        prompts: true,
        resources: true,
    };
}

async fn refresh_lists(inner: &Arc<Inner>, i: usize, lists: Lists) {
    let slot = &inner.servers[i];
    let Some(connection) = &slot.connection else {
        return;
    };
    let timeout = inner.config.defaults.call_timeout;
    let server = &slot.config.spec.name;
    let bounded = |f| async move {
        match tokio::time::timeout(timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                server: server.clone(),
                timeout,
            }),
        }
    };
    let mut errors = Vec::new();
    if lists.tools {
        match bounded(connection.list_tools()).await {
            Ok(tools) => {
                let filter = &slot.config.tools;
                let tools = tools
                    .into_iter()
                    .filter(|t| filter.allows(&t.name))
                    .map(Arc::new)
                    .collect();
                slot.catalog
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .tools = tools;
                rebuild_index(inner);
            }
            Err(e) => errors.push(format!("tools/list: {e}")),
        }
    }
    if lists.prompts {
        match tokio::time::timeout(timeout, connection.list_prompts()).await {
            Ok(Ok(prompts)) => {
                slot.catalog
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .prompts = prompts;
            }
            Ok(Err(e)) => errors.push(format!("prompts/list: {e}")),
            Err(_) => errors.push("prompts/list: timed out".to_owned()),
        }
    }
    if lists.resources {
        match tokio::time::timeout(timeout, connection.list_resources()).await {
            Ok(Ok(resources)) => {
                slot.catalog
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .resources = resources;
            }
            Ok(Err(e)) => errors.push(format!("resources/list: {e}")),
            Err(_) => errors.push("resources/list: timed out".to_owned()),
        }
        match tokio::time::timeout(timeout, connection.list_resource_templates()).await {
            Ok(Ok(templates)) => {
                slot.catalog
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .templates = templates;
            }
            Ok(Err(e)) => errors.push(format!("resources/templates/list: {e}")),
            Err(_) => errors.push("resources/templates/list: timed out".to_owned()),
        }
    }
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    if let Some(error) = &error {
        tracing::warn!(server = %server, %error, "catalog refresh failed");
    }
    slot.catalog
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .error = error;
}

fn rebuild_index(inner: &Inner) {
    let catalogs: Vec<_> = inner
        .servers
        .iter()
        .map(|s| {
            (
                s.config.spec.name.clone(),
                s.catalog
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .tools
                    .clone(),
            )
        })
        .collect();
    let index = ToolIndex::build(catalogs.iter().map(|(n, t)| (n, t.as_slice())));
    *inner.index.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(index);
}

/// Keeps one server's catalog current: refreshes on reconnection and on `list_changed`.
async fn watch_server(
    inner: Weak<Inner>,
    i: usize,
    mut events: tokio::sync::broadcast::Receiver<switchboard_transport::ServerEvent>,
) {
    loop {
        let lists = match events.recv().await {
            Ok(event) => match event.kind {
                ServerEventKind::Connected { generation } if generation > 1 => Lists::ALL,
                ServerEventKind::ToolListChanged => Lists {
                    tools: true,
                    prompts: false,
                    resources: false,
                },
                ServerEventKind::PromptListChanged => Lists {
                    tools: false,
                    prompts: true,
                    resources: false,
                },
                ServerEventKind::ResourceListChanged => Lists {
                    tools: false,
                    prompts: false,
                    resources: true,
                },
                _ => continue,
            },
            Err(RecvError::Lagged(_)) => Lists::ALL,
            Err(RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        refresh_lists(&inner, i, lists).await;
    }
}
