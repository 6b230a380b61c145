//! Telemetry of the `switchboard+otel` target: the facade's real OpenTelemetry pipeline (spans
//! through a batch span processor, metrics through a periodic reader) ending in exporters that
//! count what they receive and drop it. The run pays for recording, batching and aggregating,
//! not for a collector; the counts show that telemetry really ran.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
    trace::{SpanData, SpanExporter},
};
use switchboard::telemetry::{Telemetry, TelemetryConfig};

/// How often metrics are pushed to the exporter.
pub(crate) const METRIC_INTERVAL: Duration = Duration::from_secs(1);

/// What the counting exporters received.
#[derive(Debug, Default)]
pub(crate) struct Exported {
    spans: AtomicU64,
    span_batches: AtomicU64,
    metric_exports: AtomicU64,
    last_export_metrics: AtomicU64,
}

/// A snapshot of [`Exported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Spans exported.
    pub(crate) spans: u64,
    /// Batches they came in.
    pub(crate) span_batches: u64,
    /// Metric exports (one per interval, and one per flush).
    pub(crate) metric_exports: u64,
    /// Metrics (instruments with data) in the last export.
    pub(crate) last_export_metrics: u64,
}

impl Exported {
    /// What was received so far.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            spans: self.spans.load(Ordering::Relaxed),
            span_batches: self.span_batches.load(Ordering::Relaxed),
            metric_exports: self.metric_exports.load(Ordering::Relaxed),
            last_export_metrics: self.last_export_metrics.load(Ordering::Relaxed),
        }
    }
}

/// A telemetry handle recording everything (traces sampled at 1.0, every metric) into
/// counting exporters, and the counts.
///
/// # Errors
/// The telemetry crate refusing the configuration.
pub(crate) fn counting() -> Result<(Telemetry, Arc<Exported>)> {
    let exported = Arc::new(Exported::default());
    let config = TelemetryConfig {
        enabled: true,
        service_name: "switchboard-loadtest".to_owned(),
        ..TelemetryConfig::default()
    };
    let telemetry = Telemetry::builder(config)
        .with_batch_span_exporter(CountingSpans(Arc::clone(&exported)))
        .with_metric_exporter(CountingMetrics(Arc::clone(&exported)), METRIC_INTERVAL)
        .build()
        .context("cannot set up telemetry")?;
    Ok((telemetry, exported))
}

/// Counts spans and drops them.
#[derive(Debug)]
struct CountingSpans(Arc<Exported>);

impl SpanExporter for CountingSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0
            .spans
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.0.span_batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Counts metric exports and drops them.
struct CountingMetrics(Arc<Exported>);

impl PushMetricExporter for CountingMetrics {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let count = metrics
            .scope_metrics()
            .map(|s| s.metrics().count())
            .sum::<usize>();
        self.0.metric_exports.fetch_add(1, Ordering::Relaxed);
        self.0
            .last_export_metrics
            .store(count as u64, Ordering::Relaxed);
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}
