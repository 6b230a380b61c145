//! Exporter setup: OTLP/HTTP and OTLP/gRPC reach a collector, configuration errors are clear.

use crate::{
    OtlpConfig, OtlpProtocol, PrometheusConfig, Telemetry, TelemetryConfig, TelemetryError,
};

#[cfg(not(feature = "otlp"))]
#[test]
fn otlp_without_the_feature_is_an_error() {
    let config = TelemetryConfig {
        otlp: Some(OtlpConfig::default()),
        ..Default::default()
    };
    let error = Telemetry::init(config).expect_err("feature off");
    assert!(
        matches!(
            error,
            TelemetryError::FeatureDisabled {
                feature: "otlp",
                ..
            }
        ),
        "{error}"
    );
}

#[cfg(not(feature = "otlp-grpc"))]
#[test]
fn otlp_grpc_without_the_feature_is_an_error() {
    let config = TelemetryConfig {
        otlp: Some(OtlpConfig {
            protocol: OtlpProtocol::Grpc,
            endpoint: "http://127.0.0.1:4317".to_owned(),
            ..OtlpConfig::default()
        }),
        ..Default::default()
    };
    let error = Telemetry::init(config).expect_err("feature off");
    assert_eq!(
        error.to_string(),
        "otlp export over grpc needs the `otlp-grpc` feature of switchboard-telemetry, which is off"
    );
}

#[cfg(not(feature = "prometheus"))]
#[test]
fn prometheus_without_the_feature_is_an_error() {
    let config = TelemetryConfig {
        prometheus: Some(PrometheusConfig::default()),
        ..Default::default()
    };
    let error = Telemetry::init(config).expect_err("feature off");
    assert_eq!(
        error.to_string(),
        "the prometheus endpoint needs the `prometheus` feature of switchboard-telemetry, which is off"
    );
}

#[cfg(feature = "prometheus")]
#[test]
fn prometheus_config_errors() {
    let config = |path: &str| TelemetryConfig {
        prometheus: Some(PrometheusConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            path: path.to_owned(),
        }),
        ..Default::default()
    };
    let error = Telemetry::init(config("metrics")).expect_err("relative path");
    assert!(
        matches!(
            error,
            TelemetryError::Config {
                key: "prometheus.path",
                ..
            }
        ),
        "{error}"
    );
    let error = Telemetry::init(config("/metrics")).expect_err("no runtime");
    assert!(matches!(error, TelemetryError::NoRuntime), "{error}");
}

#[cfg(feature = "prometheus")]
#[tokio::test]
async fn prometheus_port_in_use_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("addr");
    let config = TelemetryConfig {
        prometheus: Some(PrometheusConfig {
            listen,
            ..PrometheusConfig::default()
        }),
        ..Default::default()
    };
    let error = Telemetry::init(config).expect_err("port taken");
    assert_eq!(
        error.to_string(),
        format!("cannot listen on {listen} for the prometheus endpoint")
    );
}

#[cfg(feature = "otlp")]
#[test]
fn otlp_endpoint_must_be_http() {
    let otlp = OtlpConfig {
        endpoint: "127.0.0.1:4318".to_owned(),
        ..OtlpConfig::default()
    };
    let config = TelemetryConfig {
        otlp: Some(otlp),
        ..Default::default()
    };
    let error = Telemetry::init(config).expect_err("not a URL");
    assert!(
        matches!(
            error,
            TelemetryError::Config {
                key: "otlp.endpoint",
                ..
            }
        ),
        "{error}"
    );
}

/// A minimal OTLP/HTTP collector: answers 200 to every POST and reports `(path, content type,
/// header x-tenant, body length)`.
#[cfg(feature = "otlp")]
fn fake_collector() -> (
    String,
    std::sync::mpsc::Receiver<(String, String, String, usize)>,
) {
    use std::io::{BufRead, BufReader, Read, Write};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    let (mut length, mut content_type, mut tenant) =
                        (0, String::new(), String::new());
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap_or((header, ""));
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            "content-type" => value.trim().clone_into(&mut content_type),
                            "x-tenant" => value.trim().clone_into(&mut tenant),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = tx.send((path, content_type, tenant, length));
                    let response = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if writer.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, rx)
}

#[cfg(feature = "otlp")]
#[test]
fn otlp_http_exports_traces_and_metrics() {
    use std::time::Duration;

    use crate::{OperationInfo, Outcome};

    let (endpoint, requests) = fake_collector();
    let otlp = OtlpConfig {
        endpoint: format!("{endpoint}/"),
        headers: vec![("x-tenant".to_owned(), "acme".to_owned())],
        timeout: Duration::from_secs(5),
        ..OtlpConfig::default()
    };
    let telemetry = Telemetry::init(TelemetryConfig {
        otlp: Some(otlp),
        ..Default::default()
    })
    .expect("init");
    telemetry
        .start_operation(&OperationInfo::tool_call("files", "read_file"))
        .finish(Outcome::OK);
    telemetry.force_flush().expect("flush");

    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 2 {
        let (path, content_type, tenant, length) = requests
            .recv_timeout(Duration::from_secs(10))
            .expect("an export request");
        assert_eq!(content_type, "application/x-protobuf", "{path}");
        assert_eq!(tenant, "acme", "{path}");
        assert!(length > 0, "{path} has a body");
        seen.insert(path, length);
    }
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["/v1/metrics", "/v1/traces"]
    );
    telemetry.shutdown().expect("shutdown");
    telemetry
        .shutdown()
        .expect("a second shutdown does nothing");
}

#[cfg(feature = "otlp-grpc")]
#[test]
fn otlp_grpc_config_errors() {
    let init = |otlp: OtlpConfig| {
        Telemetry::init(TelemetryConfig {
            otlp: Some(OtlpConfig {
                protocol: OtlpProtocol::Grpc,
                ..otlp
            }),
            ..Default::default()
        })
        .expect_err("invalid")
    };
    let endpoint = |endpoint: &str| OtlpConfig {
        endpoint: endpoint.to_owned(),
        ..OtlpConfig::default()
    };
    assert_eq!(
        init(endpoint("127.0.0.1:4317")).to_string(),
        "invalid telemetry setting `otlp.endpoint`: `127.0.0.1:4317` is not an http(s) URL; use \
         e.g. `http://127.0.0.1:4317`"
    );
    let error = init(endpoint("grpc://127.0.0.1:4317"));
    assert!(
        matches!(
            error,
            TelemetryError::Config {
                key: "otlp.endpoint",
                ..
            }
        ),
        "{error}"
    );
    let error = init(OtlpConfig {
        certificate: Some(fixture("ca.pem")),
        ..endpoint("http://127.0.0.1:4317")
    });
    assert_eq!(
        error.to_string(),
        format!(
            "invalid telemetry setting `otlp.certificate`: `{}` is set but the endpoint \
             `http://127.0.0.1:4317` is not https://",
            fixture("ca.pem").display()
        )
    );
    let error = init(OtlpConfig {
        certificate: Some(fixture("missing.pem")),
        ..endpoint("https://127.0.0.1:4317")
    });
    assert!(
        error.to_string().contains("cannot read") && error.to_string().contains("missing.pem"),
        "{error}"
    );
    let error = init(OtlpConfig {
        certificate: Some(fixture("collector.key")),
        ..endpoint("https://127.0.0.1:4317")
    });
    assert!(
        error.to_string().ends_with("holds no PEM certificate"),
        "{error}"
    );
    let error = Telemetry::init(TelemetryConfig {
        otlp: Some(OtlpConfig {
            certificate: Some(fixture("ca.pem")),
            ..endpoint("https://127.0.0.1:4318")
        }),
        ..Default::default()
    })
    .expect_err("a certificate with http/protobuf");
    assert!(
        matches!(
            error,
            TelemetryError::Config {
                key: "otlp.certificate",
                ..
            }
        ),
        "{error}"
    );
    let secret = OtlpConfig {
        headers: vec![("authorization".to_owned(), "Bearer s3cr3t\n".to_owned())],
        ..endpoint("http://127.0.0.1:4317")
    };
    assert_eq!(
        init(secret).to_string(),
        "invalid telemetry setting `otlp.headers`: the value of `authorization` is not valid \
         gRPC metadata (visible ASCII)"
    );
    let error = init(OtlpConfig {
        headers: vec![("x tenant".to_owned(), "acme".to_owned())],
        ..endpoint("http://127.0.0.1:4317")
    });
    assert!(
        matches!(
            error,
            TelemetryError::Config {
                key: "otlp.headers",
                ..
            }
        ),
        "{error}"
    );
}

/// What the gRPC collector received in one export request.
#[cfg(feature = "otlp-grpc")]
#[derive(Debug)]
struct GrpcExport {
    /// `traces` or `metrics`.
    service: &'static str,
    /// The `x-tenant` metadata, empty when absent.
    tenant: String,
    /// The names of the spans or metrics.
    names: Vec<String>,
}

/// A file of `tests/fixtures`: a test CA (`ca.pem`) and the certificate and key it signed for
/// the TLS collector (`collector.pem`, `collector.key`; `localhost` and `127.0.0.1`).
#[cfg(feature = "otlp-grpc")]
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An OTLP/gRPC collector (the generated `TraceService` and `MetricsService` servers) on a
/// free loopback port, served from a runtime of its own; reports every export request.
#[cfg(feature = "otlp-grpc")]
fn grpc_collector() -> (String, std::sync::mpsc::Receiver<GrpcExport>) {
    start_grpc_collector(false)
}

/// [`grpc_collector`] over TLS, with the fixtures' certificate: `https://127.0.0.1:PORT`.
#[cfg(feature = "otlp-grpc")]
fn grpc_tls_collector() -> (String, std::sync::mpsc::Receiver<GrpcExport>) {
    start_grpc_collector(true)
}

#[cfg(feature = "otlp-grpc")]
fn start_grpc_collector(tls: bool) -> (String, std::sync::mpsc::Receiver<GrpcExport>) {
    use opentelemetry_proto::tonic::collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    };
    use tonic::{Request, Response, Status, transport::server::TcpIncoming};

    struct Collector(std::sync::mpsc::Sender<GrpcExport>);

    impl Collector {
        fn report(
            &self,
            service: &'static str,
            metadata: &tonic::metadata::MetadataMap,
            names: Vec<String>,
        ) {
            let tenant = metadata
                .get("x-tenant")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = self.0.send(GrpcExport {
                service,
                tenant,
                names,
            });
        }
    }

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: Request<ExportTraceServiceRequest>,
        ) -> Result<Response<ExportTraceServiceResponse>, Status> {
            let names = request
                .get_ref()
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .flat_map(|scope| &scope.spans)
                .map(|span| span.name.clone())
                .collect();
            self.report("traces", request.metadata(), names);
            Ok(Response::new(ExportTraceServiceResponse::default()))
        }
    }

    #[tonic::async_trait]
    impl MetricsService for Collector {
        async fn export(
            &self,
            request: Request<ExportMetricsServiceRequest>,
        ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
            let names = request
                .get_ref()
                .resource_metrics
                .iter()
                .flat_map(|resource| &resource.scope_metrics)
                .flat_map(|scope| &scope.metrics)
                .map(|metric| metric.name.clone())
                .collect();
            self.report("metrics", request.metadata(), names);
            Ok(Response::new(ExportMetricsServiceResponse::default()))
        }
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let scheme = if tls { "https" } else { "http" };
    let endpoint = format!("{scheme}://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    let collector = std::sync::Arc::new(Collector(tx));
    let mut server = tonic::transport::Server::builder();
    if tls {
        let read = |name| std::fs::read(fixture(name)).expect("fixture");
        let identity =
            tonic::transport::Identity::from_pem(read("collector.pem"), read("collector.key"));
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .expect("tls config");
    }
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("collector runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let served = server
                .add_service(TraceServiceServer::from_arc(collector.clone()))
                .add_service(MetricsServiceServer::from_arc(collector))
                .serve_with_incoming(TcpIncoming::from(listener))
                .await;
            if let Err(error) = served {
                eprintln!("the test collector stopped: {error}");
            }
        });
    });
    (endpoint, rx)
}

/// Telemetry exporting to `endpoint` by gRPC, with metadata `x-tenant: acme`.
#[cfg(feature = "otlp-grpc")]
fn grpc_telemetry(endpoint: &str) -> Telemetry {
    grpc_telemetry_trusting(endpoint, None)
}

/// [`grpc_telemetry`] trusting the CA in `certificate` as well as the system's roots.
#[cfg(feature = "otlp-grpc")]
fn grpc_telemetry_trusting(endpoint: &str, certificate: Option<std::path::PathBuf>) -> Telemetry {
    let otlp = OtlpConfig {
        protocol: OtlpProtocol::Grpc,
        endpoint: format!("{endpoint}/"),
        headers: vec![("X-Tenant".to_owned(), "acme".to_owned())],
        timeout: std::time::Duration::from_secs(20),
        certificate,
        ..OtlpConfig::default()
    };
    Telemetry::init(TelemetryConfig {
        otlp: Some(otlp),
        ..Default::default()
    })
    .expect("init")
}

/// Records one `tools/call read_file`, flushes, and checks that the collector got the span and
/// the metrics with the metadata, without waiting for any timeout; then shuts down.
#[cfg(feature = "otlp-grpc")]
#[track_caller]
fn check_grpc_export(telemetry: &Telemetry, requests: &std::sync::mpsc::Receiver<GrpcExport>) {
    use std::time::{Duration, Instant};

    use crate::{OperationInfo, Outcome};

    telemetry
        .start_operation(&OperationInfo::tool_call("files", "read_file"))
        .finish(Outcome::OK);
    let started = Instant::now();
    telemetry.force_flush().expect("flush");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "force_flush took {:?}: it waited for a timeout",
        started.elapsed()
    );

    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 2 {
        let export = requests
            .recv_timeout(Duration::from_secs(10))
            .expect("an export request");
        assert_eq!(export.tenant, "acme", "{export:?}");
        seen.insert(export.service, export.names);
    }
    assert_eq!(seen["traces"], ["tools/call read_file"]);
    for metric in ["mcp.client.operation.duration", "switchboard.client.calls"] {
        assert!(
            seen["metrics"].iter().any(|name| name == metric),
            "{metric} in {:?}",
            seen["metrics"]
        );
    }

    let started = Instant::now();
    telemetry.shutdown().expect("shutdown");
    telemetry
        .shutdown()
        .expect("a second shutdown does nothing");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
}

#[cfg(feature = "otlp-grpc")]
#[test]
fn otlp_grpc_exports_traces_and_metrics_outside_a_runtime() {
    let (endpoint, requests) = grpc_collector();
    let telemetry = grpc_telemetry(&endpoint);
    check_grpc_export(&telemetry, &requests);
}

/// TLS to a collector whose certificate a private CA signed, trusted through
/// `otlp.certificate`.
#[cfg(feature = "otlp-grpc")]
#[test]
fn otlp_grpc_exports_over_tls_with_a_private_ca() {
    let (endpoint, requests) = grpc_tls_collector();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let telemetry = grpc_telemetry_trusting(&endpoint, Some(fixture("ca.pem")));
    check_grpc_export(&telemetry, &requests);
}

/// Without the CA, the collector's certificate is not trusted: nothing reaches it.
#[cfg(feature = "otlp-grpc")]
#[test]
fn otlp_grpc_over_tls_refuses_an_untrusted_collector() {
    use crate::{OperationInfo, Outcome};

    let (endpoint, requests) = grpc_tls_collector();
    let telemetry = grpc_telemetry_trusting(&endpoint, None);
    telemetry
        .start_operation(&OperationInfo::tool_call("files", "read_file"))
        .finish(Outcome::OK);
    // The export fails (the handshake does), whether or not flush reports it.
    let _ = telemetry.force_flush();
    assert!(
        requests
            .recv_timeout(std::time::Duration::from_secs(2))
            .is_err(),
        "an untrusted collector received an export"
    );
    let _ = telemetry.shutdown();
}

/// `init`, `force_flush` and `shutdown` on the only thread of a current-thread runtime: the
/// exporters must not need that thread.
#[cfg(feature = "otlp-grpc")]
#[tokio::test(flavor = "current_thread")]
async fn otlp_grpc_exports_from_a_current_thread_runtime() {
    let (endpoint, requests) = grpc_collector();
    let telemetry = grpc_telemetry(&endpoint);
    check_grpc_export(&telemetry, &requests);
}

/// Dropping the handle without `shutdown`, inside a runtime, still exports and does not panic.
#[cfg(feature = "otlp-grpc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_exports_on_drop_inside_a_runtime() {
    use crate::{OperationInfo, Outcome};

    let (endpoint, requests) = grpc_collector();
    let telemetry = grpc_telemetry(&endpoint);
    telemetry
        .start_operation(&OperationInfo::tool_call("files", "read_file"))
        .finish(Outcome::OK);
    drop(telemetry);
    let mut services = std::collections::BTreeSet::new();
    while services.len() < 2 {
        let export = requests
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("an export request on drop");
        services.insert(export.service);
    }
}
