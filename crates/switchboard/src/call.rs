//! The call path of `tools/call`, outermost first:
//!
//! 1. cache (read-only or configured tools): fresh hit → answer; a load in flight for the same
//!    key → join it; miss → continue below in a detached load; failure → a stale value within
//!    the stale window, marked stale;
//! 2. overall deadline (the caller's, or the tool's, server's or default `call_timeout`);
//! 3. retry loop with jittered back-off and a shared retry budget — only for calls that are safe
//!    to repeat (`readOnlyHint`/`idempotentHint`, or the operator's `idempotent`), or for
//!    attempts that certainly never reached the server;
//! 4. per attempt: rate limiter → circuit breaker → bulkhead → attempt timeout → transport;
//! 5. on failure, a configured fallback (another tool, or a fixed text) answers, marked
//!    degraded.
//!
//! Tool errors (`isError: true`) are answers: never retried, never counted against the server.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, JsonObject, RequestMetaObject,
    ResourceContents,
};
use serde::{Deserialize, Serialize};
use switchboard_cache::{BoxError, Codec, Loaded, Served, json::JsonKey};
use switchboard_core::{ErrorClass, Provenance, ServerName};
use switchboard_registry::{health::Transition, routing::RouteRequest};
use switchboard_resilience::{
    Backoff, Classify, Jitter, Outcome as BreakerOutcome, Retry, RetryConfig, TimeoutError,
};
use switchboard_telemetry::{
    AuditRecord, CacheDecision, CallOutcome, Operation, OperationInfo, Outcome, Rejection,
    Transport,
};
use switchboard_transport::{ConnectionState, TransportError, TransportSpec};
use tokio::time::Instant;

use crate::{
    Error, Switchboard,
    catalog::{Route, ToolEntry},
    config::{Fallback, ResolvedPolicy},
    runtime::PolicyCounters,
    switchboard::{GroupSlot, Inner, ServerSlot},
};

/// What one call sends, whichever replica and attempt sends it.
#[derive(Debug, Clone)]
struct Request {
    arguments: Option<JsonObject>,
    /// `_meta` to send (W3C trace context), when no [`Operation`] writes it per attempt.
    meta: Option<JsonObject>,
    /// Tags a replica must have.
    tags: Vec<String>,
}

/// A successful answer of the retry loop.
#[derive(Debug)]
struct Answer {
    result: CallToolResult,
    attempts: u32,
    /// The server that answered.
    server: ServerName,
    /// Why the router chose it, for replica groups.
    route: Option<&'static str>,
}

impl Answer {
    /// The output of an uncached call that started at `started`.
    fn into_output(self, started: Instant, degraded: Option<String>) -> CallOutput {
        CallOutput {
            result: self.result,
            provenance: Provenance {
                server: self.server,
                latency: started.elapsed(),
                attempts: self.attempts,
            },
            cache: CacheState::Bypass,
            degraded,
        }
    }
}

/// Where a call's answer came from, as far as the cache is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CacheState {
    /// The tool is not cached: the answer came from the server.
    Bypass,
    /// Not in the cache: the answer came from the server now (and was stored).
    Miss,
    /// A fresh cached answer (from this process, or from the shared second level).
    Hit,
    /// Another caller's request for the same call was in flight; its answer was shared.
    Coalesced,
    /// The server failed and a cached answer past its freshness was served instead.
    Stale {
        /// Age of the answer.
        #[serde(rename = "age_ms", serialize_with = "millis")]
        age: Duration,
    },
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl CacheState {
    /// A short word: `bypass`, `miss`, `hit`, `coalesced`, `stale`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bypass => "bypass",
            Self::Miss => "miss",
            Self::Hit => "hit",
            Self::Coalesced => "coalesced",
            Self::Stale { .. } => "stale",
        }
    }
}

/// The answer of a tool call, with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutput {
    /// The tool's result as the server sent it.
    pub result: CallToolResult,
    /// Which server answered, after how long and how many attempts.
    pub provenance: Provenance,
    /// Whether the cache answered.
    pub cache: CacheState,
    /// Set when the answer is not the tool's own: a stale cached value or a fallback. Says why,
    /// so the application can tell its user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

impl CallOutput {
    /// Whether the tool reported a failure (`isError: true`).
    pub fn is_tool_error(&self) -> bool {
        self.result.is_error.unwrap_or(false)
    }

    /// Whether the answer is degraded (stale or from a fallback).
    pub fn is_degraded(&self) -> bool {
        self.degraded.is_some()
    }
}

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Deadline of this call; the configured one (tool, then server, then default) when absent.
    pub timeout: Option<Duration>,
    /// Skip the cache for this call (the answer still refreshes the cache entry).
    pub no_cache: bool,
    /// For tools of a replica group: only replicas with all these tags (placement `tags`:
    /// operator labels or declared capabilities) may answer.
    pub required_tags: Vec<String>,
    /// Who is calling, for the audit log.
    pub principal: Option<String>,
}

/// A cached tool result: what the server answered, and which server it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedCall {
    result: CallToolResult,
    server: ServerName,
    /// Attempts the load took.
    #[serde(default)]
    attempts: u32,
}

/// The tool-result cache.
pub(crate) type ToolCache = switchboard_cache::Cache<JsonKey, Arc<CachedCall>>;

/// Approximate size of a cached result, for the cache's byte bound: the payload bytes of each
/// content block (no serialisation on the insert path) plus fixed overheads.
pub(crate) fn weigh(key: &JsonKey, value: &Arc<CachedCall>) -> usize {
    let content: usize = value
        .result
        .content
        .iter()
        .map(|c| {
            96 + match c {
                ContentBlock::Text(t) => t.text.len(),
                ContentBlock::Image(i) => i.data.len() + i.mime_type.len(),
                ContentBlock::Audio(a) => a.data.len() + a.mime_type.len(),
                ContentBlock::Resource(r) => match &r.resource {
                    ResourceContents::TextResourceContents { uri, text, .. } => {
                        uri.len() + text.len()
                    }
                    ResourceContents::BlobResourceContents { uri, blob, .. } => {
                        uri.len() + blob.len()
                    }
                    _ => 256,
                },
                ContentBlock::ResourceLink(l) => l.uri.len() + l.name.len(),
                _ => 256,
            }
        })
        .sum();
    let structured = value
        .result
        .structured_content
        .as_ref()
        .map_or(0, |v| 64 + v.to_string().len());
    key.as_str().len() + content + structured + 256
}

/// Encodes cached results for the second level (Redis) as JSON.
#[derive(Debug)]
pub(crate) struct CallCodec;

impl Codec<JsonKey, Arc<CachedCall>> for CallCodec {
    fn encode_key(&self, key: &JsonKey) -> Vec<u8> {
        key.as_str().as_bytes().to_vec()
    }

    fn decode_key(&self, bytes: &[u8]) -> Option<JsonKey> {
        std::str::from_utf8(bytes)
            .ok()
            .map(|t| JsonKey::from_canonical(t.to_owned()))
    }

    fn encode_value(&self, value: &Arc<CachedCall>) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value.as_ref())?)
    }

    fn decode_value(&self, bytes: &[u8]) -> Result<Arc<CachedCall>, BoxError> {
        Ok(Arc::new(serde_json::from_slice(bytes)?))
    }
}

/// An attempt's failure with what the retry loop needs to know about it.
#[derive(Debug)]
struct AttemptError {
    error: Error,
    /// Whether the call may be repeated even if it reached the server.
    safe: bool,
    /// The overall deadline passed: no more attempts.
    deadline: bool,
}

impl Classify for AttemptError {
    fn is_retryable(&self) -> bool {
        !self.deadline
            && self.error.class().is_transient()
            && (self.safe || self.error.is_not_sent())
    }

    fn retry_after(&self) -> Option<Duration> {
        self.error.retry_after()
    }
}

impl From<TimeoutError> for AttemptError {
    fn from(_: TimeoutError) -> Self {
        // The retry loop's own deadline; the caller fills in server and operation.
        Self {
            error: Error::Timeout {
                server: ServerName::new(""),
                operation: String::new(),
                after: Duration::ZERO,
            },
            safe: false,
            deadline: true,
        }
    }
}

impl Switchboard {
    /// Calls a tool with the configured deadline.
    ///
    /// # Errors
    /// Unknown tool, server unavailable (not connected, circuit open, rate-limited, bulkhead
    /// full), transport or protocol failure, or timeout — after the retries the call was
    /// allowed, and unless a fallback answered. A tool that reports a failure returns `Ok` with
    /// [`CallOutput::is_tool_error`].
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
        let entry = self.tool_entry(name)?;
        let telemetry = &self.inner.telemetry;
        let mut op = if telemetry.is_enabled() {
            let start = |transport, protocol_version: Option<&str>| {
                telemetry.start_operation(&OperationInfo {
                    transport,
                    protocol_version,
                    ..OperationInfo::tool_call(&entry.server, &entry.tool.name)
                })
            };
            match entry.route {
                Route::Server(i) => {
                    let slot = &self.inner.servers[i];
                    let transport = match slot.config.spec.transport {
                        TransportSpec::Stdio(_) => Transport::Stdio,
                        TransportSpec::Http(_) => Transport::Http,
                    };
                    match &slot.connection {
                        // Read in place: copying the status would copy its strings.
                        Some(c) => {
                            c.with_status(|s| start(transport, s.protocol_version.as_deref()))
                        }
                        None => start(transport, None),
                    }
                }
                Route::Group(_) => start(Transport::Unknown, None),
            }
        } else {
            // A disabled handle returns a no-op operation without looking at the info.
            telemetry.start_operation(&OperationInfo::tool_call(&entry.server, &entry.tool.name))
        };
        let audit_arguments = self
            .inner
            .audit
            .as_ref()
            .map(|_| serde_json::Value::Object(arguments.clone().unwrap_or_default()));

        let started = Instant::now();
        let timeout = options.timeout.unwrap_or_else(|| {
            self.inner
                .config
                .call_timeout(&entry.server, &entry.tool.name)
        });
        let deadline = started + timeout;
        let policy = self.inner.policy(&entry);
        let key = match options.no_cache {
            true => None,
            false => self.cache_key(
                &entry,
                &policy,
                arguments.as_ref(),
                options.principal.as_deref(),
            ),
        };
        // The arguments are kept for a fallback only when there is one.
        let fallback_arguments = policy.fallback.as_ref().and_then(|_| arguments.clone());
        let request = Request {
            arguments,
            // A cached call's load may outlive this call and its operation: it gets the trace
            // context written once. An uncached call's attempts write theirs as they are sent.
            meta: key.as_ref().and_then(|_| trace_meta(&op)),
            tags: options.required_tags,
        };

        let result = match key {
            Some(key) => {
                self.call_cached(Arc::clone(&entry), request, deadline, key, &policy, started)
                    .await
            }
            _ => call_uncached(
                &self.inner,
                &entry,
                &request,
                Some(&op),
                deadline,
                timeout,
                &policy,
            )
            .await
            .map(|answer| {
                if let Some(reason) = answer.route {
                    op.route(&answer.server, reason);
                }
                answer.into_output(started, None)
            }),
        };
        let result = match (result, &policy.fallback) {
            (Ok(output), _) => Ok(output),
            (Err(error), Some(fallback))
                if error.class() != switchboard_core::ErrorClass::InvalidInput =>
            {
                let request = Request {
                    arguments: fallback_arguments,
                    meta: None,
                    tags: Vec::new(),
                };
                self.fallback(&entry, fallback, request, error, deadline, started)
                    .await
            }
            (Err(error), _) => Err(error),
        };
        self.observe(
            &mut op,
            &entry,
            &result,
            audit_arguments,
            options.principal.as_deref(),
        )
        .await;
        op.finish(match &result {
            Ok(output) if output.is_tool_error() => Outcome::tool_error(),
            Ok(_) => Outcome::OK,
            Err(Error::Transport(TransportError::Rpc { code, message, .. })) => {
                Outcome::rpc_error(i64::from(*code), message)
            }
            Err(error) => Outcome::error(error.class().as_str()),
        });
        result
    }

    /// Records a finished call on its span and in the audit log.
    async fn observe(
        &self,
        op: &mut Operation,
        entry: &ToolEntry,
        result: &Result<CallOutput, Error>,
        arguments: Option<serde_json::Value>,
        principal: Option<&str>,
    ) {
        if op.is_enabled() {
            match result {
                Ok(output) => {
                    op.cache(match output.cache {
                        CacheState::Bypass => CacheDecision::Bypass,
                        CacheState::Miss => CacheDecision::Miss,
                        CacheState::Hit => CacheDecision::Hit,
                        CacheState::Coalesced => CacheDecision::Coalesced,
                        CacheState::Stale { .. } => CacheDecision::Stale,
                    });
                    for attempt in 2..=output.provenance.attempts {
                        op.retry(attempt, Duration::ZERO);
                    }
                }
                Err(Error::CircuitOpen { .. }) => op.rejected(Rejection::CircuitOpen),
                Err(Error::RateLimited { .. }) => op.rejected(Rejection::RateLimited),
                Err(Error::BulkheadFull { .. }) => op.rejected(Rejection::BulkheadFull),
                Err(_) => {}
            }
        }
        let Some(audit) = &self.inner.audit else {
            return;
        };
        let mut record = match result {
            Ok(output) => {
                let mut record = AuditRecord::tool_call(
                    &output.provenance.server,
                    &entry.tool.name,
                    if output.is_tool_error() {
                        CallOutcome::Error
                    } else {
                        CallOutcome::Ok
                    },
                )
                .with_latency(output.provenance.latency)
                .with_attempts(output.provenance.attempts)
                .with_cache(output.cache.as_str());
                if output.is_tool_error() {
                    record = record.with_error_class(ErrorClass::ToolError.as_str());
                }
                if entry.is_group() {
                    record = record.with_route(&entry.server);
                }
                record
            }
            Err(error) => {
                AuditRecord::tool_call(&entry.server, &entry.tool.name, CallOutcome::Error)
                    .with_error_class(error.class().as_str())
            }
        };
        if let Some(arguments) = arguments {
            record = record.with_arguments(arguments);
        }
        if let Some(principal) = principal {
            record = record.with_principal(principal);
        }
        if let Err(error) = audit.append_async(record).await {
            tracing::error!(target: "switchboard::audit", %error, "cannot append to the audit log");
        }
    }

    /// The cache key of a call, when the tool's results may be cached.
    fn cache_key(
        &self,
        entry: &ToolEntry,
        policy: &ResolvedPolicy,
        arguments: Option<&JsonObject>,
        principal: Option<&str>,
    ) -> Option<JsonKey> {
        self.inner.cache.as_ref()?;
        let cacheable = policy.cache.unwrap_or_else(|| entry.is_read_only());
        if !cacheable {
            return None;
        }
        let empty = JsonObject::new();
        let arguments = arguments.unwrap_or(&empty);
        // A caller's identity scopes its entries: one principal never gets another's answers.
        Some(match principal {
            Some(principal) => JsonKey::scoped_object(
                &[entry.server.as_str(), &entry.tool.name, principal],
                arguments,
            ),
            None => JsonKey::scoped_object(&[entry.server.as_str(), &entry.tool.name], arguments),
        })
    }

    async fn call_cached(
        &self,
        entry: Arc<ToolEntry>,
        request: Request,
        deadline: Instant,
        key: JsonKey,
        policy: &ResolvedPolicy,
        started: Instant,
    ) -> Result<CallOutput, Error> {
        let Some(cache) = &self.inner.cache else {
            return Err(Error::InvalidArguments {
                tool: entry.name.clone(),
                message: "no cache".to_owned(),
            });
        };
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        let ttl = policy.cache_ttl;
        let timeout = deadline.saturating_duration_since(started);
        let load_policy = policy.clone();
        let load_entry = Arc::clone(&entry);
        let lookup = cache
            .get_or_load(key, &[entry.server.as_str()], move || async move {
                let inner = inner.upgrade().ok_or(Error::Timeout {
                    server: load_entry.server.clone(),
                    operation: "tools/call".to_owned(),
                    after: Duration::ZERO,
                })?;
                let answer = call_uncached(
                    &inner,
                    &load_entry,
                    &request,
                    None,
                    deadline,
                    timeout,
                    &load_policy,
                )
                .await?;
                let cached = Arc::new(CachedCall {
                    result: answer.result,
                    server: answer.server,
                    attempts: answer.attempts,
                });
                Ok::<_, Error>(if cached.result.is_error.unwrap_or(false) {
                    Loaded::uncached(cached)
                } else {
                    Loaded::with_ttl(cached, ttl)
                })
            })
            .await;
        match lookup {
            Ok(lookup) => {
                let (cache_state, degraded) = match lookup.served {
                    Served::Fresh => (CacheState::Miss, None),
                    Served::Hit | Served::SecondLevel => (CacheState::Hit, None),
                    Served::Coalesced => (CacheState::Coalesced, None),
                    Served::Stale { age } => (
                        CacheState::Stale { age },
                        Some(format!(
                            "server {} failed; serving a cached answer from {:.1}s ago",
                            lookup.value.server,
                            age.as_secs_f64()
                        )),
                    ),
                };
                Ok(CallOutput {
                    result: lookup.value.result.clone(),
                    provenance: Provenance {
                        server: lookup.value.server.clone(),
                        latency: started.elapsed(),
                        attempts: match cache_state {
                            CacheState::Miss => lookup.value.attempts,
                            _ => 0,
                        },
                    },
                    cache: cache_state,
                    degraded,
                })
            }
            Err(error) => Err(error
                .load_error()
                .and_then(|e| e.downcast_ref::<Error>())
                .cloned()
                .unwrap_or_else(|| Error::Timeout {
                    server: entry.server.clone(),
                    operation: format!("tools/call {} (cache load: {error})", entry.tool.name),
                    after: deadline.saturating_duration_since(started),
                })),
        }
    }

    async fn fallback(
        &self,
        entry: &ToolEntry,
        fallback: &Fallback,
        request: Request,
        error: Error,
        deadline: Instant,
        started: Instant,
    ) -> Result<CallOutput, Error> {
        let reason = format!("{} failed ({error}); answered by fallback", entry.name);
        if let Some(slot) = self.inner.slot_of(&entry.server) {
            PolicyCounters::bump(&slot.runtime.counters.fallbacks);
        }
        tracing::warn!(target: "switchboard::policy", tool = %entry.name, %error, "fallback answers");
        match fallback {
            Fallback::Text(text) => Ok(CallOutput {
                result: CallToolResult::success(vec![ContentBlock::text(text.clone())]),
                provenance: Provenance {
                    server: entry.server.clone(),
                    latency: started.elapsed(),
                    attempts: 0,
                },
                cache: CacheState::Bypass,
                degraded: Some(reason),
            }),
            Fallback::Tool(other) => {
                let other_entry = self.tool(other)?;
                let policy = self.inner.policy(&other_entry);
                let timeout = deadline.saturating_duration_since(started);
                let request = Request {
                    tags: Vec::new(),
                    ..request
                };
                let answer = call_uncached(
                    &self.inner,
                    &other_entry,
                    &request,
                    None,
                    deadline,
                    timeout,
                    &policy,
                )
                .await?;
                Ok(answer.into_output(started, Some(reason)))
            }
        }
    }
}

/// The `_meta` carrying `op`'s trace context (`None` when telemetry is off).
fn trace_meta(op: &Operation) -> Option<JsonObject> {
    let mut meta = JsonObject::new();
    op.inject_into_meta(&mut meta);
    (!meta.is_empty()).then_some(meta)
}

/// The retry loop around attempts, under the overall deadline. Returns the result and the
/// number of attempts. For a replica group, each attempt goes to a replica chosen by the
/// group's router, one not tried yet for this call while there is one.
async fn call_uncached(
    inner: &Inner,
    entry: &ToolEntry,
    request: &Request,
    trace: Option<&Operation>,
    deadline: Instant,
    timeout: Duration,
    policy: &ResolvedPolicy,
) -> Result<Answer, Error> {
    let first_slot = match &entry.route {
        Route::Server(i) => inner.servers.get(*i),
        Route::Group(g) => g.members.first().and_then(|&i| inner.servers.get(i)),
    }
    .ok_or_else(|| Error::UnknownServer {
        name: entry.server.to_string(),
    })?;
    let safe = policy
        .idempotent
        .unwrap_or_else(|| entry.is_read_only() || entry.is_idempotent());
    let retry = Retry::with_context(
        RetryConfig {
            max_attempts: policy.max_attempts,
            backoff: Backoff::Exponential {
                initial: policy.initial_backoff,
                max: policy.max_backoff,
                multiplier: 2.0,
                jitter: Jitter::Full,
            },
            ..RetryConfig::default()
        },
        first_slot.runtime.context.clone(),
    )
    .with_budget(inner.budget.clone());
    let mut attempts = 0_u32;
    let mut tried: Vec<usize> = Vec::new();
    let mut last: (usize, Option<&'static str>) = (0, None);
    // The attempt's own timer ends exactly at the deadline and reports a proper timeout; the
    // retry loop's deadline is a hair later so that the attempt's error wins the race.
    let loop_deadline = deadline + Duration::from_millis(5);
    let result = retry
        .call_until(loop_deadline, || {
            attempts += 1;
            // Made when sent (once per attempt, unless the server asks for input).
            let params = || {
                let mut p = CallToolRequestParams::new(entry.tool.name.clone());
                p.arguments = request.arguments.clone();
                p.meta = match trace {
                    Some(op) => trace_meta(op),
                    None => request.meta.clone(),
                }
                .map(RequestMetaObject::from);
                p
            };
            let target = match &entry.route {
                Route::Server(i) => Ok((*i, None)),
                Route::Group(g) => route(inner, g, &mut tried, &request.tags)
                    .map(|(i, r, reason)| (i, Some((g, r, reason)))),
            };
            if let Ok((i, replica)) = &target {
                last = (*i, replica.map(|(_, _, reason)| reason));
            }
            async move {
                let (i, replica) = target.map_err(|error| AttemptError {
                    error,
                    safe,
                    deadline: false,
                })?;
                let slot = &inner.servers[i];
                let guard = replica.map(|(g, r, _)| g.router.start(r));
                let result = attempt(slot, entry, params, policy, safe, deadline).await;
                if let Some(guard) = guard {
                    let failed = result
                        .as_ref()
                        .err()
                        .is_some_and(|e| e.error.class().counts_as_failure());
                    // A failure weighs like a slow call, so a failing replica does not look fast.
                    guard.finish(failed.then_some(Duration::from_secs(1)));
                }
                result
            }
        })
        .await;
    match result {
        Ok(value) => Ok(Answer {
            result: value,
            attempts,
            server: inner.servers[last.0].config.spec.name.clone(),
            route: last.1,
        }),
        // The call's deadline passed: report the call's timeout, not the last attempt's share.
        Err(e) if e.error.is_timeout() && Instant::now() >= deadline => Err(Error::Timeout {
            server: entry.server.clone(),
            operation: format!("tools/call {}", entry.tool.name),
            after: timeout,
        }),
        Err(e) => Err(e.error),
    }
}

/// Chooses the replica of `group` for the next attempt: one not in `tried` while there is
/// one, then any. Returns the server index and the replica index.
fn route(
    inner: &Inner,
    group: &GroupSlot,
    tried: &mut Vec<usize>,
    tags: &[String],
) -> Result<(usize, usize, &'static str), Error> {
    for (r, &i) in group.members.iter().enumerate() {
        let slot = &inner.servers[i];
        let connected = slot
            .connection
            .as_ref()
            .is_some_and(|c| c.state() == ConnectionState::Ready);
        group
            .router
            .set_available(r, connected && slot.runtime.is_available());
    }
    let request = RouteRequest {
        exclude: tried,
        region: inner.config.global.region.as_deref(),
        zone: inner.config.global.zone.as_deref(),
        required_tags: tags,
    };
    let pick = group
        .router
        .pick(&request)
        .or_else(|| {
            group.router.pick(&RouteRequest {
                exclude: &[],
                ..request
            })
        })
        .ok_or_else(|| Error::InvalidArguments {
            tool: group.name.to_string(),
            message: format!("no replica of group {} has the tags {tags:?}", group.name),
        })?;
    tried.push(pick.replica);
    let i = group.members[pick.replica];
    let slot = &inner.servers[i];
    PolicyCounters::bump(&slot.runtime.counters.routed);
    tracing::debug!(
        target: "switchboard::route",
        group = %group.name,
        replica = %slot.config.spec.name,
        reason = pick.reason.as_str(),
        "route chosen"
    );
    inner
        .telemetry
        .record_route(&group.name, &slot.config.spec.name, pick.reason.as_str());
    Ok((i, pick.replica, pick.reason.as_str()))
}

/// One attempt: rate limiter → breaker → bulkhead → attempt timeout → transport.
async fn attempt(
    slot: &ServerSlot,
    entry: &ToolEntry,
    params: impl Fn() -> CallToolRequestParams + Send,
    policy: &ResolvedPolicy,
    safe: bool,
    deadline: Instant,
) -> Result<CallToolResult, AttemptError> {
    let rt = &slot.runtime;
    let server = &slot.config.spec.name;
    let fail = |error: Error| AttemptError {
        error,
        safe,
        deadline: false,
    };
    let connection = slot.connection.as_ref().ok_or_else(|| {
        fail(Error::Disabled {
            server: server.clone(),
        })
    })?;
    // A server that is reconnecting is waited for (within the deadline) rather than failed:
    // a restart should look like a slow call, not an error. A failed one fails fast.
    if matches!(
        connection.state(),
        ConnectionState::Connecting | ConnectionState::Reconnecting
    ) {
        let wait = deadline.saturating_duration_since(Instant::now());
        connection
            .wait_ready(wait)
            .await
            .map_err(|e| fail(Error::from(e)))?;
    }
    let tool = slot.tool_limits.get(entry.tool.name.as_ref());
    let limiters = [tool.and_then(|t| t.limiter.as_ref()), rt.limiter.as_ref()];
    for limiter in limiters.into_iter().flatten() {
        limiter.acquire().await.map_err(|e| {
            fail(Error::RateLimited {
                server: server.clone(),
                retry_after: e.retry_after,
            })
        })?;
    }
    // A tool with a breaker of its own is judged by it alone.
    let breaker = tool
        .and_then(|t| t.breaker.as_ref())
        .or(rt.breaker.as_ref());
    let permit = match breaker {
        Some(breaker) => Some(breaker.try_acquire().map_err(|e| {
            fail(Error::CircuitOpen {
                server: server.clone(),
                state: e.state.as_str(),
                retry_after: e.retry_after,
            })
        })?),
        None => None,
    };
    let bulkhead_full = || {
        fail(Error::BulkheadFull {
            server: server.clone(),
        })
    };
    let _tool_slot = match tool.and_then(|t| t.bulkhead.as_ref()) {
        Some(bulkhead) => Some(bulkhead.acquire().await.map_err(|_| bulkhead_full())?),
        None => None,
    };
    let _slot = rt.bulkhead.acquire().await.map_err(|_| bulkhead_full())?;
    PolicyCounters::bump(&rt.counters.calls);
    let generation = connection.generation();
    let now = Instant::now();
    let attempt_deadline = match policy.attempt_timeout {
        Some(t) => (now + t).min(deadline),
        None => deadline,
    };
    let result =
        match tokio::time::timeout_at(attempt_deadline, connection.call_tool_with(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(Error::from(error)),
            Err(_) => {
                PolicyCounters::bump(&rt.counters.timeouts);
                Err(Error::Timeout {
                    server: server.clone(),
                    operation: format!("tools/call {}", entry.tool.name),
                    after: attempt_deadline.saturating_duration_since(now),
                })
            }
        };
    // An upstream 429/503 drains the local limiters until the server's Retry-After has passed,
    // so this client stops sending instead of queueing more rejections.
    if let Err(Error::Transport(TransportError::Overloaded { retry_after, .. })) = &result {
        let pause = retry_after.unwrap_or(Duration::from_secs(1));
        for limiter in limiters.into_iter().flatten() {
            limiter.penalize(pause);
        }
    }
    let failure = result
        .as_ref()
        .err()
        .is_some_and(|e| e.class().counts_as_failure());
    if let Some(permit) = permit {
        permit.record(if failure {
            BreakerOutcome::Failure
        } else {
            BreakerOutcome::Success
        });
    }
    if failure {
        PolicyCounters::bump(&rt.counters.failures);
    }
    rt.record_latency(now.elapsed());
    if rt.record_health_on(generation, !failure) != Transition::None {
        tracing::warn!(target: "switchboard::health", server = %server, health = rt.health().state.as_str(), "health changed");
    }
    let deadline_passed = Instant::now() >= deadline;
    result.map_err(|error| AttemptError {
        error,
        safe,
        deadline: deadline_passed,
    })
}
