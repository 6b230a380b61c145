//! One supervised, shared connection per server.
//!
//! A [`Connection`] owns a supervisor task that connects, watches the session, and reconnects
//! with exponential back-off and full jitter when the process dies or the HTTP endpoint is lost.
//! Callers share the live rmcp [`Peer`] (one session, many concurrent requests). When the
//! session is lost, every request in flight on it fails at once with
//! [`TransportError::ConnectionLost`] instead of waiting for its deadline.

use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use rand::Rng;
use rmcp::{
    ServiceError,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest,
        GetPromptRequestParams, GetPromptResponse, GetPromptResult, InputRequiredResult,
        InputResponses, PingRequest, Prompt, ProtocolVersion, ReadResourceRequestParams,
        ReadResourceResponse, ReadResourceResult, Resource, ResourceTemplate, ServerNotification,
        SubscriptionFilterBuilder, Tool,
    },
    service::{ClientLifecycleMode, ClientServiceExt, Peer, RoleClient, RunningService},
};
use switchboard_core::ServerName;
use tokio::{
    sync::{broadcast, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    ConnectError, ProtocolMode, ServerSpec, TransportError, TransportSpec,
    events::{EventHandler, ServerEvent, ServerEventKind},
    handlers::{self, SharedHandlers},
    process::{self, ChildProcess, ExitInfo},
};

/// The state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// The first connection attempt is under way.
    Connecting,
    /// A session is established.
    Ready,
    /// The session was lost or an attempt failed; another attempt follows after a back-off.
    Reconnecting,
    /// The crash budget is spent; no more attempts until [`Connection::reconnect`].
    Failed,
    /// The connection was shut down.
    Closed,
}

impl ConnectionState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Ready => "ready",
            Self::Reconnecting => "reconnecting",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of a connection's state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionStatus {
    /// Current state.
    pub state: ConnectionState,
    /// The most recent connection error (kept after a successful reconnection until the next
    /// error, so that flapping servers can be diagnosed).
    pub last_error: Option<String>,
    /// Negotiated protocol version of the current or last session.
    pub protocol_version: Option<String>,
    /// Server name and version from the handshake.
    pub server_info: Option<String>,
    /// Process id of a stdio server.
    pub pid: Option<u32>,
    /// Sessions established so far (1 after the first connection).
    pub generation: u64,
    /// Whether the first connection attempt has finished (successfully or not).
    pub attempted: bool,
    /// Whether the last attempt failed for want of valid credentials: a person has to log in
    /// (`mcpctl auth login`, or [`auth::login`](crate::auth::login)) before
    /// [`Connection::reconnect`].
    pub needs_login: bool,
}

impl ConnectionStatus {
    fn initial() -> Self {
        Self {
            state: ConnectionState::Connecting,
            last_error: None,
            protocol_version: None,
            server_info: None,
            pid: None,
            generation: 0,
            attempted: false,
            needs_login: false,
        }
    }
}

/// The live session that requests use.
#[derive(Clone)]
struct Live {
    peer: Peer<RoleClient>,
    generation: u64,
    lost: CancellationToken,
}

struct Inner {
    spec: ServerSpec,
    /// Whether requests watch the session's `lost` signal (HTTP; see [`Connection::request`]).
    watch_lost: bool,
    status: watch::Sender<ConnectionStatus>,
    live: RwLock<Option<Live>>,
    lost_reason: Mutex<Option<String>>,
    events: broadcast::Sender<ServerEvent>,
    shutdown: CancellationToken,
    restart: tokio::sync::Notify,
    supervisor_done: CancellationToken,
}

/// A supervised connection to one server, shared by all callers. Cheap to clone.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.inner.spec.name)
            .field("state", &self.inner.status.borrow().state)
            .finish()
    }
}

/// Event channel capacity per connection.
const EVENT_CAPACITY: usize = 256;

impl Connection {
    /// Starts connecting in the background and returns at once. Must be called inside a tokio
    /// runtime.
    pub fn start(spec: ServerSpec) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let inner = Arc::new(Inner {
            watch_lost: !matches!(spec.transport, TransportSpec::Stdio(_)),
            spec,
            status: watch::channel(ConnectionStatus::initial()).0,
            live: RwLock::new(None),
            lost_reason: Mutex::new(None),
            events,
            shutdown: CancellationToken::new(),
            restart: tokio::sync::Notify::new(),
            supervisor_done: CancellationToken::new(),
        });
        tokio::spawn(supervise(Arc::clone(&inner)));
        Self { inner }
    }

    /// The server's name.
    pub fn name(&self) -> &ServerName {
        &self.inner.spec.name
    }

    /// The spec this connection was started with.
    pub fn spec(&self) -> &ServerSpec {
        &self.inner.spec
    }

    /// A snapshot of the connection's state.
    pub fn status(&self) -> ConnectionStatus {
        self.inner.status.borrow().clone()
    }

    /// Calls `f` with the status in place, without copying it; keep `f` short, since status
    /// updates wait for it.
    pub fn with_status<R>(&self, f: impl FnOnce(&ConnectionStatus) -> R) -> R {
        f(&self.inner.status.borrow())
    }

    /// Sessions established so far (1 after the first connection); cheap.
    pub fn generation(&self) -> u64 {
        self.inner.status.borrow().generation
    }

    /// The current state (cheaper than [`Connection::status`]: no copy of the strings).
    pub fn state(&self) -> ConnectionState {
        self.inner.status.borrow().state
    }

    /// A receiver of state changes.
    pub fn watch_status(&self) -> watch::Receiver<ConnectionStatus> {
        self.inner.status.subscribe()
    }

    /// A receiver of this server's events (notifications and connection changes).
    pub fn events(&self) -> broadcast::Receiver<ServerEvent> {
        self.inner.events.subscribe()
    }

    /// Waits until the first connection attempt has finished (or `timeout` passes), and returns
    /// the state then.
    pub async fn wait_first_attempt(&self, timeout: Duration) -> ConnectionStatus {
        let mut rx = self.inner.status.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| s.attempted)).await;
        self.status()
    }

    /// Waits until the connection is ready, up to `timeout`.
    ///
    /// # Errors
    /// [`TransportError::NotReady`] when it is not ready in time or has failed.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), TransportError> {
        let mut rx = self.inner.status.subscribe();
        let ready = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| {
                matches!(
                    s.state,
                    ConnectionState::Ready | ConnectionState::Failed | ConnectionState::Closed
                )
            }),
        )
        .await;
        match ready {
            Ok(Ok(s)) if s.state == ConnectionState::Ready => Ok(()),
            _ => Err(self.not_ready()),
        }
    }

    /// Asks a failed connection to try again (resets the crash budget).
    pub fn reconnect(&self) {
        self.inner.restart.notify_one();
    }

    fn not_ready(&self) -> TransportError {
        let status = self.inner.status.borrow();
        TransportError::NotReady {
            server: self.inner.spec.name.clone(),
            state: status.state,
            last_error: status.last_error.clone(),
        }
    }

    fn live(&self) -> Result<Live, TransportError> {
        self.inner
            .live
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| self.not_ready())
    }

    /// Succeeds when a session is established.
    ///
    /// # Errors
    /// [`TransportError::NotReady`] with the state and the last error otherwise.
    pub fn ensure_ready(&self) -> Result<(), TransportError> {
        self.live().map(|_| ())
    }

    /// The live rmcp peer, for requests this crate has no helper for.
    ///
    /// # Errors
    /// [`TransportError::NotReady`] when no session is established.
    pub fn peer(&self) -> Result<Peer<RoleClient>, TransportError> {
        self.live().map(|l| l.peer)
    }

    /// Runs one request on the live session. The request fails fast with
    /// [`TransportError::ConnectionLost`] if the session is lost while it is in flight. It has
    /// no deadline of its own: wrap it in one (dropping the future cancels the request).
    ///
    /// How a lost session ends the requests in flight depends on the transport. rmcp's HTTP
    /// client can leave a request waiting for an answer that never comes when the server dies,
    /// so each HTTP request also waits on the session's `lost` signal. A stdio session needs no
    /// such watch (which costs a lock on a per-session waiter list twice per request): when the
    /// process dies its stdout closes and rmcp fails every request in flight at once, and when
    /// the session is dropped for another reason the supervisor closes the rmcp service, which
    /// does the same. Either way the error names why the session was lost.
    ///
    /// # Errors
    /// The request's failure, classified.
    pub async fn request<T, F, Fut>(&self, op: F) -> Result<T, TransportError>
    where
        F: FnOnce(Peer<RoleClient>) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let live = self.live()?;
        let result = if self.inner.watch_lost {
            tokio::select! {
                biased;
                result = op(live.peer) => result,
                () = live.lost.cancelled() => Err(ServiceError::TransportClosed),
            }
        } else {
            op(live.peer).await
        };
        result.map_err(|e| {
            if matches!(e, ServiceError::TransportClosed) && live.lost.is_cancelled() {
                return TransportError::ConnectionLost {
                    server: self.inner.spec.name.clone(),
                    reason: self.lost_reason(),
                };
            }
            let error = TransportError::from_service(&self.inner.spec.name, e);
            // A rejected credential ends the session too: the next one starts from the
            // credential store as it is then (after a new login, for instance).
            if error.is_connection_lost()
                || error.looks_unreachable()
                || error.is_credential_rejected()
            {
                self.inner.mark_lost(live.generation, error.to_string());
            }
            error
        })
    }

    fn lost_reason(&self) -> String {
        self.inner
            .lost_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "the session ended".to_owned())
    }

    /// `tools/call`. A 2026-07-28 server's `input_required` rounds are answered with the
    /// spec's [`ClientHandlers`](crate::ClientHandlers) and the call is sent again with the
    /// answers and the server's request state.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResult, TransportError> {
        self.call_tool_with(|| params.clone()).await
    }

    /// Like [`call_tool`](Self::call_tool), with the request made by `params` for each round
    /// (one, unless the server asks for input), so that nothing is copied for a round that is
    /// never sent.
    ///
    /// # Errors
    /// As [`call_tool`](Self::call_tool).
    pub async fn call_tool_with(
        &self,
        params: impl Fn() -> CallToolRequestParams + Send,
    ) -> Result<CallToolResult, TransportError> {
        let inputs = self.input_rounds();
        self.request(|peer| async move {
            let mut rounds = InputRounds::new(inputs);
            let mut round = params();
            loop {
                match peer.call_tool_once(round).await? {
                    CallToolResponse::Complete(result) => return Ok(result),
                    CallToolResponse::InputRequired(required) => {
                        round = params();
                        (round.input_responses, round.request_state) =
                            rounds.answer(required).await?;
                    }
                    // Tasks are opt-in, and Switchboard does not declare them.
                    _ => return Err(ServiceError::UnexpectedResponse),
                }
            }
        })
        .await
    }

    fn input_rounds(&self) -> (ServerName, Option<SharedHandlers>) {
        (
            self.inner.spec.name.clone(),
            self.inner.spec.handlers.clone(),
        )
    }

    /// Every tool (all pages of `tools/list`).
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn list_tools(&self) -> Result<Vec<Tool>, TransportError> {
        self.request(|peer| async move { peer.list_all_tools().await })
            .await
    }

    /// Every tool, with how long the list may be treated as fresh when the server says
    /// (`ttlMs` of 2026-07-28 servers; `None` otherwise).
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn list_tools_with_ttl(
        &self,
    ) -> Result<(Vec<Tool>, Option<Duration>), TransportError> {
        self.request(|peer| async move { peer.list_all_tools_with_cache_hint().await })
            .await
            .map(|list| (list.items, list.ttl_ms.map(Duration::from_millis)))
    }

    /// Every prompt, or none when the server has no prompts capability.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn list_prompts(&self) -> Result<Vec<Prompt>, TransportError> {
        if !self.has_capability(|c| c.prompts.is_some()) {
            return Ok(Vec::new());
        }
        self.request(|peer| async move { peer.list_all_prompts().await })
            .await
    }

    /// Every prompt with the list's `ttlMs`, when the server gives one.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn list_prompts_with_ttl(
        &self,
    ) -> Result<(Vec<Prompt>, Option<Duration>), TransportError> {
        if !self.has_capability(|c| c.prompts.is_some()) {
            return Ok((Vec::new(), None));
        }
        self.request(|peer| async move { peer.list_all_prompts_with_cache_hint().await })
            .await
            .map(|list| (list.items, list.ttl_ms.map(Duration::from_millis)))
    }

    /// Every resource with the list's `ttlMs`, when the server gives one.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn list_resources_with_ttl(
        &self,
    ) -> Result<(Vec<Resource>, Option<Duration>), TransportError> {
        if !self.has_capability(|c| c.resources.is_some()) {
            return Ok((Vec::new(), None));
        }
        self.request(|peer| async move { peer.list_all_resources_with_cache_hint().await })
            .await
            .map(|list| (list.items, list.ttl_ms.map(Duration::from_millis)))
    }

    /// Every resource, or none when the server has no resources capability.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn list_resources(&self) -> Result<Vec<Resource>, TransportError> {
        if !self.has_capability(|c| c.resources.is_some()) {
            return Ok(Vec::new());
        }
        self.request(|peer| async move { peer.list_all_resources().await })
            .await
    }

    /// Every resource template, or none when the server has no resources capability.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>, TransportError> {
        if !self.has_capability(|c| c.resources.is_some()) {
            return Ok(Vec::new());
        }
        self.request(|peer| async move { peer.list_all_resource_templates().await })
            .await
    }

    /// `resources/read`.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, TransportError> {
        let mut params = ReadResourceRequestParams::new(uri);
        let inputs = self.input_rounds();
        self.request(|peer| async move {
            let mut rounds = InputRounds::new(inputs);
            loop {
                match peer.read_resource_once(params.clone()).await? {
                    ReadResourceResponse::Complete(result) => return Ok(result),
                    ReadResourceResponse::InputRequired(required) => {
                        (params.input_responses, params.request_state) =
                            rounds.answer(required).await?;
                    }
                    _ => return Err(ServiceError::UnexpectedResponse),
                }
            }
        })
        .await
    }

    /// `prompts/get`.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
    ) -> Result<GetPromptResult, TransportError> {
        let inputs = self.input_rounds();
        self.request(|peer| async move {
            let mut rounds = InputRounds::new(inputs);
            loop {
                match peer.get_prompt_once(params.clone()).await? {
                    GetPromptResponse::Complete(result) => return Ok(result),
                    GetPromptResponse::InputRequired(required) => {
                        (params.input_responses, params.request_state) =
                            rounds.answer(required).await?;
                    }
                    _ => return Err(ServiceError::UnexpectedResponse),
                }
            }
        })
        .await
    }

    /// A liveness probe that bypasses every cache: `ping` on sessions that have one (up to
    /// 2025-11-25), an uncached `server/discover` on 2026-07-28 sessions.
    ///
    /// # Errors
    /// See [`Connection::request`].
    pub async fn probe(&self) -> Result<(), TransportError> {
        let modern = self
            .live()?
            .peer
            .peer_info()
            .is_some_and(|i| !i.protocol_version.has_initialize());
        if modern {
            self.request(|peer| async move { peer.discover(Default::default()).await.map(|_| ()) })
                .await
        } else {
            self.request(|peer| async move {
                peer.send_request(ClientRequest::PingRequest(PingRequest::default()))
                    .await
                    .map(|_| ())
            })
            .await
        }
    }

    fn has_capability(&self, f: impl FnOnce(&rmcp::model::ServerCapabilities) -> bool) -> bool {
        self.live()
            .ok()
            .and_then(|l| l.peer.peer_info())
            .is_none_or(|info| f(&info.capabilities))
    }

    /// Starts closing the connection without waiting (for `Drop` implementations); the
    /// supervisor stops the session and the process group in the background.
    pub fn start_shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Closes the connection: in-flight requests fail, stdio processes are stopped (their whole
    /// process group), and the supervisor ends. Bounded by the spec's shutdown timeout.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let bound = self.inner.spec.shutdown_timeout + Duration::from_secs(1);
        let _ = tokio::time::timeout(bound, self.inner.supervisor_done.cancelled()).await;
    }
}

impl Inner {
    fn set_status(&self, f: impl FnOnce(&mut ConnectionStatus)) {
        self.status.send_modify(f);
    }

    fn emit(&self, kind: ServerEventKind) {
        let _ = self.events.send(ServerEvent {
            server: self.spec.name.clone(),
            kind,
        });
    }

    /// Ends the live session of `generation` (if it is still the live one): in-flight requests
    /// fail with `reason`, and the supervisor reconnects.
    fn mark_lost(&self, generation: u64, reason: String) {
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        if live.as_ref().is_some_and(|l| l.generation == generation)
            && let Some(old) = live.take()
        {
            *self
                .lost_reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(reason);
            old.lost.cancel();
            if !self.shutdown.is_cancelled() {
                self.set_status(|s| s.state = ConnectionState::Reconnecting);
            }
        }
    }
}

/// A session with what it needs to be watched and closed.
struct Session {
    running: RunningService<RoleClient, EventHandler>,
    process: Option<ChildProcess>,
}

async fn supervise(inner: Arc<Inner>) {
    let mut failures: VecDeque<Instant> = VecDeque::new();
    let mut backoff = inner.spec.reconnect.initial_backoff;
    let mut generation = 0_u64;
    loop {
        let attempt = tokio::select! {
            () = inner.shutdown.cancelled() => break,
            attempt = connect(&inner) => attempt,
        };
        match attempt {
            Ok(session) => {
                generation += 1;
                let connected_at = Instant::now();
                let reason = run_session(&inner, session, generation).await;
                if inner.shutdown.is_cancelled() {
                    break;
                }
                tracing::warn!(server = %inner.spec.name, %reason, "connection lost; reconnecting");
                inner.emit(ServerEventKind::Disconnected {
                    reason: reason.clone(),
                });
                inner.set_status(|s| {
                    s.state = ConnectionState::Reconnecting;
                    s.last_error = Some(reason);
                    s.pid = None;
                });
                // A session that lived long resets the back-off.
                if connected_at.elapsed() > inner.spec.reconnect.budget_window {
                    backoff = inner.spec.reconnect.initial_backoff;
                }
            }
            Err(error) => {
                tracing::warn!(server = %inner.spec.name, %error, "connection attempt failed");
                let permanent = error.is_permanent();
                inner.set_status(|s| {
                    s.state = if permanent {
                        ConnectionState::Failed
                    } else {
                        ConnectionState::Reconnecting
                    };
                    s.last_error = Some(error.to_string());
                    s.attempted = true;
                    s.needs_login = error.needs_login();
                });
                if permanent {
                    inner.emit(ServerEventKind::Failed {
                        reason: error.to_string(),
                    });
                    if !wait_for_restart(&inner, true).await {
                        break;
                    }
                    failures.clear();
                    backoff = inner.spec.reconnect.initial_backoff;
                    continue;
                }
            }
        }

        let now = Instant::now();
        failures.push_back(now);
        while failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > inner.spec.reconnect.budget_window)
        {
            failures.pop_front();
        }
        if failures.len() > inner.spec.reconnect.crash_budget as usize {
            let reason = inner.status.borrow().last_error.clone().unwrap_or_default();
            tracing::error!(server = %inner.spec.name, %reason, "crash budget spent; server marked failed");
            inner.set_status(|s| s.state = ConnectionState::Failed);
            inner.emit(ServerEventKind::Failed { reason });
            if !wait_for_restart(&inner, false).await {
                break;
            }
            // One attempt; another failure within the window marks it failed again at once.
            failures.clear();
            failures.extend(std::iter::repeat_n(
                Instant::now(),
                inner.spec.reconnect.crash_budget as usize,
            ));
            continue;
        }

        // Full jitter: a uniform delay in [0, backoff], so restarts of many clients spread out.
        let delay = rand::rng().random_range(Duration::ZERO..=backoff);
        backoff = (backoff * 2).min(inner.spec.reconnect.max_backoff);
        tokio::select! {
            () = inner.shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    inner.set_status(|s| {
        s.state = ConnectionState::Closed;
        s.attempted = true;
        s.pid = None;
    });
    inner.supervisor_done.cancel();
}

/// Waits while the server is marked failed: for a manual restart, or (unless the failure is
/// permanent) for `max_backoff`, after which one more attempt is made — so a server that
/// comes back is found again without anyone asking. False when the connection is shut down.
async fn wait_for_restart(inner: &Inner, permanent: bool) -> bool {
    let retry_later = async {
        if permanent {
            std::future::pending::<()>().await;
        } else {
            tokio::time::sleep(inner.spec.reconnect.max_backoff).await;
        }
    };
    tokio::select! {
        () = inner.shutdown.cancelled() => false,
        () = inner.restart.notified() => {
            inner.set_status(|s| s.state = ConnectionState::Reconnecting);
            true
        }
        () = retry_later => true,
    }
}

/// Serves one session until it is lost or the connection shuts down; returns why it ended.
async fn run_session(inner: &Arc<Inner>, session: Session, generation: u64) -> String {
    let Session {
        mut running,
        process,
    } = session;
    let peer = running.peer().clone();
    // Our cache layer owns caching; rmcp's would hide failures from health probes.
    peer.set_response_cache_config(rmcp::service::ClientCacheConfig::disabled())
        .await;
    let info = peer.peer_info();
    let lost = CancellationToken::new();
    *inner.live.write().unwrap_or_else(PoisonError::into_inner) = Some(Live {
        peer: peer.clone(),
        generation,
        lost: lost.clone(),
    });
    *inner
        .lost_reason
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = None;
    inner.set_status(|s| {
        s.state = ConnectionState::Ready;
        s.generation = generation;
        s.attempted = true;
        s.needs_login = false;
        s.pid = process.as_ref().map(ChildProcess::pid);
        s.protocol_version = info.as_ref().map(|i| i.protocol_version.to_string());
        s.server_info = info
            .as_ref()
            .and_then(|i| i.server_info.as_ref())
            .map(|i| format!("{} {}", i.name, i.version));
    });
    tracing::info!(
        server = %inner.spec.name,
        generation,
        protocol = info.as_ref().map(|i| i.protocol_version.to_string()).unwrap_or_default(),
        "connected"
    );
    inner.emit(ServerEventKind::Connected { generation });

    let listener = info
        .as_ref()
        .filter(|i| !i.protocol_version.has_initialize())
        .map(|_| tokio::spawn(listen_for_changes(Arc::clone(inner), peer.clone())));

    let mut exit = process
        .as_ref()
        .map(ChildProcess::exit_watch)
        .unwrap_or_else(|| watch::channel(None).1);
    let reason = loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => break "shut down".to_owned(),
            () = lost.cancelled() => {
                break inner
                    .lost_reason
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    .unwrap_or_else(|| "session lost".to_owned());
            }
            changed = exit.changed(), if process.is_some() => {
                let status = exit.borrow().clone();
                if changed.is_err() || status.is_some() {
                    let status = status.map_or_else(|| "exited".to_owned(), |ExitInfo(s)| s);
                    let tail = process.as_ref().map(ChildProcess::stderr_tail).unwrap_or_default();
                    let last = tail.last().map(|l| format!("; last stderr line: {l}")).unwrap_or_default();
                    break format!("server process exited ({status}){last}");
                }
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                if peer.is_transport_closed() {
                    break "the transport closed".to_owned();
                }
            }
        }
    };
    if let Some(listener) = listener {
        listener.abort();
    }
    // Fail everything still in flight on this session.
    inner.mark_lost(generation, reason.clone());
    // A stdio session usually ends because the process died: its exit status says more than
    // "the transport closed".
    let reason = match &process {
        Some(process)
            if !inner.shutdown.is_cancelled() && !reason.starts_with("server process exited") =>
        {
            match process.wait_exit(Duration::from_millis(200)).await {
                Some(ExitInfo(status)) => {
                    let tail = process.stderr_tail();
                    let last = tail
                        .last()
                        .map(|l| format!("; last stderr line: {l}"))
                        .unwrap_or_default();
                    format!("server process exited ({status}){last}")
                }
                None => reason,
            }
        }
        _ => reason,
    };
    let timeout = inner.spec.shutdown_timeout;
    let _ = running.close_with_timeout(timeout / 2).await;
    if let Some(process) = process {
        process.stop(timeout / 2).await;
    }
    reason
}

/// On 2026-07-28 sessions list-changed notifications only arrive on a `listen` subscription.
async fn listen_for_changes(inner: Arc<Inner>, peer: Peer<RoleClient>) {
    let filter = SubscriptionFilterBuilder::default()
        .tools_list_changed()
        .prompts_list_changed()
        .resources_list_changed()
        .build();
    let mut subscription = match peer.listen(filter).await {
        Ok(s) => s,
        Err(error) => {
            tracing::debug!(server = %inner.spec.name, %error, "server offers no listen subscription");
            return;
        }
    };
    while let Ok(Some(notification)) = subscription.next().await {
        let kind = match notification {
            ServerNotification::ToolListChangedNotification(_) => ServerEventKind::ToolListChanged,
            ServerNotification::PromptListChangedNotification(_) => {
                ServerEventKind::PromptListChanged
            }
            ServerNotification::ResourceListChangedNotification(_) => {
                ServerEventKind::ResourceListChanged
            }
            ServerNotification::ResourceUpdatedNotification(n) => {
                ServerEventKind::ResourceUpdated { uri: n.params.uri }
            }
            _ => continue,
        };
        inner.emit(kind);
    }
}

pub(crate) fn lifecycle(mode: ProtocolMode) -> ClientLifecycleMode {
    match mode {
        ProtocolMode::Legacy => ClientLifecycleMode::Initialize,
        ProtocolMode::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        ProtocolMode::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    }
}

async fn connect(inner: &Arc<Inner>) -> Result<Session, ConnectError> {
    let handler = EventHandler {
        server: inner.spec.name.clone(),
        events: inner.events.clone(),
        handlers: inner.spec.handlers.clone(),
    };
    let timeout = inner.spec.handshake_timeout;
    let mode = lifecycle(inner.spec.protocol);
    match &inner.spec.transport {
        TransportSpec::Stdio(stdio) => {
            let spawned = process::spawn(&inner.spec.name, stdio)?;
            inner.set_status(|s| s.pid = Some(spawned.process.pid()));
            let process = spawned.process;
            let garbage = spawned.garbage;
            let handshake = handler.serve_with_lifecycle((spawned.stdout, spawned.stdin), mode);
            let mut exit = process.exit_watch();
            let outcome = tokio::select! {
                result = tokio::time::timeout(timeout, handshake) => Some(result),
                _ = exit.wait_for(Option::is_some) => None,
            };
            let early_exit =
                |process: &ChildProcess, status: Option<ExitInfo>| ConnectError::ExitedEarly {
                    status: status.map_or_else(|| "still running".to_owned(), |ExitInfo(s)| s),
                    stderr: process.stderr_tail(),
                };
            let garbage_line = || {
                garbage
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            };
            match outcome {
                Some(Ok(Ok(running))) => Ok(Session {
                    running,
                    process: Some(process),
                }),
                Some(Ok(Err(error))) => {
                    // Give stderr and the exit status a moment to arrive: they explain more.
                    let status = process.wait_exit(Duration::from_millis(300)).await;
                    if let Some(line) = garbage_line() {
                        return Err(ConnectError::Garbage { line });
                    }
                    if status.is_some() {
                        return Err(early_exit(&process, status));
                    }
                    Err(ConnectError::Handshake(crate::error::error_chain(&error)))
                }
                Some(Err(_elapsed)) => match garbage_line() {
                    Some(line) => Err(ConnectError::Garbage { line }),
                    None => Err(ConnectError::HandshakeTimeout(timeout)),
                },
                None => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(line) = garbage_line() {
                        return Err(ConnectError::Garbage { line });
                    }
                    let status = process.wait_exit(Duration::ZERO).await;
                    Err(early_exit(&process, status))
                }
            }
        }
        TransportSpec::Http(http) => {
            let running = crate::http::connect(&inner.spec, http, handler, mode, timeout).await?;
            Ok(Session {
                running,
                process: None,
            })
        }
    }
}

/// The `input_required` rounds of one request (SEP-2322): each is answered with the
/// application's handlers, within rmcp's round limit.
struct InputRounds {
    server: ServerName,
    handlers: Option<SharedHandlers>,
    rounds: usize,
    state_only: usize,
}

impl InputRounds {
    fn new((server, handlers): (ServerName, Option<SharedHandlers>)) -> Self {
        Self {
            server,
            handlers,
            rounds: 0,
            state_only: 0,
        }
    }

    /// The input responses and the request state to send the request again with.
    async fn answer(
        &mut self,
        required: InputRequiredResult,
    ) -> Result<(Option<InputResponses>, Option<String>), ServiceError> {
        self.rounds += 1;
        if self.rounds >= handlers::MAX_INPUT_ROUNDS {
            return Err(ServiceError::InputRequiredRoundsExceeded {
                max_rounds: handlers::MAX_INPUT_ROUNDS,
            });
        }
        let requests = required.input_requests.unwrap_or_default();
        if requests.is_empty() && required.request_state.is_none() {
            return Err(ServiceError::UnexpectedResponse);
        }
        if requests.is_empty() {
            // The server is still working: pause before asking again.
            tokio::time::sleep(handlers::state_only_pause(self.state_only)).await;
            self.state_only += 1;
        } else {
            self.state_only = 0;
        }
        let responses =
            handlers::fulfill_input_requests(self.handlers.as_ref(), &self.server, requests)
                .await
                .map_err(ServiceError::McpError)?;
        Ok((
            (!responses.is_empty()).then_some(responses),
            required.request_state,
        ))
    }
}
