//! W3C trace context in `_meta`.

use opentelemetry::{
    Context, KeyValue,
    baggage::BaggageExt,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use serde_json::{Map, Value, json};

use super::{client_span, read_file};
use crate::{Outcome, extract_from_meta, inject_context_into_meta, testing::TestTelemetry};

/// `version-traceid-spanid-flags` of a W3C `traceparent`.
#[track_caller]
fn parse_traceparent(meta: &Map<String, Value>) -> (TraceId, SpanId, String) {
    let traceparent = meta["traceparent"]
        .as_str()
        .expect("traceparent is a string");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00", "version");
    let trace_id = TraceId::from_hex(parts[1]).expect("trace id");
    let span_id = SpanId::from_hex(parts[2]).expect("span id");
    (trace_id, span_id, parts[3].to_owned())
}

fn remote_parent() -> SpanContext {
    SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id"),
        SpanId::from_hex("00f067aa0ba902b7").expect("span id"),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "opaque")]).expect("trace state"),
    )
}

#[test]
fn traceparent_carries_the_operations_span() {
    let test = TestTelemetry::new();
    let op = test.telemetry().start_operation(&read_file());
    let mut meta = Map::new();
    op.inject_into_meta(&mut meta);
    op.finish(Outcome::OK);

    let span = client_span(&test, "tools/call read_file");
    let (trace_id, span_id, flags) = parse_traceparent(&meta);
    assert_eq!(trace_id, span.span_context.trace_id());
    assert_eq!(span_id, span.span_context.span_id());
    assert_eq!(flags, "01", "sampled");
    assert_eq!(
        span.parent_span_id,
        SpanId::INVALID,
        "a new trace without a current context"
    );
    assert!(
        !meta.contains_key("tracestate"),
        "empty tracestate is left out"
    );
    assert!(!meta.contains_key("baggage"), "empty baggage is left out");
}

#[test]
fn current_context_is_continued() {
    let test = TestTelemetry::new();
    let parent = remote_parent();
    let cx = Context::new()
        .with_remote_span_context(parent.clone())
        .with_baggage([KeyValue::new("tenant", "acme")]);
    let op = {
        let _attached = cx.attach();
        test.telemetry().start_operation(&read_file())
    };
    let mut meta = Map::new();
    op.inject_into_meta(&mut meta);
    op.finish(Outcome::OK);

    let span = client_span(&test, "tools/call read_file");
    let (trace_id, span_id, _) = parse_traceparent(&meta);
    assert_eq!(trace_id, parent.trace_id(), "the caller's trace continues");
    assert_eq!(span.span_context.trace_id(), parent.trace_id());
    assert_eq!(span.parent_span_id, parent.span_id());
    assert_eq!(
        span_id,
        span.span_context.span_id(),
        "the server's parent is our span"
    );
    assert_eq!(meta["tracestate"], json!("vendor=opaque"));
    assert_eq!(meta["baggage"], json!("tenant=acme"));
}

#[test]
fn explicit_parent_from_incoming_meta() {
    let test = TestTelemetry::new();
    let incoming = json!({
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "vendor=opaque",
        "baggage": "tenant=acme",
    });
    let incoming = incoming.as_object().expect("object");
    let parent = extract_from_meta(incoming);
    assert_eq!(
        parent.span().span_context().span_id(),
        remote_parent().span_id()
    );

    let op = test
        .telemetry()
        .start_operation_with_parent(&read_file(), &parent);
    let mut meta = Map::new();
    op.inject_into_meta(&mut meta);
    op.finish(Outcome::OK);

    let span = client_span(&test, "tools/call read_file");
    assert!(span.parent_span_is_remote);
    assert_eq!(span.parent_span_id, remote_parent().span_id());
    let (trace_id, span_id, _) = parse_traceparent(&meta);
    assert_eq!(
        (trace_id, span_id),
        (remote_parent().trace_id(), span.span_context.span_id())
    );
    assert_eq!(meta["baggage"], json!("tenant=acme"));
}

#[test]
fn child_span_injects_its_own_id_and_forwarding_keeps_the_context() {
    let test = TestTelemetry::new();
    let op = test.telemetry().start_operation(&read_file());
    let attempt = op.child("attempt", &[]);
    let mut meta = Map::new();
    attempt.inject_into_meta(&mut meta);
    attempt.finish(Outcome::OK);
    op.finish(Outcome::OK);

    let child = test.span("attempt").expect("attempt span");
    let (trace_id, span_id, _) = parse_traceparent(&meta);
    assert_eq!(
        (trace_id, span_id),
        (child.span_context.trace_id(), child.span_context.span_id())
    );

    let mut forwarded = Map::new();
    inject_context_into_meta(&extract_from_meta(&meta), &mut forwarded);
    assert_eq!(forwarded["traceparent"], meta["traceparent"]);
}

#[test]
fn malformed_meta_gives_no_parent() {
    let meta = json!({ "traceparent": "garbage", "baggage": 7 });
    let cx = extract_from_meta(meta.as_object().expect("object"));
    assert!(!cx.span().span_context().is_valid());
}

#[test]
fn a_tracing_span_is_the_parent_through_tracing_opentelemetry() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let test = TestTelemetry::new();
    let provider = test.telemetry().tracer_provider().expect("enabled").clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    let (op, request_span) = tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("handle_request");
        let op = request.in_scope(|| test.telemetry().start_operation(&read_file()));
        let request_span = request.context().span().span_context().clone();
        (op, request_span)
    });
    let mut meta = Map::new();
    op.inject_into_meta(&mut meta);
    op.finish(Outcome::OK);

    let span = client_span(&test, "tools/call read_file");
    assert!(request_span.is_valid());
    assert_eq!(span.span_context.trace_id(), request_span.trace_id());
    assert_eq!(span.parent_span_id, request_span.span_id());
    assert_eq!(parse_traceparent(&meta).0, request_span.trace_id());
}

#[test]
fn meta_holds_what_the_w3c_propagators_write() {
    use std::collections::HashMap;

    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

    let trace_id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("trace id");
    let span_id = SpanId::from_hex("b7ad6b7169203331").expect("span id");
    let state = TraceState::from_key_value([("rojo", "00f067aa0ba902b7"), ("congo", "t61")])
        .expect("trace state");
    let contexts = [
        SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, state),
        SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::NOT_SAMPLED,
            false,
            TraceState::NONE,
        ),
        // Flags other than `sampled` are not propagated.
        SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::new(0xff),
            true,
            TraceState::NONE,
        ),
        SpanContext::empty_context(),
    ];
    for span_context in contexts {
        let cx = Context::new()
            .with_remote_span_context(span_context)
            .with_baggage([KeyValue::new("tenant", "acme corp")]);
        let mut ours = Map::new();
        inject_context_into_meta(&cx, &mut ours);
        let mut theirs = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut theirs);
        BaggagePropagator::new().inject_context(&cx, &mut theirs);
        theirs.retain(|_, value: &mut String| !value.is_empty());

        let ours: HashMap<String, String> = ours
            .into_iter()
            .map(|(key, value)| (key, value.as_str().expect("string").to_owned()))
            .collect();
        assert_eq!(ours, theirs);
    }
}
