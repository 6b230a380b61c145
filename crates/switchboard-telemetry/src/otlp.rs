//! OTLP export over HTTP/protobuf (feature `otlp`) or gRPC (feature `otlp-grpc`).
//!
//! The SDK's batch span processor and periodic metric reader call the exporters from their own
//! threads, so export never runs on the application's Tokio runtime.
//!
//! - HTTP/protobuf uses reqwest's blocking client, driven directly from those threads.
//! - gRPC uses tonic, whose channel needs a Tokio runtime for its connection tasks. The
//!   exporters are built on a one-worker runtime of their own ([`ExportRuntime`]), so that
//!   `Telemetry::init` works inside or outside the application's runtime, and so that a
//!   blocking `force_flush` or `shutdown` on a current-thread runtime cannot starve the
//!   connection it waits for. gRPC is a separate feature because tonic, h2 and hyper's client
//!   roughly double the build of this crate; every collector also accepts OTLP/HTTP.

#[cfg(feature = "otlp-grpc")]
mod grpc;

use std::collections::HashMap;

use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_sdk::{
    metrics::{MeterProviderBuilder, PeriodicReader},
    trace::TracerProviderBuilder,
};

use crate::{OtlpConfig, OtlpProtocol, TelemetryError};

/// What OTLP export keeps running besides the SDK's threads: the gRPC exporters' runtime, or
/// nothing. Stopped by [`stop`](Self::stop) or on drop.
#[derive(Default)]
pub(crate) struct ExportRuntime {
    #[cfg(feature = "otlp-grpc")]
    grpc: Option<grpc::Runtime>,
}

impl ExportRuntime {
    /// Stops the runtime without waiting for its tasks (call it after the providers have shut
    /// down); later calls do nothing.
    pub(crate) fn stop(&self) {
        #[cfg(feature = "otlp-grpc")]
        if let Some(runtime) = &self.grpc {
            runtime.stop();
        }
    }
}

/// Adds the OTLP span exporter (batched) and metric reader (periodic) the config asks for.
pub(crate) fn install(
    config: &OtlpConfig,
    mut tracer: TracerProviderBuilder,
    mut meter: MeterProviderBuilder,
) -> Result<(TracerProviderBuilder, MeterProviderBuilder, ExportRuntime), TelemetryError> {
    let ((spans, metrics), runtime) = match config.protocol {
        OtlpProtocol::HttpProtobuf => (http_exporters(config)?, ExportRuntime::default()),
        #[cfg(feature = "otlp-grpc")]
        OtlpProtocol::Grpc => {
            let base = base_url(config)?;
            let grpc = grpc::Runtime::start()?;
            let exporters = grpc.exporters(config, base)?;
            (exporters, ExportRuntime { grpc: Some(grpc) })
        }
        #[cfg(not(feature = "otlp-grpc"))]
        OtlpProtocol::Grpc => return Err(OtlpProtocol::Grpc.feature_disabled()),
    };
    if let Some(spans) = spans {
        tracer = tracer.with_batch_exporter(spans);
    }
    if let Some(metrics) = metrics {
        let reader = PeriodicReader::builder(metrics)
            .with_interval(config.metrics_interval)
            .build();
        meter = meter.with_reader(reader);
    }
    Ok((tracer, meter, runtime))
}

/// The span and metric exporters, each `None` when its signal is off.
type Exporters = (Option<SpanExporter>, Option<MetricExporter>);

/// The endpoint without a trailing `/`, which must be an http(s) URL; `otlp.certificate` is
/// checked against it, since a CA file only applies to gRPC over `https://`.
fn base_url(config: &OtlpConfig) -> Result<&str, TelemetryError> {
    let base = config.endpoint.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        let example = match config.protocol {
            OtlpProtocol::HttpProtobuf => "http://127.0.0.1:4318",
            OtlpProtocol::Grpc => "http://127.0.0.1:4317",
        };
        return Err(TelemetryError::Config {
            key: "otlp.endpoint",
            reason: format!(
                "`{}` is not an http(s) URL; use e.g. `{example}`",
                config.endpoint
            ),
        });
    }
    if let Some(certificate) = &config.certificate {
        let reason = match config.protocol {
            OtlpProtocol::HttpProtobuf => format!(
                "`{}`: a CA certificate file is supported with the grpc protocol; http/protobuf \
                 export trusts the system's roots",
                certificate.display()
            ),
            OtlpProtocol::Grpc if !base.starts_with("https://") => format!(
                "`{}` is set but the endpoint `{base}` is not https://",
                certificate.display()
            ),
            OtlpProtocol::Grpc => return Ok(base),
        };
        return Err(TelemetryError::Config {
            key: "otlp.certificate",
            reason,
        });
    }
    Ok(base)
}

fn http_exporters(config: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    let base = base_url(config)?;
    let headers: HashMap<String, String> = config.headers.iter().cloned().collect();
    let spans = config
        .traces
        .then(|| {
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{base}/v1/traces"))
                .with_timeout(config.timeout)
                .with_headers(headers.clone())
                .build()
        })
        .transpose()
        .map_err(exporter_error("otlp span"))?;
    let metrics = config
        .metrics
        .then(|| {
            MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{base}/v1/metrics"))
                .with_timeout(config.timeout)
                .with_headers(headers)
                .build()
        })
        .transpose()
        .map_err(exporter_error("otlp metric"))?;
    Ok((spans, metrics))
}

/// Wraps an exporter's build error, naming the exporter.
fn exporter_error(
    what: &'static str,
) -> impl FnOnce(opentelemetry_otlp::ExporterBuildError) -> TelemetryError {
    move |source| TelemetryError::Exporter {
        what,
        source: source.into(),
    }
}
