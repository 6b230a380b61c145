//! Exporter setup: OTLP/HTTP reaches a collector, configuration errors are clear.

use crate::{OtlpConfig, PrometheusConfig, Telemetry, TelemetryConfig, TelemetryError};

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
