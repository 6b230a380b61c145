//! Errors of telemetry setup and shutdown.

use std::{error::Error as StdError, io, net::SocketAddr};

/// Why telemetry could not be set up or shut down.
///
/// The display text is for people and is not a stable API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The configuration asks for something this build does not have.
    #[error("{what} needs the `{feature}` feature of switchboard-telemetry, which is off")]
    FeatureDisabled {
        /// The cargo feature to enable.
        feature: &'static str,
        /// What was asked for.
        what: &'static str,
    },
    /// A setting has an invalid value.
    #[error("invalid telemetry setting `{key}`: {reason}")]
    Config {
        /// The setting, as a dotted path (`prometheus.path`).
        key: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The Prometheus endpoint could not listen on its address.
    #[error("cannot listen on {addr} for the prometheus endpoint")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The Prometheus endpoint needs a Tokio runtime to serve from.
    #[error("the prometheus endpoint needs a tokio runtime: call `Telemetry::init` inside one")]
    NoRuntime,
    /// An exporter could not be built.
    #[error("cannot build the {what} exporter")]
    Exporter {
        /// Which exporter.
        what: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Flushing or shutting down the OpenTelemetry SDK failed.
    #[error("cannot {action} telemetry")]
    Sdk {
        /// `flush` or `shut down`.
        action: &'static str,
        /// The cause.
        #[source]
        source: opentelemetry_sdk::error::OTelSdkError,
    },
}
