//! W3C trace context and baggage in an MCP request's `_meta` object.
//!
//! MCP carries trace context in `params._meta` under the W3C header names `traceparent`,
//! `tracestate` and `baggage` (MCP semconv; the 2026-07-28 revision makes it part of the
//! protocol). The MCP context is independent of the HTTP one: one MCP request can take
//! several HTTP requests (retries), and one HTTP stream carries many MCP messages.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{SpanContext, TraceContextExt, TraceFlags},
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

/// Writes the trace context of `span_context` and the baggage of `cx` into `meta`: what
/// `TraceContextPropagator` and `BaggagePropagator` write, with the `traceparent` formatted
/// here, which spares the propagator's formatting machinery on every call.
pub(crate) fn inject(span_context: &SpanContext, cx: &Context, meta: &mut Map<String, Value>) {
    if span_context.is_valid() {
        meta.insert(
            TRACEPARENT.to_owned(),
            Value::String(traceparent(span_context)),
        );
        let state = span_context.trace_state().header();
        // An empty `tracestate` carries nothing; leave `_meta` uncluttered.
        if !state.is_empty() {
            meta.insert(TRACESTATE.to_owned(), Value::String(state));
        }
    }
    BaggagePropagator::new().inject_context(cx, &mut MetaInjector(meta));
}

/// `00-{trace id}-{span id}-{flags}` in lower-case hex, with only the sampled flag, as
/// `TraceContextPropagator` writes it.
fn traceparent(span_context: &SpanContext) -> String {
    let mut header = String::with_capacity(55);
    header.push_str("00-");
    push_hex(&mut header, &span_context.trace_id().to_bytes());
    header.push('-');
    push_hex(&mut header, &span_context.span_id().to_bytes());
    header.push('-');
    push_hex(
        &mut header,
        &[(span_context.trace_flags() & TraceFlags::SAMPLED).to_u8()],
    );
    header
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// Writes the trace context and baggage of `cx` into `meta` (e.g. a context extracted from an
/// incoming request, forwarded as is). Prefer
/// [`Operation::inject_into_meta`](crate::Operation::inject_into_meta) on the call path.
pub fn inject_context_into_meta(cx: &Context, meta: &mut Map<String, Value>) {
    inject(cx.span().span_context(), cx, meta);
}

/// Reads `traceparent`, `tracestate` and `baggage` from an incoming request's `_meta` into a
/// context to use as parent ([`Telemetry::start_operation_with_parent`](crate::Telemetry::start_operation_with_parent)).
/// Missing or malformed entries give a context without a remote parent.
pub fn extract_from_meta(meta: &Map<String, Value>) -> Context {
    let cx = TraceContextPropagator::new().extract(&MetaExtractor(meta));
    BaggagePropagator::new().extract_with_context(&cx, &MetaExtractor(meta))
}
