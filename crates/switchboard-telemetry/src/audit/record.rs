//! What an audit record says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// A tool call or policy decision to audit; [`AuditLog::append`](crate::AuditLog::append)
/// adds `seq`, `ts`, `prev` and `hash`.
///
/// Only [`with_arguments`](Self::with_arguments) takes caller data that may hold secrets, and
/// it is redacted before anything is written. The other fields are names and closed-set values.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct AuditRecord {
    kind: &'static str,
    server: String,
    tool: String,
    outcome: &'static str,
    principal: Option<String>,
    arguments: Option<Value>,
    error_class: Option<String>,
    latency: Option<Duration>,
    attempts: Option<u32>,
    cache: Option<String>,
    route: Option<String>,
    rule: Option<String>,
    trace_id: Option<String>,
}

/// How a tool call ended, for [`AuditRecord::tool_call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call returned a result (`isError` false).
    Ok,
    /// The call failed (see [`AuditRecord::with_error_class`]).
    Error,
}

/// What a policy decided, for [`AuditRecord::policy_decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The call may proceed.
    Allow,
    /// The call is refused.
    Deny,
}

impl AuditRecord {
    /// A call of `tool` on `server` that ended with `outcome` (`kind: "tool_call"`).
    pub fn tool_call(server: &str, tool: &str, outcome: CallOutcome) -> Self {
        let outcome = match outcome {
            CallOutcome::Ok => "ok",
            CallOutcome::Error => "error",
        };
        Self::new("tool_call", server, tool, outcome)
    }

    /// A policy decision about calling `tool` on `server` (`kind: "policy_decision"`).
    pub fn policy_decision(server: &str, tool: &str, decision: Decision) -> Self {
        let outcome = match decision {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        };
        Self::new("policy_decision", server, tool, outcome)
    }

    fn new(kind: &'static str, server: &str, tool: &str, outcome: &'static str) -> Self {
        Self {
            kind,
            server: server.to_owned(),
            tool: tool.to_owned(),
            outcome,
            principal: None,
            arguments: None,
            error_class: None,
            latency: None,
            attempts: None,
            cache: None,
            route: None,
            rule: None,
            trace_id: None,
        }
    }

    /// Who made the call (user, service account, API key id — never the secret itself).
    pub fn with_principal(mut self, principal: &str) -> Self {
        self.principal = Some(principal.to_owned());
        self
    }

    /// The call's arguments; sensitive keys are redacted before writing.
    pub fn with_arguments(mut self, arguments: Value) -> Self {
        self.arguments = Some(arguments);
        self
    }

    /// The error class of a failed call (`timeout`, `tool_error`, …).
    pub fn with_error_class(mut self, error_class: &str) -> Self {
        self.error_class = Some(error_class.to_owned());
        self
    }

    /// How long the call took.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// How many attempts the call took.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// How the cache served the call (`hit`, `miss`, `stale`, …).
    pub fn with_cache(mut self, cache: &str) -> Self {
        self.cache = Some(cache.to_owned());
        self
    }

    /// The server (replica) that answered.
    pub fn with_route(mut self, route: &str) -> Self {
        self.route = Some(route.to_owned());
        self
    }

    /// The policy rule that decided.
    pub fn with_rule(mut self, rule: &str) -> Self {
        self.rule = Some(rule.to_owned());
        self
    }

    /// The trace id of the call's span, to find the trace from the audit record.
    pub fn with_trace_id(mut self, trace_id: &str) -> Self {
        self.trace_id = Some(trace_id.to_owned());
        self
    }

    /// The record as a JSON object, without the chain fields (`seq`, `ts`, `prev`, `hash`).
    pub(crate) fn into_fields(self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("kind".into(), self.kind.into());
        map.insert("server".into(), self.server.into());
        map.insert("tool".into(), self.tool.into());
        map.insert("outcome".into(), self.outcome.into());
        let optional = [
            ("principal", self.principal.map(Value::from)),
            ("arguments", self.arguments),
            ("error_class", self.error_class.map(Value::from)),
            (
                "latency_us",
                self.latency
                    .map(|l| Value::from(u64::try_from(l.as_micros()).unwrap_or(u64::MAX))),
            ),
            ("attempts", self.attempts.map(Value::from)),
            ("cache", self.cache.map(Value::from)),
            ("route", self.route.map(Value::from)),
            ("rule", self.rule.map(Value::from)),
            ("trace_id", self.trace_id.map(Value::from)),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                map.insert(key.into(), value);
            }
        }
        map
    }
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-05-01T12:34:56.789Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123); // leap year, Feb 29
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }
}
