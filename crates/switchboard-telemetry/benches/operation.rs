//! The per-call cost of telemetry: one `tools/call` recorded the way the facade records it
//! (`start_operation`, `inject_into_meta`, the cache decision, `finish`), with telemetry off and on.
//!
//! "On" is the pipeline of the loadtest's `switchboard+otel` target: spans through a batch span
//! processor and metrics through a periodic reader (every second), both ending in exporters
//! that count what they get and drop it ([`switchboard_telemetry::counting`]). The batch
//! processor's queue holds 2,048 spans; at the rate of this loop it overflows and drops spans,
//! which costs the recording thread no more than a send. `on/unsampled` records the same call
//! with traces not sampled (metrics and trace context only); `sdk_span_only` is the SDK's span
//! alone, for scale.
//!
//! Run: `cargo bench -p switchboard-telemetry --bench operation`.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::{
    KeyValue,
    trace::{Span as _, SpanBuilder, SpanKind, TracerProvider as _},
};
use serde_json::Map;
use switchboard_telemetry::{
    CacheDecision, OperationInfo, Outcome, Telemetry, TelemetryConfig, Transport,
    counting::{CountingMetricExporter, CountingSpanExporter, ExportCounts},
};

/// The loadtest's pipeline, recording the share `sample_ratio` of traces.
fn enabled(sample_ratio: f64) -> Telemetry {
    let config = TelemetryConfig {
        trace_sample_ratio: sample_ratio,
        ..TelemetryConfig::default()
    };
    Telemetry::builder(config)
        .with_batch_span_exporter(CountingSpanExporter(Arc::new(ExportCounts::default())))
        .with_metric_exporter(
            CountingMetricExporter(Arc::new(ExportCounts::default())),
            Duration::from_secs(1),
        )
        .build()
        .expect("telemetry")
}

/// One `tools/call` as `Switchboard::call_with` records it when the call succeeds.
fn tool_call(telemetry: &Telemetry, info: &OperationInfo<'_>) {
    let mut op = telemetry.start_operation(info);
    let mut meta = Map::new();
    op.inject_into_meta(&mut meta);
    black_box(&meta);
    op.cache(CacheDecision::Bypass);
    op.finish(Outcome::OK);
}

fn bench_operation(c: &mut Criterion) {
    let info = OperationInfo {
        transport: Transport::Stdio,
        protocol_version: Some("2025-06-18"),
        ..OperationInfo::tool_call("testkit", "echo")
    };
    let off = Telemetry::disabled();
    let on = enabled(1.0);
    let unsampled = enabled(0.0);

    let mut group = c.benchmark_group("tools_call");
    group.bench_function("off", |b| b.iter(|| tool_call(&off, black_box(&info))));
    group.bench_function("on", |b| b.iter(|| tool_call(&on, black_box(&info))));
    // Traces not sampled: metrics and trace context only (`trace_sample_ratio = 0`).
    group.bench_function("on/unsampled", |b| {
        b.iter(|| tool_call(&unsampled, black_box(&info)));
    });
    group.bench_function("on/tool_error", |b| {
        b.iter(|| {
            let op = on.start_operation(black_box(&info));
            op.finish(Outcome::tool_error());
        });
    });
    // The OpenTelemetry SDK alone, for scale: a client span with the attributes of the `on`
    // case (6, as for a stdio `tools/call`), started and ended through the same batch span
    // processor, and no metric. What `on` costs beyond this is ours.
    let tracer = on
        .tracer_provider()
        .expect("an enabled handle has a tracer provider")
        .tracer("bench");
    let attributes = [
        KeyValue::new("mcp.method.name", "tools/call"),
        KeyValue::new("switchboard.server.name", "testkit"),
        KeyValue::new("gen_ai.tool.name", "echo"),
        KeyValue::new("gen_ai.operation.name", "execute_tool"),
        KeyValue::new("mcp.protocol.version", "2025-06-18"),
        KeyValue::new("network.transport", "pipe"),
    ];
    group.bench_function("sdk_span_only", |b| {
        b.iter(|| {
            let mut span = SpanBuilder::from_name("tools/call echo")
                .with_kind(SpanKind::Client)
                .with_attributes(attributes.to_vec())
                .start(&tracer);
            span.end();
        });
    });
    group.bench_function("on/inject_into_meta", |b| {
        let op = on.start_operation(&info);
        b.iter(|| {
            let mut meta = Map::new();
            op.inject_into_meta(&mut meta);
            meta
        });
    });
    group.finish();
    on.shutdown().expect("shutdown");
    unsampled.shutdown().expect("shutdown");
}

criterion_group!(benches, bench_operation);
criterion_main!(benches);
