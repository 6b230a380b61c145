//! The [`Switchboard`]: many servers, one client.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, PoisonError, RwLock, Weak},
    time::Duration,
};

use futures::future::join_all;
use rmcp::model::{GetPromptRequestParams, JsonObject, ReadResourceResult};
use serde::Serialize;
use switchboard_core::{ErrorClass, Provenance, ServerName};
use switchboard_registry::{
    health::{HealthConfig, HealthSnapshot},
    routing::{ReplicaInfo, Router, Strategy},
};
use switchboard_resilience::{RetryBudget, RetryBudgetConfig};
use switchboard_telemetry::{AuditLog, Telemetry};
use switchboard_transport::{
    Connection, ConnectionState, ConnectionStatus, ServerEventKind, ServerSpec, TransportError,
};
use tokio::{sync::broadcast::error::RecvError, task::JoinHandle, time::Instant};

use crate::{
    Error,
    call::ToolCache,
    catalog::{
        GroupTools, PromptEntry, ResourceEntry, Route, ServerCatalog, ServerTools, TemplateEntry,
        ToolEntry, ToolIndex,
    },
    config::{Config, PolicySettings, ResolvedPolicy, ServerConfig},
    discover::DiscoveryIndex,
    runtime::{LatencyView, PolicyStats, ServerRuntime, ToolLimits},
};

/// One server as [`Switchboard::servers`] reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    /// Health from real traffic and probes.
    pub health: HealthSnapshot,
    /// Circuit breaker state, when the server has a breaker.
    pub breaker: Option<BreakerView>,
    /// Counters of policy decisions.
    pub stats: PolicyStats,
    /// Latency percentiles of calls and probes.
    pub latency: LatencyView,
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

/// A circuit breaker as [`ServerStatus`] shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerView {
    /// `closed`, `open`, `half_open`, `forced_open`, `forced_closed`, ….
    pub state: &'static str,
    /// Failure rate over the window, once it has enough calls.
    pub failure_rate: Option<f64>,
    /// Calls in the window.
    pub calls: u32,
    /// Time until an open breaker lets a probe through.
    pub open_for: Option<Duration>,
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

pub(crate) struct ServerSlot {
    pub(crate) config: ServerConfig,
    pub(crate) connection: Option<Connection>,
    pub(crate) catalog: RwLock<ServerCatalog>,
    pub(crate) runtime: ServerRuntime,
    /// Tools with limits of their own.
    pub(crate) tool_limits: HashMap<String, ToolLimits>,
    /// Set when a reload handed this connection to the next switchboard: it must not be shut
    /// down with this one.
    pub(crate) handed_over: std::sync::atomic::AtomicBool,
}

/// A replica group: servers offering the same tools, chosen per call by a router. Declared in
/// the configuration, or detected from equal tool names and input schemas.
#[derive(Debug)]
pub(crate) struct GroupSlot {
    pub(crate) name: ServerName,
    /// Member server indices, in the router's replica order.
    pub(crate) members: Vec<usize>,
    pub(crate) router: Router,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) servers: Vec<ServerSlot>,
    pub(crate) groups: Vec<Arc<GroupSlot>>,
    /// Replica groups detected from the catalogs (`routing.detect_replicas`), by member set;
    /// kept across index rebuilds so their routers keep their latency and load state.
    detected: std::sync::Mutex<HashMap<Vec<usize>, Arc<GroupSlot>>>,
    by_name: HashMap<ServerName, usize>,
    index: RwLock<Arc<ToolIndex>>,
    watchers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Retries of every server draw from this one budget.
    pub(crate) budget: RetryBudget,
    /// Tool results, when caching is on.
    pub(crate) cache: Option<ToolCache>,
    /// `resources/read` results that the server marked cacheable (`ttlMs`, not private).
    pub(crate) read_cache: Option<crate::tool_cache::ReadCache>,
    /// Metrics and traces (a disabled handle costs nothing).
    pub(crate) telemetry: Telemetry,
    /// The audit log, when configured.
    pub(crate) audit: Option<AuditLog>,
    /// Tool discovery over the catalog.
    pub(crate) discovery: RwLock<DiscoveryIndex>,
}

impl Inner {
    /// A server reconnected (a new session, often a new process): every replica group it is
    /// a member of forgets its latency estimate, so that a penalty from before the restart
    /// does not keep traffic away.
    fn reset_routes(&self, server: usize) {
        let detected = self
            .detected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect::<Vec<_>>();
        for group in self.groups.iter().chain(&detected) {
            if let Some(replica) = group.members.iter().position(|&m| m == server) {
                group.router.reset(replica);
            }
        }
    }

    /// The slot of a server.
    pub(crate) fn slot_of(&self, server: &str) -> Option<&ServerSlot> {
        self.by_name.get(server).map(|&i| &self.servers[i])
    }

    /// The policy of one tool: tool settings over server settings over defaults. A group's
    /// tools take the settings of the group's first member.
    pub(crate) fn policy(&self, entry: &ToolEntry) -> ResolvedPolicy {
        let defaults = &self.config.defaults.policies;
        let slot = match entry.route {
            Route::Server(i) => self.servers.get(i),
            Route::Group(ref g) => g.members.first().and_then(|&i| self.servers.get(i)),
        };
        match slot {
            Some(slot) => {
                let server = &slot.config.policies;
                match slot.config.tools.policies.get(entry.tool.name.as_ref()) {
                    Some(tool) => PolicySettings::resolve(&[tool, server, defaults]),
                    None => PolicySettings::resolve(&[server, defaults]),
                }
            }
            None => PolicySettings::resolve(&[defaults]),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for slot in &self.servers {
            if let Some(connection) = &slot.connection
                && !slot.handed_over.load(std::sync::atomic::Ordering::Acquire)
            {
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
    pub(crate) inner: Arc<Inner>,
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
    handlers: Option<switchboard_transport::SharedHandlers>,
}

impl SwitchboardBuilder {
    /// An empty builder with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a server.
    pub fn server(mut self, spec: ServerSpec) -> Self {
        self.config.servers.push(ServerConfig::new(spec));
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

    /// The application's answers to servers' sampling, elicitation and roots requests (and to
    /// their 2026-07-28 `input_required` rounds), for every server that has none of its own.
    /// Without them such requests are declined.
    pub fn handlers(mut self, handlers: impl Into<switchboard_transport::SharedHandlers>) -> Self {
        self.handlers = Some(handlers.into());
        self
    }

    /// Connects to every server concurrently; see [`Switchboard::connect`].
    ///
    /// # Errors
    /// See [`Switchboard::connect`].
    pub async fn build(mut self) -> Result<Switchboard, Error> {
        if let Some(handlers) = self.handlers {
            for server in &mut self.config.servers {
                server.spec.handlers.get_or_insert_with(|| handlers.clone());
            }
        }
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
        Self::connect_with(config, None).await
    }

    /// Like [`Switchboard::connect`], with a telemetry handle made by the application (say, one
    /// with its own exporters); `None` builds one from the configuration's `telemetry` table.
    ///
    /// # Errors
    /// See [`Switchboard::connect`]; also telemetry or audit log set-up failures.
    pub async fn connect_with(config: Config, telemetry: Option<Telemetry>) -> Result<Self, Error> {
        Self::connect_reusing(config, telemetry, HashMap::new()).await
    }

    /// Connects like [`Switchboard::connect_with`], taking over the given live connections for
    /// servers whose settings are unchanged (used by hot reload).
    pub(crate) async fn connect_reusing(
        config: Config,
        telemetry: Option<Telemetry>,
        mut reuse: HashMap<ServerName, Connection>,
    ) -> Result<Self, Error> {
        let telemetry = match telemetry {
            Some(t) => t,
            None => crate::observe::telemetry(&config.global.telemetry)?,
        };
        let audit = crate::observe::audit(config.global.audit.as_ref())?;
        let mut by_name = HashMap::new();
        let mut servers = Vec::with_capacity(config.servers.len());
        for (i, server) in config.servers.iter().enumerate() {
            if by_name.insert(server.spec.name.clone(), i).is_some() {
                return Err(Error::InvalidArguments {
                    tool: "configuration".to_owned(),
                    message: format!("server {} is defined twice", server.spec.name),
                });
            }
            let connection = (!server.disabled).then(|| {
                reuse
                    .remove(&server.spec.name)
                    .unwrap_or_else(|| Connection::start(server.spec.clone()))
            });
            let policy =
                PolicySettings::resolve_server(&[&server.policies, &config.defaults.policies]);
            let runtime = ServerRuntime::new(
                server.spec.name.as_str(),
                &policy,
                HealthConfig::default(),
                &telemetry,
            );
            let tool_limits = server
                .tools
                .policies
                .iter()
                .filter_map(|(tool, settings)| {
                    let policy = PolicySettings::resolve_server(&[
                        settings,
                        &server.policies,
                        &config.defaults.policies,
                    ]);
                    ToolLimits::new(settings, &policy, &runtime.context)
                        .map(|limits| (tool.clone(), limits))
                })
                .collect();
            servers.push(ServerSlot {
                config: server.clone(),
                connection,
                catalog: RwLock::new(ServerCatalog::default()),
                runtime,
                tool_limits,
                handed_over: std::sync::atomic::AtomicBool::new(false),
            });
        }
        let budget = RetryBudget::new(RetryBudgetConfig {
            retry_ratio: config.global.retry_budget_ratio,
            min_retries_per_sec: config.global.retry_budget_min_per_second,
            ..RetryBudgetConfig::default()
        });
        let cache = crate::tool_cache::build(&config.global).await;
        let read_cache = crate::tool_cache::build_read_cache(&config.global);
        let groups = build_groups(&config, &by_name)?;
        let inner = Arc::new(Inner {
            config,
            servers,
            by_name,
            index: RwLock::new(Arc::new(ToolIndex::default())),
            watchers: std::sync::Mutex::new(Vec::new()),
            budget,
            cache,
            read_cache,
            groups,
            detected: std::sync::Mutex::new(HashMap::new()),
            telemetry,
            audit,
            discovery: RwLock::new(DiscoveryIndex::default()),
        });
        for (i, slot) in inner.servers.iter().enumerate() {
            if let Some(connection) = &slot.connection {
                let watcher =
                    tokio::spawn(watch_server(Arc::downgrade(&inner), i, connection.events()));
                let prober = tokio::spawn(probe_server(Arc::downgrade(&inner), i));
                inner
                    .watchers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend([watcher, prober]);
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
                let breaker = slot.runtime.breaker_metrics().map(|m| BreakerView {
                    state: m.state.as_str(),
                    failure_rate: m.failure_rate,
                    calls: m.calls,
                    open_for: m
                        .open_until
                        .map(|until| until.saturating_duration_since(tokio::time::Instant::now())),
                });
                ServerStatus {
                    health: slot.runtime.health(),
                    breaker,
                    stats: slot.runtime.counters.snapshot(),
                    latency: slot.runtime.latency(),
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
        self.resolve(&self.index(), name)
            .map(|e| ToolEntry::clone(e))
    }

    /// Resolves a tool name for the call path (a shared entry, no copy).
    pub(crate) fn tool_entry(&self, name: &str) -> Result<Arc<ToolEntry>, Error> {
        self.resolve(&self.index(), name).cloned()
    }

    /// Resolves a tool name; an unknown `server.tool` of a server that is not connected is
    /// reported as that server's unavailability, not as an unknown tool.
    fn resolve<'a>(&self, index: &'a ToolIndex, name: &str) -> Result<&'a Arc<ToolEntry>, Error> {
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
            let result = match &self.inner.read_cache {
                Some(cache) => {
                    crate::tool_cache::read_cached(cache, connection, uri, timeout).await
                }
                None => {
                    self.with_deadline(
                        server,
                        "resources/read",
                        timeout,
                        connection.read_resource(uri),
                    )
                    .await
                }
            };
            match result {
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

    /// Probes one server now, bypassing every cache (`ping`, or `server/discover` on
    /// 2026-07-28 sessions); the result feeds its health and latency. Returns the round trip.
    ///
    /// # Errors
    /// An unknown or disabled server, or a failed probe.
    pub async fn probe(&self, server: &str) -> Result<Duration, Error> {
        let slot = self.slot(server)?;
        probe_slot(
            slot,
            self.inner
                .config
                .defaults
                .call_timeout
                .min(Duration::from_secs(10)),
        )
        .await
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

async fn probe_slot(slot: &ServerSlot, timeout: Duration) -> Result<Duration, Error> {
    let server = &slot.config.spec.name;
    let connection = slot.connection.as_ref().ok_or_else(|| Error::Disabled {
        server: server.clone(),
    })?;
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, connection.probe()).await {
        Ok(r) => r.map_err(Error::from),
        Err(_) => Err(Error::Timeout {
            server: server.clone(),
            operation: "probe".to_owned(),
            after: timeout,
        }),
    };
    let elapsed = started.elapsed();
    // A server that is not connected is the supervisor's business, not a health sample.
    if !matches!(&result, Err(Error::Transport(e)) if e.is_not_sent()) {
        slot.runtime.record_health(result.is_ok());
        if result.is_ok() {
            slot.runtime.record_latency(elapsed);
        }
    }
    result.map(|()| elapsed)
}

/// Active health checking of one server: probes it when it is idle or ejected, at jittered
/// intervals (real traffic is the first signal; probes only fill the gaps).
async fn probe_server(inner: Weak<Inner>, i: usize) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let slot = &inner.servers[i];
        let stale = {
            let catalog = slot.catalog.read().unwrap_or_else(PoisonError::into_inner);
            let due = |at: Option<Instant>| at.is_some_and(|at| Instant::now() >= at);
            Lists {
                tools: due(catalog.tools_stale_at),
                prompts: due(catalog.prompts_stale_at),
                resources: due(catalog.resources_stale_at),
            }
        };
        if stale.tools || stale.prompts || stale.resources {
            refresh_lists(&inner, i, stale).await;
        }
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        if slot.runtime.probe_due(jitter) {
            let timeout = inner
                .config
                .defaults
                .call_timeout
                .min(Duration::from_secs(10));
            if let Err(error) = probe_slot(slot, timeout).await {
                tracing::debug!(target: "switchboard::health", server = %slot.config.spec.name, %error, "probe failed");
            }
        }
    }
}

/// The literal part of a URI template before its first variable.
fn template_prefix(template: &str) -> Option<&str> {
    let prefix = template.split('{').next()?;
    (!prefix.is_empty()).then_some(prefix)
}

/// When a list with this `ttlMs` goes stale. A zero TTL means "do not reuse": list-changed
/// notifications keep such a list current rather than re-listing every second.
fn stale_at(ttl: Option<Duration>) -> Option<Instant> {
    ttl.filter(|ttl| !ttl.is_zero())
        .map(|ttl| Instant::now() + ttl)
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
        match bounded(connection.list_tools_with_ttl()).await {
            Ok((tools, ttl)) => {
                slot.catalog
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .tools_stale_at = stale_at(ttl);
                let filter = &slot.config.tools;
                let tools = tools
                    .into_iter()
                    .filter(|t| filter.allows(&t.name))
                    .map(|mut t| {
                        // The operator's description replaces the server's.
                        if let Some(text) = filter.descriptions.get(t.name.as_ref()) {
                            t.description = Some(text.clone().into());
                        }
                        Arc::new(t)
                    })
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
        match tokio::time::timeout(timeout, connection.list_prompts_with_ttl()).await {
            Ok(Ok((prompts, ttl))) => {
                let mut catalog = slot.catalog.write().unwrap_or_else(PoisonError::into_inner);
                catalog.prompts = prompts;
                catalog.prompts_stale_at = stale_at(ttl);
            }
            Ok(Err(e)) => errors.push(format!("prompts/list: {e}")),
            Err(_) => errors.push("prompts/list: timed out".to_owned()),
        }
    }
    if lists.resources {
        match tokio::time::timeout(timeout, connection.list_resources_with_ttl()).await {
            Ok(Ok((resources, ttl))) => {
                let mut catalog = slot.catalog.write().unwrap_or_else(PoisonError::into_inner);
                catalog.resources = resources;
                catalog.resources_stale_at = stale_at(ttl);
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

/// The router strategy named in the configuration (`None` is the default, p2c).
fn strategy(name: Option<&str>) -> Option<Strategy> {
    match name {
        None | Some("p2c") => Some(Strategy::P2c),
        Some("round_robin") => Some(Strategy::RoundRobin),
        Some("weighted") => Some(Strategy::Weighted),
        Some("priority") => Some(Strategy::Priority),
        Some("locality") => Some(Strategy::Locality),
        Some(_) => None,
    }
}

/// A replica group over `members` (server indices), with their placements as replica info.
fn group_slot(config: &Config, name: &str, members: Vec<usize>, strategy: Strategy) -> GroupSlot {
    let replicas = members
        .iter()
        .filter_map(|&i| config.servers.get(i))
        .map(|server| {
            let placement = &server.placement;
            ReplicaInfo {
                name: server.spec.name.to_string(),
                weight: placement.weight.unwrap_or(1),
                priority: placement.priority.unwrap_or(0),
                region: placement.region.clone(),
                zone: placement.zone.clone(),
                tags: placement.tags.iter().cloned().collect(),
            }
        })
        .collect();
    GroupSlot {
        name: ServerName::new(name),
        members,
        router: Router::new(strategy, replicas, HealthConfig::default().panic_threshold),
    }
}

/// Routers of the configured replica groups.
fn build_groups(
    config: &Config,
    by_name: &HashMap<ServerName, usize>,
) -> Result<Vec<Arc<GroupSlot>>, Error> {
    let mut groups = Vec::new();
    for (name, settings) in &config.global.groups {
        let invalid = |message: String| Error::InvalidArguments {
            tool: format!("groups.{name}"),
            message,
        };
        let strategy = strategy(settings.strategy.as_deref()).ok_or_else(|| {
            invalid(format!(
                "unknown strategy {:?}",
                settings.strategy.as_deref().unwrap_or_default()
            ))
        })?;
        let mut members = Vec::new();
        for member in &settings.servers {
            let &i = by_name
                .get(member.as_str())
                .ok_or_else(|| invalid(format!("unknown member server {member:?}")))?;
            members.push(i);
        }
        groups.push(Arc::new(group_slot(config, name, members, strategy)));
    }
    Ok(groups)
}

/// The server name of every detected replica group's tools (`replicas.search`): the same
/// whichever servers are members, so names stay stable as replicas come and go.
const DETECTED_GROUP: &str = "replicas";

/// The replica groups detected in the current catalogs, with the tools each one offers.
/// Members of declared groups take no part. A group keeps its router while its member set
/// stays the same.
fn detected_groups(
    inner: &Inner,
    views: &[ServerTools<'_>],
) -> Vec<(Arc<GroupSlot>, std::collections::BTreeSet<String>)> {
    let global = &inner.config.global;
    if !global.detect_replicas {
        return Vec::new();
    }
    let declared: std::collections::HashSet<usize> = inner
        .groups
        .iter()
        .flat_map(|g| g.members.iter().copied())
        .collect();
    let sets = crate::catalog::detect_replicas(views, |i| !declared.contains(&i));
    let strategy = strategy(global.detect_strategy.as_deref()).unwrap_or(Strategy::P2c);
    let mut detected = inner
        .detected
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    detected.retain(|members, _| sets.contains_key(members));
    sets.into_iter()
        .map(|(members, tools)| {
            let slot = detected.entry(members.clone()).or_insert_with(|| {
                let mut name = DETECTED_GROUP.to_owned();
                // A server or declared group already named so keeps its name.
                while inner.by_name.contains_key(name.as_str()) || global.groups.contains_key(&name)
                {
                    name.push('_');
                }
                let member_names: Vec<&str> = members
                    .iter()
                    .filter_map(|&i| views.get(i).map(|v| v.name.as_str()))
                    .collect();
                tracing::info!(
                    target: "switchboard::route",
                    group = %name,
                    members = %member_names.join(", "),
                    tools = %tools.iter().map(String::as_str).collect::<Vec<_>>().join(", "),
                    "replica group detected"
                );
                Arc::new(group_slot(&inner.config, &name, members, strategy))
            });
            (Arc::clone(slot), tools)
        })
        .collect()
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
    let views: Vec<ServerTools<'_>> = inner
        .servers
        .iter()
        .zip(&catalogs)
        .map(|(slot, (name, tools))| ServerTools {
            name,
            tools,
            renames: &slot.config.tools.renames,
            priority: slot.config.placement.priority.unwrap_or(0),
        })
        .collect();
    let detected = detected_groups(inner, &views);
    let groups: Vec<GroupTools<'_>> = inner
        .groups
        .iter()
        .map(|slot| GroupTools { slot, tools: None })
        .chain(detected.iter().map(|(slot, tools)| GroupTools {
            slot,
            tools: Some(tools),
        }))
        .collect();
    let index = ToolIndex::build(&views, &groups, inner.config.global.naming);
    // Discovery lists a replica group's tools once, under the group, not once per member.
    let members: std::collections::HashSet<usize> = inner
        .groups
        .iter()
        .flat_map(|g| g.members.iter().copied())
        .collect();
    let in_detected_group = |i: usize, entry: &ToolEntry| {
        let bare = entry
            .name
            .strip_prefix(entry.server.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(&entry.name);
        detected
            .iter()
            .any(|(slot, tools)| slot.members.contains(&i) && tools.contains(bare))
    };
    let searchable: Vec<ToolEntry> = index
        .entries()
        .into_iter()
        .filter(|e| match e.route {
            Route::Server(i) => !members.contains(&i) && !in_detected_group(i, e),
            Route::Group(_) => true,
        })
        .collect();
    inner
        .discovery
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .sync(&searchable);
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
                ServerEventKind::Connected { generation } if generation > 1 => {
                    if let Some(inner) = inner.upgrade() {
                        inner.servers[i].runtime.reset_health(generation);
                        inner.reset_routes(i);
                    }
                    Lists::ALL
                }
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
                ServerEventKind::ResourceUpdated { uri } => {
                    if let Some(inner) = inner.upgrade()
                        && let Some(cache) = &inner.read_cache
                    {
                        let _ = cache
                            .invalidate_tag(&crate::tool_cache::resource_tag(&uri))
                            .await;
                    }
                    continue;
                }
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
