//! The per-call cost of telemetry: one `tools/call` recorded the way the facade records it
//! (`start_operation`, `inject_into_meta`, the cache decision, `finish`), with telemetry off and on.
//!
//! "On" is the pipeline of the loadtest's `switchboard+otel` target: spans through a batch span
//! processor and metrics through a periodic reader (every second), both ending in exporters
//! that count what they get and drop it ([`switchboard_telemetry::counting`]). The batch
//! processor's queue holds 2,048 spans; at the rate of this loop it overflows and drops spans,
//! which costs the recording thread no more than a send.
//!
//! Run: `cargo bench -p switchboard-telemetry --bench operation`.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Map;
use switchboard_telemetry::{
    CacheDecision, OperationInfo, Outcome, Telemetry, TelemetryConfig, Transport,
    counting::{CountingMetricExporter, CountingSpanExporter, ExportCounts},
};

fn enabled() -> Telemetry {
    Telemetry::builder(TelemetryConfig::default())
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
    let on = enabled();

    let mut group = c.benchmark_group("tools_call");
    group.bench_function("off", |b| b.iter(|| tool_call(&off, black_box(&info))));
    group.bench_function("on", |b| b.iter(|| tool_call(&on, black_box(&info))));
    group.bench_function("on/tool_error", |b| {
        b.iter(|| {
            let op = on.start_operation(black_box(&info));
            op.finish(Outcome::tool_error());
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
}

criterion_group!(benches, bench_operation);
criterion_main!(benches);
