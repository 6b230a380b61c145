//! What telemetry adds to a call, counted in heap allocations rather than timed: the same
//! calls through the full stack over stdio, once with telemetry off and once with the
//! loadtest's pipeline (every span through a batch span processor, metrics through a periodic
//! reader, exporters that count and drop). The batch processor's own work is included: the
//! count is taken after a flush.
//!
//! Allocation counts do not depend on the machine's load, so this holds the line on
//! telemetry's per-call cost where a timed test could not (the throughput figures come from
//! `cargo xtask loadtest steady --targets telemetry`). Today a call with telemetry on makes
//! 10 allocations more than with it off: the operation and its span's attribute list (2), the
//! `_meta` map with its `traceparent` (3), rmcp's copy of that map when it writes the request
//! (4), and the span processor's batches, shared by 512 spans.
//!
//! This binary holds a single test, so nothing else allocates meanwhile. It needs the testkit
//! server: `cargo build -p switchboard-testkit` (`cargo xtask test` builds it).

mod support;

use std::{alloc::System, sync::Arc, time::Duration};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use support::{echo_calls, testkit_spec};
use switchboard::{
    Switchboard,
    config::{Config, ServerConfig},
    telemetry::{
        Telemetry, TelemetryConfig,
        counting::{CountingMetricExporter, CountingSpanExporter, ExportCounts},
    },
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const WARM_UP: usize = 1_000;
const CALLS: usize = 5_000;
/// Allocations telemetry may add to one call (10 today).
const MAX_EXTRA_PER_CALL: f64 = 12.0;

fn counting_telemetry() -> (Telemetry, Arc<ExportCounts>) {
    let counts = Arc::new(ExportCounts::default());
    let telemetry = Telemetry::builder(TelemetryConfig {
        enabled: true,
        ..TelemetryConfig::default()
    })
    .with_batch_span_exporter(CountingSpanExporter(Arc::clone(&counts)))
    .with_metric_exporter(
        CountingMetricExporter(Arc::clone(&counts)),
        Duration::from_secs(60),
    )
    .build()
    .expect("telemetry");
    (telemetry, counts)
}

/// Allocations per call after a warm-up, with `telemetry`.
async fn allocations_per_call(telemetry: &Telemetry) -> f64 {
    let mut config = Config::default();
    config.defaults.call_timeout = Duration::from_secs(10);
    config.servers.push(ServerConfig::new(testkit_spec()));
    let sb = Switchboard::connect_with(config, Some(telemetry.clone()))
        .await
        .expect("connect");
    echo_calls(&sb, WARM_UP, 1).await;
    telemetry.force_flush().expect("flush");
    let region = Region::new(GLOBAL);
    echo_calls(&sb, CALLS, 1).await;
    telemetry.force_flush().expect("flush");
    let change = region.change();
    sb.shutdown().await;
    change.allocations as f64 / CALLS as f64
}

#[test]
fn telemetry_adds_few_allocations_per_call() {
    support::runtime().block_on(async {
        let off = allocations_per_call(&Telemetry::disabled()).await;
        let (telemetry, counts) = counting_telemetry();
        let on = allocations_per_call(&telemetry).await;
        let exported = counts.snapshot().spans;
        eprintln!("allocations per call: off {off:.2}, on {on:.2}; {exported} spans exported");
        // Telemetry really ran: every call's span reached the exporter.
        assert_eq!(exported, (WARM_UP + CALLS) as u64);
        assert!(
            on - off <= MAX_EXTRA_PER_CALL,
            "telemetry adds {:.2} allocations per call (off {off:.2}, on {on:.2}), more than \
             {MAX_EXTRA_PER_CALL}",
            on - off
        );
        telemetry.shutdown().expect("shutdown");
    });
}
