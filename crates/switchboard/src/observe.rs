//! Setting up telemetry and the audit log from the configuration.

use switchboard_telemetry::{
    AuditConfig, AuditLog, DEFAULT_REDACT_KEYS, OtlpConfig, PrometheusConfig, Telemetry,
    TelemetryConfig,
};

use crate::{
    Error,
    config::{AuditSettings, TelemetrySettings},
};

/// The telemetry handle the configuration asks for (a disabled one when it is off).
pub(crate) fn telemetry(settings: &TelemetrySettings) -> Result<Telemetry, Error> {
    if !settings.enabled {
        return Ok(Telemetry::disabled());
    }
    let config = TelemetryConfig {
        enabled: true,
        service_name: settings.service_name.clone(),
        trace_sample_ratio: settings.sample_ratio,
        prometheus: settings.prometheus_listen.map(|listen| PrometheusConfig {
            listen,
            ..PrometheusConfig::default()
        }),
        otlp: settings.otlp_endpoint.as_ref().map(|endpoint| OtlpConfig {
            protocol: settings.otlp_protocol,
            endpoint: endpoint.clone(),
            certificate: settings.otlp_certificate.clone(),
            ..OtlpConfig::default()
        }),
    };
    Telemetry::init(config).map_err(|e| Error::Setup {
        what: "telemetry",
        message: e.to_string(),
    })
}

/// The audit log the configuration asks for.
pub(crate) fn audit(settings: Option<&AuditSettings>) -> Result<Option<AuditLog>, Error> {
    let Some(settings) = settings else {
        return Ok(None);
    };
    let mut redact_keys: Vec<String> = DEFAULT_REDACT_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    redact_keys.extend(settings.redact_keys.iter().cloned());
    let config = AuditConfig {
        file: Some(settings.file.clone()),
        redact_keys,
        ..AuditConfig::default()
    };
    AuditLog::open_with(config)
        .map(Some)
        .map_err(|e| Error::Setup {
            what: "audit log",
            message: e.to_string(),
        })
}
