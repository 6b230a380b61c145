//! OTLP export over HTTP/protobuf.
//!
//! Only HTTP/protobuf is built in: gRPC would pull tonic and h2 and roughly double the build of
//! this crate, and every OpenTelemetry collector and most backends accept OTLP/HTTP (port
//! 4318). The HTTP client is reqwest's blocking client, which the SDK's batch span processor
//! and periodic metric reader drive from their own threads, so export never runs on the
//! application's Tokio runtime.

use std::collections::HashMap;

use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};

use opentelemetry_sdk::{
    metrics::{MeterProviderBuilder, PeriodicReader},
    trace::TracerProviderBuilder,
};

use crate::{OtlpConfig, TelemetryError};

fn url(config: &OtlpConfig, signal: &str) -> Result<String, TelemetryError> {
    let base = config.endpoint.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(TelemetryError::Config {
            key: "otlp.endpoint",
            reason: format!(
                "`{}` is not an http(s) URL; use e.g. `http://127.0.0.1:4318`",
                config.endpoint
            ),
        });
    }
    Ok(format!("{base}/v1/{signal}"))
}

/// Adds the OTLP span exporter (batched) and metric reader (periodic) the config asks for.
pub(crate) fn install(
    config: &OtlpConfig,
    mut tracer: TracerProviderBuilder,
    mut meter: MeterProviderBuilder,
) -> Result<(TracerProviderBuilder, MeterProviderBuilder), TelemetryError> {
    if config.traces {
        tracer = tracer.with_batch_exporter(span_exporter(config)?);
    }
    if config.metrics {
        let reader = PeriodicReader::builder(metric_exporter(config)?)
            .with_interval(config.metrics_interval)
            .build();
        meter = meter.with_reader(reader);
    }
    Ok((tracer, meter))
}

fn headers(config: &OtlpConfig) -> HashMap<String, String> {
    config.headers.iter().cloned().collect()
}

fn span_exporter(config: &OtlpConfig) -> Result<SpanExporter, TelemetryError> {
    SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url(config, "traces")?)
        .with_timeout(config.timeout)
        .with_headers(headers(config))
        .build()
        .map_err(|source| TelemetryError::Exporter {
            what: "otlp span",
            source: source.into(),
        })
}

fn metric_exporter(config: &OtlpConfig) -> Result<MetricExporter, TelemetryError> {
    MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url(config, "metrics")?)
        .with_timeout(config.timeout)
        .with_headers(headers(config))
        .build()
        .map_err(|source| TelemetryError::Exporter {
            what: "otlp metric",
            source: source.into(),
        })
}
