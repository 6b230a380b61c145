//! Names of the attributes and metrics this crate emits.
//!
//! The MCP and GenAI names follow the OpenTelemetry semantic conventions for MCP (semconv
//! v1.39 to v1.41, status *Development*; since v1.42 they live in the
//! `semantic-conventions-genai` repository). They are defined here rather than taken from
//! `opentelemetry-semantic-conventions`, where the `MCP_*` constants are experimental and
//! deprecated ("moved").
//!
//! Switchboard's own names carry the `switchboard.` prefix. Every metric attribute is either a
//! configured name (server, tool, prompt) or a value from a closed set; arguments, URIs and
//! free text only ever go on spans, never on metrics.

// ---------------------------------------------------------------------------------------------
// MCP and GenAI semantic-convention attributes
// ---------------------------------------------------------------------------------------------

/// The JSON-RPC method of the request, e.g. `tools/call` (required).
pub const MCP_METHOD_NAME: &str = "mcp.method.name";
/// The negotiated MCP protocol revision, e.g. `2025-06-18`.
pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
/// The MCP session id (absent for stateless 2026-07-28 servers). Spans only.
pub const MCP_SESSION_ID: &str = "mcp.session.id";
/// The URI of the resource of `resources/read` and similar. Spans only (opt-in on metrics).
pub const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
/// The name of the tool of `tools/call`.
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// The name of the prompt of `prompts/get`.
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
/// The GenAI operation; [`EXECUTE_TOOL`] on `tools/call`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The class of the error: the JSON-RPC error code as a string, [`TOOL_ERROR`] when a tool
/// result has `isError: true`, or a low-cardinality name such as `timeout`.
pub const ERROR_TYPE: &str = "error.type";
/// The JSON-RPC error code of the response, as a string (e.g. `-32602`).
pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
/// The transport: [`TRANSPORT_PIPE`] for stdio, [`TRANSPORT_TCP`] for HTTP.
pub const NETWORK_TRANSPORT: &str = "network.transport";
/// The application protocol under MCP: `http` for streamable HTTP.
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
/// The server's host name or address (HTTP servers).
pub const SERVER_ADDRESS: &str = "server.address";
/// The server's port (HTTP servers).
pub const SERVER_PORT: &str = "server.port";

/// `gen_ai.operation.name` value for `tools/call`.
pub const EXECUTE_TOOL: &str = "execute_tool";
/// `error.type` value for a tool result with `isError: true`.
pub const TOOL_ERROR: &str = "tool_error";
/// `error.type` fallback value when nothing more specific is known.
pub const ERROR_OTHER: &str = "_OTHER";
/// `network.transport` value for stdio servers.
pub const TRANSPORT_PIPE: &str = "pipe";
/// `network.transport` value for HTTP servers.
pub const TRANSPORT_TCP: &str = "tcp";
/// The `tools/call` method.
pub const METHOD_TOOLS_CALL: &str = "tools/call";
/// The `prompts/get` method.
pub const METHOD_PROMPTS_GET: &str = "prompts/get";
/// The `resources/read` method.
pub const METHOD_RESOURCES_READ: &str = "resources/read";

// ---------------------------------------------------------------------------------------------
// Switchboard attributes
// ---------------------------------------------------------------------------------------------

/// The configured (logical) name of the MCP server.
pub const SERVER_NAME: &str = "switchboard.server.name";
/// How a call ended: `ok` or `error` (see [`ERROR_TYPE`] for the class).
pub const OUTCOME: &str = "switchboard.outcome";
/// The number of the attempt that failed and is retried, starting at 1. Spans only.
pub const RETRY_ATTEMPT: &str = "switchboard.retry.attempt";
/// The wait before the next attempt, in milliseconds. Spans only.
pub const RETRY_DELAY_MS: &str = "switchboard.retry.delay_ms";
/// A circuit breaker state (`closed`, `open`, `half_open`, …).
pub const BREAKER_STATE: &str = "switchboard.breaker.state";
/// The breaker state before a transition.
pub const BREAKER_FROM: &str = "switchboard.breaker.from";
/// The breaker state after a transition.
pub const BREAKER_TO: &str = "switchboard.breaker.to";
/// Why a call was rejected before it was sent (see [`Rejection`](crate::Rejection)).
pub const REJECTION_REASON: &str = "switchboard.rejection.reason";
/// How the cache served a lookup (see [`CacheDecision`](crate::CacheDecision)).
pub const CACHE_DECISION: &str = "switchboard.cache.decision";
/// The replica group (or logical server) a route was chosen in.
pub const ROUTE_GROUP: &str = "switchboard.route.group";
/// The server a route chose.
pub const ROUTE_REPLICA: &str = "switchboard.route.replica";
/// Why the router chose that replica (`lower_cost`, `priority`, `failover`, …).
pub const ROUTE_REASON: &str = "switchboard.route.reason";
/// A server's health state (see [`HealthState`](crate::HealthState)).
pub const HEALTH_STATE: &str = "switchboard.health.state";

// ---------------------------------------------------------------------------------------------
// Span event names
// ---------------------------------------------------------------------------------------------

/// Span event: an attempt failed and the call is retried.
pub const EVENT_RETRY: &str = "retry";
/// Span event: the retry budget refused a retry.
pub const EVENT_RETRY_BUDGET_EXHAUSTED: &str = "retry_budget_exhausted";
/// Span event: the cache decided how to serve the call.
pub const EVENT_CACHE: &str = "cache";
/// Span event: the router chose a replica.
pub const EVENT_ROUTE: &str = "route";
/// Span event: a local policy rejected the call (breaker, rate limiter, bulkhead).
pub const EVENT_REJECTED: &str = "rejected";

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// Histogram (seconds): duration of MCP requests as seen by the client (MCP semconv).
pub const METRIC_OPERATION_DURATION: &str = "mcp.client.operation.duration";
/// Histogram (seconds): duration of MCP sessions as seen by the client (MCP semconv).
pub const METRIC_SESSION_DURATION: &str = "mcp.client.session.duration";
/// Counter: finished calls by server, method, tool, outcome and `error.type`.
pub const METRIC_CALLS: &str = "switchboard.client.calls";
/// Counter: retries (attempts after the first) by server and tool.
pub const METRIC_RETRIES: &str = "switchboard.client.retries";
/// Counter: retries refused because the retry budget was empty, by server and tool.
pub const METRIC_RETRY_BUDGET_EXHAUSTED: &str = "switchboard.client.retry_budget.exhausted";
/// Counter: calls rejected before they were sent, by server, tool and reason.
pub const METRIC_REJECTIONS: &str = "switchboard.client.rejections";
/// Up-down counter: calls in flight per server.
pub const METRIC_IN_FLIGHT: &str = "switchboard.client.in_flight";
/// Gauge: 1 for a breaker's current state and 0 for the state it left, by server and state.
pub const METRIC_BREAKER_STATE: &str = "switchboard.circuit_breaker.state";
/// Counter: circuit breaker transitions by server, from and to.
pub const METRIC_BREAKER_TRANSITIONS: &str = "switchboard.circuit_breaker.transitions";
/// Counter: cache lookups by server, tool and decision.
pub const METRIC_CACHE_LOOKUPS: &str = "switchboard.cache.lookups";
/// Gauge: 1 for a server's current health state and 0 for the others, by server and state.
pub const METRIC_SERVER_HEALTH: &str = "switchboard.server.health";
/// Counter: route choices by group, chosen replica and reason.
pub const METRIC_ROUTE_CHOICES: &str = "switchboard.route.choices";

/// The bucket boundaries (seconds) the MCP semconv advises for its duration histograms.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
