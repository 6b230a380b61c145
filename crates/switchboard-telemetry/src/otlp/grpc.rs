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
use tonic::{
    metadata::{AsciiMetadataValue, MetadataKey, MetadataMap},
    transport::{Certificate, ClientTlsConfig},
};

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
        let tls = tls(config, endpoint)?;
        let metadata = metadata(config)?;
        // The channels spawn their tasks on the runtime entered here.
        let _entered = self.handle.enter();
        let spans = config
            .traces
            .then(|| {
                let builder = SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata.clone());
                with_tls(builder, tls.clone()).build()
            })
            .transpose()
            .map_err(exporter_error("otlp grpc span"))?;
        let metrics = config
            .metrics
            .then(|| {
                let builder = MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata);
                with_tls(builder, tls).build()
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

/// What a PEM file holding a certificate contains.
const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// The TLS settings of an `https://` endpoint: the system's roots and `otlp.certificate`
/// (which `base_url` has checked is only set for one). `None` for `http://`.
fn tls(config: &OtlpConfig, endpoint: &str) -> Result<Option<ClientTlsConfig>, TelemetryError> {
    if !endpoint.starts_with("https://") {
        return Ok(None);
    }
    let tls = ClientTlsConfig::new().with_native_roots();
    let Some(path) = &config.certificate else {
        return Ok(Some(tls));
    };
    let pem = std::fs::read(path).map_err(|error| TelemetryError::Config {
        key: "otlp.certificate",
        reason: format!("cannot read `{}`: {error}", path.display()),
    })?;
    if !pem
        .windows(PEM_CERTIFICATE.len())
        .any(|w| w == PEM_CERTIFICATE)
    {
        return Err(TelemetryError::Config {
            key: "otlp.certificate",
            reason: format!("`{}` holds no PEM certificate", path.display()),
        });
    }
    Ok(Some(tls.ca_certificate(Certificate::from_pem(pem))))
}

/// `builder` with `tls`, if any.
fn with_tls<B: WithTonicConfig>(builder: B, tls: Option<ClientTlsConfig>) -> B {
    match tls {
        Some(tls) => builder.with_tls_config(tls),
        None => builder,
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
