//! OTLP export over gRPC with tonic, on a Tokio runtime of its own.
//!
//! tonic's channel spawns its connection tasks (the request buffer, the HTTP/2 connection) on
//! the runtime current when it is built, while the SDK's processor threads block on every
//! export. Built on the application's runtime, export would need `init` to run inside one, would
//! stop with it, and on a current-thread runtime a `force_flush` or `shutdown` called from that
//! runtime's thread would block the only thread that can drive the connection, hanging until the
//! export timeout. A one-worker runtime owned by the telemetry handle avoids all three; it is
//! stopped after the providers have shut down.

use std::sync::{Mutex, PoisonError};

use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig, WithTonicConfig};
use tokio::runtime::{Builder, Handle};
use tonic::metadata::{AsciiMetadataValue, MetadataKey, MetadataMap};

use super::{Exporters, exporter_error};
use crate::{OtlpConfig, TelemetryError};

/// The runtime of the gRPC exporters: one worker thread, named `switchboard-otlp`.
pub(crate) struct Runtime {
    handle: Handle,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Runtime {
    pub(super) fn start() -> Result<Self, TelemetryError> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name("switchboard-otlp")
            .enable_all()
            .build()
            .map_err(|source| TelemetryError::Exporter {
                what: "otlp grpc runtime",
                source: source.into(),
            })?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        })
    }

    /// The span and metric exporters the config asks for, bound to this runtime.
    pub(super) fn exporters(
        &self,
        config: &OtlpConfig,
        endpoint: &str,
    ) -> Result<Exporters, TelemetryError> {
        if endpoint.starts_with("https://") {
            return Err(TelemetryError::Config {
                key: "otlp.endpoint",
                reason: format!(
                    "`{endpoint}`: gRPC export has no TLS in this build; use `http://` (e.g. a \
                     local collector on port 4317) or the http/protobuf protocol for `https://`"
                ),
            });
        }
        let metadata = metadata(config)?;
        // The channels spawn their tasks on the runtime entered here.
        let _entered = self.handle.enter();
        let spans = config
            .traces
            .then(|| {
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata.clone())
                    .build()
            })
            .transpose()
            .map_err(exporter_error("otlp grpc span"))?;
        let metrics = config
            .metrics
            .then(|| {
                MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata)
                    .build()
            })
            .transpose()
            .map_err(exporter_error("otlp grpc metric"))?;
        Ok((spans, metrics))
    }

    /// Shuts the runtime down without waiting for its tasks; later calls do nothing. Allowed
    /// inside an async context, unlike dropping a runtime.
    pub(crate) fn stop(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `otlp.headers` as gRPC metadata. Values are never quoted back: they may be credentials.
fn metadata(config: &OtlpConfig) -> Result<MetadataMap, TelemetryError> {
    let mut metadata = MetadataMap::new();
    for (name, value) in &config.headers {
        let key = MetadataKey::from_bytes(name.as_bytes()).map_err(|_| TelemetryError::Config {
            key: "otlp.headers",
            reason: format!(
                "`{name}` is not a gRPC metadata name (ASCII letters, digits, `-`, `_`, `.`; \
                 binary `-bin` names are not supported)"
            ),
        })?;
        let value =
            AsciiMetadataValue::try_from(value.as_str()).map_err(|_| TelemetryError::Config {
                key: "otlp.headers",
                reason: format!("the value of `{name}` is not valid gRPC metadata (visible ASCII)"),
            })?;
        metadata.append(key, value);
    }
    Ok(metadata)
}
