//! The [`Telemetry`] handle: setup, operations and typed metric recording.

use std::{
    fmt,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use opentelemetry::{
    Context, InstrumentationScope, KeyValue, StringValue, Value,
    metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _, UpDownCounter},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider, exporter::PushMetricExporter},
    trace::{Sampler, SdkTracer, SdkTracerProvider, SpanExporter},
};

use crate::{
    OperationInfo, TelemetryConfig, TelemetryError,
    operation::{CacheDecision, Operation, Rejection, Transport},
    semconv as sc,
    series::SeriesCache,
};

/// A server's health, as reported by the health monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// Serving normally.
    Healthy,
    /// Serving, but slow or failing sometimes.
    Degraded,
    /// Not serving; traffic is kept away.
    Unhealthy,
    /// Not checked yet.
    Unknown,
}

impl HealthState {
    /// Every state, in the order of the gauge's series.
    pub const ALL: [HealthState; 4] = [
        HealthState::Healthy,
        HealthState::Degraded,
        HealthState::Unhealthy,
        HealthState::Unknown,
    ];

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
            Self::Unknown => "unknown",
        }
    }
}

/// Describes an MCP session for [`Telemetry::record_session_duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo<'a> {
    /// The configured name of the server.
    pub server: &'a str,
    /// How the server is reached.
    pub transport: Transport,
    /// The negotiated protocol revision.
    pub protocol_version: Option<&'a str>,
}

/// The telemetry handle: cheap to clone, shared by every call path.
///
/// A disabled handle ([`Telemetry::disabled`], or `enabled = false`) holds nothing: starting
/// an operation or recording a metric is a branch on `None`, with no allocation and no lock.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.inner.is_some())
            .field("prometheus_addr", &self.prometheus_addr())
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) tracer: SdkTracer,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    pub(crate) instruments: Instruments,
    /// What operations record, prepared once per kind of operation.
    pub(crate) series: SeriesCache,
    #[cfg(feature = "prometheus")]
    prometheus: Option<crate::prometheus::Server>,
    shut_down: AtomicBool,
    /// Last, so that it is dropped after the providers, whose drop may still export.
    #[cfg(feature = "otlp")]
    otlp_runtime: crate::otlp::ExportRuntime,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

/// Builds a [`Telemetry`] from a [`TelemetryConfig`] plus exporters given in code (tests,
/// custom backends).
#[must_use]
pub struct TelemetryBuilder {
    config: TelemetryConfig,
    tracer: opentelemetry_sdk::trace::TracerProviderBuilder,
    meter: opentelemetry_sdk::metrics::MeterProviderBuilder,
}

impl fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TelemetryBuilder {
    /// Exports finished spans to `exporter` synchronously, one by one (for tests and
    /// in-process collectors).
    pub fn with_simple_span_exporter(mut self, exporter: impl SpanExporter + 'static) -> Self {
        self.tracer = self.tracer.with_simple_exporter(exporter);
        self
    }

    /// Exports finished spans to `exporter` in batches from a background thread.
    pub fn with_batch_span_exporter(mut self, exporter: impl SpanExporter + 'static) -> Self {
        self.tracer = self.tracer.with_batch_exporter(exporter);
        self
    }

    /// Pushes metrics to `exporter` every `interval` (and on [`Telemetry::force_flush`]).
    pub fn with_metric_exporter<E>(mut self, exporter: E, interval: Duration) -> Self
    where
        E: PushMetricExporter,
    {
        let reader = PeriodicReader::builder(exporter)
            .with_interval(interval)
            .build();
        self.meter = self.meter.with_reader(reader);
        self
    }

    /// Sets up the exporters of the configuration and returns the handle.
    ///
    /// With `enabled = false` this returns a disabled handle and ignores the exporters.
    pub fn build(self) -> Result<Telemetry, TelemetryError> {
        let Self {
            config,
            tracer,
            meter,
        } = self;
        if !config.enabled {
            return Ok(Telemetry::disabled());
        }
        if !(0.0..=1.0).contains(&config.trace_sample_ratio) {
            return Err(TelemetryError::Config {
                key: "trace_sample_ratio",
                reason: format!("{} is not between 0 and 1", config.trace_sample_ratio),
            });
        }
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();

        #[cfg(feature = "otlp")]
        let (tracer, meter, otlp_runtime) = match &config.otlp {
            None => (tracer, meter, crate::otlp::ExportRuntime::default()),
            Some(otlp) => crate::otlp::install(otlp, tracer, meter)?,
        };
        #[cfg(not(feature = "otlp"))]
        if let Some(otlp) = &config.otlp {
            return Err(otlp.protocol.feature_disabled());
        }

        #[cfg(feature = "prometheus")]
        let (meter, prometheus) = match &config.prometheus {
            None => (meter, None),
            Some(prometheus) => {
                let (reader, server) = crate::prometheus::start(prometheus)?;
                (meter.with_reader(reader), Some(server))
            }
        };
        #[cfg(not(feature = "prometheus"))]
        if config.prometheus.is_some() {
            return Err(TelemetryError::FeatureDisabled {
                feature: "prometheus",
                what: "the prometheus endpoint",
            });
        }

        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.trace_sample_ratio,
        )));
        let tracer_provider = tracer
            .with_sampler(sampler)
            .with_resource(resource.clone())
            .build();
        let meter_provider = meter.with_resource(resource).build();
        let scope = InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let tracer = tracer_provider.tracer_with_scope(scope.clone());
        let instruments = Instruments::new(&meter_provider.meter_with_scope(scope));
        Ok(Telemetry {
            inner: Some(Arc::new(Inner {
                tracer,
                tracer_provider,
                meter_provider,
                instruments,
                series: SeriesCache::default(),
                #[cfg(feature = "prometheus")]
                prometheus,
                shut_down: AtomicBool::new(false),
                #[cfg(feature = "otlp")]
                otlp_runtime,
            })),
        })
    }
}

impl Telemetry {
    /// Sets up telemetry as `config` says (see [`TelemetryConfig`] for the defaults).
    ///
    /// With a Prometheus endpoint configured this must run inside a Tokio runtime, which
    /// serves the endpoint.
    pub fn init(config: TelemetryConfig) -> Result<Self, TelemetryError> {
        Self::builder(config).build()
    }

    /// A builder, to add exporters in code before [`TelemetryBuilder::build`].
    pub fn builder(config: TelemetryConfig) -> TelemetryBuilder {
        TelemetryBuilder {
            config,
            tracer: SdkTracerProvider::builder(),
            meter: SdkMeterProvider::builder(),
        }
    }

    /// A handle that records nothing and costs nothing.
    pub const fn disabled() -> Self {
        Self { inner: None }
    }

    /// Whether this handle records anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// How many series the handle has prepared (0 when disabled).
    #[cfg(test)]
    pub(crate) fn series_len(&self) -> usize {
        self.inner.as_ref().map_or(0, |inner| inner.series.len())
    }

    /// Starts the span and timer of one MCP request, as a child of the current OpenTelemetry
    /// context (which `tracing-opentelemetry` keeps in step with the current `tracing` span).
    pub fn start_operation(&self, info: &OperationInfo<'_>) -> Operation {
        match &self.inner {
            None => Operation::DISABLED,
            Some(inner) => Context::map_current(|cx| Operation::start(inner, info, cx)),
        }
    }

    /// Like [`start_operation`](Self::start_operation) with an explicit parent, e.g. one
    /// extracted from an incoming request's `_meta` with
    /// [`extract_from_meta`](crate::extract_from_meta).
    pub fn start_operation_with_parent(
        &self,
        info: &OperationInfo<'_>,
        parent: &Context,
    ) -> Operation {
        match &self.inner {
            None => Operation::DISABLED,
            Some(inner) => Operation::start(inner, info, parent),
        }
    }

    /// Counts one retry outside an [`Operation`] (inside one, use [`Operation::retry`], which
    /// also adds the span event).
    pub fn record_retry(&self, server: &str, tool: Option<&str>) {
        if let Some(inner) = &self.inner {
            inner
                .instruments
                .retries
                .add(1, &server_tool(server, tool, None));
        }
    }

    /// Counts one retry refused by the retry budget.
    pub fn record_retry_budget_exhausted(&self, server: &str, tool: Option<&str>) {
        if let Some(inner) = &self.inner {
            inner
                .instruments
                .retry_budget_exhausted
                .add(1, &server_tool(server, tool, None));
        }
    }

    /// Counts one call rejected by a local policy before it was sent.
    pub fn record_rejection(&self, server: &str, tool: Option<&str>, reason: Rejection) {
        if let Some(inner) = &self.inner {
            let reason = KeyValue::new(sc::REJECTION_REASON, reason.as_str());
            inner
                .instruments
                .rejections
                .add(1, &server_tool(server, tool, Some(reason)));
        }
    }

    /// Counts one cache lookup and how it was served.
    pub fn record_cache(&self, server: &str, tool: Option<&str>, decision: CacheDecision) {
        if let Some(inner) = &self.inner {
            let decision = KeyValue::new(sc::CACHE_DECISION, decision.as_str());
            inner
                .instruments
                .cache_lookups
                .add(1, &server_tool(server, tool, Some(decision)));
        }
    }

    /// Sets a breaker's state gauge to 1 for `state` (a closed-set name such as `closed`),
    /// e.g. when the breaker is created.
    pub fn record_breaker_state(&self, server: &str, state: &'static str) {
        if let Some(inner) = &self.inner {
            let server = KeyValue::new(sc::SERVER_NAME, name_value(server));
            inner
                .instruments
                .breaker_state
                .record(1, &[server, KeyValue::new(sc::BREAKER_STATE, state)]);
        }
    }

    /// Counts one breaker transition and moves the state gauge: `from` to 0, `to` to 1.
    pub fn record_breaker_transition(&self, server: &str, from: &'static str, to: &'static str) {
        if let Some(inner) = &self.inner {
            let server = KeyValue::new(sc::SERVER_NAME, name_value(server));
            let m = &inner.instruments;
            m.breaker_transitions.add(
                1,
                &[
                    server.clone(),
                    KeyValue::new(sc::BREAKER_FROM, from),
                    KeyValue::new(sc::BREAKER_TO, to),
                ],
            );
            m.breaker_state
                .record(0, &[server.clone(), KeyValue::new(sc::BREAKER_STATE, from)]);
            m.breaker_state
                .record(1, &[server, KeyValue::new(sc::BREAKER_STATE, to)]);
        }
    }

    /// Sets a server's health gauge: 1 for `state`, 0 for the other states.
    pub fn record_health(&self, server: &str, state: HealthState) {
        if let Some(inner) = &self.inner {
            let server = KeyValue::new(sc::SERVER_NAME, name_value(server));
            for each in HealthState::ALL {
                let attrs = [
                    server.clone(),
                    KeyValue::new(sc::HEALTH_STATE, each.as_str()),
                ];
                inner
                    .instruments
                    .health
                    .record(i64::from(each == state), &attrs);
            }
        }
    }

    /// Counts one route choice outside an [`Operation`] (inside one, use
    /// [`Operation::route`]).
    pub fn record_route(&self, group: &str, replica: &str, reason: &'static str) {
        if let Some(inner) = &self.inner {
            inner.instruments.route_choices.add(
                1,
                &[
                    KeyValue::new(sc::ROUTE_GROUP, name_value(group)),
                    KeyValue::new(sc::ROUTE_REPLICA, name_value(replica)),
                    KeyValue::new(sc::ROUTE_REASON, reason),
                ],
            );
        }
    }

    /// Records the length of an MCP session that ended, with the error class that ended it,
    /// if any (`mcp.client.session.duration`).
    pub fn record_session_duration(
        &self,
        session: &SessionInfo<'_>,
        duration: Duration,
        error_type: Option<&'static str>,
    ) {
        if let Some(inner) = &self.inner {
            let mut attrs = Vec::with_capacity(4);
            attrs.push(KeyValue::new(sc::SERVER_NAME, name_value(session.server)));
            if let Some(transport) = session.transport.network_transport() {
                attrs.push(KeyValue::new(sc::NETWORK_TRANSPORT, transport));
            }
            if let Some(version) = session.protocol_version {
                attrs.push(KeyValue::new(sc::MCP_PROTOCOL_VERSION, name_value(version)));
            }
            if let Some(error_type) = error_type {
                attrs.push(KeyValue::new(sc::ERROR_TYPE, error_type));
            }
            inner
                .instruments
                .session_duration
                .record(duration.as_secs_f64(), &attrs);
        }
    }

    /// The address the Prometheus endpoint listens on (useful with port 0).
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        #[cfg(feature = "prometheus")]
        {
            self.inner
                .as_ref()?
                .prometheus
                .as_ref()
                .map(crate::prometheus::Server::addr)
        }
        #[cfg(not(feature = "prometheus"))]
        {
            None
        }
    }

    /// The tracer provider, e.g. to build a `tracing-opentelemetry` layer that exports
    /// through the same pipeline. `None` when disabled.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.inner.as_ref().map(|inner| &inner.tracer_provider)
    }

    /// The meter provider, for instruments of your own. `None` when disabled.
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.inner.as_ref().map(|inner| &inner.meter_provider)
    }

    /// Exports everything recorded so far (blocks until the exporters are done).
    pub fn force_flush(&self) -> Result<(), TelemetryError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let flush = |source| TelemetryError::Sdk {
            action: "flush",
            source,
        };
        inner.tracer_provider.force_flush().map_err(flush)?;
        inner.meter_provider.force_flush().map_err(flush)
    }

    /// Flushes and stops the exporters and the Prometheus endpoint. Later calls do nothing.
    /// Blocks until the exporters are done (at most their timeout).
    pub fn shutdown(&self) -> Result<(), TelemetryError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if inner.shut_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        #[cfg(feature = "prometheus")]
        if let Some(server) = &inner.prometheus {
            server.stop();
        }
        let stop = |source| TelemetryError::Sdk {
            action: "shut down",
            source,
        };
        let traces = inner.tracer_provider.shutdown().map_err(stop);
        let metrics = inner.meter_provider.shutdown().map_err(stop);
        #[cfg(feature = "otlp")]
        inner.otlp_runtime.stop();
        traces.and(metrics)
    }
}

/// An attribute value for a configured name (server, tool, prompt, protocol version): shared,
/// so that cloning it for several instruments does not copy the string.
pub(crate) fn name_value(name: &str) -> Value {
    Value::String(StringValue::from(Arc::<str>::from(name)))
}

fn server_tool(server: &str, tool: Option<&str>, extra: Option<KeyValue>) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(3);
    attrs.push(KeyValue::new(sc::SERVER_NAME, name_value(server)));
    if let Some(tool) = tool {
        attrs.push(KeyValue::new(sc::GEN_AI_TOOL_NAME, name_value(tool)));
    }
    attrs.extend(extra);
    attrs
}

/// Every instrument, created once.
pub(crate) struct Instruments {
    pub(crate) operation_duration: Histogram<f64>,
    pub(crate) session_duration: Histogram<f64>,
    pub(crate) calls: Counter<u64>,
    pub(crate) retries: Counter<u64>,
    pub(crate) retry_budget_exhausted: Counter<u64>,
    pub(crate) rejections: Counter<u64>,
    pub(crate) in_flight: UpDownCounter<i64>,
    pub(crate) breaker_state: Gauge<i64>,
    pub(crate) breaker_transitions: Counter<u64>,
    pub(crate) cache_lookups: Counter<u64>,
    pub(crate) health: Gauge<i64>,
    pub(crate) route_choices: Counter<u64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Self {
        let duration = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(sc::DURATION_BUCKETS.to_vec())
                .build()
        };
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build()
        };
        let gauge = |name: &'static str, description: &'static str| {
            meter.i64_gauge(name).with_description(description).build()
        };
        Self {
            operation_duration: duration(
                sc::METRIC_OPERATION_DURATION,
                "Duration of MCP requests as seen by the client.",
            ),
            session_duration: duration(
                sc::METRIC_SESSION_DURATION,
                "Duration of MCP sessions as seen by the client.",
            ),
            calls: counter(
                sc::METRIC_CALLS,
                "{call}",
                "Finished calls by outcome and error type.",
            ),
            retries: counter(sc::METRIC_RETRIES, "{retry}", "Attempts after the first."),
            retry_budget_exhausted: counter(
                sc::METRIC_RETRY_BUDGET_EXHAUSTED,
                "{retry}",
                "Retries refused because the retry budget was empty.",
            ),
            rejections: counter(
                sc::METRIC_REJECTIONS,
                "{call}",
                "Calls rejected by a local policy before they were sent.",
            ),
            in_flight: meter
                .i64_up_down_counter(sc::METRIC_IN_FLIGHT)
                .with_unit("{call}")
                .with_description("Calls in flight per server.")
                .build(),
            breaker_state: gauge(
                sc::METRIC_BREAKER_STATE,
                "1 for a circuit breaker's current state, 0 for the state it left.",
            ),
            breaker_transitions: counter(
                sc::METRIC_BREAKER_TRANSITIONS,
                "{transition}",
                "Circuit breaker state transitions.",
            ),
            cache_lookups: counter(
                sc::METRIC_CACHE_LOOKUPS,
                "{lookup}",
                "Cache lookups by decision (hit, miss, stale, coalesced, bypass).",
            ),
            health: gauge(
                sc::METRIC_SERVER_HEALTH,
                "1 for a server's current health state, 0 for the others.",
            ),
            route_choices: counter(
                sc::METRIC_ROUTE_CHOICES,
                "{choice}",
                "Replicas chosen by the router, by reason.",
            ),
        }
    }
}
