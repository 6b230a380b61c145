//! Call-path settings as they are written in Switchboard's own settings: the policy keys that
//! `defaults`, a server and a tool share, the tool-only keys, a server's placement, the tables
//! that exist once per file (`retry_budget`, `cache`, `routing`, `groups`, `telemetry`,
//! `audit`), and the checks that need the whole file (fallback targets, back-offs across
//! levels).

use std::{net::SocketAddr, time::Duration};

use switchboard_core::{ToolRef, validate_server_name};
use switchboard_telemetry::OtlpProtocol;

use super::{
    AuditSettings, BreakerMode, BreakerSettings, BulkheadSettings, CacheSettings, Config,
    ConfigError, Fallback, Format, GlobalSettings, GroupSettings, NamingPolicy, Placement,
    PolicySettings, RateLimitSettings, RetrySettings, ServerConfig, TelemetrySettings,
    node::{Node, child, item},
    read::{Ctx, suggest},
};

/// Policy keys of `defaults`, of a server and of a tool.
pub(super) const POLICY_KEYS: &[&str] = &[
    "attempt_timeout",
    "retry",
    "breaker",
    "rate_limit",
    "bulkhead",
    "cache",
];

/// Policy keys that only a tool has.
pub(super) const TOOL_ONLY_KEYS: &[&str] = &["idempotent", "fallback"];

/// Placement keys of a server.
pub(super) const PLACEMENT_KEYS: &[&str] = &["region", "zone", "tags", "weight", "priority"];

/// Top-level tables that exist once per file.
pub(super) const GLOBAL_KEYS: &[&str] = &[
    "retry_budget",
    "cache",
    "routing",
    "groups",
    "telemetry",
    "audit",
];

/// Keys of `retry`.
const RETRY_KEYS: &[&str] = &["max_attempts", "initial_backoff", "max_backoff"];

/// Keys of `breaker`.
const BREAKER_KEYS: &[&str] = &[
    "mode",
    "failure_rate",
    "window",
    "minimum_calls",
    "open_duration",
    "half_open_calls",
];

/// Keys of `rate_limit`.
const RATE_LIMIT_KEYS: &[&str] = &["requests_per_second", "burst", "wait"];

/// Keys of `bulkhead`.
const BULKHEAD_KEYS: &[&str] = &["max_concurrent", "max_queued", "queue_timeout"];

/// Keys of the per-level `cache`.
const CACHE_KEYS: &[&str] = &["enabled", "ttl"];

/// Keys of a tool's `fallback`.
const FALLBACK_KEYS: &[&str] = &["tool", "text"];

/// Keys of the top-level `retry_budget`.
const RETRY_BUDGET_KEYS: &[&str] = &["ratio", "min_per_second"];

/// Keys of the top-level `cache` (the cache store).
const CACHE_STORE_KEYS: &[&str] = &["max_bytes", "stale_if_error", "redis_url"];

/// Keys of `routing`.
const ROUTING_KEYS: &[&str] = &[
    "region",
    "zone",
    "naming",
    "detect_replicas",
    "detect_strategy",
];

/// Keys of `groups.<name>`.
const GROUP_KEYS: &[&str] = &["servers", "strategy"];

/// Keys of `telemetry`.
const TELEMETRY_KEYS: &[&str] = &[
    "enabled",
    "service_name",
    "sample_ratio",
    "prometheus_listen",
    "otlp_endpoint",
    "otlp_protocol",
    "otlp_certificate",
];

/// OTLP protocols by their `OTEL_EXPORTER_OTLP_PROTOCOL` name.
const OTLP_PROTOCOLS: &[(&str, OtlpProtocol)] = &[
    ("http/protobuf", OtlpProtocol::HttpProtobuf),
    ("grpc", OtlpProtocol::Grpc),
];

/// Keys of `audit`.
const AUDIT_KEYS: &[&str] = &["file", "redact_keys"];

/// Breaker modes by their written name.
const BREAKER_MODES: &[(&str, BreakerMode)] = &[
    ("enabled", BreakerMode::Enabled),
    ("disabled", BreakerMode::Disabled),
    ("metrics_only", BreakerMode::MetricsOnly),
    ("force_open", BreakerMode::ForceOpen),
];

/// Strategies of a replica group.
const STRATEGIES: &[&str] = &["p2c", "round_robin", "weighted", "priority", "locality"];

/// URL schemes the Redis client accepts.
const REDIS_SCHEMES: &[&str] = &[
    "redis://",
    "rediss://",
    "valkey://",
    "valkeys://",
    "unix://",
    "redis+unix://",
    "valkey+unix://",
];

/// Where policy keys are being read.
#[derive(Clone, Copy)]
pub(super) enum Level<'p> {
    /// `defaults` or a server, where the tool-only keys are errors; `tools` is where they
    /// belong, for the message (`servers.calc.tools.<tool>`).
    Shared {
        /// Where tool-only keys go instead.
        tools: &'p str,
    },
    /// A tool (`servers.NAME.tools.TOOL`).
    Tool,
}

/// The path of Switchboard's own settings: the top level of TOML, `switchboard` in JSON.
pub(super) fn own_root(ctx: &Ctx<'_>) -> &'static str {
    match ctx.format {
        Format::Toml => "",
        Format::Json => "switchboard",
    }
}

/// The path of the table that holds server `name`'s own settings.
fn server_path(ctx: &Ctx<'_>, name: &str) -> String {
    child(&child(own_root(ctx), "servers"), name)
}

/// The path of the table of `tool`'s own settings on server `name`.
fn tool_path(ctx: &Ctx<'_>, name: &str, tool: &str) -> String {
    child(&child(&server_path(ctx, name), "tools"), tool)
}

/// Where the tool-only keys of `defaults` belong, for messages.
pub(super) fn tools_of_any_server(ctx: &Ctx<'_>) -> String {
    format!("{}.<server>.tools.<tool>", child(own_root(ctx), "servers"))
}

/// Applies one policy key of the table at `path` to `settings`; `false` when `key` is not one.
pub(super) fn apply_policy(
    ctx: &Ctx<'_>,
    settings: &mut PolicySettings,
    path: &str,
    key: &str,
    value: &Node,
    level: Level<'_>,
) -> Result<bool, ConfigError> {
    let key_path = &child(path, key);
    match (key, level) {
        ("attempt_timeout", _) => {
            settings.attempt_timeout = Some(ctx.positive_duration(key_path, value)?);
        }
        ("retry", _) => settings.retry = retry(ctx, key_path, value)?,
        ("breaker", _) => settings.breaker = breaker(ctx, key_path, value)?,
        ("rate_limit", _) => settings.rate_limit = rate_limit(ctx, key_path, value)?,
        ("bulkhead", _) => settings.bulkhead = bulkhead(ctx, key_path, value)?,
        ("cache", _) => settings.cache = cache(ctx, key_path, value)?,
        ("idempotent", Level::Tool) => settings.idempotent = Some(ctx.boolean(key_path, value)?),
        ("fallback", Level::Tool) => settings.fallback = Some(fallback(ctx, key_path, value)?),
        ("idempotent" | "fallback", Level::Shared { tools }) => {
            return Err(ctx.error(
                key_path,
                format!("{key:?} applies to a single tool; set it in {tools} instead"),
            ));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Applies one placement key of a server; `false` when `key` is not one.
pub(super) fn apply_placement(
    ctx: &Ctx<'_>,
    placement: &mut Placement,
    path: &str,
    key: &str,
    value: &Node,
) -> Result<bool, ConfigError> {
    let key_path = &child(path, key);
    match key {
        "region" => placement.region = Some(label(ctx, key_path, value)?),
        "zone" => placement.zone = Some(label(ctx, key_path, value)?),
        "tags" => placement.tags = labels(ctx, key_path, value)?,
        "weight" => placement.weight = Some(ctx.count(key_path, value, 0)?),
        "priority" => placement.priority = Some(ctx.count(key_path, value, 0)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// A non-empty string such as a region, zone or tag.
fn label(ctx: &Ctx<'_>, key: &str, node: &Node) -> Result<String, ConfigError> {
    let text = ctx.string(key, node)?;
    if text.trim().is_empty() {
        return Err(ctx.error(key, "cannot be empty"));
    }
    Ok(text.to_owned())
}

/// An array of non-empty strings.
fn labels(ctx: &Ctx<'_>, key: &str, node: &Node) -> Result<Vec<String>, ConfigError> {
    let Node::Array(items) = node else {
        return Err(ctx.expected(key, "an array of strings", node));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, node)| label(ctx, &item(key, i), node))
        .collect()
}

/// Reads `retry = { max_attempts, initial_backoff, max_backoff }`.
fn retry(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<RetrySettings, ConfigError> {
    let mut retry = RetrySettings::default();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "max_attempts" => retry.max_attempts = Some(ctx.count(key_path, value, 1)?),
            "initial_backoff" => {
                retry.initial_backoff = Some(ctx.positive_duration(key_path, value)?);
            }
            "max_backoff" => retry.max_backoff = Some(ctx.positive_duration(key_path, value)?),
            _ => return Err(ctx.unknown_key(path, key, RETRY_KEYS)),
        }
    }
    if let (Some(initial), Some(max)) = (retry.initial_backoff, retry.max_backoff)
        && max < initial
    {
        return Err(ctx.error(
            &child(path, "max_backoff"),
            format!(
                "max_backoff ({max:?}) is shorter than initial_backoff ({initial:?}); raise it"
            ),
        ));
    }
    Ok(retry)
}

/// Reads `breaker = { mode, failure_rate, window, minimum_calls, open_duration,
/// half_open_calls }`.
fn breaker(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<BreakerSettings, ConfigError> {
    let mut breaker = BreakerSettings::default();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "mode" => breaker.mode = Some(breaker_mode(ctx, key_path, value)?),
            "failure_rate" => breaker.failure_rate = Some(ctx.fraction(key_path, value, false)?),
            "window" => breaker.window = Some(ctx.count(key_path, value, 1)?),
            "minimum_calls" => breaker.minimum_calls = Some(ctx.count(key_path, value, 1)?),
            "open_duration" => {
                breaker.open_duration = Some(ctx.positive_duration(key_path, value)?);
            }
            "half_open_calls" => breaker.half_open_calls = Some(ctx.count(key_path, value, 1)?),
            _ => return Err(ctx.unknown_key(path, key, BREAKER_KEYS)),
        }
    }
    Ok(breaker)
}

/// Reads `breaker.mode`.
fn breaker_mode(ctx: &Ctx<'_>, key: &str, node: &Node) -> Result<BreakerMode, ConfigError> {
    named(ctx, key, node, BREAKER_MODES, "breaker mode")
}

/// Reads one of the names in `table` and returns its value; an unknown name is an error that
/// lists the accepted ones.
fn named<T: Copy>(
    ctx: &Ctx<'_>,
    key: &str,
    node: &Node,
    table: &[(&str, T)],
    what: &str,
) -> Result<T, ConfigError> {
    let text = ctx.string(key, node)?;
    if let Some((_, value)) = table.iter().find(|(name, _)| *name == text) {
        return Ok(*value);
    }
    let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
    Err(ctx.error(
        key,
        format!("unknown {what} {text:?}; expected {}", one_of(&names)),
    ))
}

/// Reads `rate_limit = { requests_per_second, burst, wait }`.
fn rate_limit(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<RateLimitSettings, ConfigError> {
    let mut limit = RateLimitSettings::default();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "requests_per_second" => {
                limit.requests_per_second = Some(ctx.count(key_path, value, 1)?);
            }
            "burst" => limit.burst = Some(ctx.count(key_path, value, 1)?),
            "wait" => limit.wait = Some(ctx.duration(key_path, value)?),
            _ => return Err(ctx.unknown_key(path, key, RATE_LIMIT_KEYS)),
        }
    }
    Ok(limit)
}

/// Reads `bulkhead = { max_concurrent, max_queued, queue_timeout }`.
fn bulkhead(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<BulkheadSettings, ConfigError> {
    let mut bulkhead = BulkheadSettings::default();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "max_concurrent" => bulkhead.max_concurrent = Some(ctx.count(key_path, value, 1)?),
            "max_queued" => bulkhead.max_queued = Some(ctx.count(key_path, value, 0)?),
            "queue_timeout" => bulkhead.queue_timeout = Some(ctx.duration(key_path, value)?),
            _ => return Err(ctx.unknown_key(path, key, BULKHEAD_KEYS)),
        }
    }
    Ok(bulkhead)
}

/// Reads the per-level `cache = { enabled, ttl }`.
fn cache(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<CacheSettings, ConfigError> {
    let mut cache = CacheSettings::default();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "enabled" => cache.enabled = Some(ctx.boolean(key_path, value)?),
            "ttl" => cache.ttl = Some(ctx.positive_duration(key_path, value)?),
            store if CACHE_STORE_KEYS.contains(&store) => {
                let at = match ctx.format {
                    Format::Toml => "the top-level [cache] table".to_owned(),
                    Format::Json => child(own_root(ctx), "cache"),
                };
                return Err(ctx.error(
                    key_path,
                    format!("{key:?} is a setting of the whole cache store; set it in {at}"),
                ));
            }
            _ => return Err(ctx.unknown_key(path, key, CACHE_KEYS)),
        }
    }
    Ok(cache)
}

/// Reads a tool's `fallback = { tool = "server.tool" }` or `fallback = { text = "..." }`.
fn fallback(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<Fallback, ConfigError> {
    let (mut tool, mut text) = (None, None);
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "tool" => tool = Some(fallback_tool(ctx, key_path, value)?),
            "text" => text = Some(ctx.string(key_path, value)?.to_owned()),
            _ => return Err(ctx.unknown_key(path, key, FALLBACK_KEYS)),
        }
    }
    match (tool, text) {
        (Some(tool), None) => Ok(Fallback::Tool(tool)),
        (None, Some(text)) => Ok(Fallback::Text(text)),
        (Some(_), Some(_)) => Err(ctx.error(
            path,
            "give either \"tool\" or \"text\", not both; a fallback is one or the other",
        )),
        (None, None) => Err(ctx.error(
            path,
            "expected \"tool\" (another tool, as \"server.tool\") or \"text\" (a fixed answer)",
        )),
    }
}

/// Reads `fallback.tool`: a tool as `server.tool` (or `group.tool`).
fn fallback_tool(ctx: &Ctx<'_>, key: &str, node: &Node) -> Result<String, ConfigError> {
    let text = ctx.string(key, node)?;
    match ToolRef::parse(text) {
        Ok(ToolRef {
            server: Some(_), ..
        }) => Ok(text.to_owned()),
        Ok(_) => Err(ctx.error(
            key,
            format!("expected a tool as \"server.tool\", found {text:?}; add the server"),
        )),
        Err(error) => Err(ctx.error(key, format!("{error}; write the tool as \"server.tool\""))),
    }
}

/// Reads the top-level tables of Switchboard's own settings that exist once (`own` is the
/// TOML file's root or the `switchboard` object of a JSON file). Groups are checked against
/// `servers`, so this runs after every server is known.
pub(super) fn global(
    ctx: &Ctx<'_>,
    own: Option<&Node>,
    servers: &[ServerConfig],
) -> Result<GlobalSettings, ConfigError> {
    let mut global = GlobalSettings::default();
    let Some(own) = own else {
        return Ok(global);
    };
    let root = own_root(ctx);
    for (key, value) in ctx.table(root, own)? {
        let path = &child(root, key);
        match key.as_str() {
            "retry_budget" => retry_budget(ctx, path, value, &mut global)?,
            "cache" => cache_store(ctx, path, value, &mut global)?,
            "routing" => routing(ctx, path, value, &mut global)?,
            "groups" => groups(ctx, path, value, servers, &mut global)?,
            "telemetry" => global.telemetry = telemetry(ctx, path, value)?,
            "audit" => global.audit = Some(audit(ctx, path, value)?),
            // `defaults` and `servers`, read elsewhere; other keys were refused before.
            _ => {}
        }
    }
    Ok(global)
}

/// Reads `retry_budget = { ratio, min_per_second }`.
fn retry_budget(
    ctx: &Ctx<'_>,
    path: &str,
    node: &Node,
    global: &mut GlobalSettings,
) -> Result<(), ConfigError> {
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "ratio" => global.retry_budget_ratio = ctx.fraction(key_path, value, true)?,
            "min_per_second" => {
                global.retry_budget_min_per_second = ctx.count(key_path, value, 0)?
            }
            _ => return Err(ctx.unknown_key(path, key, RETRY_BUDGET_KEYS)),
        }
    }
    Ok(())
}

/// Reads the top-level `cache = { max_bytes, stale_if_error, redis_url }`.
fn cache_store(
    ctx: &Ctx<'_>,
    path: &str,
    node: &Node,
    global: &mut GlobalSettings,
) -> Result<(), ConfigError> {
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "max_bytes" => global.cache_max_bytes = ctx.size(key_path, value, 1)?,
            "stale_if_error" => global.cache_stale_if_error = ctx.duration(key_path, value)?,
            "redis_url" => {
                let url = ctx.expanded(key_path, value)?;
                // The URL is not quoted back: it may hold a password.
                if !REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
                    return Err(ctx.error(
                        key_path,
                        format!(
                            "expected a Redis URL such as \"redis://host:6379/\"; it must start \
                             with one of: {}",
                            REDIS_SCHEMES.join(", ")
                        ),
                    ));
                }
                global.cache_redis_url = Some(url);
            }
            "enabled" | "ttl" => {
                return Err(ctx.error(
                    key_path,
                    format!(
                        "{key:?} is set per tool, not for the whole cache store; write \
                         cache.{key} in defaults, in a server or in one of its tools"
                    ),
                ));
            }
            _ => return Err(ctx.unknown_key(path, key, CACHE_STORE_KEYS)),
        }
    }
    Ok(())
}

/// Reads `routing = { region, zone, naming, detect_replicas, detect_strategy }`.
fn routing(
    ctx: &Ctx<'_>,
    path: &str,
    node: &Node,
    global: &mut GlobalSettings,
) -> Result<(), ConfigError> {
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "region" => global.region = Some(label(ctx, key_path, value)?),
            "zone" => global.zone = Some(label(ctx, key_path, value)?),
            "detect_replicas" => global.detect_replicas = ctx.boolean(key_path, value)?,
            "detect_strategy" => global.detect_strategy = Some(strategy(ctx, key_path, value)?),
            "naming" => {
                global.naming = match ctx.string(key_path, value)? {
                    "on-collision" => NamingPolicy::OnCollision,
                    "always" => NamingPolicy::Always,
                    "never" => NamingPolicy::Never,
                    other => {
                        return Err(ctx.error(
                            key_path,
                            format!(
                                "unknown naming policy {other:?}; expected \"on-collision\", \"always\" or \"never\""
                            ),
                        ));
                    }
                };
            }
            _ => return Err(ctx.unknown_key(path, key, ROUTING_KEYS)),
        }
    }
    Ok(())
}

/// Reads `groups.<name> = { servers, strategy }`.
fn groups(
    ctx: &Ctx<'_>,
    path: &str,
    node: &Node,
    servers: &[ServerConfig],
    global: &mut GlobalSettings,
) -> Result<(), ConfigError> {
    for (name, entry) in ctx.table(path, node)? {
        let group_path = child(path, name);
        validate_server_name(name)
            .map_err(|error| ctx.error(&group_path, format!("{error}; rename the group")))?;
        if servers.iter().any(|s| s.name() == name) {
            return Err(ctx.error(
                &group_path,
                format!(
                    "group {name:?} has the name of a server, so \"{name}.tool\" would be \
                     ambiguous; rename the group"
                ),
            ));
        }
        let mut group = GroupSettings::default();
        let mut members = None;
        for (key, value) in ctx.table(&group_path, entry)? {
            let key_path = &child(&group_path, key);
            match key.as_str() {
                "servers" => members = Some(group_members(ctx, key_path, value, servers)?),
                "strategy" => group.strategy = Some(strategy(ctx, key_path, value)?),
                _ => return Err(ctx.unknown_key(&group_path, key, GROUP_KEYS)),
            }
        }
        let Some(members) = members else {
            return Err(ctx.error(
                &group_path,
                format!("group {name:?} has no \"servers\"; list its member servers"),
            ));
        };
        group.servers = members;
        global.groups.insert(name.clone(), group);
    }
    Ok(())
}

/// Reads `telemetry = { enabled, service_name, sample_ratio, prometheus_listen,
/// otlp_endpoint, otlp_protocol, otlp_certificate }`. Without `enabled`, telemetry is on when
/// an exporter (`prometheus_listen` or `otlp_endpoint`) is set; a written `enabled` always
/// wins.
fn telemetry(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<TelemetrySettings, ConfigError> {
    let mut telemetry = TelemetrySettings::default();
    let mut enabled = None;
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "enabled" => enabled = Some(ctx.boolean(key_path, value)?),
            "service_name" => telemetry.service_name = label(ctx, key_path, value)?,
            "sample_ratio" => telemetry.sample_ratio = ctx.fraction(key_path, value, true)?,
            "prometheus_listen" => {
                telemetry.prometheus_listen = Some(socket_address(ctx, key_path, value)?);
            }
            "otlp_endpoint" => {
                let url = ctx.expanded(key_path, value)?;
                // The URL is not quoted back: it may hold a credential from a variable.
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ctx.error(
                        key_path,
                        "expected an http:// or https:// URL of an OTLP collector, such as \
                         \"http://127.0.0.1:4318\" (or \"http://127.0.0.1:4317\" with \
                         otlp_protocol = \"grpc\")",
                    ));
                }
                telemetry.otlp_endpoint = Some(url);
            }
            "otlp_protocol" => telemetry.otlp_protocol = otlp_protocol(ctx, key_path, value)?,
            "otlp_certificate" => {
                let written = ctx.expanded(key_path, value)?;
                if written.is_empty() {
                    return Err(ctx.error(key_path, "the CA certificate's path cannot be empty"));
                }
                telemetry.otlp_certificate = Some(ctx.dir.join(written));
            }
            _ => return Err(ctx.unknown_key(path, key, TELEMETRY_KEYS)),
        }
    }
    let exporter = telemetry.prometheus_listen.is_some() || telemetry.otlp_endpoint.is_some();
    telemetry.enabled = enabled.unwrap_or(exporter);
    Ok(telemetry)
}

/// Reads an OTLP protocol: `"http/protobuf"` or `"grpc"`.
fn otlp_protocol(ctx: &Ctx<'_>, key: &str, node: &Node) -> Result<OtlpProtocol, ConfigError> {
    named(ctx, key, node, OTLP_PROTOCOLS, "OTLP protocol")
}

/// Reads a socket address: an IP address and a port, such as `"127.0.0.1:9464"` or
/// `"[::1]:9464"`. Host names are refused, since resolving them would make loading depend on
/// the network.
fn socket_address(ctx: &Ctx<'_>, key: &str, node: &Node) -> Result<SocketAddr, ConfigError> {
    let text = ctx.string(key, node)?;
    text.parse().map_err(|_| {
        ctx.error(
            key,
            format!(
                "invalid socket address {text:?}; write an IP address and a port, such as \
                 \"127.0.0.1:9464\" or \"[::1]:9464\" (host names are not resolved)"
            ),
        )
    })
}

/// Reads `audit = { file, redact_keys }`; `file` is required and resolved against the
/// configuration file's directory.
fn audit(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<AuditSettings, ConfigError> {
    let mut file = None;
    let mut redact_keys = Vec::new();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "file" => {
                let written = ctx.expanded(key_path, value)?;
                if written.trim().is_empty() {
                    return Err(ctx.error(key_path, "the audit log's path cannot be empty"));
                }
                file = Some(ctx.dir.join(written));
            }
            "redact_keys" => redact_keys = labels(ctx, key_path, value)?,
            _ => return Err(ctx.unknown_key(path, key, AUDIT_KEYS)),
        }
    }
    let Some(file) = file else {
        return Err(ctx.error(
            path,
            "the audit log has no \"file\"; give the path of the log file (relative to this \
             configuration file)",
        ));
    };
    Ok(AuditSettings { file, redact_keys })
}

/// Reads a group's `servers`: at least one, each a configured server, none twice.
fn group_members(
    ctx: &Ctx<'_>,
    key: &str,
    node: &Node,
    servers: &[ServerConfig],
) -> Result<Vec<String>, ConfigError> {
    let Node::Array(items) = node else {
        return Err(ctx.expected(key, "an array of server names", node));
    };
    if items.is_empty() {
        return Err(ctx.error(key, "a group needs at least one server"));
    }
    let mut members: Vec<String> = Vec::with_capacity(items.len());
    for (i, node) in items.iter().enumerate() {
        let item_path = item(key, i);
        let member = ctx.string(&item_path, node)?;
        if servers.iter().all(|s| s.name() != member) {
            let hint = match suggest(member, servers.iter().map(ServerConfig::name)) {
                Some(near) => format!("did you mean {near:?}?"),
                None => "define it, or remove it from the group".to_owned(),
            };
            return Err(ctx.error(&item_path, format!("no server is named {member:?}; {hint}")));
        }
        if members.iter().any(|m| m == member) {
            return Err(ctx.error(
                &item_path,
                format!("server {member:?} is listed twice; remove one"),
            ));
        }
        members.push(member.to_owned());
    }
    Ok(members)
}

/// Reads a group's `strategy`.
fn strategy(ctx: &Ctx<'_>, key: &str, node: &Node) -> Result<String, ConfigError> {
    let text = ctx.string(key, node)?;
    if STRATEGIES.contains(&text) {
        return Ok(text.to_owned());
    }
    Err(ctx.error(
        key,
        format!("unknown strategy {text:?}; expected {}", one_of(STRATEGIES)),
    ))
}

/// `"a", "b" or "c"`.
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Checks what needs the whole configuration: each fallback tool names a configured server or
/// group and not the tool itself, and back-offs stay ordered once levels are combined.
pub(super) fn check(ctx: &Ctx<'_>, config: &Config) -> Result<(), ConfigError> {
    let defaults_path = child(own_root(ctx), "defaults");
    let defaults = &config.defaults.policies;
    let defaults_path = defaults_path.as_str();
    check_backoff(ctx, &[(defaults_path, defaults)])?;
    for server in &config.servers {
        let path = server_path(ctx, server.name());
        check_backoff(ctx, &[(&path, &server.policies), (defaults_path, defaults)])?;
    }
    for server in &config.servers {
        let path = server_path(ctx, server.name());
        for (tool, policies) in &server.tools.policies {
            let tool_at = tool_path(ctx, server.name(), tool);
            check_backoff(
                ctx,
                &[
                    (&tool_at, policies),
                    (&path, &server.policies),
                    (defaults_path, defaults),
                ],
            )?;
            if let Some(Fallback::Tool(target)) = &policies.fallback {
                let key = child(&child(&tool_at, "fallback"), "tool");
                check_fallback_target(ctx, config, &key, server.name(), tool, target)?;
            }
        }
    }
    Ok(())
}

/// Checks that a fallback `target` (`server.tool`) names a configured server or group, and is
/// not `server.tool` itself.
fn check_fallback_target(
    ctx: &Ctx<'_>,
    config: &Config,
    key: &str,
    server: &str,
    tool: &str,
    target: &str,
) -> Result<(), ConfigError> {
    let Some((target_server, target_tool)) = target.split_once('.') else {
        // Checked when read.
        return Ok(());
    };
    let known =
        config.server(target_server).is_some() || config.global.groups.contains_key(target_server);
    if !known {
        let names = config
            .servers
            .iter()
            .map(ServerConfig::name)
            .chain(config.global.groups.keys().map(String::as_str));
        let hint = match suggest(target_server, names) {
            Some(near) => format!("did you mean {near:?}?"),
            None => "name a configured server or group".to_owned(),
        };
        return Err(ctx.error(
            key,
            format!("no server or group is named {target_server:?}; {hint}"),
        ));
    }
    if target_server == server && target_tool == tool {
        return Err(ctx.error(
            key,
            format!("{target:?} is this tool itself; name another tool, or give a \"text\""),
        ));
    }
    Ok(())
}

/// Checks that the back-off of the first of `levels` (most specific first, each with the path
/// of its table) keeps `max_backoff` at least `initial_backoff` once the values it does not set
/// come from the levels after it or from the built-in defaults. Only the keys a level sets are
/// blamed on it; both keys in one table were checked when it was read.
fn check_backoff(ctx: &Ctx<'_>, levels: &[(&str, &PolicySettings)]) -> Result<(), ConfigError> {
    let Some(((path, own), _)) = levels.split_first() else {
        return Ok(());
    };
    let own = &own.retry;
    if own.initial_backoff.is_none() && own.max_backoff.is_none() {
        return Ok(());
    }
    let settings: Vec<&PolicySettings> = levels.iter().map(|(_, s)| *s).collect();
    let resolved = PolicySettings::resolve(&settings);
    let (initial, max) = (resolved.initial_backoff, resolved.max_backoff);
    if max >= initial {
        return Ok(());
    }
    let origin = |get: fn(&RetrySettings) -> Option<Duration>| {
        levels
            .iter()
            .find(|(_, s)| get(&s.retry).is_some())
            .map_or_else(
                || "the default".to_owned(),
                |(at, _)| format!("set in {}", child(at, "retry")),
            )
    };
    let retry_path = child(path, "retry");
    if own.max_backoff.is_some() {
        let from = origin(|r| r.initial_backoff);
        return Err(ctx.error(
            &child(&retry_path, "max_backoff"),
            format!(
                "max_backoff ({max:?}) is shorter than initial_backoff ({initial:?}, {from}); \
                 raise it, or set a shorter initial_backoff here"
            ),
        ));
    }
    let from = origin(|r| r.max_backoff);
    Err(ctx.error(
        &child(&retry_path, "initial_backoff"),
        format!(
            "initial_backoff ({initial:?}) is longer than max_backoff ({max:?}, {from}); lower \
             it, or set a longer max_backoff here"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_lists_with_or() {
        assert_eq!(one_of(&["a"]), "\"a\"");
        assert_eq!(one_of(&["a", "b"]), "\"a\" or \"b\"");
        assert_eq!(one_of(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
        assert_eq!(one_of(&[]), "");
    }

    #[test]
    fn key_lists_do_not_overlap() {
        use super::super::server::{CONNECTION_KEYS, OWN_KEYS};
        let lists = [
            POLICY_KEYS,
            TOOL_ONLY_KEYS,
            PLACEMENT_KEYS,
            OWN_KEYS,
            CONNECTION_KEYS,
        ];
        for (i, list) in lists.iter().enumerate() {
            for key in *list {
                let elsewhere = lists[i + 1..].iter().any(|other| other.contains(key));
                assert!(!elsewhere, "{key} is in two lists");
            }
        }
    }
}
