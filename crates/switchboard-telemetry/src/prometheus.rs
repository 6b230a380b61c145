//! The Prometheus text endpoint, served with axum.

use std::{net::SocketAddr, sync::Mutex};

use axum::{
    Router,
    http::{StatusCode, header::CONTENT_TYPE},
    response::IntoResponse,
    routing::get,
};
use opentelemetry_prometheus::PrometheusExporter;
use prometheus::{Encoder as _, Registry, TextEncoder};
use tokio::sync::oneshot;

use crate::{PrometheusConfig, TelemetryError};

/// The running endpoint; stops when [`stop`](Self::stop) is called or when dropped.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Server {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn stop(&self) {
        let sender = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            // The server may already be gone; nothing to do then.
            let _ = sender.send(());
        }
    }
}

/// Binds the listener (so a taken port fails `init` at once), then serves from the current
/// Tokio runtime.
pub(crate) fn start(
    config: &PrometheusConfig,
) -> Result<(PrometheusExporter, Server), TelemetryError> {
    let path = config.path.as_str();
    if !path.starts_with('/') || path.contains(['{', '}', '*', '?', '#']) {
        return Err(TelemetryError::Config {
            key: "prometheus.path",
            reason: format!("`{path}` must be a plain path starting with `/`, like `/metrics`"),
        });
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| TelemetryError::NoRuntime)?;
    let registry = Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|source| TelemetryError::Exporter {
            what: "prometheus",
            source: source.into(),
        })?;

    let bind = |source| TelemetryError::Bind {
        addr: config.listen,
        source,
    };
    let listener = std::net::TcpListener::bind(config.listen).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(bind)?
    };

    let app = Router::new().route(path, get(move || metrics(registry.clone())));
    let (stop, stopped) = oneshot::channel::<()>();
    runtime.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // A dropped sender (telemetry dropped) stops the server too.
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::warn!(%addr, %error, "the prometheus endpoint stopped");
        }
    });
    tracing::debug!(%addr, path, "serving prometheus metrics");
    Ok((
        exporter,
        Server {
            addr,
            stop: Mutex::new(Some(stop)),
        },
    ))
}

async fn metrics(registry: Registry) -> impl IntoResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(CONTENT_TYPE, prometheus::TEXT_FORMAT)],
            body,
        ),
        Err(error) => {
            tracing::warn!(%error, "cannot encode prometheus metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("cannot encode metrics: {error}").into_bytes(),
            )
        }
    }
}
