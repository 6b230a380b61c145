//! End-to-end tests of the test server: rmcp clients against the real
//! `switchboard-testkit` binary (stdio and streamable HTTP, with both the
//! `initialize` and the 2026-07-28 `server/discover` lifecycles), plus the
//! in-process library API.

use std::{
    future::Future,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
#[expect(
    deprecated,
    reason = "MCP logging is deprecated by SEP-2577 but still served"
)]
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt as _, RoleClient, ServiceError,
    ServiceExt as _,
    model::{
        CallToolRequestParams, CallToolResult, ContentBlock, ErrorCode, GetPromptRequestParams,
        JsonObject, ProgressNotificationParam, ProtocolVersion, ReadResourceRequestParams,
        RequestMetaObject, ResourceContents, ServerNotification, SubscriptionFilter,
    },
    service::{NotificationContext, RunningService},
    transport::{StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::{Value, json};
use switchboard_testkit::{
    CRASH_EXIT_CODE, CrashBehavior, GARBAGE_LINE, HttpOptions, Knobs, TestServer, catalog,
    serve_http,
};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::Notify,
};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_switchboard-testkit");

/// Bound on every single await; generous because CI machines are shared.
const STEP: Duration = Duration::from_secs(30);

/// Awaits `future`, failing the test after [`STEP`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

/// Every tool the server lists at start.
const STATIC_TOOLS: [&str; 19] = [
    "add",
    "add_tool",
    "audio",
    "big",
    "crash",
    "echo",
    "embedded_resource",
    "fail",
    "hang",
    "image",
    "increment",
    "last_meta",
    "log",
    "mixed",
    "resource_link",
    "sleep",
    "stats",
    "structured",
    "write_note",
];

/// Which lifecycle the client opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// `initialize` / `notifications/initialized`.
    Initialize,
    /// 2026-07-28 `server/discover` with per-request metadata.
    Discover,
}

impl Lifecycle {
    fn mode(self) -> ClientLifecycleMode {
        match self {
            Self::Initialize => ClientLifecycleMode::Initialize,
            Self::Discover => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        }
    }

    fn expected_version(self) -> ProtocolVersion {
        match self {
            Self::Initialize => ProtocolVersion::V_2025_11_25,
            Self::Discover => ProtocolVersion::V_2026_07_28,
        }
    }

    /// The error code of an unknown resource URI.
    fn resource_not_found_code(self) -> ErrorCode {
        match self {
            Self::Initialize => ErrorCode::RESOURCE_NOT_FOUND,
            Self::Discover => ErrorCode::INVALID_PARAMS,
        }
    }
}

/// A client handler that records the notifications it sees.
#[derive(Debug, Clone, Default)]
struct Recorder {
    tools_changed: Arc<Notify>,
    tools_changed_count: Arc<AtomicUsize>,
    logs: Arc<Mutex<Vec<Value>>>,
    log_arrived: Arc<Notify>,
    progress_count: Arc<AtomicUsize>,
}

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed_count.fetch_add(1, Ordering::SeqCst);
        self.tools_changed.notify_one();
    }

    #[expect(
        deprecated,
        reason = "MCP logging is deprecated by SEP-2577 but still served"
    )]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs
            .lock()
            .expect("log list lock")
            .push(params.data.clone());
        self.log_arrived.notify_one();
    }

    async fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress_count.fetch_add(1, Ordering::SeqCst);
    }
}

type Client = RunningService<RoleClient, Recorder>;

/// Starts the binary in stdio mode through rmcp's `TokioChildProcess`.
async fn connect_stdio(args: &[&str], lifecycle: Lifecycle, recorder: Recorder) -> Client {
    let mut command = Command::new(BIN);
    command.arg("stdio").args(args);
    let transport = TokioChildProcess::new(command).expect("spawn the stdio server");
    within(
        "stdio handshake",
        recorder.serve_with_lifecycle(transport, lifecycle.mode()),
    )
    .await
    .expect("stdio handshake")
}

/// Starts the binary in stdio mode with our own pipes, so the exit status
/// stays observable.
async fn connect_stdio_child(args: &[&str], lifecycle: Lifecycle) -> (Client, Child) {
    let mut child = Command::new(BIN)
        .arg("stdio")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the stdio server");
    let stdout = child.stdout.take().expect("child stdout");
    let stdin = child.stdin.take().expect("child stdin");
    let client = within(
        "stdio handshake",
        Recorder::default().serve_with_lifecycle((stdout, stdin), lifecycle.mode()),
    )
    .await
    .expect("stdio handshake");
    (client, child)
}

/// The binary in HTTP mode, with the URL it printed.
struct HttpChild {
    child: Child,
    url: String,
}

/// Starts the binary in HTTP mode on a free port and reads its URL line.
async fn spawn_http(args: &[&str]) -> HttpChild {
    let mut child = Command::new(BIN)
        .args(["http", "--port", "0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the HTTP server");
    let stdout = child.stdout.take().expect("child stdout");
    let line = within(
        "the listening line",
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("read stdout")
    .expect("a listening line");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.ends_with("/mcp"), "{url}");
    HttpChild { child, url }
}

/// Connects an rmcp streamable HTTP client.
async fn connect_http(url: &str, lifecycle: Lifecycle, recorder: Recorder) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    within(
        "HTTP handshake",
        recorder.serve_with_lifecycle(transport, lifecycle.mode()),
    )
    .await
    .expect("HTTP handshake")
}

/// Waits for a child to exit and returns its exit code.
async fn exit_code(child: &mut Child) -> Option<i32> {
    within("the child to exit", child.wait())
        .await
        .expect("wait for the child")
        .code()
}

/// Closes a client, bounded.
async fn close(client: Client) {
    // The result does not matter: the server may be gone already.
    let _quit = within("closing the client", client.cancel()).await;
}

fn args(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, got {other}"),
    }
}

async fn call(client: &Client, name: &'static str, arguments: Value) -> CallToolResult {
    within(
        name,
        client.call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments))),
    )
    .await
    .unwrap_or_else(|error| panic!("calling {name}: {error}"))
}

async fn call_err(client: &Client, name: &'static str, arguments: Value) -> ServiceError {
    match within(
        name,
        client.call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments))),
    )
    .await
    {
        Ok(result) => panic!("calling {name} should fail, got {result:?}"),
        Err(error) => error,
    }
}

fn only_text(result: &CallToolResult) -> &str {
    assert_eq!(result.content.len(), 1, "{result:?}");
    &result.content[0].as_text().expect("a text block").text
}

fn mcp_error_code(error: &ServiceError) -> ErrorCode {
    match error {
        ServiceError::McpError(data) => data.code,
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

/// A fresh path in the temporary directory.
fn temp_path(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!(
        "switchboard-testkit-{tag}-{}-{nanos}",
        std::process::id()
    ))
}

fn read_lines(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read the calls log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn check_image(block: &ContentBlock) {
    let image = block.as_image().expect("an image block");
    assert_eq!(image.mime_type, "image/png");
    let bytes = STANDARD.decode(&image.data).expect("base64 image");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{bytes:?}");
}

fn check_audio(block: &ContentBlock) {
    let audio = block.as_audio().expect("an audio block");
    assert_eq!(audio.mime_type, "audio/wav");
    let bytes = STANDARD.decode(&audio.data).expect("base64 audio");
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
}

fn check_embedded(block: &ContentBlock) {
    let embedded = block.as_resource().expect("an embedded resource block");
    match &embedded.resource {
        ResourceContents::TextResourceContents { uri, text, .. } => {
            assert_eq!(uri, catalog::HELLO_URI);
            assert_eq!(text, catalog::HELLO_TEXT);
        }
        other => panic!("expected text contents, got {other:?}"),
    }
}

fn check_link(block: &ContentBlock) {
    let link = block.as_resource_link().expect("a resource link block");
    assert_eq!(link.uri, catalog::HELLO_URI);
}

/// Walks the whole server surface: info, tools, content types, resources,
/// prompts, progress and `_meta`.
async fn exercise_surface(client: &Client, lifecycle: Lifecycle) {
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, lifecycle.expected_version());
    assert_eq!(
        info.server_info.as_ref().map(|server| server.name.as_str()),
        Some("switchboard-testkit")
    );
    let capabilities = serde_json::to_value(&info.capabilities).expect("capabilities");
    assert_eq!(capabilities["tools"]["listChanged"], json!(true));
    for capability in ["resources", "prompts", "logging"] {
        assert!(capabilities[capability].is_object(), "{capabilities}");
    }

    // Tools and annotations.
    let tools = within("list tools", client.list_all_tools())
        .await
        .expect("list tools");
    for name in STATIC_TOOLS {
        assert!(tools.iter().any(|tool| tool.name == name), "missing {name}");
    }
    let tool = |name: &str| {
        tools
            .iter()
            .find(|tool| tool.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    };
    let hints = |name: &str| {
        let annotations = tool(name).annotations.clone().expect("annotations");
        (
            annotations.read_only_hint,
            annotations.destructive_hint,
            annotations.idempotent_hint,
        )
    };
    assert_eq!(hints("echo"), (Some(true), None, Some(true)));
    assert_eq!(hints("add"), (Some(true), None, Some(true)));
    assert_eq!(hints("crash"), (Some(false), Some(true), Some(false)));
    assert_eq!(hints("write_note"), (Some(false), Some(true), Some(false)));
    assert_eq!(hints("increment"), (Some(false), Some(false), Some(false)));
    assert!(tool("add").output_schema.is_some());
    assert!(tool("structured").output_schema.is_some());

    // Every content type.
    let echo = call(client, "echo", json!({ "message": "hi there" })).await;
    assert_eq!(only_text(&echo), "hi there");
    assert_ne!(echo.is_error, Some(true));

    let add = call(client, "add", json!({ "a": 2, "b": 3.5 })).await;
    assert_eq!(add.structured_content, Some(json!({ "sum": 5.5 })));
    assert!(add.content.iter().any(|block| block.as_text().is_some()));

    check_image(&call(client, "image", json!({})).await.content[0]);
    check_audio(&call(client, "audio", json!({})).await.content[0]);
    check_embedded(&call(client, "embedded_resource", json!({})).await.content[0]);
    check_link(&call(client, "resource_link", json!({})).await.content[0]);

    let mixed = call(client, "mixed", json!({})).await;
    assert_eq!(mixed.content.len(), 5, "{mixed:?}");
    assert!(mixed.content[0].as_text().is_some());
    check_image(&mixed.content[1]);
    check_audio(&mixed.content[2]);
    check_embedded(&mixed.content[3]);
    check_link(&mixed.content[4]);

    let structured = call(client, "structured", json!({})).await;
    assert_eq!(
        structured.structured_content,
        Some(json!({ "name": "testkit", "items": [1, 2, 3] }))
    );

    let fail = call(client, "fail", json!({ "message": "boom" })).await;
    assert_eq!(fail.is_error, Some(true));
    assert_eq!(only_text(&fail), "boom");

    let big = call(client, "big", json!({ "bytes": 100_000 })).await;
    let text = only_text(&big);
    assert_eq!(text.len(), 100_000);
    assert!(text.bytes().all(|byte| byte == b'x'));

    // `sleep` sends progress notifications (rmcp stamps a progress token on
    // every request).
    let progress_before = client.service().progress_count.load(Ordering::SeqCst);
    let slept = call(client, "sleep", json!({ "ms": 350 })).await;
    assert_eq!(only_text(&slept), "slept 350 ms");
    let deadline = Instant::now() + STEP;
    while client.service().progress_count.load(Ordering::SeqCst) == progress_before {
        assert!(
            Instant::now() < deadline,
            "no progress notification arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // `_meta` round trip.
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
    let mut meta = RequestMetaObject::new();
    meta.set_traceparent(traceparent);
    let mut params = CallToolRequestParams::new("last_meta");
    params.meta = Some(meta);
    let last_meta = within("last_meta", client.call_tool(params))
        .await
        .expect("last_meta");
    let seen = last_meta.structured_content.expect("structured _meta");
    assert_eq!(seen["traceparent"], json!(traceparent), "{seen}");

    // Resources.
    let resources = within("list resources", client.list_all_resources())
        .await
        .expect("list resources");
    assert_eq!(resources.len(), 2);
    let templates = within("list templates", client.list_all_resource_templates())
        .await
        .expect("list templates");
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].uri_template, catalog::ITEM_TEMPLATE);

    let read = |uri: &'static str| {
        within(
            uri,
            client.read_resource(ReadResourceRequestParams::new(uri)),
        )
    };
    let hello = read(catalog::HELLO_URI).await.expect("read hello");
    match &hello.contents[..] {
        [
            ResourceContents::TextResourceContents {
                text, mime_type, ..
            },
        ] => {
            assert_eq!(text, catalog::HELLO_TEXT);
            assert_eq!(mime_type.as_deref(), Some("text/plain"));
        }
        other => panic!("unexpected contents {other:?}"),
    }
    let blob = read(catalog::BLOB_URI).await.expect("read blob");
    match &blob.contents[..] {
        [
            ResourceContents::BlobResourceContents {
                blob, mime_type, ..
            },
        ] => {
            let bytes = STANDARD.decode(blob).expect("base64 blob");
            assert_eq!(bytes, (0_u8..16).collect::<Vec<_>>());
            assert_eq!(mime_type.as_deref(), Some("application/octet-stream"));
        }
        other => panic!("unexpected contents {other:?}"),
    }
    let item = read("testkit://items/42").await.expect("read item 42");
    match &item.contents[..] {
        [ResourceContents::TextResourceContents { text, .. }] => {
            assert_eq!(text, r#"{"id":"42"}"#);
        }
        other => panic!("unexpected contents {other:?}"),
    }
    let missing = read("testkit://nope").await.expect_err("unknown URI");
    assert_eq!(
        mcp_error_code(&missing),
        lifecycle.resource_not_found_code()
    );

    // Prompts.
    let prompts = within("list prompts", client.list_all_prompts())
        .await
        .expect("list prompts");
    let names: Vec<&str> = prompts.iter().map(|prompt| prompt.name.as_str()).collect();
    assert_eq!(names, ["greet", "summarize"]);
    let greet = within(
        "greet",
        client.get_prompt(
            GetPromptRequestParams::new("greet").with_arguments(args(json!({ "name": "Ada" }))),
        ),
    )
    .await
    .expect("greet");
    assert_eq!(greet.messages.len(), 1);
    assert_eq!(
        greet.messages[0]
            .content
            .as_text()
            .map(|text| text.text.as_str()),
        Some("Say hello to Ada")
    );
    let summarize = within(
        "summarize",
        client.get_prompt(
            GetPromptRequestParams::new("summarize")
                .with_arguments(args(json!({ "text": "long text", "style": "terse" }))),
        ),
    )
    .await
    .expect("summarize");
    let summary = summarize.messages[0].content.as_text().expect("text");
    assert!(summary.text.contains("terse") && summary.text.contains("long text"));
    for (name, arguments) in [("nope", json!({})), ("greet", json!({}))] {
        let error = within(
            name,
            client.get_prompt(GetPromptRequestParams::new(name).with_arguments(args(arguments))),
        )
        .await
        .expect_err("bad prompt request");
        assert_eq!(mcp_error_code(&error), ErrorCode::INVALID_PARAMS);
    }

    // Unknown tool.
    let unknown = call_err(client, "no_such_tool_here", json!({})).await;
    assert_eq!(mcp_error_code(&unknown), ErrorCode::INVALID_PARAMS);
}

#[tokio::test]
async fn stdio_initialize_serves_the_whole_surface() {
    let client = connect_stdio(&[], Lifecycle::Initialize, Recorder::default()).await;
    exercise_surface(&client, Lifecycle::Initialize).await;
    close(client).await;
}

#[tokio::test]
async fn stdio_discover_serves_the_whole_surface() {
    let client = connect_stdio(&[], Lifecycle::Discover, Recorder::default()).await;
    exercise_surface(&client, Lifecycle::Discover).await;
    close(client).await;
}

#[tokio::test]
async fn http_initialize_serves_the_whole_surface() {
    let server = spawn_http(&[]).await;
    let client = connect_http(&server.url, Lifecycle::Initialize, Recorder::default()).await;
    exercise_surface(&client, Lifecycle::Initialize).await;
    close(client).await;
}

#[tokio::test]
async fn http_discover_serves_the_whole_surface() {
    let server = spawn_http(&[]).await;
    let client = connect_http(&server.url, Lifecycle::Discover, Recorder::default()).await;
    exercise_surface(&client, Lifecycle::Discover).await;
    close(client).await;
}

#[tokio::test]
async fn http_stateless_json_serves_both_lifecycles() {
    let server = spawn_http(&["--stateless", "--json-response"]).await;
    for lifecycle in [Lifecycle::Initialize, Lifecycle::Discover] {
        let client = connect_http(&server.url, lifecycle, Recorder::default()).await;
        let echo = call(&client, "echo", json!({ "message": "stateless" })).await;
        assert_eq!(only_text(&echo), "stateless");
        let hello = within(
            "read hello",
            client.read_resource(ReadResourceRequestParams::new(catalog::HELLO_URI)),
        )
        .await
        .expect("read hello");
        assert_eq!(hello.contents.len(), 1);
        close(client).await;
    }
}

#[tokio::test]
async fn error_rate_one_answers_every_call_with_an_internal_error() {
    let client = connect_stdio(
        &["--error-rate", "1"],
        Lifecycle::Initialize,
        Recorder::default(),
    )
    .await;
    for _ in 0..3 {
        let error = call_err(&client, "echo", json!({ "message": "x" })).await;
        assert_eq!(mcp_error_code(&error), ErrorCode::INTERNAL_ERROR);
        let ServiceError::McpError(data) = &error else {
            unreachable!("checked above");
        };
        assert_eq!(data.message, "injected failure");
    }
    // `stats` is exempt from injected faults and counts the failed calls.
    let stats = call(&client, "stats", json!({})).await;
    assert_eq!(
        stats.structured_content,
        Some(json!({ "calls": { "echo": 3 }, "total": 3 }))
    );
    close(client).await;
}

#[tokio::test]
async fn tool_error_rate_from_the_environment_answers_with_is_error() {
    let mut command = Command::new(BIN);
    command.arg("stdio").env("TESTKIT_TOOL_ERROR_RATE", "1");
    let transport = TokioChildProcess::new(command).expect("spawn");
    let client = within(
        "handshake",
        Recorder::default().serve_with_lifecycle(transport, Lifecycle::Initialize.mode()),
    )
    .await
    .expect("handshake");
    let result = call(&client, "echo", json!({ "message": "x" })).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(only_text(&result), "injected tool error");
    close(client).await;
}

#[tokio::test]
async fn latency_delays_every_tool_call() {
    let client = connect_stdio(
        &["--latency-ms", "300", "--name", "slowpoke"],
        Lifecycle::Discover,
        Recorder::default(),
    )
    .await;
    let name = client
        .peer_info()
        .and_then(|info| info.server_info.clone())
        .map(|server| server.name);
    assert_eq!(name.as_deref(), Some("slowpoke"));
    let started = Instant::now();
    call(&client, "echo", json!({ "message": "x" })).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    close(client).await;
}

#[tokio::test]
async fn counters_notes_and_stats_are_shared_by_sessions() {
    let server = spawn_http(&[]).await;
    let first = connect_http(&server.url, Lifecycle::Initialize, Recorder::default()).await;
    let second = connect_http(&server.url, Lifecycle::Discover, Recorder::default()).await;
    assert_eq!(only_text(&call(&first, "increment", json!({})).await), "1");
    assert_eq!(only_text(&call(&second, "increment", json!({})).await), "2");
    let note = json!({ "text": "remember" });
    assert_eq!(
        only_text(&call(&first, "write_note", note.clone()).await),
        "1"
    );
    assert_eq!(only_text(&call(&second, "write_note", note).await), "2");
    let stats = call(&second, "stats", json!({})).await;
    assert_eq!(
        stats.structured_content,
        Some(json!({ "calls": { "increment": 2, "write_note": 2 }, "total": 4 }))
    );
    close(first).await;
    close(second).await;
}

#[tokio::test]
async fn hang_is_cancellable_and_the_session_survives() {
    let client = connect_stdio(&[], Lifecycle::Initialize, Recorder::default()).await;
    let hung = tokio::time::timeout(
        Duration::from_millis(300),
        client.call_tool(CallToolRequestParams::new("hang")),
    )
    .await;
    assert!(hung.is_err(), "hang answered: {hung:?}");
    let echo = call(&client, "echo", json!({ "message": "still here" })).await;
    assert_eq!(only_text(&echo), "still here");
    close(client).await;
}

#[tokio::test]
async fn log_sends_a_logging_notification() {
    let recorder = Recorder::default();
    let client = connect_stdio(&[], Lifecycle::Initialize, recorder.clone()).await;
    let logged = call(
        &client,
        "log",
        json!({ "level": "warning", "message": "hello log" }),
    )
    .await;
    assert_eq!(only_text(&logged), "logged");
    within("the log notification", recorder.log_arrived.notified()).await;
    let logs = recorder.logs.lock().expect("log list lock").clone();
    assert_eq!(logs, [json!("hello log")]);
    let bad = call_err(&client, "log", json!({ "level": "loud", "message": "x" })).await;
    assert_eq!(mcp_error_code(&bad), ErrorCode::INVALID_PARAMS);
    close(client).await;
}

/// Adds a tool and checks that it is listed and callable.
async fn check_added_tool(client: &Client, name: &'static str) {
    let tools = within("list tools", client.list_all_tools())
        .await
        .expect("list tools");
    let added = tools
        .iter()
        .find(|tool| tool.name == name)
        .unwrap_or_else(|| panic!("{name} is not listed"));
    assert_eq!(
        added
            .annotations
            .as_ref()
            .and_then(|hints| hints.read_only_hint),
        Some(true)
    );
    let result = call(client, name, json!({ "x": 1 })).await;
    assert_eq!(only_text(&result), r#"{"x":1}"#);
    let again = call(client, "add_tool", json!({ "name": name })).await;
    assert_eq!(
        again.is_error,
        Some(true),
        "adding {name} twice should fail"
    );
}

/// Legacy sessions get a plain `notifications/tools/list_changed`.
async fn add_tool_notifies_legacy_session(client: Client, recorder: Recorder, name: &'static str) {
    let added = call(&client, "add_tool", json!({ "name": name })).await;
    assert_eq!(only_text(&added), format!("added tool {name}"));
    within("tools/list_changed", recorder.tools_changed.notified()).await;
    assert!(recorder.tools_changed_count.load(Ordering::SeqCst) >= 1);
    check_added_tool(&client, name).await;
    close(client).await;
}

/// 2026-07-28 clients get the notification on a `subscriptions/listen` stream.
async fn add_tool_notifies_listener(client: Client, name: &'static str) {
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let mut subscription = within("listen", client.listen(filter))
        .await
        .expect("listen");
    assert_eq!(subscription.acknowledged().tools_list_changed, Some(true));
    call(&client, "add_tool", json!({ "name": name })).await;
    let notification = within("the subscription notification", subscription.next())
        .await
        .expect("subscription stream")
        .expect("a notification");
    assert!(
        matches!(
            notification,
            ServerNotification::ToolListChangedNotification(_)
        ),
        "{notification:?}"
    );
    check_added_tool(&client, name).await;
    within("cancel the subscription", subscription.cancel())
        .await
        .expect("cancel the subscription");
    close(client).await;
}

#[tokio::test]
async fn add_tool_notifies_a_stdio_initialize_client() {
    let recorder = Recorder::default();
    let client = connect_stdio(&[], Lifecycle::Initialize, recorder.clone()).await;
    add_tool_notifies_legacy_session(client, recorder, "dyn_stdio").await;
}

#[tokio::test]
async fn add_tool_notifies_an_http_initialize_client() {
    let server = spawn_http(&[]).await;
    let recorder = Recorder::default();
    let client = connect_http(&server.url, Lifecycle::Initialize, recorder.clone()).await;
    add_tool_notifies_legacy_session(client, recorder, "dyn_http").await;
}

#[tokio::test]
async fn add_tool_notifies_a_stdio_discover_listener() {
    let client = connect_stdio(&[], Lifecycle::Discover, Recorder::default()).await;
    add_tool_notifies_listener(client, "dyn.stdio-2026").await;
}

#[tokio::test]
async fn add_tool_notifies_an_http_discover_listener() {
    let server = spawn_http(&[]).await;
    let client = connect_http(&server.url, Lifecycle::Discover, Recorder::default()).await;
    add_tool_notifies_listener(client, "dyn.http-2026").await;
}

#[tokio::test]
async fn crash_after_exits_with_70_over_stdio_and_calls_log_survives_restarts() {
    let log = temp_path("calls-stdio");
    let log_arg = log.to_str().expect("UTF-8 temp path");

    let (client, mut child) = connect_stdio_child(
        &["--crash-after", "2", "--calls-log", log_arg],
        Lifecycle::Initialize,
    )
    .await;
    call(&client, "echo", json!({ "message": "one" })).await;
    let error = call_err(&client, "add", json!({ "a": 1, "b": 1 })).await;
    assert!(
        matches!(error, ServiceError::TransportClosed),
        "expected a closed transport, got {error}"
    );
    assert_eq!(exit_code(&mut child).await, Some(CRASH_EXIT_CODE));
    close(client).await;

    // A restarted server appends to the same log.
    let (client, mut child) =
        connect_stdio_child(&["--calls-log", log_arg], Lifecycle::Discover).await;
    call(&client, "echo", json!({ "message": "two" })).await;
    call(&client, "stats", json!({})).await;
    close(client).await;
    assert_eq!(exit_code(&mut child).await, Some(0));

    assert_eq!(read_lines(&log), ["echo", "add", "echo", "stats"]);
    std::fs::remove_file(&log).expect("remove the calls log");
}

#[tokio::test]
async fn crash_tool_exits_with_70_over_http() {
    let mut server = spawn_http(&[]).await;
    let client = connect_http(&server.url, Lifecycle::Initialize, Recorder::default()).await;
    call(&client, "echo", json!({ "message": "before" })).await;
    // An HTTP client may never learn that the server died; only the exit code
    // matters here.
    let _answer = tokio::time::timeout(
        Duration::from_secs(5),
        client.call_tool(CallToolRequestParams::new("crash")),
    )
    .await;
    assert_eq!(exit_code(&mut server.child).await, Some(CRASH_EXIT_CODE));
    close(client).await;
}

#[tokio::test]
async fn crash_after_exits_with_70_over_http() {
    let log = temp_path("calls-http");
    let log_arg = log.to_str().expect("UTF-8 temp path");
    let mut server = spawn_http(&["--crash-after", "2", "--calls-log", log_arg]).await;
    let client = connect_http(&server.url, Lifecycle::Discover, Recorder::default()).await;
    call(&client, "echo", json!({ "message": "one" })).await;
    let _answer = tokio::time::timeout(
        Duration::from_secs(5),
        client.call_tool(CallToolRequestParams::new("increment")),
    )
    .await;
    assert_eq!(exit_code(&mut server.child).await, Some(CRASH_EXIT_CODE));
    close(client).await;
    assert_eq!(read_lines(&log), ["echo", "increment"]);
    std::fs::remove_file(&log).expect("remove the calls log");
}

#[tokio::test]
async fn fail_start_exits_1_with_a_message() {
    for mode in ["stdio", "http"] {
        let output = within(
            "fail-start",
            Command::new(BIN)
                .args([mode, "--fail-start"])
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("run the binary");
        assert_eq!(output.status.code(), Some(1), "{mode}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("testkit: refusing to start (--fail-start)"),
            "{mode}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{mode}");
    }
}

#[tokio::test]
async fn garbage_stdout_makes_the_handshake_fail() {
    let mut command = Command::new(BIN);
    command.args(["stdio", "--garbage-stdout"]);
    let transport = TokioChildProcess::new(command).expect("spawn");
    let handshake = within(
        "garbage handshake",
        Recorder::default().serve_with_lifecycle(transport, Lifecycle::Initialize.mode()),
    )
    .await;
    assert!(handshake.is_err(), "the handshake should fail");

    // What the server actually writes.
    let output = within(
        "garbage output",
        Command::new(BIN)
            .args(["stdio", "--garbage-stdout"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("run the binary");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{GARBAGE_LINE}\n")
    );
}

#[tokio::test]
async fn bad_arguments_exit_2() {
    for arguments in [
        &["http", "--host", "0.0.0.0"][..],
        &["http", "--host", "192.168.1.10"],
        &["http", "--host", "example.com"],
        &["stdio", "--error-rate", "1.5"],
        &["stdio", "--crash-after", "0"],
    ] {
        let output = within(
            "bad arguments",
            Command::new(BIN)
                .args(arguments)
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("run the binary");
        assert_eq!(output.status.code(), Some(2), "{arguments:?}");
        assert!(output.stdout.is_empty(), "{arguments:?}");
    }
    let output = within(
        "non-loopback host",
        Command::new(BIN)
            .args(["http", "--host", "0.0.0.0"])
            .output(),
    )
    .await
    .expect("run the binary");
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

#[tokio::test]
async fn in_process_http_server_serves_and_stops_after_a_crash() {
    let knobs = Knobs::default()
        .with_name("embedded")
        .with_crash_behavior(CrashBehavior::StopServer);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let handle = serve_http(addr, HttpOptions::default(), knobs)
        .await
        .expect("serve HTTP in process");
    assert_eq!(handle.url(), format!("http://{}/mcp", handle.local_addr()));
    assert_ne!(handle.local_addr().port(), 0);

    let client = connect_http(&handle.url(), Lifecycle::Discover, Recorder::default()).await;
    let name = client
        .peer_info()
        .and_then(|info| info.server_info.clone())
        .map(|server| server.name);
    assert_eq!(name.as_deref(), Some("embedded"));
    call(&client, "echo", json!({ "message": "in process" })).await;
    let _answer = tokio::time::timeout(
        Duration::from_secs(5),
        client.call_tool(CallToolRequestParams::new("crash")),
    )
    .await;
    within("the server to stop", handle.wait())
        .await
        .expect("the server stops cleanly");
    close(client).await;
}

#[tokio::test]
async fn in_process_http_server_shuts_down_and_refuses_public_addresses() {
    let public = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let refused = serve_http(public, HttpOptions::default(), Knobs::default()).await;
    assert!(refused.is_err(), "0.0.0.0 must be refused");

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let handle = serve_http(addr, HttpOptions::default(), Knobs::default())
        .await
        .expect("serve HTTP in process");
    let client = connect_http(&handle.url(), Lifecycle::Initialize, Recorder::default()).await;
    call(&client, "echo", json!({ "message": "bye" })).await;
    within("shutdown", handle.shutdown())
        .await
        .expect("shutdown");
    close(client).await;
}

#[tokio::test]
async fn in_process_server_over_a_duplex_pipe() {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server = TestServer::new(Knobs::default().with_seed(7).with_tool_error_rate(0.5));
    assert_eq!(server.knobs().seed, Some(7));
    let server_task = tokio::spawn(async move {
        let running = server.serve(server_io).await.expect("server handshake");
        running.waiting().await.expect("server task")
    });
    let client = within(
        "duplex handshake",
        Recorder::default().serve_with_lifecycle(client_io, Lifecycle::Initialize.mode()),
    )
    .await
    .expect("duplex handshake");
    // With rate 0.5 and a fixed seed, some calls fail and some do not.
    let mut failed = 0;
    for _ in 0..20 {
        let result = call(&client, "echo", json!({ "message": "x" })).await;
        if result.is_error == Some(true) {
            failed += 1;
        }
    }
    assert!((1..20).contains(&failed), "{failed} of 20 failed");
    close(client).await;
    within("server task", server_task)
        .await
        .expect("join the server task");
}
