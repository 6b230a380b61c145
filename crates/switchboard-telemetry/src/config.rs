//! Telemetry settings and their defaults.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

/// Settings for [`Telemetry::init`](crate::Telemetry::init).
///
/// | Field | Default |
/// |---|---|
/// | `enabled` | `true` |
/// | `service_name` | `"switchboard"` |
/// | `trace_sample_ratio` | `1.0` (parent-based: a sampled caller is always followed) |
/// | `prometheus` | `None` (no endpoint) |
/// | `otlp` | `None` (no export) |
///
/// With `enabled = false` [`Telemetry::init`](crate::Telemetry::init) returns a disabled handle
/// whose every method is a no-op that neither allocates nor locks. With `enabled = true` and no
/// exporter, spans still get ids (so trace context still reaches the servers through `_meta`)
/// but nothing leaves the process.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Whether telemetry is on at all.
    pub enabled: bool,
    /// The `service.name` resource attribute of everything exported.
    pub service_name: String,
    /// The share of new traces to record, between 0 and 1. Calls inside a trace the caller
    /// already samples are always recorded; unrecorded calls still propagate trace context.
    pub trace_sample_ratio: f64,
    /// The Prometheus text endpoint, if any (needs the `prometheus` feature).
    pub prometheus: Option<PrometheusConfig>,
    /// OTLP export of traces and metrics, if any (needs the `otlp` feature).
    pub otlp: Option<OtlpConfig>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            service_name: "switchboard".to_owned(),
            trace_sample_ratio: 1.0,
            prometheus: None,
            otlp: None,
        }
    }
}

/// Settings of the Prometheus text endpoint.
///
/// | Field | Default |
/// |---|---|
/// | `listen` | `127.0.0.1:9464` (loopback: expose it wider on purpose only) |
/// | `path` | `"/metrics"` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    /// The address to listen on; port 0 picks a free port (see
    /// [`Telemetry::prometheus_addr`](crate::Telemetry::prometheus_addr)).
    pub listen: SocketAddr,
    /// The HTTP path that serves the metrics; must start with `/`.
    pub path: String,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 9464)),
            path: "/metrics".to_owned(),
        }
    }
}

/// Settings of OTLP export of traces and metrics.
///
/// | Field | Default |
/// |---|---|
/// | `protocol` | [`OtlpProtocol::HttpProtobuf`] |
/// | `endpoint` | `"http://127.0.0.1:4318"` (the OTLP/HTTP port; gRPC: see below) |
/// | `traces` | `true` |
/// | `metrics` | `true` |
/// | `headers` | none |
/// | `timeout` | 10 s |
/// | `metrics_interval` | 60 s |
///
/// For gRPC, set `protocol` to [`OtlpProtocol::Grpc`] *and* the endpoint to the collector's
/// gRPC port, usually `http://127.0.0.1:4317`: the default endpoint is the HTTP one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// How to send: HTTP/protobuf (feature `otlp`) or gRPC (feature `otlp-grpc`).
    pub protocol: OtlpProtocol,
    /// The collector's base URL. HTTP/protobuf appends the signal paths (`/v1/traces`,
    /// `/v1/metrics`); gRPC appends nothing, the service names the method.
    pub endpoint: String,
    /// Whether to export spans.
    pub traces: bool,
    /// Whether to export metrics.
    pub metrics: bool,
    /// Extra headers, e.g. an authorization header for a hosted backend: HTTP headers, or
    /// gRPC metadata (ASCII names, sent in lowercase; values in visible ASCII).
    pub headers: Vec<(String, String)>,
    /// The timeout of one export request.
    pub timeout: Duration,
    /// How often metrics are pushed.
    pub metrics_interval: Duration,
    /// A PEM file of CA certificates to trust for an `https://` gRPC endpoint, besides the
    /// system's roots (`OTEL_EXPORTER_OTLP_CERTIFICATE`), e.g. a private collector's CA. Only
    /// with [`OtlpProtocol::Grpc`]; http/protobuf export trusts the system's roots.
    pub certificate: Option<std::path::PathBuf>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            protocol: OtlpProtocol::default(),
            endpoint: "http://127.0.0.1:4318".to_owned(),
            traces: true,
            metrics: true,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            metrics_interval: Duration::from_secs(60),
            certificate: None,
        }
    }
}

/// The transport of OTLP export, as in `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OtlpProtocol {
    /// `http/protobuf`: protobuf bodies POSTed to `/v1/traces` and `/v1/metrics`, usually on
    /// port 4318. Needs the `otlp` feature.
    #[default]
    HttpProtobuf,
    /// `grpc`: the OTLP `TraceService` and `MetricsService` over HTTP/2, usually on port 4317.
    /// Needs the `otlp-grpc` feature.
    Grpc,
}

impl OtlpProtocol {
    /// The error for asking for this protocol in a build without its feature.
    #[cfg(not(feature = "otlp-grpc"))]
    pub(crate) fn feature_disabled(self) -> crate::TelemetryError {
        let (feature, what) = match self {
            Self::HttpProtobuf => ("otlp", "otlp export"),
            Self::Grpc => ("otlp-grpc", "otlp export over grpc"),
        };
        crate::TelemetryError::FeatureDisabled { feature, what }
    }
}
