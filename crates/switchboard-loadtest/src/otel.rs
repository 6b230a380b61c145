//! Telemetry of the `switchboard+otel` target: the facade's real OpenTelemetry pipeline (spans
//! through a batch span processor, metrics through a periodic reader) ending in exporters that
//! count what they receive and drop it. The run pays for recording, batching and aggregating,
//! not for a collector; the counts show that telemetry really ran.

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use switchboard::telemetry::{
    Telemetry, TelemetryConfig,
    counting::{CountingMetricExporter, CountingSpanExporter, ExportCounts},
};

/// How often metrics are pushed to the exporter.
pub(crate) const METRIC_INTERVAL: Duration = Duration::from_secs(1);

/// A telemetry handle recording everything (traces sampled at 1.0, every metric) into
/// counting exporters, and the counts.
///
/// # Errors
/// The telemetry crate refusing the configuration.
pub(crate) fn counting() -> Result<(Telemetry, Arc<ExportCounts>)> {
    let exported = Arc::new(ExportCounts::default());
    let config = TelemetryConfig {
        enabled: true,
        service_name: "switchboard-loadtest".to_owned(),
        ..TelemetryConfig::default()
    };
    let telemetry = Telemetry::builder(config)
        .with_batch_span_exporter(CountingSpanExporter(Arc::clone(&exported)))
        .with_metric_exporter(
            CountingMetricExporter(Arc::clone(&exported)),
            METRIC_INTERVAL,
        )
        .build()
        .context("cannot set up telemetry")?;
    Ok((telemetry, exported))
}
