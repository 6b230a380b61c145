//! The MCP server handler: state shared by every session, fault injection,
//! and the `ServerHandler` implementation that merges the static tools with
//! tools added at runtime.

use std::{
    collections::{BTreeMap, VecDeque},
    io::Write as _,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
#[expect(
    deprecated,
    reason = "MCP logging is deprecated by SEP-2577 but still served"
)]
use rmcp::model::{LoggingLevel, SetLevelRequestParams};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
        GetPromptRequestParams, GetPromptResponse, Implementation, JsonObject, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
        ServerConfig, SubscriptionFilter, Tool, ToolAnnotations,
    },
    service::{RequestContext, SubscriptionContext},
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{
    catalog,
    knobs::{CRASH_EXIT_CODE, CrashBehavior, Knobs},
    tools::Tools,
};

/// Name of the tool that reads the call counters; fault knobs leave it alone.
pub(crate) const STATS_TOOL: &str = "stats";
/// The `stats` entry that counts `resources/read` requests.
pub(crate) const READ_COUNT_KEY: &str = "resources/read";
/// The control tool that changes the error rate at run time; like `stats`, it is exempt
/// from every knob.
pub(crate) const CONFIGURE_TOOL: &str = "configure";

/// Instructions sent in `initialize` / `server/discover` results.
const INSTRUCTIONS: &str = "Switchboard's MCP test server. Tools echo, compute, return every \
     content type, sleep, hang, fail and crash on request; `stats` counts the calls served.";

/// Locks a mutex, ignoring poisoning: the guarded data stays usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What fault injection decided for one tool call.
enum Fault {
    /// Answer with JSON-RPC error -32603.
    ProtocolError,
    /// Answer with `isError: true`.
    ToolError,
}

/// State shared by every session of one server (and by every per-request
/// instance of a stateless HTTP server).
#[derive(Debug)]
pub(crate) struct State {
    /// The knobs the server was started with.
    pub(crate) knobs: Knobs,
    /// Random numbers for the error rates.
    rng: Mutex<StdRng>,
    /// The current protocol error rate (starts at `knobs.error_rate`; `configure` changes it).
    pub(crate) error_rate: Mutex<f64>,
    /// Tool calls seen so far, not counting `stats` (for crash-after).
    calls_seen: AtomicU64,
    /// Calls served per tool name, not counting `stats`.
    pub(crate) call_counts: Mutex<BTreeMap<String, u64>>,
    /// Notes written by `write_note`.
    pub(crate) notes: Mutex<Vec<String>>,
    /// The `increment` counter.
    pub(crate) counter: AtomicU64,
    /// Tools added at runtime by `add_tool`, by name.
    pub(crate) dynamic_tools: Mutex<BTreeMap<String, Tool>>,
    /// Wakes `subscriptions/listen` streams when the tool list changes.
    pub(crate) tools_changed: broadcast::Sender<()>,
    /// Cancelled when a crash asks the server to stop serving
    /// ([`CrashBehavior::StopServer`]).
    pub(crate) stop: CancellationToken,
}

impl State {
    fn new(knobs: Knobs) -> Self {
        let rng = match knobs.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let (tools_changed, _) = broadcast::channel(16);
        Self {
            error_rate: Mutex::new(knobs.error_rate),
            knobs,
            rng: Mutex::new(rng),
            calls_seen: AtomicU64::new(0),
            call_counts: Mutex::new(BTreeMap::new()),
            notes: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
            dynamic_tools: Mutex::new(BTreeMap::new()),
            tools_changed,
            stop: CancellationToken::new(),
        }
    }

    /// Records one tool call: the calls log, the counters, and crash-after.
    fn record_call(&self, name: &str) {
        self.append_calls_log(name);
        if name == STATS_TOOL || name == CONFIGURE_TOOL {
            return;
        }
        *lock(&self.call_counts).entry(name.to_owned()).or_default() += 1;
        let seen = self.calls_seen.fetch_add(1, Ordering::SeqCst) + 1;
        if self.knobs.crash_after == Some(seen) {
            tracing::warn!(call = seen, tool = name, "crash-after reached");
            self.crash();
        }
    }

    /// Appends `name` to the calls log, if one is configured. The file is
    /// opened per call so that every line reaches the disk before a crash.
    fn append_calls_log(&self, name: &str) {
        let Some(path) = &self.knobs.calls_log else {
            return;
        };
        let line = format!("{name}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| {
                file.write_all(line.as_bytes())?;
                file.flush()
            });
        if let Err(error) = written {
            tracing::error!(path = %path.display(), %error, "cannot append to the calls log");
        }
    }

    /// Crashes according to [`Knobs::crash_behavior`]. With
    /// [`CrashBehavior::ExitProcess`] this does not return.
    pub(crate) fn crash(&self) {
        match self.knobs.crash_behavior {
            CrashBehavior::ExitProcess => {
                eprintln!("testkit: crashing (exit code {CRASH_EXIT_CODE})");
                std::process::exit(CRASH_EXIT_CODE);
            }
            CrashBehavior::StopServer => self.stop.cancel(),
        }
    }

    /// Rolls the dice for the error rates.
    fn roll_fault(&self) -> Option<Fault> {
        let mut rng = lock(&self.rng);
        let protocol_roll: f64 = rng.random();
        let tool_roll: f64 = rng.random();
        if protocol_roll < *lock(&self.error_rate) {
            Some(Fault::ProtocolError)
        } else if tool_roll < self.knobs.tool_error_rate {
            Some(Fault::ToolError)
        } else {
            None
        }
    }
}

/// The test server's MCP handler.
///
/// Cloning is cheap; clones share all state (counters, notes, runtime tools),
/// so a server can serve several sessions at once.
///
/// Embed it with rmcp directly (`TestServer::new(knobs).serve(transport)`),
/// or use [`serve_stdio`](crate::serve_stdio) and
/// [`serve_http`](crate::serve_http).
#[derive(Debug, Clone)]
pub struct TestServer {
    /// The state shared by every session.
    pub(crate) state: Arc<State>,
    /// The tools defined with `#[tool]`.
    pub(crate) router: Arc<ToolRouter<Tools>>,
    /// Minimum level of log notifications set by `logging/setLevel`, per session.
    #[expect(
        deprecated,
        reason = "MCP logging is deprecated by SEP-2577 but still served"
    )]
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
    /// Change receivers taken when a `subscriptions/listen` request is
    /// accepted, before its acknowledgement goes out, so that `listen` misses
    /// no change made right after the client saw the acknowledgement.
    pending_listeners: Arc<Mutex<VecDeque<broadcast::Receiver<()>>>>,
}

impl TestServer {
    /// Creates a server with the given knobs.
    pub fn new(knobs: Knobs) -> Self {
        Self {
            state: Arc::new(State::new(knobs)),
            router: Arc::new(Tools::tool_router()),
            log_level: Arc::new(Mutex::new(None)),
            pending_listeners: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// The knobs the server was created with.
    pub fn knobs(&self) -> &Knobs {
        &self.state.knobs
    }

    /// A handler for one more session: shares all state with `self` except
    /// the per-session logging level.
    pub(crate) fn new_session(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
            router: Arc::clone(&self.router),
            log_level: Arc::new(Mutex::new(None)),
            pending_listeners: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Cancelled when a crash with [`CrashBehavior::StopServer`] happens.
    pub(crate) fn stop_token(&self) -> CancellationToken {
        self.state.stop.clone()
    }

    /// Every tool currently listed: the static ones, then the runtime ones.
    fn all_tools(&self) -> Vec<Tool> {
        let mut tools = self.router.list_all();
        tools.extend(lock(&self.state.dynamic_tools).values().cloned());
        tools
    }

    /// Answers a call to a tool added by `add_tool`: echoes the arguments.
    fn call_dynamic_tool(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Option<CallToolResult> {
        if !lock(&self.state.dynamic_tools).contains_key(name) {
            return None;
        }
        let arguments = serde_json::Value::Object(arguments.unwrap_or_default());
        Some(CallToolResult::success(vec![ContentBlock::text(
            arguments.to_string(),
        )]))
    }

    /// Whether a log notification at `level` passes the level the client set.
    #[expect(
        deprecated,
        reason = "MCP logging is deprecated by SEP-2577 but still served"
    )]
    pub(crate) fn should_log(
        &self,
        level: LoggingLevel,
        context: &RequestContext<RoleServer>,
    ) -> bool {
        let threshold = context.meta.log_level().or(*lock(&self.log_level));
        threshold.is_none_or(|threshold| severity(level) >= severity(threshold))
    }
}

/// Orders logging levels from least to most severe.
#[expect(
    deprecated,
    reason = "MCP logging is deprecated by SEP-2577 but still served"
)]
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// Whether the request belongs to a session opened with `initialize` (as
/// opposed to the 2026-07-28 per-request lifecycle).
pub(crate) fn is_legacy_request(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_none_or(|version| version.has_initialize())
}

/// Cache hints for list results: 2026-07-28 peers are told not to cache,
/// because `add_tool` changes the tool list at any time.
fn cache_hints(
    context: &RequestContext<RoleServer>,
    ttl_ms: Option<u64>,
) -> (Option<u64>, Option<CacheScope>) {
    let modern = context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if modern {
        (Some(ttl_ms.unwrap_or(0)), Some(CacheScope::Private))
    } else {
        (None, None)
    }
}

impl ServerHandler for TestServer {
    #[expect(
        deprecated,
        reason = "MCP logging is deprecated by SEP-2577 but still served"
    )]
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                self.state.knobs.name.clone(),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    #[expect(
        deprecated,
        reason = "MCP logging is deprecated by SEP-2577 but still served"
    )]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *lock(&self.log_level) = Some(request.level);
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (ttl_ms, cache_scope) = cache_hints(&context, self.state.knobs.list_ttl_ms);
        let mut result = ListToolsResult::with_all_items(self.all_tools());
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.router
            .get(name)
            .cloned()
            .or_else(|| lock(&self.state.dynamic_tools).get(name).cloned())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        self.state.record_call(&name);
        if self.state.stop.is_cancelled() {
            // Crashed with `StopServer`: never answer.
            return Err(never_answer(&context).await);
        }
        if name != STATS_TOOL && name != CONFIGURE_TOOL {
            let latency = self.state.knobs.latency;
            if !latency.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(latency) => {}
                    () = context.ct.cancelled() => {
                        return Err(ErrorData::internal_error("request cancelled", None));
                    }
                }
            }
            match self.state.roll_fault() {
                Some(Fault::ProtocolError) => {
                    return Err(ErrorData::internal_error("injected failure", None));
                }
                Some(Fault::ToolError) => {
                    return Ok(CallToolResult::error(vec![ContentBlock::text(
                        "injected tool error",
                    )])
                    .into());
                }
                None => {}
            }
        }
        if self.router.has_route(&name) {
            let tools = Tools::new(self.clone());
            return self
                .router
                .call(ToolCallContext::new(&tools, request, context))
                .await;
        }
        match self.call_dynamic_tool(&name, request.arguments) {
            Some(result) => Ok(result.into()),
            None => Err(ErrorData::invalid_params(
                format!("unknown tool: {name}"),
                Some(serde_json::json!({ "name": name })),
            )),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (ttl_ms, cache_scope) = cache_hints(&context, self.state.knobs.list_ttl_ms);
        let mut result = ListResourcesResult::with_all_items(catalog::resources());
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let (ttl_ms, cache_scope) = cache_hints(&context, self.state.knobs.list_ttl_ms);
        let mut result = ListResourceTemplatesResult::with_all_items(catalog::resource_templates());
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        // Reads are counted with the tool calls, under `resources/read`, for `stats`.
        *lock(&self.state.call_counts)
            .entry(READ_COUNT_KEY.to_owned())
            .or_default() += 1;
        let mut result = catalog::read_resource(&request.uri)?;
        let modern = context
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        if let (true, Some(ttl)) = (modern, self.state.knobs.resource_ttl_ms) {
            result.ttl_ms = Some(ttl);
            result.cache_scope = Some(CacheScope::Public);
        }
        Ok(ReadResourceResponse::from(result))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (ttl_ms, cache_scope) = cache_hints(&context, self.state.knobs.list_ttl_ms);
        let mut result = ListPromptsResult::with_all_items(catalog::prompts());
        result.ttl_ms = ttl_ms;
        result.cache_scope = cache_scope;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        catalog::get_prompt(&request.name, request.arguments.as_ref()).map(GetPromptResponse::from)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        lock(&self.pending_listeners).push_back(self.state.tools_changed.subscribe());
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let pending = lock(&self.pending_listeners).pop_front();
        let mut changes = pending.unwrap_or_else(|| self.state.tools_changed.subscribe());
        let wants_tools = context.accepted().tools_list_changed == Some(true);
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if wants_tools && context.sink().notify_tool_list_changed().await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}

/// Waits until the request is cancelled (by the client, or because its
/// session or server stopped) and returns the error that then goes nowhere.
pub(crate) async fn never_answer(context: &RequestContext<RoleServer>) -> ErrorData {
    context.ct.cancelled().await;
    ErrorData::internal_error("request cancelled", None)
}

/// Builds the annotations of a tool added at runtime.
pub(crate) fn dynamic_tool_annotations() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .idempotent(true)
        .open_world(false)
}
