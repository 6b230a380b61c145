//! The static tools, defined with rmcp's `#[tool]` macros.
//!
//! Fault injection happens before these run, in
//! [`TestServer::call_tool`](crate::TestServer).

use std::{
    collections::BTreeMap,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

#[expect(
    deprecated,
    reason = "MCP logging is deprecated by SEP-2577 but still served"
)]
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{
    ErrorData, Json, RoleServer,
    handler::server::wrapper::Parameters,
    model::{CallToolResult, ContentBlock, JsonObject, ProgressNotificationParam, Tool},
    service::RequestContext,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    catalog,
    server::{TestServer, dynamic_tool_annotations, is_legacy_request, lock, never_answer},
};

/// Largest text the `big` tool returns: 64 MiB.
pub const BIG_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Interval between progress notifications of the `sleep` tool.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Longest name `add_tool` accepts.
const MAX_TOOL_NAME_LEN: usize = 128;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
struct EchoParams {
    /// Text to send back.
    message: String,
}

/// Arguments of `add`.
#[derive(Debug, Deserialize, JsonSchema)]
struct AddParams {
    /// First addend.
    a: f64,
    /// Second addend.
    b: f64,
}

/// Structured result of `add`.
#[derive(Debug, Serialize, JsonSchema)]
struct AddOutput {
    /// `a + b`.
    sum: f64,
}

/// Structured result of `structured`.
#[derive(Debug, Serialize, JsonSchema)]
struct StructuredOutput {
    /// Always "testkit".
    name: String,
    /// Always `[1, 2, 3]`.
    items: Vec<i64>,
}

/// Arguments of `sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
struct SleepParams {
    /// How long to sleep, in milliseconds.
    ms: u64,
}

/// Arguments of `fail`.
#[derive(Debug, Deserialize, JsonSchema)]
struct FailParams {
    /// Error text to return; a default text when absent.
    message: Option<String>,
}

/// Arguments of `big`.
#[derive(Debug, Deserialize, JsonSchema)]
struct BigParams {
    /// Size of the returned text in bytes, at most 64 MiB.
    bytes: u64,
}

/// Arguments of `write_note`.
#[derive(Debug, Deserialize, JsonSchema)]
struct WriteNoteParams {
    /// The note to store.
    text: String,
}

/// Structured result of `stats`.
#[derive(Debug, Serialize, JsonSchema)]
struct StatsOutput {
    /// Calls served per tool name (`stats` itself is not counted).
    calls: BTreeMap<String, u64>,
    /// Sum of `calls`.
    total: u64,
}

/// Arguments of `configure`.
#[derive(Debug, Deserialize, JsonSchema)]
struct ConfigureParams {
    /// The new error rate, 0 to 1.
    error_rate: f64,
}

/// Arguments of `log`.
#[derive(Debug, Deserialize, JsonSchema)]
struct LogParams {
    /// MCP logging level (debug, info, notice, warning, error, critical,
    /// alert, emergency); "info" when absent.
    level: Option<String>,
    /// The message to log.
    message: String,
}

/// Arguments of `add_tool`.
#[derive(Debug, Deserialize, JsonSchema)]
struct AddToolParams {
    /// Name of the new tool: 1 to 128 characters from `A-Z a-z 0-9 _ - .`.
    name: String,
    /// Send `tools/list_changed` (default true); false leaves clients to notice by themselves.
    notify: Option<bool>,
}

/// The receiver of the `#[tool]` functions: a view of one [`TestServer`].
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    /// The server the tools act on.
    server: TestServer,
}

impl Tools {
    /// Tools acting on `server`.
    pub(crate) fn new(server: TestServer) -> Self {
        Self { server }
    }
}

#[tool_router(vis = "pub(crate)")]
impl Tools {
    #[tool(
        description = "Returns the message as text.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn echo(&self, Parameters(params): Parameters<EchoParams>) -> String {
        params.message
    }

    #[tool(
        description = "Adds two numbers; structured output {\"sum\": a + b}.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn add(&self, Parameters(params): Parameters<AddParams>) -> Json<AddOutput> {
        Json(AddOutput {
            sum: params.a + params.b,
        })
    }

    #[tool(
        description = "Returns one image content: a 1x1 PNG.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn image(&self) -> CallToolResult {
        CallToolResult::success(vec![image_content()])
    }

    #[tool(
        description = "Returns one audio content: a tiny WAV clip.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn audio(&self) -> CallToolResult {
        CallToolResult::success(vec![audio_content()])
    }

    #[tool(
        description = "Returns the resource testkit://static/hello embedded in the result.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn embedded_resource(&self) -> CallToolResult {
        CallToolResult::success(vec![embedded_content()])
    }

    #[tool(
        description = "Returns a link to the resource testkit://static/hello.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn resource_link(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::resource_link(catalog::hello_resource())])
    }

    #[tool(
        description = "Returns text, image, audio, an embedded resource and a resource link.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn mixed(&self) -> CallToolResult {
        CallToolResult::success(vec![
            ContentBlock::text("mixed content"),
            image_content(),
            audio_content(),
            embedded_content(),
            ContentBlock::resource_link(catalog::hello_resource()),
        ])
    }

    #[tool(
        description = "Returns the structured content {\"name\": \"testkit\", \"items\": [1, 2, 3]}.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn structured(&self) -> Json<StructuredOutput> {
        Json(StructuredOutput {
            name: "testkit".to_owned(),
            items: vec![1, 2, 3],
        })
    }

    #[tool(
        description = "Waits `ms` milliseconds, sending progress notifications every 100 ms \
                       when the request has a progress token.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn sleep(
        &self,
        Parameters(params): Parameters<SleepParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        let total = Duration::from_millis(params.ms);
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + total);
        let progress_token = context.meta.get_progress_token();
        let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
        ticker.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                () = context.ct.cancelled() => {
                    return Err(ErrorData::internal_error("request cancelled", None));
                }
                _ = ticker.tick() => {
                    if let Some(token) = &progress_token {
                        let elapsed = started.elapsed().as_millis() as f64;
                        let progress = ProgressNotificationParam::new(token.clone(), elapsed)
                            .with_total(params.ms as f64)
                            .with_message(format!("slept {elapsed} of {} ms", params.ms));
                        if let Err(error) = context.peer.notify_progress(progress).await {
                            tracing::debug!(%error, "cannot send a progress notification");
                        }
                    }
                }
            }
        }
        Ok(format!("slept {} ms", params.ms))
    }

    #[tool(
        description = "Never answers; only cancellation ends it.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn hang(&self, context: RequestContext<RoleServer>) -> Result<String, ErrorData> {
        Err(never_answer(&context).await)
    }

    #[tool(
        description = "Returns a tool error (isError: true) with the message.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn fail(&self, Parameters(params): Parameters<FailParams>) -> CallToolResult {
        let message = params
            .message
            .unwrap_or_else(|| "the fail tool failed, as asked".to_owned());
        CallToolResult::error(vec![ContentBlock::text(message)])
    }

    #[tool(
        description = "Crashes the server: the process exits with code 70 before answering.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn crash(&self, context: RequestContext<RoleServer>) -> Result<String, ErrorData> {
        self.server.state.crash();
        Err(never_answer(&context).await)
    }

    #[tool(
        description = "Returns a text of `bytes` bytes ('x' repeated), at most 64 MiB.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    fn big(&self, Parameters(params): Parameters<BigParams>) -> Result<String, ErrorData> {
        let bytes = usize::try_from(params.bytes)
            .ok()
            .filter(|_| params.bytes <= BIG_MAX_BYTES)
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    format!(
                        "bytes must be at most {BIG_MAX_BYTES}, got {}",
                        params.bytes
                    ),
                    None,
                )
            })?;
        Ok("x".repeat(bytes))
    }

    #[tool(
        description = "Stores a note in memory and returns how many notes there are.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn write_note(&self, Parameters(params): Parameters<WriteNoteParams>) -> String {
        let mut notes = lock(&self.server.state.notes);
        notes.push(params.text);
        notes.len().to_string()
    }

    #[tool(
        description = "Increments a counter and returns its new value.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn increment(&self) -> String {
        let value = self.server.state.counter.fetch_add(1, Ordering::SeqCst) + 1;
        value.to_string()
    }

    #[tool(
        description = "Counts the tool calls served so far, per tool (not counting stats).",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn stats(&self) -> Json<StatsOutput> {
        let calls = lock(&self.server.state.call_counts).clone();
        let total = calls.values().sum();
        Json(StatsOutput { calls, total })
    }

    #[tool(
        description = "Changes the server's injected JSON-RPC error rate at run time (exempt from every knob).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn configure(&self, Parameters(params): Parameters<ConfigureParams>) -> String {
        let rate = params.error_rate.clamp(0.0, 1.0);
        *lock(&self.server.state.error_rate) = rate;
        format!("error rate {rate}")
    }

    #[tool(
        description = "Sends a logging notification (notifications/message) to the client.",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    #[expect(
        deprecated,
        reason = "MCP logging is deprecated by SEP-2577 but still served"
    )]
    async fn log(
        &self,
        Parameters(params): Parameters<LogParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        let level = match params.level.as_deref() {
            None => LoggingLevel::Info,
            Some(name) => serde_json::from_value(serde_json::Value::from(name)).map_err(|_| {
                ErrorData::invalid_params(format!("unknown logging level: {name}"), None)
            })?,
        };
        if self.server.should_log(level, &context) {
            let notification = LoggingMessageNotificationParam::new(
                level,
                serde_json::Value::String(params.message),
            )
            .with_logger("switchboard-testkit");
            context
                .peer
                .notify_logging_message(notification)
                .await
                .map_err(|error| {
                    ErrorData::internal_error(format!("cannot send the log: {error}"), None)
                })?;
        }
        Ok("logged".to_owned())
    }

    #[tool(
        description = "Adds a tool with the given name that echoes its arguments, then \
                       announces notifications/tools/list_changed.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn add_tool(
        &self,
        Parameters(params): Parameters<AddToolParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let name = params.name;
        if !is_valid_tool_name(&name) {
            return Err(ErrorData::invalid_params(
                format!("invalid tool name {name:?}: use 1 to 128 of A-Z a-z 0-9 _ - ."),
                None,
            ));
        }
        let state = &self.server.state;
        {
            let mut dynamic = lock(&state.dynamic_tools);
            if self.server.router.has_route(&name) || dynamic.contains_key(&name) {
                return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                    "tool {name} already exists"
                ))]));
            }
            let tool = Tool::new(
                name.clone(),
                "Added at runtime by add_tool; echoes its arguments as JSON text.",
                open_object_schema(),
            )
            .with_annotations(dynamic_tool_annotations());
            dynamic.insert(name.clone(), tool);
        }
        if params.notify == Some(false) {
            return Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                "added tool {name} (no notification)"
            ))]));
        }
        // Sessions opened with `initialize` get a plain notification; 2026-07-28
        // clients get it on their `subscriptions/listen` streams.
        if is_legacy_request(&context)
            && let Err(error) = context.peer.notify_tool_list_changed().await
        {
            tracing::debug!(%error, "cannot send tools/list_changed");
        }
        // No receivers is fine: nobody is listening.
        let _receivers = state.tools_changed.send(());
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "added tool {name}"
        ))]))
    }

    #[tool(
        description = "Returns the _meta object of this request as structured content.",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn last_meta(&self, context: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let meta = serde_json::to_value(&context.meta).map_err(|error| {
            ErrorData::internal_error(format!("cannot serialize _meta: {error}"), None)
        })?;
        Ok(CallToolResult::structured(meta))
    }
}

/// The image content of `image` and `mixed`.
fn image_content() -> ContentBlock {
    ContentBlock::image(catalog::png_base64(), catalog::PNG_MIME)
}

/// The audio content of `audio` and `mixed`.
fn audio_content() -> ContentBlock {
    ContentBlock::audio(catalog::wav_base64(), catalog::WAV_MIME)
}

/// The embedded resource of `embedded_resource` and `mixed`.
fn embedded_content() -> ContentBlock {
    ContentBlock::embedded_text(catalog::HELLO_URI, catalog::HELLO_TEXT)
}

/// Input schema of runtime tools: any object.
fn open_object_schema() -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".to_owned(), serde_json::Value::from("object"));
    schema.insert(
        "additionalProperties".to_owned(),
        serde_json::Value::Bool(true),
    );
    schema
}

/// Whether `add_tool` accepts `name`.
fn is_valid_tool_name(name: &str) -> bool {
    (1..=MAX_TOOL_NAME_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
