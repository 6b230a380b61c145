//! Exporters that count what they receive and drop it: the whole recording pipeline (spans
//! through a batch span processor, metrics through a periodic reader) runs, without a
//! collector. For measuring telemetry's own cost: the `operation` benchmark and the loadtest's
//! `switchboard+otel` target use them, and the counts show that telemetry really ran.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
    trace::{SpanData, SpanExporter},
};

/// What the counting exporters received, shared by both.
#[derive(Debug, Default)]
pub struct ExportCounts {
    spans: AtomicU64,
    span_batches: AtomicU64,
    metric_exports: AtomicU64,
    last_export_metrics: AtomicU64,
}

/// A snapshot of [`ExportCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSnapshot {
    /// Spans exported.
    pub spans: u64,
    /// Batches they came in.
    pub span_batches: u64,
    /// Metric exports (one per interval, and one per flush).
    pub metric_exports: u64,
    /// Metrics (instruments with data) in the last export.
    pub last_export_metrics: u64,
}

impl ExportCounts {
    /// What was received so far.
    pub fn snapshot(&self) -> ExportSnapshot {
        ExportSnapshot {
            spans: self.spans.load(Ordering::Relaxed),
            span_batches: self.span_batches.load(Ordering::Relaxed),
            metric_exports: self.metric_exports.load(Ordering::Relaxed),
            last_export_metrics: self.last_export_metrics.load(Ordering::Relaxed),
        }
    }
}

/// Counts spans and drops them.
#[derive(Debug)]
pub struct CountingSpanExporter(pub Arc<ExportCounts>);

impl SpanExporter for CountingSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0
            .spans
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.0.span_batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Counts metric exports and drops them.
#[derive(Debug)]
pub struct CountingMetricExporter(pub Arc<ExportCounts>);

impl PushMetricExporter for CountingMetricExporter {
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
