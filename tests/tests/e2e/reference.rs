//! Reference servers not written here: server-everything (npm) and mcp-server-time (PyPI).

use serde_json::json;
use switchboard::{
    rmcp::model::ContentBlock,
    transport::{ConnectionState, ProtocolMode, ServerSpec, StdioSpec, TransportSpec},
};
use switchboard_tests::{ServerProcess, http_spec, npm_server, python_server};

use crate::{args, connect, text_of};

fn everything_stdio() -> ServerSpec {
    ServerSpec::new(
        "everything",
        TransportSpec::Stdio(StdioSpec::new(
            "node",
            [
                npm_server("server-everything").display().to_string(),
                "stdio".to_owned(),
            ],
        )),
    )
}

async fn exercise_everything(spec: ServerSpec) {
    let sb = connect(vec![spec]).await;
    let status = sb.servers()[0].connection.clone().expect("status");
    assert_eq!(status.state, ConnectionState::Ready, "{status:?}");
    // server-everything speaks the legacy era only: Auto falls back to initialize.
    assert_eq!(status.protocol_version.as_deref(), Some("2025-11-25"));
    assert!(sb.tools().len() >= 10, "{} tools", sb.tools().len());

    let out = sb
        .call("echo", args(json!({"message": "hi"})))
        .await
        .expect("echo");
    assert_eq!(text_of(&out), "Echo: hi");
    let out = sb
        .call("get-sum", args(json!({"a": 2, "b": 3})))
        .await
        .expect("sum");
    assert!(text_of(&out).contains('5'), "{}", text_of(&out));
    let out = sb.call("get-tiny-image", None).await.expect("image");
    assert!(
        out.result
            .content
            .iter()
            .any(|c| matches!(c, ContentBlock::Image(_)))
    );
    let out = sb
        .call(
            "get-structured-content",
            args(json!({"location": "New York"})),
        )
        .await
        .expect("structured");
    assert!(out.result.structured_content.is_some());

    let resources = sb.resources();
    assert!(!resources.is_empty());
    let uri = resources[0].resource.uri.clone();
    let read = sb.read_resource(&uri).await.expect("read");
    assert!(!read.value.contents.is_empty());

    let prompts = sb.prompts();
    assert!(
        prompts.iter().any(|p| p.prompt.name == "simple-prompt"),
        "{prompts:?}"
    );
    let prompt = sb.get_prompt("simple-prompt", None).await.expect("prompt");
    assert!(!prompt.messages.is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn everything_over_stdio() {
    exercise_everything(everything_stdio()).await;
}

#[tokio::test]
async fn everything_over_streamable_http() {
    let server = ServerProcess::everything_http();
    exercise_everything(http_spec("everything", &server.url)).await;
}

async fn time_server(mode: ProtocolMode, expected: &str) {
    let mut spec = ServerSpec::new(
        "time",
        TransportSpec::Stdio(StdioSpec::new(
            python_server("mcp-server-time").display().to_string(),
            ["--local-timezone", "UTC"],
        )),
    );
    spec.protocol = mode;
    let sb = connect(vec![spec]).await;
    let status = sb.servers()[0].connection.clone().expect("status");
    assert_eq!(status.state, ConnectionState::Ready, "{status:?}");
    assert_eq!(status.protocol_version.as_deref(), Some(expected));
    let out = sb
        .call("get_current_time", args(json!({"timezone": "UTC"})))
        .await
        .expect("get_current_time");
    assert!(!out.is_tool_error());
    assert!(text_of(&out).contains("UTC"), "{}", text_of(&out));
    let out = sb
        .call("convert_time", args(json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"})))
        .await
        .expect("convert_time");
    assert!(text_of(&out).contains("Europe/Paris"), "{}", text_of(&out));
    sb.shutdown().await;
}

#[tokio::test]
async fn python_time_server_legacy_era() {
    time_server(ProtocolMode::Legacy, "2025-11-25").await;
}

#[tokio::test]
async fn python_time_server_modern_era() {
    time_server(ProtocolMode::Modern, "2026-07-28").await;
}
