//! What an [`Operation`](crate::Operation) records, prepared once per kind of operation.
//!
//! Every `tools/call` of one tool on one server, over one transport and protocol revision, has
//! the same span name and attributes, and a successful one lands in the same metric series. A
//! [`Series`] holds them: built on the first such operation and kept in the
//! [`Telemetry`](crate::Telemetry) handle, so that an operation copies prepared attributes
//! instead of building strings, and records its per-call metrics (in flight, cache lookups,
//! duration and calls on success) through bound instruments, which skip the SDK's per-record
//! hashing and lookup of the attribute set. Failures are rarer and record through the
//! instruments directly, with attributes built on the spot.
//!
//! Instruments are bound on first use, so a series never exports a data point that nothing
//! recorded. The cache holds at most [`MAX_SERIES`] series; past that, each operation
//! prepares a series of its own, which costs more but records the same data.

use std::{
    borrow::Cow,
    collections::{HashMap, hash_map::Entry},
    hash::{BuildHasher, Hash},
    sync::{Arc, OnceLock, PoisonError, RwLock},
};

use foldhash::fast::FixedState;
use opentelemetry::{
    KeyValue, Value,
    metrics::{BoundCounter, BoundHistogram, BoundUpDownCounter},
};

use crate::{
    intern::intern,
    operation::{CacheDecision, OperationInfo, Target, Transport},
    semconv as sc,
    telemetry::{Instruments, name_value},
};

/// How many series the cache keeps. The SDK keeps at most 2000 attribute sets per instrument,
/// so a deployment past this bound is past the SDK's too.
pub(crate) const MAX_SERIES: usize = 1024;

/// The series of one telemetry handle, by the hash of their [`Key`].
#[derive(Debug, Default)]
pub(crate) struct SeriesCache {
    series: RwLock<HashMap<u64, Arc<Series>, FixedState>>,
}

impl SeriesCache {
    /// The series of `info`, built and cached on first use.
    pub(crate) fn get(&self, info: &OperationInfo<'_>) -> Arc<Series> {
        let key = Key::of(info);
        let hash = key.hash64();
        let full = {
            let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(found) = series.get(&hash)
                && found.key.borrow() == key
            {
                return Arc::clone(found);
            }
            series.len() >= MAX_SERIES
        };
        let built = Arc::new(Series::new(key));
        if full {
            return built;
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        if series.len() >= MAX_SERIES {
            return built;
        }
        match series.entry(hash) {
            Entry::Vacant(entry) => Arc::clone(entry.insert(built)),
            // Another thread built it meanwhile.
            Entry::Occupied(entry) if entry.get().key.borrow() == key => Arc::clone(entry.get()),
            // Two keys with one hash: the first keeps the slot.
            Entry::Occupied(_) => built,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The parts of an [`OperationInfo`] that the span name and the metric attributes depend on:
/// all but the session id and the resource URI, which go on the span only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key<'a> {
    method: &'a str,
    /// `Target::Resource("")` for every resource.
    target: Target<'a>,
    server: &'a str,
    transport: Transport,
    protocol_version: Option<&'a str>,
    server_address: Option<&'a str>,
    server_port: Option<u16>,
}

impl<'a> Key<'a> {
    fn of(info: &OperationInfo<'a>) -> Self {
        Self {
            method: info.method,
            target: match info.target {
                Target::Resource(_) => Target::Resource(""),
                target => target,
            },
            server: info.server,
            transport: info.transport,
            protocol_version: info.protocol_version,
            server_address: info.server_address,
            server_port: info.server_port,
        }
    }

    fn hash64(&self) -> u64 {
        FixedState::default().hash_one(self)
    }
}

/// A [`Key`] owning its strings.
#[derive(Debug)]
struct OwnedKey {
    method: Box<str>,
    target: OwnedTarget,
    server: Box<str>,
    transport: Transport,
    protocol_version: Option<Box<str>>,
    server_address: Option<Box<str>>,
    server_port: Option<u16>,
}

#[derive(Debug)]
enum OwnedTarget {
    None,
    Tool(Box<str>),
    Prompt(Box<str>),
    Resource,
}

impl OwnedKey {
    fn new(key: Key<'_>) -> Self {
        Self {
            method: key.method.into(),
            target: match key.target {
                Target::None => OwnedTarget::None,
                Target::Tool(tool) => OwnedTarget::Tool(tool.into()),
                Target::Prompt(prompt) => OwnedTarget::Prompt(prompt.into()),
                Target::Resource(_) => OwnedTarget::Resource,
            },
            server: key.server.into(),
            transport: key.transport,
            protocol_version: key.protocol_version.map(Box::from),
            server_address: key.server_address.map(Box::from),
            server_port: key.server_port,
        }
    }

    fn borrow(&self) -> Key<'_> {
        Key {
            method: &self.method,
            target: match &self.target {
                OwnedTarget::None => Target::None,
                OwnedTarget::Tool(tool) => Target::Tool(tool),
                OwnedTarget::Prompt(prompt) => Target::Prompt(prompt),
                OwnedTarget::Resource => Target::Resource(""),
            },
            server: &self.server,
            transport: self.transport,
            protocol_version: self.protocol_version.as_deref(),
            server_address: self.server_address.as_deref(),
            server_port: self.server_port,
        }
    }
}

/// The span name, the attributes and the bound instruments of one kind of operation.
#[derive(Debug)]
pub(crate) struct Series {
    key: OwnedKey,
    /// `{mcp.method.name} {target}`.
    pub(crate) span_name: Cow<'static, str>,
    /// The attributes of the duration histogram known at start; also the span's attributes,
    /// with the resource URI and session id of each operation.
    pub(crate) metric_attrs: Vec<KeyValue>,
    /// `[server]` or `[server, tool]`, shared by the per-call counters.
    pub(crate) server_tool: Vec<KeyValue>,
    /// `mcp.method.name`.
    pub(crate) method: Value,
    in_flight: OnceLock<BoundUpDownCounter<i64>>,
    duration_ok: OnceLock<BoundHistogram<f64>>,
    calls_ok: OnceLock<BoundCounter<u64>>,
    /// By [`CacheDecision::index`].
    cache_lookups: [OnceLock<BoundCounter<u64>>; CacheDecision::COUNT],
}

impl Series {
    fn new(key: Key<'_>) -> Self {
        let method = kept_value(key.method);
        let server = KeyValue::new(sc::SERVER_NAME, kept_value(key.server));

        let mut metric_attrs = Vec::with_capacity(10);
        metric_attrs.push(KeyValue::new(sc::MCP_METHOD_NAME, method.clone()));
        metric_attrs.push(server.clone());
        let mut server_tool = Vec::with_capacity(2);
        server_tool.push(server);
        let span_name: Cow<'static, str> = match key.target {
            Target::Tool(tool) => {
                let attr = KeyValue::new(sc::GEN_AI_TOOL_NAME, kept_value(tool));
                metric_attrs.push(attr.clone());
                metric_attrs.push(KeyValue::new(sc::GEN_AI_OPERATION_NAME, sc::EXECUTE_TOOL));
                server_tool.push(attr);
                kept_name(format!("{} {tool}", key.method))
            }
            Target::Prompt(prompt) => {
                metric_attrs.push(KeyValue::new(sc::GEN_AI_PROMPT_NAME, kept_value(prompt)));
                kept_name(format!("{} {prompt}", key.method))
            }
            Target::Resource(_) | Target::None => kept_name(key.method.to_owned()),
        };
        if let Some(version) = key.protocol_version {
            metric_attrs.push(KeyValue::new(sc::MCP_PROTOCOL_VERSION, kept_value(version)));
        }
        if let Some(transport) = key.transport.network_transport() {
            metric_attrs.push(KeyValue::new(sc::NETWORK_TRANSPORT, transport));
        }
        if key.transport == Transport::Http {
            metric_attrs.push(KeyValue::new(sc::NETWORK_PROTOCOL_NAME, "http"));
        }
        if let Some(address) = key.server_address {
            metric_attrs.push(KeyValue::new(sc::SERVER_ADDRESS, kept_value(address)));
        }
        if let Some(port) = key.server_port {
            metric_attrs.push(KeyValue::new(sc::SERVER_PORT, i64::from(port)));
        }
        Self {
            key: OwnedKey::new(key),
            span_name,
            metric_attrs,
            server_tool,
            method,
            in_flight: OnceLock::new(),
            duration_ok: OnceLock::new(),
            calls_ok: OnceLock::new(),
            cache_lookups: Default::default(),
        }
    }

    /// `switchboard.client.in_flight` for this server.
    pub(crate) fn in_flight(&self, instruments: &Instruments) -> &BoundUpDownCounter<i64> {
        self.in_flight
            .get_or_init(|| instruments.in_flight.bind(&self.server_tool[..1]))
    }

    /// `mcp.client.operation.duration` of a success.
    pub(crate) fn duration_ok(&self, instruments: &Instruments) -> &BoundHistogram<f64> {
        self.duration_ok
            .get_or_init(|| instruments.operation_duration.bind(&self.metric_attrs))
    }

    /// `switchboard.client.calls` with `switchboard.outcome = ok`.
    pub(crate) fn calls_ok(&self, instruments: &Instruments) -> &BoundCounter<u64> {
        self.calls_ok.get_or_init(|| {
            let mut attrs = self.calls_attrs();
            attrs.push(KeyValue::new(sc::OUTCOME, "ok"));
            instruments.calls.bind(&attrs)
        })
    }

    /// `switchboard.cache.lookups` with `decision`.
    pub(crate) fn cache_lookups(
        &self,
        instruments: &Instruments,
        decision: CacheDecision,
    ) -> &BoundCounter<u64> {
        self.cache_lookups[decision.index()].get_or_init(|| {
            let mut attrs = self.server_tool.clone();
            attrs.push(KeyValue::new(sc::CACHE_DECISION, decision.as_str()));
            instruments.cache_lookups.bind(&attrs)
        })
    }

    /// The attributes of `switchboard.client.calls` but the outcome and error type:
    /// `[server, tool, method]` or `[server, method]`.
    pub(crate) fn calls_attrs(&self) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(self.server_tool.len() + 3);
        attrs.extend_from_slice(&self.server_tool);
        attrs.push(KeyValue::new(sc::MCP_METHOD_NAME, self.method.clone()));
        attrs
    }
}

/// `name` as an attribute value: a kept `&'static str` ([`intern`]), which every copy just
/// copies, or a shared string once too many names are kept.
fn kept_value(name: &str) -> Value {
    intern(name).map_or_else(|| name_value(name), Value::from)
}

/// A span name, kept like [`kept_value`]'s names.
fn kept_name(name: String) -> Cow<'static, str> {
    intern(&name).map_or(Cow::Owned(name), Cow::Borrowed)
}
