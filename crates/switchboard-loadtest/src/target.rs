//! The call paths under test and the calls they make.
//!
//! - **raw rmcp**: the live rmcp `Peer` of a connection (`Connection::peer`), called directly
//!   and wrapped in the same deadline. It is what an application holding an rmcp session does.
//! - **switchboard**: `Switchboard::call_with`, the full public call path (name resolution,
//!   and every policy the facade puts in the path as they land).
//! - **switchboard+otel**: the same call path with telemetry on (see `otel`).
//!
//! Each target has its own [`Switchboard`] and so its own server processes and sessions.

use std::{
    borrow::Cow,
    collections::BTreeMap,
    sync::{
        PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use switchboard::{
    CallOptions, Error, Switchboard,
    core::ErrorClass,
    rmcp::{
        ServiceError,
        model::{CallToolRequestParams, ErrorCode, JsonObject},
        service::{Peer, RoleClient},
    },
    transport::Connection,
};

use tokio::time::Instant;

use crate::record::Outcome;

/// How often a raw call without a live session looks for the connection's next one.
const PEER_POLL: Duration = Duration::from_millis(5);

/// Which path a target drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// The raw rmcp `Peer`.
    Raw,
    /// `Switchboard::call_with`.
    Stack,
    /// `Switchboard::call_with` with telemetry on: traces and metrics recorded by the
    /// OpenTelemetry SDK and handed to exporters that count them.
    StackOtel,
}

impl TargetKind {
    /// The name used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Raw => "raw rmcp",
            Self::Stack => "switchboard",
            Self::StackOtel => "switchboard+otel",
        }
    }
}

/// A tool call with an argument template.
#[derive(Debug, Clone)]
pub(crate) struct CallSpec {
    /// The tool as the stack names it (`server.tool` or a bare unique name).
    pub(crate) tool: String,
    arguments: JsonObject,
    templated: bool,
}

impl CallSpec {
    /// A call; in any string of `arguments`, `{i}` becomes the call's number and `{k}` its key
    /// (see [`Workload::with_keys`]).
    pub(crate) fn new(tool: impl Into<String>, arguments: serde_json::Value) -> Self {
        let arguments = match arguments {
            serde_json::Value::Object(map) => map,
            _ => JsonObject::new(),
        };
        let templated =
            serde_json::to_string(&arguments).is_ok_and(|s| s.contains("{i}") || s.contains("{k}"));
        Self {
            tool: tool.into(),
            arguments,
            templated,
        }
    }

    /// The arguments of call number `i`, whose key is `k`.
    fn arguments(&self, i: u64, k: u64) -> JsonObject {
        if !self.templated {
            return self.arguments.clone();
        }
        let values = [("{i}", i.to_string()), ("{k}", k.to_string())];
        let mut arguments = self.arguments.clone();
        for value in arguments.values_mut() {
            substitute(value, &values);
        }
        arguments
    }
}

fn substitute(value: &mut serde_json::Value, values: &[(&str, String)]) {
    match value {
        serde_json::Value::String(s) => {
            for (placeholder, number) in values {
                if s.contains(placeholder) {
                    *s = s.replace(placeholder, number);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, values)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| substitute(v, values)),
        _ => {}
    }
}

/// The calls of a workload: call `i` is `calls[pattern[i % pattern.len()]]`, with key
/// [`key`]`(i, keys)`.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    calls: Vec<CallSpec>,
    pattern: Vec<usize>,
    keys: u64,
}

impl Workload {
    /// The same call every time.
    pub(crate) fn single(call: CallSpec) -> Self {
        Self::patterned(vec![call], vec![0])
    }

    /// Calls in turn.
    pub(crate) fn round_robin(calls: Vec<CallSpec>) -> Self {
        let pattern = (0..calls.len()).collect();
        Self::patterned(calls, pattern)
    }

    /// Calls chosen by a pattern of indices into `calls`.
    pub(crate) fn patterned(calls: Vec<CallSpec>, pattern: Vec<usize>) -> Self {
        Self {
            calls,
            pattern,
            keys: 1,
        }
    }

    /// The same workload with `{k}` taking `keys` distinct values.
    pub(crate) fn with_keys(self, keys: u64) -> Self {
        Self {
            keys: keys.max(1),
            ..self
        }
    }

    fn index(&self, i: u64) -> usize {
        let len = self.pattern.len().max(1) as u64;
        self.pattern
            .get((i % len) as usize)
            .copied()
            .unwrap_or_default()
    }
}

/// The key of call number `i` among `keys`: a multiplicative (Fibonacci) hash of `i`, so that
/// consecutive calls spread over the keys evenly but in no visible order.
pub(crate) fn key(i: u64, keys: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % keys.max(1)
}

/// A raw call resolved once: the connection and the tool's name on its server.
struct RawCall {
    connection: Connection,
    tool: Cow<'static, str>,
    peer: RwLock<Option<Peer<RoleClient>>>,
}

impl RawCall {
    /// A live session: the one in hand, else the connection's current one. While there is
    /// none (the server crashed and is being restarted), waits for it until `deadline`,
    /// looking every 5 ms: what an application using rmcp directly does when it reconnects.
    async fn live_peer(&self, deadline: Instant) -> Result<Peer<RoleClient>, &'static str> {
        loop {
            let held = self
                .peer
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let candidate = match held {
                Some(peer) => Ok(peer),
                None => self.connection.peer().map_err(|e| e.class().as_str()),
            };
            let failure = match candidate {
                Ok(peer) if !peer.is_transport_closed() => {
                    *self.peer.write().unwrap_or_else(PoisonError::into_inner) = Some(peer.clone());
                    return Ok(peer);
                }
                Ok(_) => {
                    self.forget_peer();
                    ErrorClass::Transport.as_str()
                }
                Err(class) => class,
            };
            if Instant::now() + PEER_POLL >= deadline {
                return Err(failure);
            }
            tokio::time::sleep(PEER_POLL).await;
        }
    }

    fn forget_peer(&self) {
        *self.peer.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// One call path with its own servers.
pub(crate) struct Target {
    /// Which path.
    pub(crate) kind: TargetKind,
    /// The Switchboard owning this target's connections.
    pub(crate) switchboard: Switchboard,
    workload: Workload,
    raw: Vec<RawCall>,
    options: CallOptions,
    deadline: Duration,
    next: AtomicU64,
}

impl Target {
    /// A target over `switchboard`; resolves the workload's tools now.
    ///
    /// The stack targets call with the cache off (the rule for the overhead figure);
    /// see [`Target::with_cache`].
    ///
    /// # Errors
    /// A tool that the servers do not offer.
    pub(crate) fn new(
        kind: TargetKind,
        switchboard: Switchboard,
        workload: Workload,
        deadline: Duration,
    ) -> Result<Self> {
        let mut raw = Vec::new();
        for call in &workload.calls {
            let entry = switchboard.tool(&call.tool).with_context(|| {
                let servers: Vec<String> = switchboard
                    .servers()
                    .iter()
                    .map(|s| {
                        let error = s
                            .connection
                            .as_ref()
                            .and_then(|c| c.last_error.clone())
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default();
                        format!("{} ({}{error})", s.name, s.state())
                    })
                    .collect();
                format!(
                    "cannot call {:?}; servers: {}",
                    call.tool,
                    servers.join(", ")
                )
            })?;
            if kind != TargetKind::Raw {
                // The stack resolves names itself (a replica group has no one connection).
                continue;
            }
            let connection = switchboard.connection(&entry.server)?.clone();
            raw.push(RawCall {
                connection,
                tool: entry.tool.name.clone(),
                peer: RwLock::new(None),
            });
        }
        if workload.calls.is_empty() {
            bail!("empty workload");
        }
        Ok(Self {
            kind,
            switchboard,
            workload,
            raw,
            options: with_deadline(uncached(), deadline),
            deadline,
            next: AtomicU64::new(0),
        })
    }

    /// The same target calling with the tool cache on (for the tools the cache policy
    /// covers): what the cache scenario measures.
    pub(crate) fn with_cache(self) -> Self {
        Self {
            options: with_deadline(CallOptions::default(), self.deadline),
            ..self
        }
    }

    /// Calls started so far, warm-up included.
    pub(crate) fn issued(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Makes the next call of the workload.
    pub(crate) async fn call(&self) -> Outcome {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let index = self.workload.index(i);
        let Some(call) = self.workload.calls.get(index) else {
            return Outcome::Failed("not_found");
        };
        let arguments = call.arguments(i, key(i, self.workload.keys));
        match self.kind {
            TargetKind::Stack | TargetKind::StackOtel => self.call_stack(call, arguments).await,
            TargetKind::Raw => match self.raw.get(index) {
                Some(raw) => self.call_raw(raw, arguments).await,
                None => Outcome::Failed("not_found"),
            },
        }
    }

    async fn call_stack(&self, call: &CallSpec, arguments: JsonObject) -> Outcome {
        match self
            .switchboard
            .call_with(&call.tool, Some(arguments), self.options.clone())
            .await
        {
            Ok(output) if output.is_tool_error() => Outcome::Failed(ErrorClass::ToolError.as_str()),
            Ok(output) => Outcome::Ok {
                attempts: output.provenance.attempts,
            },
            Err(error) => Outcome::Failed(stack_class(&error)),
        }
    }

    async fn call_raw(&self, raw: &RawCall, arguments: JsonObject) -> Outcome {
        let deadline = Instant::now() + self.deadline;
        let peer = match raw.live_peer(deadline).await {
            Ok(peer) => peer,
            Err(class) => return Outcome::Failed(class),
        };
        let mut params = CallToolRequestParams::new(raw.tool.clone());
        params.arguments = Some(arguments);
        match tokio::time::timeout_at(deadline, peer.call_tool(params)).await {
            Ok(Ok(result)) if result.is_error == Some(true) => {
                Outcome::Failed(ErrorClass::ToolError.as_str())
            }
            Ok(Ok(_)) => Outcome::Ok { attempts: 1 },
            Ok(Err(error)) => {
                if matches!(
                    error,
                    ServiceError::TransportClosed | ServiceError::TransportSend(_)
                ) {
                    // The session may be gone: take the connection's next one.
                    raw.forget_peer();
                }
                Outcome::Failed(raw_class(&error).as_str())
            }
            Err(_) => Outcome::Failed(ErrorClass::Timeout.as_str()),
        }
    }

    /// Switchboard's counters of policy decisions (summed over servers: `retries`,
    /// `breaker_opens`, `rate_limited`, …) and of its tool cache (`cache_hits`, …), as they
    /// are now; `None` for raw rmcp, whose calls do not pass through them.
    pub(crate) fn counters(&self) -> Option<BTreeMap<String, u64>> {
        if self.kind == TargetKind::Raw {
            return None;
        }
        let mut counters = BTreeMap::new();
        for server in self.switchboard.servers() {
            if let Ok(serde_json::Value::Object(stats)) = serde_json::to_value(server.stats) {
                for (name, value) in stats {
                    if let Some(n) = value.as_u64() {
                        *counters.entry(name).or_default() += n;
                    }
                }
            }
        }
        if let Some(cache) = self.switchboard.cache_stats() {
            for (name, n) in [
                ("cache_hits", cache.hits),
                ("cache_misses", cache.misses),
                ("cache_coalesced", cache.coalesced),
                ("cache_loads", cache.loads),
                ("cache_stale_served", cache.stale_served),
                ("cache_load_errors", cache.load_errors),
                ("cache_evictions", cache.evictions),
            ] {
                counters.insert(name.to_owned(), n);
            }
        }
        Some(counters)
    }

    /// Process ids of this target's stdio servers.
    pub(crate) fn server_pids(&self) -> Vec<u32> {
        self.switchboard
            .servers()
            .iter()
            .filter_map(|s| s.connection.as_ref()?.pid)
            .collect()
    }
}

/// `options` with a deadline. (A function rather than struct syntax, so that new fields of
/// `CallOptions` keep their defaults.)
fn with_deadline(mut options: CallOptions, deadline: Duration) -> CallOptions {
    options.timeout = Some(deadline);
    options
}

/// Default call options without the cache.
fn uncached() -> CallOptions {
    CallOptions {
        no_cache: true,
        ..CallOptions::default()
    }
}

fn stack_class(error: &Error) -> &'static str {
    error.class().as_str()
}

/// Classifies an rmcp error in the vocabulary of [`ErrorClass`], as the transport crate does.
fn raw_class(error: &ServiceError) -> ErrorClass {
    match error {
        ServiceError::McpError(data) => match data.code {
            ErrorCode::INVALID_PARAMS | ErrorCode::INVALID_REQUEST | ErrorCode::PARSE_ERROR => {
                ErrorClass::InvalidInput
            }
            ErrorCode::METHOD_NOT_FOUND | ErrorCode::RESOURCE_NOT_FOUND => ErrorClass::NotFound,
            _ => ErrorClass::Server,
        },
        ServiceError::Timeout { .. } => ErrorClass::Timeout,
        ServiceError::UnexpectedResponse => ErrorClass::Protocol,
        _ => ErrorClass::Transport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_templated() {
        let call = CallSpec::new(
            "testkit.echo",
            serde_json::json!({ "message": "m{i}", "n": 1, "nested": ["{i}"] }),
        );
        let args = call.arguments(42, 3);
        assert_eq!(args["message"], "m42");
        assert_eq!(args["n"], 1);
        assert_eq!(args["nested"][0], "42");
        let fixed = CallSpec::new("a.b", serde_json::json!({ "x": "y" }));
        assert_eq!(fixed.arguments(7, 3)["x"], "y");
        let keyed = CallSpec::new("a.b", serde_json::json!({ "message": "key-{k}/{i}" }));
        assert_eq!(keyed.arguments(7, 3)["message"], "key-3/7");
    }

    #[test]
    fn keys_cover_their_range_evenly() {
        let keys = 256;
        let mut seen = vec![0_u32; 256];
        for i in 0..256 * 100 {
            seen[usize::try_from(key(i, keys)).expect("small")] += 1;
        }
        let (min, max) = (seen.iter().min(), seen.iter().max());
        assert!(min > Some(&50) && max < Some(&150), "{min:?}..{max:?}");
        // Consecutive calls do not walk the keys in order.
        assert_ne!(key(1, keys), key(0, keys) + 1);
        assert_eq!(key(5, 1), 0);
    }

    #[test]
    fn patterns_pick_calls() {
        let calls = vec![CallSpec::new("a", serde_json::json!({})); 3];
        let workload = Workload::patterned(calls.clone(), vec![0, 0, 2]);
        let picked: Vec<usize> = (0..6).map(|i| workload.index(i)).collect();
        assert_eq!(picked, [0, 0, 2, 0, 0, 2]);
        let rr = Workload::round_robin(calls);
        assert_eq!(rr.index(4), 1);
    }
}
