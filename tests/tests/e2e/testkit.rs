//! The testkit server over stdio and streamable HTTP, in both protocol eras.

use serde_json::json;
use switchboard::{
    rmcp::model::{ContentBlock, ResourceContents},
    transport::{ConnectionState, ProtocolMode, ServerSpec},
};
use switchboard_tests::{ServerProcess, http_spec, testkit_stdio};

use crate::{args, connect, text_of};

async fn exercise(spec: ServerSpec, expected_protocol: &str) {
    let name = spec.name.to_string();
    let sb = connect(vec![spec]).await;
    let status = &sb.servers()[0];
    let connection = status.connection.as_ref().expect("enabled");
    assert_eq!(connection.state, ConnectionState::Ready, "{status:?}");
    assert_eq!(
        connection.protocol_version.as_deref(),
        Some(expected_protocol)
    );

    // Tools, with annotations.
    let tools = sb.tools();
    for expected in [
        "echo",
        "add",
        "image",
        "audio",
        "mixed",
        "structured",
        "write_note",
    ] {
        assert!(
            tools.iter().any(|t| t.name == format!("{name}.{expected}")),
            "{expected} missing from {:?}",
            tools.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
    }
    let echo = sb.tool("echo").expect("bare name resolves");
    assert!(echo.is_read_only() && echo.is_idempotent());
    assert!(!sb.tool("write_note").expect("tool").is_idempotent());

    // Every content type.
    let out = sb
        .call("echo", args(json!({"message": "hi"})))
        .await
        .expect("echo");
    assert_eq!(text_of(&out), "hi");
    assert_eq!(out.provenance.server.as_str(), name);
    assert!(!out.is_tool_error());

    let out = sb
        .call(&format!("{name}.add"), args(json!({"a": 2, "b": 40})))
        .await
        .expect("add");
    let sum = out
        .result
        .structured_content
        .as_ref()
        .and_then(|v| v.get("sum"))
        .and_then(serde_json::Value::as_f64);
    assert_eq!(sum, Some(42.0));

    let out = sb.call("mixed", None).await.expect("mixed");
    let kinds: Vec<&str> = out
        .result
        .content
        .iter()
        .map(|c| match c {
            ContentBlock::Text(_) => "text",
            ContentBlock::Image(_) => "image",
            ContentBlock::Audio(_) => "audio",
            ContentBlock::Resource(_) => "resource",
            ContentBlock::ResourceLink(_) => "link",
            _ => "other",
        })
        .collect();
    for kind in ["text", "image", "audio", "resource", "link"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let out = sb.call("structured", None).await.expect("structured");
    assert_eq!(
        out.result.structured_content,
        Some(json!({"name": "testkit", "items": [1, 2, 3]}))
    );

    // A tool error is a successful call that says so.
    let out = sb
        .call("fail", args(json!({"message": "nope"})))
        .await
        .expect("fail");
    assert!(out.is_tool_error());

    // Resources: static text, blob, template.
    let resources = sb.resources();
    assert!(
        resources
            .iter()
            .any(|r| r.resource.uri == "testkit://static/hello")
    );
    let read = sb
        .read_resource("testkit://static/hello")
        .await
        .expect("read");
    match &read.value.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => {
            assert_eq!(text, "hello from testkit")
        }
        other => panic!("expected text, got {other:?}"),
    }
    let read = sb
        .read_resource("testkit://static/blob")
        .await
        .expect("blob");
    assert!(matches!(
        read.value.contents[0],
        ResourceContents::BlobResourceContents { .. }
    ));
    let read = sb
        .read_resource("testkit://items/42")
        .await
        .expect("template");
    match &read.value.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => assert!(text.contains("42")),
        other => panic!("expected text, got {other:?}"),
    }
    let missing = sb
        .read_resource("testkit://nope")
        .await
        .expect_err("unknown uri");
    assert!(missing.to_string().contains("testkit://nope"), "{missing}");

    // Prompts.
    assert!(sb.prompts().iter().any(|p| p.prompt.name == "greet"));
    let prompt = sb
        .get_prompt("greet", args(json!({"name": "Ada"})))
        .await
        .expect("prompt");
    let text = serde_json::to_string(&prompt.messages).expect("json");
    assert!(text.contains("Ada"), "{text}");

    sb.shutdown().await;
}

#[tokio::test]
async fn stdio_legacy_era() {
    let mut spec = testkit_stdio("kit", &[]);
    spec.protocol = ProtocolMode::Legacy;
    exercise(spec, "2025-11-25").await;
}

#[tokio::test]
async fn stdio_modern_era() {
    let mut spec = testkit_stdio("kit", &[]);
    spec.protocol = ProtocolMode::Modern;
    exercise(spec, "2026-07-28").await;
}

#[tokio::test]
async fn stdio_auto_picks_the_modern_era() {
    exercise(testkit_stdio("kit", &[]), "2026-07-28").await;
}

#[tokio::test]
async fn http_legacy_era() {
    let server = ServerProcess::testkit_http(&[]);
    let mut spec = http_spec("web", &server.url);
    spec.protocol = ProtocolMode::Legacy;
    exercise(spec, "2025-11-25").await;
}

#[tokio::test]
async fn http_modern_era() {
    let server = ServerProcess::testkit_http(&[]);
    let mut spec = http_spec("web", &server.url);
    spec.protocol = ProtocolMode::Modern;
    exercise(spec, "2026-07-28").await;
}

#[tokio::test]
async fn list_changed_refreshes_the_catalog() {
    for mode in [ProtocolMode::Legacy, ProtocolMode::Modern] {
        let mut spec = testkit_stdio("kit", &[]);
        spec.protocol = mode;
        let sb = connect(vec![spec]).await;
        assert!(sb.tool("kit.fresh_tool").is_err());
        sb.call("add_tool", args(json!({"name": "fresh_tool"})))
            .await
            .expect("add_tool");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while sb.tool("kit.fresh_tool").is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{mode:?}: the new tool never appeared in the catalog"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let out = sb
            .call("kit.fresh_tool", args(json!({"x": 1})))
            .await
            .expect("call the new tool");
        assert!(!out.is_tool_error());
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn concurrent_calls_share_one_session() {
    let sb = connect(vec![testkit_stdio("kit", &["--latency-ms", "50"])]).await;
    let pid = sb.servers()[0].connection.as_ref().and_then(|c| c.pid);
    let started = std::time::Instant::now();
    let calls = (0..50).map(|i| {
        let sb = sb.clone();
        async move {
            sb.call("echo", args(json!({"message": format!("m{i}")})))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(text_of(r.as_ref().expect("call")), format!("m{i}"));
    }
    // 50 calls of 50 ms each, concurrently on one session: far less than 50 × 50 ms.
    assert!(started.elapsed() < std::time::Duration::from_millis(2000));
    assert_eq!(sb.servers()[0].connection.as_ref().and_then(|c| c.pid), pid);
    sb.shutdown().await;
}

#[tokio::test]
async fn lists_are_refreshed_when_their_ttl_passes() {
    // No notification: the catalog notices the new tool only through the list's ttlMs.
    let mut spec = testkit_stdio("kit", &["--list-ttl-ms", "300"]);
    spec.protocol = ProtocolMode::Modern;
    let sb = connect(vec![spec]).await;
    let mut params = switchboard::rmcp::model::CallToolRequestParams::new("add_tool");
    params.arguments = args(json!({"name": "quiet_tool", "notify": false}));
    sb.connection("kit")
        .expect("kit")
        .call_tool(params)
        .await
        .expect("add_tool");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while sb.tool("kit.quiet_tool").is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tool list was not refreshed after its ttlMs"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn renamed_tools_keep_working_under_their_new_name() {
    let mut server =
        switchboard_tests::server_config(testkit_stdio("kit", &[]), Default::default());
    server
        .tools
        .renames
        .insert("add".to_owned(), "plus".to_owned());
    server
        .tools
        .descriptions
        .insert("add".to_owned(), "Adds two numbers, renamed.".to_owned());
    let sb = switchboard::Switchboard::connect(switchboard::config::Config {
        servers: vec![server],
        ..Default::default()
    })
    .await
    .expect("connect");
    let entry = sb.tool("plus").expect("exposed under the new name");
    assert_eq!(entry.name, "kit.plus");
    assert_eq!(
        entry.tool.description.as_deref(),
        Some("Adds two numbers, renamed.")
    );
    assert!(sb.tool("kit.add").is_err());
    let out = sb
        .call("kit.plus", args(json!({"a": 40, "b": 2})))
        .await
        .expect("call");
    let sum = out
        .result
        .structured_content
        .as_ref()
        .and_then(|v| v.get("sum"))
        .and_then(serde_json::Value::as_f64);
    assert_eq!(sum, Some(42.0));
    sb.shutdown().await;
}
