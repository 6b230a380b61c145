//! In-memory exporters and lookups for tests (feature `testing`).
//!
//! [`TestTelemetry`] is an enabled [`Telemetry`] whose spans and metrics stay in memory, with
//! helpers that find a span by name or a metric value by name and attributes.
//!
//! ```
//! use switchboard_telemetry::{OperationInfo, Outcome, testing::TestTelemetry};
//!
//! let test = TestTelemetry::new();
//! let op = test.telemetry().start_operation(&OperationInfo::tool_call("files", "read"));
//! op.finish(Outcome::tool_error());
//!
//! let span = test.span("tools/call read").expect("span");
//! assert_eq!(TestTelemetry::attribute(&span, "error.type").as_deref(), Some("tool_error"));
//! let metrics = test.metrics();
//! assert_eq!(metrics.histogram_count("mcp.client.operation.duration", &[("error.type", "tool_error")]), 1);
//! ```

use std::{collections::BTreeSet, time::Duration};

use opentelemetry::KeyValue;
use opentelemetry_sdk::{
    metrics::{
        InMemoryMetricExporter,
        data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics},
    },
    trace::{InMemorySpanExporter, SpanData},
};

use crate::{Telemetry, TelemetryConfig};

/// An enabled [`Telemetry`] exporting to memory: spans as soon as they end, metrics on
/// [`metrics`](Self::metrics).
#[derive(Debug)]
pub struct TestTelemetry {
    telemetry: Telemetry,
    spans: InMemorySpanExporter,
    metrics: InMemoryMetricExporter,
}

impl Default for TestTelemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTelemetry {
    /// Telemetry with the default configuration (every trace sampled) and in-memory exporters.
    pub fn new() -> Self {
        let spans = InMemorySpanExporter::default();
        let metrics = InMemoryMetricExporter::default();
        let telemetry = Telemetry::builder(TelemetryConfig::default())
            .with_simple_span_exporter(spans.clone())
            // Long enough that only `metrics()` exports.
            .with_metric_exporter(metrics.clone(), Duration::from_secs(3600))
            .build()
            .unwrap_or_else(|_| Telemetry::disabled());
        Self {
            telemetry,
            spans,
            metrics,
        }
    }

    /// The handle to instrument code with.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Every span that ended, oldest first.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap_or_default()
    }

    /// The last ended span named `name`.
    pub fn span(&self, name: &str) -> Option<SpanData> {
        self.spans()
            .into_iter()
            .rev()
            .find(|span| span.name == name)
    }

    /// The value of attribute `key` of `span`, as a string.
    pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    /// Exports the metrics now and returns the current (cumulative) values.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.reset();
        // An export error leaves the snapshot empty, which the test's assertions will show.
        let _ = self.telemetry.force_flush();
        MetricsSnapshot {
            resource_metrics: self
                .metrics
                .get_finished_metrics()
                .unwrap_or_default()
                .into_iter()
                .last(),
        }
    }

    /// Forgets the spans ended so far.
    pub fn reset_spans(&self) {
        self.spans.reset();
    }
}

/// Metric values at one export.
#[derive(Debug)]
pub struct MetricsSnapshot {
    resource_metrics: Option<ResourceMetrics>,
}

fn matches(attributes: &mut dyn Iterator<Item = &KeyValue>, wanted: &[(&str, &str)]) -> bool {
    let attributes: Vec<&KeyValue> = attributes.collect();
    wanted.iter().all(|(key, value)| {
        attributes
            .iter()
            .any(|kv| kv.key.as_str() == *key && kv.value.as_str() == *value)
    })
}

impl MetricsSnapshot {
    fn metric(&self, name: &str) -> Option<&Metric> {
        self.resource_metrics
            .as_ref()?
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .find(|metric| metric.name() == name)
    }

    /// The names of every metric with data.
    pub fn names(&self) -> BTreeSet<String> {
        self.resource_metrics
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .flat_map(|scope| scope.metrics())
            .map(|metric| metric.name().to_owned())
            .collect()
    }

    /// The attribute keys used by any data point of metric `name`.
    pub fn attribute_keys(&self, name: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let Some(metric) = self.metric(name) else {
            return keys;
        };
        let mut add = |attrs: &mut dyn Iterator<Item = &KeyValue>| {
            keys.extend(attrs.map(|kv| kv.key.to_string()));
        };
        match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                sum.data_points().for_each(|p| add(&mut p.attributes()));
            }
            AggregatedMetrics::I64(MetricData::Sum(sum)) => {
                sum.data_points().for_each(|p| add(&mut p.attributes()));
            }
            AggregatedMetrics::I64(MetricData::Gauge(gauge)) => {
                gauge.data_points().for_each(|p| add(&mut p.attributes()));
            }
            AggregatedMetrics::F64(MetricData::Histogram(histogram)) => {
                histogram
                    .data_points()
                    .for_each(|p| add(&mut p.attributes()));
            }
            _ => {}
        }
        keys
    }

    /// The number of data points (attribute sets) of metric `name`.
    pub fn data_points(&self, name: &str) -> usize {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::U64(MetricData::Sum(sum))) => sum.data_points().count(),
            Some(AggregatedMetrics::I64(MetricData::Sum(sum))) => sum.data_points().count(),
            Some(AggregatedMetrics::I64(MetricData::Gauge(gauge))) => gauge.data_points().count(),
            Some(AggregatedMetrics::F64(MetricData::Histogram(histogram))) => {
                histogram.data_points().count()
            }
            _ => 0,
        }
    }

    /// The sum of the counter (or up-down counter) `name` over the data points that have all
    /// the `wanted` attributes; 0 when none.
    pub fn sum(&self, name: &str, wanted: &[(&str, &str)]) -> i64 {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::U64(MetricData::Sum(sum))) => sum
                .data_points()
                .filter(|p| matches(&mut p.attributes(), wanted))
                .map(|p| i64::try_from(p.value()).unwrap_or(i64::MAX))
                .sum(),
            Some(AggregatedMetrics::I64(MetricData::Sum(sum))) => sum
                .data_points()
                .filter(|p| matches(&mut p.attributes(), wanted))
                .map(|p| p.value())
                .sum(),
            _ => 0,
        }
    }

    /// The last value of the gauge `name` for the data point with all the `wanted`
    /// attributes.
    pub fn gauge(&self, name: &str, wanted: &[(&str, &str)]) -> Option<i64> {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::I64(MetricData::Gauge(gauge))) => gauge
                .data_points()
                .find(|p| matches(&mut p.attributes(), wanted))
                .map(|p| p.value()),
            _ => None,
        }
    }

    /// The number of recordings of histogram `name` over the data points with all the
    /// `wanted` attributes.
    pub fn histogram_count(&self, name: &str, wanted: &[(&str, &str)]) -> u64 {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::F64(MetricData::Histogram(histogram))) => histogram
                .data_points()
                .filter(|p| matches(&mut p.attributes(), wanted))
                .map(|p| p.count())
                .sum(),
            _ => 0,
        }
    }

    /// The bucket boundaries of histogram `name`.
    pub fn histogram_bounds(&self, name: &str) -> Vec<f64> {
        match self.metric(name).map(Metric::data) {
            Some(AggregatedMetrics::F64(MetricData::Histogram(histogram))) => histogram
                .data_points()
                .next()
                .map(|p| p.bounds().collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}
