//! Call-path settings: resilience, caching, fallbacks, routing, as they are written in the
//! configuration.
//!
//! Policy settings can be given at three levels — `[defaults]`, `[servers.NAME]` and
//! `[servers.NAME.tools.TOOL]` — each field optional; the most specific level that sets a field
//! wins, and built-in defaults fill the rest ([`PolicySettings::resolve`]).

use std::{collections::BTreeMap, time::Duration};

use switchboard_telemetry::OtlpProtocol;

/// Per-level policy settings; `None` means "not set here".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicySettings {
    /// Timeout of one attempt (the call's deadline covers all attempts). Key `attempt_timeout`.
    pub attempt_timeout: Option<Duration>,
    /// Retry settings. Table `retry`.
    pub retry: RetrySettings,
    /// Circuit breaker settings. Table `breaker`.
    pub breaker: BreakerSettings,
    /// Rate limit settings. Table `rate_limit`.
    pub rate_limit: RateLimitSettings,
    /// Bulkhead settings. Table `bulkhead`.
    pub bulkhead: BulkheadSettings,
    /// Cache settings for tool results. Table `cache`.
    pub cache: CacheSettings,
    /// Overrides the tool's `idempotentHint`/`readOnlyHint` for retries: `true` lets any failed
    /// call be retried, `false` retries only calls that certainly never reached the server.
    /// Key `idempotent` (tool level).
    pub idempotent: Option<bool>,
    /// What answers when the call fails. Table `fallback` (tool level).
    pub fallback: Option<Fallback>,
}

/// Retry settings. Defaults follow resilience4j (3 attempts) and Envoy (25 ms → 250 ms with full
/// jitter).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RetrySettings {
    /// Attempts in total, the first included; 1 disables retries. Key `max_attempts`, default 3.
    pub max_attempts: Option<u32>,
    /// First back-off. Key `initial_backoff`, default 25 ms.
    pub initial_backoff: Option<Duration>,
    /// Largest back-off. Key `max_backoff`, default 250 ms.
    pub max_backoff: Option<Duration>,
}

/// How a circuit breaker runs. Key `breaker.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakerMode {
    /// Opens and closes by the thresholds (`enabled`). The default.
    #[default]
    Enabled,
    /// No breaker (`disabled`).
    Disabled,
    /// Counts and reports, never rejects (`metrics_only`).
    MetricsOnly,
    /// Rejects every call (`force_open`), e.g. to take a server out by hand.
    ForceOpen,
}

/// Circuit breaker settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BreakerSettings {
    /// Key `mode`, default `enabled`.
    pub mode: Option<BreakerMode>,
    /// Failure rate (0–1) that opens the breaker. Key `failure_rate`, default 0.5
    /// (resilience4j).
    pub failure_rate: Option<f64>,
    /// Calls in the sliding window. Key `window`, default 100 (resilience4j).
    pub window: Option<u32>,
    /// Calls needed before the rate counts. Key `minimum_calls`, default 10 (resilience4j uses
    /// 100; MCP traffic is sparser).
    pub minimum_calls: Option<u32>,
    /// First open time; doubles on each re-open up to 5 minutes. Key `open_duration`, default
    /// 30 s.
    pub open_duration: Option<Duration>,
    /// Probe calls while half-open. Key `half_open_calls`, default 3.
    pub half_open_calls: Option<u32>,
}

/// Rate limit settings (off unless `requests_per_second` is set).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RateLimitSettings {
    /// Permitted calls per second. Key `requests_per_second`; no limit when absent.
    pub requests_per_second: Option<u32>,
    /// Calls allowed at once after a quiet time. Key `burst`, default = requests_per_second.
    pub burst: Option<u32>,
    /// How long a call may wait for a permit; 0 rejects at once. Key `wait`, default 1 s.
    pub wait: Option<Duration>,
}

/// Bulkhead settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkheadSettings {
    /// Calls running at once per server. Key `max_concurrent`, default 1024 (Envoy's
    /// `max_requests`).
    pub max_concurrent: Option<u32>,
    /// Calls waiting for a slot. Key `max_queued`, default 0.
    pub max_queued: Option<u32>,
    /// Longest wait in the queue. Key `queue_timeout`, default 0.
    pub queue_timeout: Option<Duration>,
}

/// Tool result caching.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheSettings {
    /// Cache this tool's results even if it is not marked `readOnlyHint` (`true`), or never
    /// (`false`). Key `enabled`; default: cache read-only tools.
    pub enabled: Option<bool>,
    /// Freshness of a cached result. Key `ttl`, default 60 s.
    pub ttl: Option<Duration>,
}

/// What answers when a call fails and cannot be retried.
#[derive(Debug, Clone, PartialEq)]
pub enum Fallback {
    /// Call this other tool (`server.tool`) with the same arguments. Key `tool`.
    Tool(String),
    /// Answer with this text. Key `text`.
    Text(String),
}

/// Settings that exist once per configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalSettings {
    /// Retry budget: share of calls that may be retries. Key `retry_budget.ratio`, default 0.2
    /// (Finagle).
    pub retry_budget_ratio: f64,
    /// Retry budget floor. Key `retry_budget.min_per_second`, default 10 (Finagle).
    pub retry_budget_min_per_second: u32,
    /// Cache store size. Key `cache.max_bytes` (an integer of bytes), default 64 MiB.
    pub cache_max_bytes: u64,
    /// How long past freshness a cached value may answer when a refresh fails. Key
    /// `cache.stale_if_error`, default 5 min; 0 disables stale answers.
    pub cache_stale_if_error: Duration,
    /// A Redis URL for the shared second-level cache (feature `redis`). Key `cache.redis_url`.
    pub cache_redis_url: Option<String>,
    /// This client's region, for locality routing. Key `routing.region`.
    pub region: Option<String>,
    /// This client's zone, for locality routing. Key `routing.zone`.
    pub zone: Option<String>,
    /// How tool names are exposed. Key `routing.naming`, default `on-collision`.
    pub naming: NamingPolicy,
    /// Replica groups by name. Table `groups.NAME`.
    pub groups: BTreeMap<String, GroupSettings>,
    /// Whether servers offering a tool under the same name with the same input schema form a
    /// replica group on their own (its tools named `replicas.TOOL`), so that the bare name
    /// routes among them. Key `routing.detect_replicas`, default `false`. Members of declared
    /// groups take no part.
    pub detect_replicas: bool,
    /// The strategy of detected groups. Key `routing.detect_strategy`, default `p2c`.
    pub detect_strategy: Option<String>,
    /// Metrics and traces. Table `telemetry`.
    pub telemetry: TelemetrySettings,
    /// The tamper-evident audit log, when set. Table `audit`.
    pub audit: Option<AuditSettings>,
}

/// Metrics and traces (OpenTelemetry, MCP semantic conventions).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// Whether telemetry is on. Key `enabled`, default `false` (off costs nothing); setting
    /// `prometheus_listen` or `otlp_endpoint` turns it on unless `enabled = false` is written.
    pub enabled: bool,
    /// `service.name` of everything exported. Key `service_name`, default `switchboard`.
    pub service_name: String,
    /// Share of new traces recorded (0–1). Key `sample_ratio`, default 1.0.
    pub sample_ratio: f64,
    /// Serve Prometheus metrics on this address (`/metrics`). Key `prometheus_listen`, e.g.
    /// `"127.0.0.1:9464"` (feature `prometheus`).
    pub prometheus_listen: Option<std::net::SocketAddr>,
    /// Export traces and metrics by OTLP to this endpoint. Key `otlp_endpoint`, e.g.
    /// `"http://127.0.0.1:4318"` (feature `otlp`), or `"http://127.0.0.1:4317"` for gRPC.
    pub otlp_endpoint: Option<String>,
    /// How OTLP is sent. Key `otlp_protocol`: `"http/protobuf"` (the default) or `"grpc"`
    /// (feature `otlp-grpc`).
    pub otlp_protocol: OtlpProtocol,
    /// A PEM file of CA certificates to trust, besides the system's roots, for an `https://`
    /// gRPC endpoint. Key `otlp_certificate`; `${VAR}` is expanded, and a relative path is
    /// resolved against the configuration file's directory.
    pub otlp_certificate: Option<std::path::PathBuf>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            service_name: "switchboard".to_owned(),
            sample_ratio: 1.0,
            prometheus_listen: None,
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::HttpProtobuf,
            otlp_certificate: None,
        }
    }
}

/// The audit log: one hash-chained JSON line per tool call and policy decision.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    /// The log file (appended to; created when missing). Key `file`, required when the table
    /// is written; `${VAR}` is expanded, and a relative path is resolved against the
    /// configuration file's directory.
    pub file: std::path::PathBuf,
    /// Argument keys whose values are replaced by `[redacted]`, case-insensitive, at any depth.
    /// Key `redact_keys`; default: password, token, secret, api_key, authorization, … (the
    /// telemetry crate's list). Given keys are added to the default list.
    pub redact_keys: Vec<String>,
}

impl Default for GlobalSettings {
    fn default() -> Self {
        Self {
            retry_budget_ratio: 0.2,
            retry_budget_min_per_second: 10,
            cache_max_bytes: 64 * 1024 * 1024,
            cache_stale_if_error: Duration::from_secs(300),
            cache_redis_url: None,
            region: None,
            zone: None,
            naming: NamingPolicy::default(),
            groups: BTreeMap::new(),
            detect_replicas: false,
            detect_strategy: None,
            telemetry: TelemetrySettings::default(),
            audit: None,
        }
    }
}

/// How the catalog exposes tool names. `server.tool` always works; the policy decides bare
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamingPolicy {
    /// A bare name works when one server offers it, or when the servers offering it differ in
    /// `priority` (the lowest wins) (`on-collision`). The default.
    #[default]
    OnCollision,
    /// Only `server.tool` names (`always`).
    Always,
    /// Bare names only; two servers offering the same name is an error naming both (`never`).
    Never,
}

/// A replica group: servers that offer the same tools, addressed together as `GROUP.tool`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupSettings {
    /// Member servers. Key `servers`.
    pub servers: Vec<String>,
    /// How a member is chosen: `p2c` (default), `round_robin`, `weighted`, `priority`,
    /// `locality`. Key `strategy`.
    pub strategy: Option<String>,
}

/// Placement of a server for routing. Keys `region`, `zone`, `tags`, `weight`, `priority` in a
/// server's section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    /// Region.
    pub region: Option<String>,
    /// Zone.
    pub zone: Option<String>,
    /// Operator tags and capabilities.
    pub tags: Vec<String>,
    /// Weight (default 1).
    pub weight: Option<u32>,
    /// Priority, lower first (default 0).
    pub priority: Option<u32>,
}

/// Fully resolved policy values for one tool of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPolicy {
    /// Attempt timeout; `None` = only the call's deadline.
    pub attempt_timeout: Option<Duration>,
    /// Attempts in total.
    pub max_attempts: u32,
    /// First back-off.
    pub initial_backoff: Duration,
    /// Largest back-off.
    pub max_backoff: Duration,
    /// Override of the tool's annotations for retry safety.
    pub idempotent: Option<bool>,
    /// Cache override; `None` = cache read-only tools.
    pub cache: Option<bool>,
    /// Cache freshness.
    pub cache_ttl: Duration,
    /// Fallback.
    pub fallback: Option<Fallback>,
}

impl PolicySettings {
    /// Resolves the call-time settings of one tool: `tool` over `server` over `defaults` over
    /// the built-in defaults.
    pub fn resolve(levels: &[&PolicySettings]) -> ResolvedPolicy {
        macro_rules! pick {
            ($($field:ident).+) => {
                levels.iter().find_map(|l| l.$($field).+.clone())
            };
        }
        ResolvedPolicy {
            attempt_timeout: pick!(attempt_timeout),
            max_attempts: pick!(retry.max_attempts).unwrap_or(3).max(1),
            initial_backoff: pick!(retry.initial_backoff).unwrap_or(Duration::from_millis(25)),
            max_backoff: pick!(retry.max_backoff).unwrap_or(Duration::from_millis(250)),
            idempotent: pick!(idempotent),
            cache: pick!(cache.enabled),
            cache_ttl: pick!(cache.ttl).unwrap_or(Duration::from_secs(60)),
            fallback: pick!(fallback),
        }
    }

    /// Resolves the per-server settings (breaker, rate limit, bulkhead): `server` over
    /// `defaults`.
    pub fn resolve_server(levels: &[&PolicySettings]) -> ServerPolicy {
        macro_rules! pick {
            ($($field:ident).+) => {
                levels.iter().find_map(|l| l.$($field).+.clone())
            };
        }
        ServerPolicy {
            breaker_mode: pick!(breaker.mode).unwrap_or_default(),
            failure_rate: pick!(breaker.failure_rate).unwrap_or(0.5),
            window: pick!(breaker.window).unwrap_or(100),
            minimum_calls: pick!(breaker.minimum_calls).unwrap_or(10),
            open_duration: pick!(breaker.open_duration).unwrap_or(Duration::from_secs(30)),
            half_open_calls: pick!(breaker.half_open_calls).unwrap_or(3),
            requests_per_second: pick!(rate_limit.requests_per_second),
            burst: pick!(rate_limit.burst),
            rate_limit_wait: pick!(rate_limit.wait).unwrap_or(Duration::from_secs(1)),
            max_concurrent: pick!(bulkhead.max_concurrent).unwrap_or(1024),
            max_queued: pick!(bulkhead.max_queued).unwrap_or(0),
            queue_timeout: pick!(bulkhead.queue_timeout).unwrap_or(Duration::ZERO),
        }
    }
}

/// Fully resolved per-server policy values.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerPolicy {
    /// Breaker mode.
    pub breaker_mode: BreakerMode,
    /// Failure rate that opens.
    pub failure_rate: f64,
    /// Window size in calls.
    pub window: u32,
    /// Minimum calls.
    pub minimum_calls: u32,
    /// First open time.
    pub open_duration: Duration,
    /// Half-open probes.
    pub half_open_calls: u32,
    /// Rate limit, if any.
    pub requests_per_second: Option<u32>,
    /// Rate limit burst.
    pub burst: Option<u32>,
    /// Rate limit wait.
    pub rate_limit_wait: Duration,
    /// Bulkhead size.
    pub max_concurrent: u32,
    /// Bulkhead queue.
    pub max_queued: u32,
    /// Bulkhead queue timeout.
    pub queue_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_level_wins() {
        let defaults = PolicySettings {
            retry: RetrySettings {
                max_attempts: Some(5),
                ..RetrySettings::default()
            },
            ..PolicySettings::default()
        };
        let server = PolicySettings {
            attempt_timeout: Some(Duration::from_secs(2)),
            ..PolicySettings::default()
        };
        let tool = PolicySettings {
            retry: RetrySettings {
                max_attempts: Some(1),
                ..RetrySettings::default()
            },
            idempotent: Some(true),
            ..PolicySettings::default()
        };
        let r = PolicySettings::resolve(&[&tool, &server, &defaults]);
        assert_eq!(r.max_attempts, 1);
        assert_eq!(r.attempt_timeout, Some(Duration::from_secs(2)));
        assert_eq!(r.idempotent, Some(true));
        assert_eq!(r.initial_backoff, Duration::from_millis(25));
        let r = PolicySettings::resolve(&[&server, &defaults]);
        assert_eq!(r.max_attempts, 5);
        let s = PolicySettings::resolve_server(&[&server, &defaults]);
        assert_eq!(s.max_concurrent, 1024);
        assert_eq!(s.breaker_mode, BreakerMode::Enabled);
    }
}
