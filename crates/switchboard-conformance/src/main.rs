//! `switchboard-conformance`: the client under test of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`), built on Switchboard's public API.
//!
//! The suite starts a mock server for each scenario and runs
//! `switchboard-conformance <server-url>` with the scenario in `MCP_CONFORMANCE_SCENARIO`, the
//! protocol revision to speak in `MCP_CONFORMANCE_PROTOCOL_VERSION` and scenario data (tool
//! calls, pre-registered client credentials) as JSON in `MCP_CONFORMANCE_CONTEXT`, as it does
//! for the official SDKs' clients. Everything protocol-related goes through
//! `switchboard_transport`: [`Connection`] for sessions (handshake per revision,
//! `input_required` rounds, server-to-client requests through [`ClientHandlers`]) and
//! [`auth`](switchboard_transport::auth) for OAuth. Only the browser is simulated: the
//! authorization page is fetched without following its redirect.
//!
//! Run it with `cargo xtask conformance`.

#![expect(
    deprecated,
    reason = "the suite's servers still ask for sampling and roots, deprecated by SEP-2577"
)]

mod oauth;

use std::{process::ExitCode, time::Duration};

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::ServerName;
use switchboard_transport::{
    ClientHandlers, Connection, HttpSpec, ProtocolMode, ServerSpec, SharedHandlers, TransportError,
    TransportSpec,
    rmcp::{
        ErrorData,
        model::{
            CallToolRequestParams, CreateMessageRequestParams, CreateMessageResult,
            ElicitRequestParams, ElicitResult, ElicitationAction, JsonObject, ListRootsResult,
            Role, Root, SamplingMessage, SamplingMessageContentBlock, Tool,
        },
    },
};

/// Any failure of a scenario; the message goes to stderr.
pub(crate) type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Scenario data from `MCP_CONFORMANCE_CONTEXT`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Context {
    /// Tool calls to make instead of calling every listed tool.
    #[serde(default, alias = "toolCalls")]
    tool_calls: Vec<ToolCall>,
    /// A pre-registered client.
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    /// Its secret.
    #[serde(default)]
    pub(crate) client_secret: Option<String>,
}

/// One tool call of the context.
#[derive(Debug, Deserialize)]
struct ToolCall {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
}

/// What the harness asks for.
pub(crate) struct Run {
    /// The mock server's endpoint.
    pub(crate) url: String,
    /// Whether to speak the stateless 2026-07-28 revision (else 2025-11-25).
    pub(crate) modern: bool,
    /// Scenario data.
    pub(crate) context: Context,
}

impl Run {
    /// A server spec for the mock server, with the conformance client's handlers.
    pub(crate) fn spec(&self) -> ServerSpec {
        let mut spec = ServerSpec::new(
            "conformance",
            TransportSpec::Http(HttpSpec::new(self.url.as_str())),
        );
        spec.protocol = if self.modern {
            ProtocolMode::Modern
        } else {
            ProtocolMode::Legacy
        };
        spec.handshake_timeout = Duration::from_secs(10);
        spec.shutdown_timeout = Duration::from_secs(1);
        // A lost session is not re-established behind the scenario's back.
        spec.reconnect.crash_budget = 0;
        spec.handlers = Some(SharedHandlers::new(Handlers));
        spec
    }
}

/// Answers the mock servers' sampling, elicitation and roots requests.
struct Handlers;

impl ClientHandlers for Handlers {
    fn sampling(&self) -> bool {
        true
    }

    fn elicitation(&self) -> bool {
        true
    }

    fn roots(&self) -> bool {
        true
    }

    async fn create_message(
        &self,
        _server: &ServerName,
        params: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult, ErrorData> {
        let prompt = params
            .messages
            .first()
            .and_then(|m| m.content.first())
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        Ok(CreateMessageResult::new(
            SamplingMessage::new(
                Role::Assistant,
                SamplingMessageContentBlock::text(format!("mock answer to: {prompt}")),
            ),
            "mock-model".into(),
        )
        .with_stop_reason("endTurn"))
    }

    async fn create_elicitation(
        &self,
        _server: &ServerName,
        _params: ElicitRequestParams,
    ) -> Result<ElicitResult, ErrorData> {
        // An empty answer: Switchboard completes an accepted form with the schema's defaults.
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({})))
    }

    async fn list_roots(&self, _server: &ServerName) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![
            Root::new("file:///tmp/conformance").with_name("conformance"),
        ]))
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!(
            "usage: switchboard-conformance <server-url> (with MCP_CONFORMANCE_SCENARIO set)"
        );
        return ExitCode::from(2);
    };
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
        .unwrap_or_else(|_| "2025-11-25".to_owned());
    let context = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(text) if !text.trim().is_empty() => match serde_json::from_str(&text) {
            Ok(context) => context,
            Err(e) => {
                eprintln!("switchboard-conformance: MCP_CONFORMANCE_CONTEXT is not valid: {e}");
                return ExitCode::from(2);
            }
        },
        _ => Context::default(),
    };
    let run = Run {
        url,
        modern: version.as_str() >= "2026-07-28",
        context,
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("switchboard-conformance: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Finish before the harness's own 30 s limit, so that it never has to kill the client.
    let outcome = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(25), scenario_run(&scenario, &run)).await
    });
    runtime.shutdown_timeout(Duration::from_millis(500));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            eprintln!("switchboard-conformance: scenario {scenario}: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("switchboard-conformance: scenario {scenario} timed out");
            ExitCode::FAILURE
        }
    }
}

async fn scenario_run(scenario: &str, run: &Run) -> Result<(), Failure> {
    match scenario {
        "initialize" | "json-schema-ref-no-deref" => {
            with_session(run, |c| async move { c.list_tools().await.map(drop) }).await
        }
        "tools_call"
        | "http-standard-headers"
        | "http-custom-headers"
        | "http-invalid-tool-headers" => {
            with_session(
                run,
                |c| async move { call_tools(&c, &run.context, true).await },
            )
            .await
        }
        "request-metadata" | "sep-2322-client-request-state" => {
            with_session(
                run,
                |c| async move { call_tools(&c, &run.context, false).await },
            )
            .await
        }
        "elicitation-sep1034-client-defaults" => {
            with_session(run, |c| async move {
                call_named(
                    &c,
                    &[
                        "test_client_elicitation_defaults",
                        "test_elicitation_sep1034_defaults",
                    ],
                )
                .await
            })
            .await
        }
        "sse-retry" => {
            with_session(run, |c| async move {
                call_named(&c, &["test_reconnection"]).await
            })
            .await
        }
        "json-schema-2020-12-preservation" => {
            with_session(run, |c| async move { echo_schema(&c).await }).await
        }
        auth if auth.starts_with("auth/") => oauth::scenario(auth, run).await,
        other => Err(format!("unsupported conformance scenario {other:?}").into()),
    }
}

/// Connects, runs `work` on the session, and shuts down.
async fn with_session<F, Fut>(run: &Run, work: F) -> Result<(), Failure>
where
    F: FnOnce(Connection) -> Fut,
    Fut: Future<Output = Result<(), TransportError>>,
{
    let connection = Connection::start(run.spec());
    let outcome = match connection.wait_ready(Duration::from_secs(15)).await {
        Ok(()) => work(connection.clone()).await,
        Err(e) => Err(e),
    };
    connection.shutdown().await;
    outcome.map_err(Into::into)
}

/// Calls the context's tool calls, or else every listed tool with arguments made up from its
/// schema. With `strict`, a failed call fails the scenario.
async fn call_tools(
    connection: &Connection,
    context: &Context,
    strict: bool,
) -> Result<(), TransportError> {
    let tools = connection.list_tools().await?;
    let calls: Vec<CallToolRequestParams> = if context.tool_calls.is_empty() {
        tools
            .iter()
            .map(|t| call(t.name.to_string(), arguments_for(t)))
            .collect()
    } else {
        context
            .tool_calls
            .iter()
            .map(|c| call(c.name.clone(), c.arguments.clone()))
            .collect()
    };
    for params in calls {
        match connection.call_tool(params).await {
            Ok(_) => {}
            Err(e) if strict => return Err(e),
            Err(e) => tracing::info!(error = %e, "tool call failed"),
        }
    }
    Ok(())
}

/// Calls the first listed tool of `names`, without arguments.
async fn call_named(connection: &Connection, names: &[&str]) -> Result<(), TransportError> {
    let tools = connection.list_tools().await?;
    if let Some(tool) = tools.iter().find(|t| names.contains(&t.name.as_ref())) {
        connection
            .call_tool(call(tool.name.to_string(), None))
            .await?;
    }
    Ok(())
}

/// Sends the input schema of `json_schema_2020_12_tool` back through `json_schema_echo`,
/// exactly as listed.
async fn echo_schema(connection: &Connection) -> Result<(), TransportError> {
    let tools = connection.list_tools().await?;
    let Some(focal) = tools
        .iter()
        .find(|t| t.name.as_ref() == "json_schema_2020_12_tool")
    else {
        return Ok(());
    };
    let mut arguments = JsonObject::new();
    arguments.insert(
        "schema".to_owned(),
        Value::Object((*focal.input_schema).clone()),
    );
    connection
        .call_tool(call("json_schema_echo".to_owned(), Some(arguments)))
        .await
        .map(drop)
}

pub(crate) fn call(name: String, arguments: Option<JsonObject>) -> CallToolRequestParams {
    let params = CallToolRequestParams::new(name);
    match arguments {
        Some(arguments) => params.with_arguments(arguments),
        None => params,
    }
}

/// Arguments for a tool: a plausible value for each required property.
pub(crate) fn arguments_for(tool: &Tool) -> Option<JsonObject> {
    let properties = tool.input_schema.get("properties")?.as_object()?;
    let required: Vec<&str> = tool
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if required.is_empty() {
        return None;
    }
    let mut arguments = JsonObject::new();
    for (name, schema) in properties {
        if !required.contains(&name.as_str()) {
            continue;
        }
        let value = match schema.get("type").and_then(Value::as_str) {
            Some("number") => json!(1.5),
            Some("integer") => json!(1),
            Some("string") => json!("test"),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => Value::Null,
        };
        arguments.insert(name.clone(), value);
    }
    Some(arguments)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_context_takes_the_suites_camel_case_tool_calls() {
        let context: Context = serde_json::from_value(json!({
            "toolCalls": [{"name": "test_custom_headers", "arguments": {"region": "us-west1"}}],
            "client_id": "pre-registered-client",
            "client_secret": "pre-registered-secret",
            "issuer": "http://localhost:1"
        }))
        .expect("a valid context");
        assert_eq!(context.tool_calls.len(), 1);
        assert_eq!(context.tool_calls[0].name, "test_custom_headers");
        assert_eq!(
            context.tool_calls[0]
                .arguments
                .as_ref()
                .and_then(|a| a.get("region")),
            Some(&json!("us-west1"))
        );
        assert_eq!(context.client_id.as_deref(), Some("pre-registered-client"));
    }

    #[test]
    fn arguments_are_made_up_for_required_properties_only() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "number"},
                "b": {"type": "integer"},
                "note": {"type": "string"}
            },
            "required": ["a", "b"]
        });
        let tool = Tool::new(
            "add_numbers",
            "adds",
            Arc::new(schema.as_object().cloned().expect("an object")),
        );
        let arguments = arguments_for(&tool).expect("arguments");
        assert_eq!(Value::Object(arguments), json!({"a": 1.5, "b": 1}));
        let none = Tool::new("ping", "pings", Arc::new(JsonObject::new()));
        assert!(arguments_for(&none).is_none());
    }

    #[test]
    fn the_revision_decides_the_lifecycle() {
        let run = |version: &str| Run {
            url: "http://127.0.0.1:1/mcp".to_owned(),
            modern: version >= "2026-07-28",
            context: Context::default(),
        };
        assert_eq!(run("2025-11-25").spec().protocol, ProtocolMode::Legacy);
        assert_eq!(run("2026-07-28").spec().protocol, ProtocolMode::Modern);
        let spec = run("2026-07-28").spec();
        let declared = spec.handlers.expect("handlers").capabilities();
        assert!(declared.sampling.is_some() && declared.elicitation.is_some());
        assert!(declared.roots.is_some());
    }
}
