//! W3C trace context and baggage in an MCP request's `_meta` object.
//!
//! MCP carries trace context in `params._meta` under the W3C header names `traceparent`,
//! `tracestate` and `baggage` (MCP semconv; the 2026-07-28 revision makes it part of the
//! protocol). The MCP context is independent of the HTTP one: one MCP request can take
//! several HTTP requests (retries), and one HTTP stream carries many MCP messages.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapCompositePropagator, TextMapPropagator},
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use serde_json::{Map, Value};

/// The `_meta` key of the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// The `_meta` key of the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";
/// The `_meta` key of the W3C `baggage`.
pub const BAGGAGE: &str = "baggage";

struct MetaInjector<'a>(&'a mut Map<String, Value>);

impl Injector for MetaInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` or `baggage` carries nothing; leave `_meta` uncluttered.
        if !value.is_empty() {
            self.0.insert(key.to_owned(), Value::String(value));
        }
    }
}

struct MetaExtractor<'a>(&'a Map<String, Value>);

impl Extractor for MetaExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

pub(crate) fn inject(
    propagator: &TextMapCompositePropagator,
    cx: &Context,
    meta: &mut Map<String, Value>,
) {
    propagator.inject_context(cx, &mut MetaInjector(meta));
}

/// Writes the trace context and baggage of `cx` into `meta` (e.g. a context extracted from an
/// incoming request, forwarded as is). Prefer
/// [`Operation::inject_into_meta`](crate::Operation::inject_into_meta) on the call path.
pub fn inject_context_into_meta(cx: &Context, meta: &mut Map<String, Value>) {
    TraceContextPropagator::new().inject_context(cx, &mut MetaInjector(meta));
    BaggagePropagator::new().inject_context(cx, &mut MetaInjector(meta));
}

/// Reads `traceparent`, `tracestate` and `baggage` from an incoming request's `_meta` into a
/// context to use as parent ([`Telemetry::start_operation_with_parent`](crate::Telemetry::start_operation_with_parent)).
/// Missing or malformed entries give a context without a remote parent.
pub fn extract_from_meta(meta: &Map<String, Value>) -> Context {
    let cx = TraceContextPropagator::new().extract(&MetaExtractor(meta));
    BaggagePropagator::new().extract_with_context(&cx, &MetaExtractor(meta))
}
