//! One MCP request as seen by the client: a CLIENT span, its events and its metrics.

use std::{
    borrow::Cow,
    sync::Arc,
    time::{Duration, Instant},
};

use opentelemetry::{
    Context, KeyValue, StringValue, Value,
    trace::{Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer},
};
use opentelemetry_sdk::trace::Span;
use serde_json::Map;

use crate::{
    semconv as sc,
    series::Series,
    telemetry::{Inner, name_value},
};

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A child process over stdin/stdout (`network.transport = pipe`).
    Stdio,
    /// Streamable HTTP (`network.transport = tcp`, `network.protocol.name = http`).
    Http,
    /// Not known; no network attributes are recorded.
    Unknown,
}

impl Transport {
    /// The `network.transport` value, if known.
    pub fn network_transport(self) -> Option<&'static str> {
        match self {
            Self::Stdio => Some(sc::TRANSPORT_PIPE),
            Self::Http => Some(sc::TRANSPORT_TCP),
            Self::Unknown => None,
        }
    }
}

/// What a request is about, which names the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target<'a> {
    /// Nothing (`tools/list`, `ping`, …): the span is named after the method alone.
    None,
    /// A tool (`tools/call`): `gen_ai.tool.name`, span `tools/call {tool}`.
    Tool(&'a str),
    /// A prompt (`prompts/get`): `gen_ai.prompt.name`, span `prompts/get {prompt}`.
    Prompt(&'a str),
    /// A resource (`resources/read`): `mcp.resource.uri` on the span only; the URI never
    /// appears in the span name or on metrics.
    Resource(&'a str),
}

/// Describes an MCP request for [`Telemetry::start_operation`](crate::Telemetry::start_operation).
///
/// Build it with [`OperationInfo::new`] or [`OperationInfo::tool_call`] and fill in what is
/// known with struct update syntax. Everything is borrowed; nothing is copied while telemetry
/// is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationInfo<'a> {
    /// The JSON-RPC method (`tools/call`, `resources/read`, …).
    pub method: &'a str,
    /// The tool, prompt or resource.
    pub target: Target<'a>,
    /// The configured name of the server (`switchboard.server.name`).
    pub server: &'a str,
    /// How the server is reached.
    pub transport: Transport,
    /// The negotiated protocol revision (`mcp.protocol.version`).
    pub protocol_version: Option<&'a str>,
    /// The MCP session id (`mcp.session.id`, spans only).
    pub session_id: Option<&'a str>,
    /// The server's host (`server.address`, HTTP servers).
    pub server_address: Option<&'a str>,
    /// The server's port (`server.port`, HTTP servers).
    pub server_port: Option<u16>,
}

impl<'a> OperationInfo<'a> {
    /// A request of `method` to `server` with nothing else known.
    pub fn new(method: &'a str, server: &'a str) -> Self {
        Self {
            method,
            target: Target::None,
            server,
            transport: Transport::Unknown,
            protocol_version: None,
            session_id: None,
            server_address: None,
            server_port: None,
        }
    }

    /// A `tools/call` of `tool` on `server`.
    pub fn tool_call(server: &'a str, tool: &'a str) -> Self {
        Self {
            target: Target::Tool(tool),
            ..Self::new(sc::METHOD_TOOLS_CALL, server)
        }
    }
}

/// How a request ended, for [`Operation::finish`].
///
/// `error_type` must come from a closed set (an error class such as `timeout`, or
/// [`TOOL_ERROR`](crate::semconv::TOOL_ERROR)): it becomes a metric attribute. When only
/// `status_code` is set, `error.type` is the code as a string, as the semconv asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome<'a> {
    /// The error class, `None` on success.
    pub error_type: Option<&'static str>,
    /// The JSON-RPC error code of the response, if it was an error response.
    pub status_code: Option<i64>,
    /// A description for the span status (the JSON-RPC error message); spans only.
    pub message: Option<&'a str>,
}

impl<'a> Outcome<'a> {
    /// Success.
    pub const OK: Outcome<'static> = Outcome {
        error_type: None,
        status_code: None,
        message: None,
    };

    /// A failure of class `error_type` (e.g. `timeout`, `transport`).
    pub fn error(error_type: &'static str) -> Self {
        Self {
            error_type: Some(error_type),
            ..Self::default()
        }
    }

    /// A tool result with `isError: true` (`error.type = tool_error`).
    pub fn tool_error() -> Self {
        Self::error(sc::TOOL_ERROR)
    }

    /// A JSON-RPC error response with `code` and `message`.
    pub fn rpc_error(code: i64, message: &'a str) -> Self {
        Self {
            error_type: None,
            status_code: Some(code),
            message: Some(message),
        }
    }

    fn is_error(&self) -> bool {
        self.error_type.is_some() || self.status_code.is_some()
    }
}

/// A value of a span event or child span attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

/// An attribute of a span event or child span, borrowed until telemetry needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attr<'a> {
    /// The attribute name.
    pub key: &'static str,
    /// The value.
    pub value: AttrValue<'a>,
}

impl<'a> Attr<'a> {
    /// A string attribute.
    pub fn str(key: &'static str, value: &'a str) -> Self {
        Self {
            key,
            value: AttrValue::Str(value),
        }
    }

    /// An integer attribute.
    pub fn i64(key: &'static str, value: i64) -> Self {
        Self {
            key,
            value: AttrValue::I64(value),
        }
    }

    /// A float attribute.
    pub fn f64(key: &'static str, value: f64) -> Self {
        Self {
            key,
            value: AttrValue::F64(value),
        }
    }

    /// A boolean attribute.
    pub fn bool(key: &'static str, value: bool) -> Self {
        Self {
            key,
            value: AttrValue::Bool(value),
        }
    }

    fn to_key_value(self) -> KeyValue {
        let value = match self.value {
            AttrValue::Str(s) => Value::String(StringValue::from(s.to_owned())),
            AttrValue::I64(i) => Value::I64(i),
            AttrValue::F64(f) => Value::F64(f),
            AttrValue::Bool(b) => Value::Bool(b),
        };
        KeyValue::new(self.key, value)
    }
}

fn key_values(attrs: &[Attr<'_>]) -> Vec<KeyValue> {
    attrs.iter().map(|a| a.to_key_value()).collect()
}

/// Why a local policy rejected a call before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The circuit breaker is open.
    CircuitOpen,
    /// The rate limiter had no permit.
    RateLimited,
    /// The bulkhead was full.
    BulkheadFull,
    /// An authorization policy denied the call.
    Denied,
}

impl Rejection {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CircuitOpen => "circuit_open",
            Self::RateLimited => "rate_limited",
            Self::BulkheadFull => "bulkhead_full",
            Self::Denied => "denied",
        }
    }
}

/// How the cache served a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheDecision {
    /// A fresh entry answered.
    Hit,
    /// No usable entry: the call went to the server.
    Miss,
    /// A stale entry answered (stale-while-revalidate or stale-if-error).
    Stale,
    /// The call joined a load already in flight for the same key.
    Coalesced,
    /// The call is not cacheable and skipped the cache.
    Bypass,
}

impl CacheDecision {
    /// How many decisions there are.
    pub(crate) const COUNT: usize = 5;

    /// A distinct index below [`COUNT`](Self::COUNT).
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Hit => 0,
            Self::Miss => 1,
            Self::Stale => 2,
            Self::Coalesced => 3,
            Self::Bypass => 4,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
            Self::Coalesced => "coalesced",
            Self::Bypass => "bypass",
        }
    }
}

/// The instrumentation of one MCP request: a CLIENT span named `{mcp.method.name} {target}`
/// plus the `mcp.client.operation.duration` and `switchboard.client.calls` metrics, recorded by
/// [`finish`](Self::finish).
///
/// Dropping an unfinished operation finishes it with `error.type = cancelled` (the caller gave
/// up on the call). A disabled operation (from a disabled [`Telemetry`](crate::Telemetry)) is a
/// `None` inside: every method returns at once.
#[derive(Debug)]
#[must_use = "an operation measures until it is finished or dropped"]
pub struct Operation {
    /// Boxed: the span is a few hundred bytes, and an operation lives in its caller's future,
    /// which a disabled operation should not grow.
    active: Option<Box<Active>>,
}

#[derive(Debug)]
struct Active {
    inner: Arc<Inner>,
    /// The span name, attributes and bound instruments of this kind of operation.
    series: Arc<Series>,
    /// This operation's span, owned here rather than put in a [`Context`]: recording on it
    /// takes no lock, and starting it allocates no shared cell.
    span: Span,
    /// The context the operation started in (the parent span, baggage).
    parent: Context,
    start: Instant,
}

/// `error.type` of an operation dropped before it was finished.
pub(crate) const CANCELLED: &str = "cancelled";

impl Operation {
    pub(crate) const DISABLED: Operation = Operation { active: None };

    pub(crate) fn start(inner: &Arc<Inner>, info: &OperationInfo<'_>, parent: &Context) -> Self {
        let series = inner.series.get(info);
        // Room for the resource URI, the session id and the cache decision.
        let mut span_attrs = Vec::with_capacity(series.metric_attrs.len() + 3);
        if let Target::Resource(uri) = info.target {
            span_attrs.push(KeyValue::new(sc::MCP_RESOURCE_URI, uri.to_owned()));
        }
        span_attrs.extend_from_slice(&series.metric_attrs);
        if let Some(session) = info.session_id {
            span_attrs.push(KeyValue::new(sc::MCP_SESSION_ID, session.to_owned()));
        }

        let builder = SpanBuilder::from_name(series.span_name.clone())
            .with_kind(SpanKind::Client)
            .with_attributes(span_attrs);
        let span = inner.tracer.build_with_context(builder, parent);
        series.in_flight(&inner.instruments).add(1);
        Self {
            active: Some(Box::new(Active {
                inner: Arc::clone(inner),
                series,
                span,
                parent: parent.clone(),
                start: Instant::now(),
            })),
        }
    }

    /// Whether this operation records anything.
    pub fn is_enabled(&self) -> bool {
        self.active.is_some()
    }

    /// An OpenTelemetry context whose span is this operation's (its span context, with the
    /// parent's baggage): attach it (`cx.attach()`) to make the operation the parent of spans
    /// created meanwhile, or inject it elsewhere. Record on the operation itself; the context's
    /// span only carries the ids. Empty when disabled.
    pub fn context(&self) -> Context {
        self.active
            .as_ref()
            .map_or_else(Context::new, |active| active.context())
    }

    /// Writes `traceparent`, `tracestate` and `baggage` for this operation's span into a
    /// request's `_meta` object, so the server continues the trace. Does nothing when disabled.
    pub fn inject_into_meta(&self, meta: &mut Map<String, serde_json::Value>) {
        if let Some(active) = &self.active {
            crate::propagation::inject(active.span.span_context(), &active.parent, meta);
        }
    }

    /// Adds a span event named `name` with `attrs`.
    pub fn event(&mut self, name: &'static str, attrs: &[Attr<'_>]) {
        if let Some(active) = &mut self.active {
            active.span.add_event(name, key_values(attrs));
        }
    }

    /// Records that attempt `attempt` (starting at 1) failed and the call is retried after
    /// `delay`: a `retry` span event and one `switchboard.client.retries`.
    pub fn retry(&mut self, attempt: u32, delay: Duration) {
        if let Some(active) = &mut self.active {
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            active.span.add_event(
                sc::EVENT_RETRY,
                vec![
                    KeyValue::new(sc::RETRY_ATTEMPT, i64::from(attempt)),
                    KeyValue::new(sc::RETRY_DELAY_MS, delay_ms),
                ],
            );
            active
                .inner
                .instruments
                .retries
                .add(1, &active.series.server_tool);
        }
    }

    /// Records that the retry budget refused a retry: a span event and one
    /// `switchboard.client.retry_budget.exhausted`.
    pub fn retry_budget_exhausted(&mut self) {
        if let Some(active) = &mut self.active {
            active
                .span
                .add_event(sc::EVENT_RETRY_BUDGET_EXHAUSTED, Vec::new());
            active
                .inner
                .instruments
                .retry_budget_exhausted
                .add(1, &active.series.server_tool);
        }
    }

    /// Records how the cache served the call: the span attribute `switchboard.cache.decision`,
    /// a `cache` span event when the cache was consulted (any decision but
    /// [`Bypass`](CacheDecision::Bypass)), and one `switchboard.cache.lookups`.
    pub fn cache(&mut self, decision: CacheDecision) {
        if let Some(active) = &mut self.active {
            let value = KeyValue::new(sc::CACHE_DECISION, decision.as_str());
            if decision != CacheDecision::Bypass {
                active.span.add_event(sc::EVENT_CACHE, vec![value.clone()]);
            }
            active.span.set_attribute(value);
            active
                .series
                .cache_lookups(&active.inner.instruments, decision)
                .add(1);
        }
    }

    /// Records that the router chose `replica` for an attempt, and why (a closed-set name such
    /// as `lower_cost` or `failover`): a `route` span event and one `switchboard.route.choices`
    /// with this operation's server as the group.
    pub fn route(&mut self, replica: &str, reason: &'static str) {
        if let Some(active) = &mut self.active {
            let replica = KeyValue::new(sc::ROUTE_REPLICA, name_value(replica));
            let reason = KeyValue::new(sc::ROUTE_REASON, reason);
            active
                .span
                .add_event(sc::EVENT_ROUTE, vec![replica.clone(), reason.clone()]);
            let group = KeyValue::new(sc::ROUTE_GROUP, active.series.server_tool[0].value.clone());
            active
                .inner
                .instruments
                .route_choices
                .add(1, &[group, replica, reason]);
        }
    }

    /// Records that a local policy rejected an attempt: a `rejected` span event and one
    /// `switchboard.client.rejections`.
    pub fn rejected(&mut self, reason: Rejection) {
        if let Some(active) = &mut self.active {
            let value = KeyValue::new(sc::REJECTION_REASON, reason.as_str());
            active
                .span
                .add_event(sc::EVENT_REJECTED, vec![value.clone()]);
            active
                .inner
                .instruments
                .rejections
                .add(1, &with(&active.series.server_tool, value));
        }
    }

    /// Starts an INTERNAL child span (e.g. one per attempt) named `name`.
    pub fn child(&self, name: &'static str, attrs: &[Attr<'_>]) -> ChildSpan {
        match &self.active {
            None => ChildSpan { cx: None },
            Some(active) => {
                let builder = SpanBuilder::from_name(name)
                    .with_kind(SpanKind::Internal)
                    .with_attributes(key_values(attrs));
                let cx = active.context();
                let span = active.inner.tracer.build_with_context(builder, &cx);
                ChildSpan {
                    cx: Some(cx.with_span(span)),
                }
            }
        }
    }

    /// Ends the span with `outcome` and records the duration and call metrics.
    pub fn finish(mut self, outcome: Outcome<'_>) {
        if let Some(active) = self.active.take() {
            active.finish(&outcome);
        }
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if let Some(active) = self.active.take() {
            active.finish(&Outcome::error(CANCELLED));
        }
    }
}

impl Active {
    fn context(&self) -> Context {
        self.parent
            .with_remote_span_context(self.span.span_context().clone())
    }

    fn finish(mut self, outcome: &Outcome<'_>) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let span = &mut self.span;
        let instruments = &self.inner.instruments;
        let series = &self.series;
        if outcome.is_error() {
            let error_type = error_type_value(outcome);
            let error_type = KeyValue::new(sc::ERROR_TYPE, error_type);
            span.set_attribute(error_type.clone());
            let mut metric_attrs = Vec::with_capacity(series.metric_attrs.len() + 2);
            metric_attrs.extend_from_slice(&series.metric_attrs);
            metric_attrs.push(error_type.clone());
            if let Some(code) = outcome.status_code {
                let code = KeyValue::new(sc::RPC_RESPONSE_STATUS_CODE, code.to_string());
                span.set_attribute(code.clone());
                metric_attrs.push(code);
            }
            let description: Cow<'static, str> = match (outcome.message, outcome.error_type) {
                (Some(message), _) => message.to_owned().into(),
                (None, Some(error_type)) => error_type.into(),
                (None, None) => "".into(),
            };
            span.set_status(Status::error(description));
            span.end();
            let mut calls_attrs = series.calls_attrs();
            calls_attrs.push(KeyValue::new(sc::OUTCOME, "error"));
            calls_attrs.push(error_type);
            instruments
                .operation_duration
                .record(elapsed, &metric_attrs);
            instruments.calls.add(1, &calls_attrs);
        } else {
            span.end();
            series.duration_ok(instruments).record(elapsed);
            series.calls_ok(instruments).add(1);
        }
        series.in_flight(instruments).add(-1);
    }
}

fn error_type_value(outcome: &Outcome<'_>) -> Value {
    match (outcome.error_type, outcome.status_code) {
        (Some(error_type), _) => Value::from(error_type),
        (None, Some(code)) => Value::from(code.to_string()),
        (None, None) => Value::from(sc::ERROR_OTHER),
    }
}

fn with(base: &[KeyValue], extra: KeyValue) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(base.len() + 1);
    attrs.extend_from_slice(base);
    attrs.push(extra);
    attrs
}

/// A child span of an [`Operation`], e.g. one attempt. Ends when finished or dropped.
#[derive(Debug)]
#[must_use = "a child span measures until it is finished or dropped"]
pub struct ChildSpan {
    cx: Option<Context>,
}

impl ChildSpan {
    /// Adds a span event named `name` with `attrs`.
    pub fn event(&mut self, name: &'static str, attrs: &[Attr<'_>]) {
        if let Some(cx) = &self.cx {
            cx.span().add_event(name, key_values(attrs));
        }
    }

    /// Writes `traceparent`, `tracestate` and `baggage` for this span into `_meta`.
    pub fn inject_into_meta(&self, meta: &mut Map<String, serde_json::Value>) {
        if let Some(cx) = &self.cx {
            let span = cx.span();
            crate::propagation::inject(span.span_context(), cx, meta);
        }
    }

    /// Ends the span; an error outcome sets `error.type` and an error status.
    pub fn finish(mut self, outcome: Outcome<'_>) {
        if let Some(cx) = self.cx.take() {
            let span = cx.span();
            if outcome.is_error() {
                span.set_attribute(KeyValue::new(sc::ERROR_TYPE, error_type_value(&outcome)));
                span.set_status(Status::error(
                    outcome.message.unwrap_or_default().to_owned(),
                ));
            }
            span.end();
        }
    }
}

impl Drop for ChildSpan {
    fn drop(&mut self) {
        if let Some(cx) = self.cx.take() {
            cx.span().end();
        }
    }
}
