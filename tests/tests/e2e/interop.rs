//! Interoperability with servers not written here, over every transport they offer and both
//! protocol eras they speak: server-everything (stdio and streamable HTTP: content types,
//! completions, progress, logging, and sampling, elicitation and roots answered by the
//! application's handlers), server-filesystem (roots decide what it may touch),
//! server-memory, and mcp-server-git (2025-11-25 and 2026-07-28).

#![expect(
    deprecated,
    reason = "sampling, roots and logging are deprecated by SEP-2577, and exercised here"
)]

use std::{path::Path, process::Command, time::Duration};

use serde_json::json;
use switchboard::{
    CallOptions, Switchboard,
    core::ServerName,
    rmcp::{
        ErrorData,
        model::{
            ContentBlock, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
            ElicitResult, ElicitationAction, ListRootsResult, LoggingLevel, Role, Root,
            SamplingMessage, SamplingMessageContentBlock, SetLevelRequestParams,
        },
    },
    transport::{
        ClientHandlers, ConnectionState, ProtocolMode, ServerEventKind, ServerSpec, StdioSpec,
        TransportSpec,
    },
};

use switchboard_tests::{ServerProcess, http_spec, npm_server, python_server};
use tokio::sync::broadcast::Receiver;

use crate::{args, text_of};

/// The application's side of server-to-client requests.
struct App {
    roots: Vec<String>,
}

impl ClientHandlers for App {
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
                SamplingMessageContentBlock::text(format!("sampled answer to [{prompt}]")),
            ),
            "interop-model".into(),
        )
        .with_stop_reason("endTurn"))
    }

    async fn create_elicitation(
        &self,
        _server: &ServerName,
        _params: ElicitRequestParams,
    ) -> Result<ElicitResult, ErrorData> {
        // Only the required field: Switchboard fills the others from the schema's defaults.
        Ok(ElicitResult::new(ElicitationAction::Accept)
            .with_content(json!({"name": "Ada Lovelace"})))
    }

    async fn list_roots(&self, _server: &ServerName) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(
            self.roots
                .iter()
                .map(|uri| Root::new(uri.as_str()))
                .collect(),
        ))
    }
}

async fn connect_with(spec: ServerSpec, roots: &[&str]) -> Switchboard {
    let app = App {
        roots: roots.iter().map(|r| (*r).to_owned()).collect(),
    };
    let switchboard = Switchboard::builder()
        .call_timeout(Duration::from_secs(20))
        .server(spec)
        .handlers(app)
        .build()
        .await
        .expect("connect");
    let status = switchboard.servers()[0]
        .connection
        .clone()
        .expect("enabled");
    assert_eq!(status.state, ConnectionState::Ready, "{status:?}");
    switchboard
}

fn stdio(name: &str, command: &Path, args: &[&str]) -> ServerSpec {
    let mut spec = ServerSpec::new(
        name,
        TransportSpec::Stdio(StdioSpec::new(
            command.display().to_string(),
            args.iter().copied(),
        )),
    );
    spec.handshake_timeout = Duration::from_secs(20);
    spec
}

fn node_server(name: &str, package: &str, args: &[&str]) -> ServerSpec {
    let mut all = vec![npm_server(package).display().to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let mut spec = ServerSpec::new(name, TransportSpec::Stdio(StdioSpec::new("node", all)));
    spec.handshake_timeout = Duration::from_secs(20);
    spec
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Waits for the first event that `pick` accepts.
async fn next_event<T>(
    events: &mut Receiver<switchboard::transport::ServerEvent>,
    mut pick: impl FnMut(&ServerEventKind) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event.kind) {
                        return Some(found);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Everything server-everything offers a client with handlers.
async fn exercise_everything(spec: ServerSpec) {
    let sb = connect_with(spec, &["file:///srv/interop-project"]).await;
    let names: Vec<String> = sb.tools().iter().map(|t| t.tool.name.to_string()).collect();
    for offered in [
        "trigger-sampling-request",
        "trigger-elicitation-request",
        "get-roots-list",
    ] {
        assert!(names.iter().any(|n| n == offered), "{offered} in {names:?}");
    }

    // Content types: text, image, embedded resource, resource link, annotations.
    let out = sb
        .call(
            "get-resource-reference",
            args(json!({"resourceType": "Text", "resourceId": 2})),
        )
        .await
        .expect("resource reference");
    assert!(
        out.result
            .content
            .iter()
            .any(|c| matches!(c, ContentBlock::Resource(_))),
        "{:?}",
        out.result.content
    );
    let out = sb
        .call("get-resource-links", args(json!({"count": 2})))
        .await
        .expect("resource links");
    let links = out
        .result
        .content
        .iter()
        .filter(|c| matches!(c, ContentBlock::ResourceLink(_)))
        .count();
    assert_eq!(links, 2, "{:?}", out.result.content);
    let out = sb
        .call(
            "get-annotated-message",
            args(json!({"messageType": "error", "includeImage": true})),
        )
        .await
        .expect("annotated message");
    assert!(
        out.result
            .content
            .iter()
            .any(|c| matches!(c, ContentBlock::Text(t) if t.annotations.is_some())),
        "{:?}",
        out.result.content
    );
    assert!(
        out.result
            .content
            .iter()
            .any(|c| matches!(c, ContentBlock::Image(_)))
    );

    // Sampling, elicitation (defaults filled per the schema) and roots, through the handlers.
    let out = sb
        .call(
            "trigger-sampling-request",
            args(json!({"prompt": "two plus two"})),
        )
        .await
        .expect("sampling");
    let text = text_of(&out);
    assert!(
        text.contains("sampled answer to [") && text.contains("two plus two"),
        "{text}"
    );
    assert!(text.contains("interop-model"), "{text}");
    let out = sb
        .call("trigger-elicitation-request", None)
        .await
        .expect("elicitation");
    let text = text_of(&out);
    assert!(text.contains("- Name: Ada Lovelace"), "{text}");
    assert!(text.contains("- Favorite Integer: 42"), "{text}");
    assert!(text.contains("- Favorite Number: 3.14"), "{text}");
    assert!(text.contains("It was a dark and stormy night."), "{text}");
    assert!(
        text.contains("\"Monica\"") && text.contains("\"fish-1\""),
        "{text}"
    );
    let out = sb.call("get-roots-list", None).await.expect("roots");
    assert!(
        text_of(&out).contains("file:///srv/interop-project"),
        "{}",
        text_of(&out)
    );

    let connection = sb.connection("everything").expect("connection").clone();

    // Completions.
    let values = connection
        .request(|peer| async move {
            peer.complete_prompt_simple("completable-prompt", "department", "Eng")
                .await
        })
        .await
        .expect("completion");
    assert_eq!(values, ["Engineering"]);

    // Progress notifications of a long-running call.
    let mut events = connection.events();
    let out = sb
        .call(
            "trigger-long-running-operation",
            args(json!({"duration": 0.6, "steps": 3})),
        )
        .await
        .expect("long-running operation");
    assert!(text_of(&out).contains("Steps: 3"), "{}", text_of(&out));
    let mut steps = Vec::new();
    while steps.len() < 3 {
        let Some(progress) = next_event(&mut events, |kind| match kind {
            ServerEventKind::Progress(p) => Some(p.progress),
            _ => None,
        })
        .await
        else {
            break;
        };
        steps.push(progress);
    }
    steps.sort_by(f64::total_cmp);
    assert_eq!(steps, [1.0, 2.0, 3.0]);

    // Logging: set the level, then the server's simulated log arrives as an event.
    connection
        .request(|peer| async move {
            peer.set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
                .await
        })
        .await
        .expect("logging/setLevel");
    let mut events = connection.events();
    sb.call("toggle-simulated-logging", None)
        .await
        .expect("logging on");
    let logged = next_event(&mut events, |kind| match kind {
        ServerEventKind::Log(message) => Some(message.data.clone()),
        _ => None,
    })
    .await;
    assert!(
        logged
            .as_ref()
            .is_some_and(|d| d.to_string().contains("message")),
        "{logged:?}"
    );
    sb.call("toggle-simulated-logging", None)
        .await
        .expect("logging off");
    sb.shutdown().await;
}

#[tokio::test]
async fn everything_with_handlers_over_stdio() {
    exercise_everything(node_server("everything", "server-everything", &["stdio"])).await;
}

#[tokio::test]
async fn everything_with_handlers_over_streamable_http() {
    let server = ServerProcess::everything_http();
    exercise_everything(http_spec("everything", &server.url)).await;
}

#[tokio::test]
async fn without_handlers_server_requests_are_not_offered() {
    let sb = crate::connect(vec![node_server(
        "everything",
        "server-everything",
        &["stdio"],
    )])
    .await;
    let names: Vec<String> = sb.tools().iter().map(|t| t.tool.name.to_string()).collect();
    for hidden in [
        "trigger-sampling-request",
        "trigger-elicitation-request",
        "get-roots-list",
    ] {
        assert!(!names.iter().any(|n| n == hidden), "{hidden} in {names:?}");
    }
    // The rest works as usual.
    let out = sb
        .call("echo", args(json!({"message": "plain"})))
        .await
        .expect("echo");
    assert_eq!(text_of(&out), "Echo: plain");
    sb.shutdown().await;
}

#[tokio::test]
async fn filesystem_works_within_the_roots_the_application_gives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().canonicalize().expect("canonical");
    std::fs::write(root.join("notes.txt"), "hello from interop\n").expect("written");
    // Started without directories, the server takes its allowed directories from our roots.
    let uri = file_uri(&root);
    let sb = connect_with(node_server("fs", "server-filesystem", &[]), &[uri.as_str()]).await;
    let root_text = root.display().to_string();
    let mut allowed = String::new();
    for _ in 0..50 {
        // Uncached: the answer changes once the server has asked for the roots.
        let options = CallOptions {
            no_cache: true,
            ..CallOptions::default()
        };
        allowed = text_of(
            &sb.call_with("list_allowed_directories", None, options)
                .await
                .expect("allowed directories"),
        );
        if allowed.contains(&root_text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(allowed.contains(&root_text), "{allowed}");

    let listing = sb
        .call("list_directory", args(json!({"path": root_text})))
        .await
        .expect("list");
    assert!(
        text_of(&listing).contains("[FILE] notes.txt"),
        "{}",
        text_of(&listing)
    );
    let file = root.join("notes.txt").display().to_string();
    let read = sb
        .call("read_text_file", args(json!({"path": file})))
        .await
        .expect("read");
    assert_eq!(text_of(&read).trim(), "hello from interop");
    let written = root.join("out.txt").display().to_string();
    let out = sb
        .call(
            "write_file",
            args(json!({"path": written, "content": "written via switchboard"})),
        )
        .await
        .expect("write");
    assert!(!out.is_tool_error(), "{}", text_of(&out));
    assert_eq!(
        std::fs::read_to_string(root.join("out.txt")).expect("on disk"),
        "written via switchboard"
    );
    // Outside the roots the server refuses, as a tool error.
    let outside = sb
        .call("read_text_file", args(json!({"path": "/etc/hostname"})))
        .await
        .expect("answered");
    assert!(outside.is_tool_error(), "{}", text_of(&outside));
    sb.shutdown().await;
}

#[tokio::test]
async fn memory_keeps_a_knowledge_graph() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("memory.jsonl");
    let spec = || {
        let mut spec = node_server("memory", "server-memory", &[]);
        if let TransportSpec::Stdio(stdio) = &mut spec.transport {
            stdio
                .env
                .insert("MEMORY_FILE_PATH".into(), file.display().to_string());
        }
        spec
    };
    let sb = crate::connect(vec![spec()]).await;
    let out = sb
        .call(
            "create_entities",
            args(json!({"entities": [
                {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]},
                {"name": "Engine", "entityType": "machine", "observations": ["analytical"]}
            ]})),
        )
        .await
        .expect("create entities");
    assert!(!out.is_tool_error(), "{}", text_of(&out));
    sb.call(
        "create_relations",
        args(json!({"relations": [{"from": "Ada", "to": "Engine", "relationType": "programmed"}]})),
    )
    .await
    .expect("create relations");
    let found = sb
        .call("search_nodes", args(json!({"query": "program"})))
        .await
        .expect("search");
    assert!(text_of(&found).contains("Ada"), "{}", text_of(&found));
    sb.shutdown().await;

    // A new process reads the same graph back from its file.
    let sb = crate::connect(vec![spec()]).await;
    let graph = sb.call("read_graph", None).await.expect("read graph");
    let text = text_of(&graph);
    assert!(
        text.contains("Ada") && text.contains("Engine") && text.contains("programmed"),
        "{text}"
    );
    sb.shutdown().await;
}

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "Interop")
        .env("GIT_AUTHOR_EMAIL", "interop@example.invalid")
        .env("GIT_COMMITTER_NAME", "Interop")
        .env("GIT_COMMITTER_EMAIL", "interop@example.invalid")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

async fn git_server(mode: ProtocolMode, expected: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "# interop\n").expect("written");
    git(repo, &["add", "README.md"]);
    git(repo, &["commit", "-q", "-m", "first commit"]);
    std::fs::write(repo.join("new.txt"), "untracked\n").expect("written");

    let repo_text = repo.display().to_string();
    let mut spec = stdio(
        "git",
        &python_server("mcp-server-git"),
        &["--repository", repo_text.as_str()],
    );
    spec.protocol = mode;
    let sb = crate::connect(vec![spec]).await;
    let status = sb.servers()[0].connection.clone().expect("status");
    assert_eq!(status.state, ConnectionState::Ready, "{status:?}");
    assert_eq!(status.protocol_version.as_deref(), Some(expected));
    let out = sb
        .call("git_status", args(json!({"repo_path": repo_text})))
        .await
        .expect("git_status");
    assert!(!out.is_tool_error(), "{}", text_of(&out));
    assert!(text_of(&out).contains("new.txt"), "{}", text_of(&out));
    let log = sb
        .call(
            "git_log",
            args(json!({"repo_path": repo_text, "max_count": 5})),
        )
        .await
        .expect("git_log");
    assert!(text_of(&log).contains("first commit"), "{}", text_of(&log));
    sb.shutdown().await;
}

#[tokio::test]
async fn python_git_server_legacy_era() {
    git_server(ProtocolMode::Legacy, "2025-11-25").await;
}

#[tokio::test]
async fn python_git_server_modern_era() {
    git_server(ProtocolMode::Modern, "2026-07-28").await;
}

#[test]
fn mcpctl_auth_status_and_logout_use_the_credential_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("credentials.json");
    let config = dir.path().join("mcp.json");
    std::fs::write(
        &config,
        json!({"mcpServers": {
            "remote": {"type": "http", "url": "https://remote.example.invalid/mcp"},
            "local": {"command": "true"}
        }})
        .to_string(),
    )
    .expect("config written");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    std::fs::write(
        &store,
        json!({"version": 1, "logins": {"https://remote.example.invalid/mcp": {
            "server": "remote",
            "credentials": {
                "client_id": "switchboard-test",
                "token_response": {
                    "access_token": "secret-access-token",
                    "token_type": "bearer",
                    "expires_in": 3600,
                    "refresh_token": "secret-refresh-token"
                },
                "granted_scopes": ["files:read"],
                "token_received_at": now,
                "issuer": "https://login.example.invalid"
            }
        }}})
        .to_string(),
    )
    .expect("store written");
    let mcpctl = |args: &[&str]| {
        let output = Command::new(switchboard_tests::bin("mcpctl"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("SWITCHBOARD_CREDENTIALS", &store)
            .output()
            .expect("mcpctl runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stdout, stderr)
    };

    let (code, stdout, stderr) = mcpctl(&["--json", "auth", "status"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stdout.contains("secret-"),
        "tokens are never shown: {stdout}"
    );
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        rows.as_array().map(Vec::len),
        Some(1),
        "only HTTP servers: {rows}"
    );
    assert_eq!(rows[0]["server"], "remote");
    assert!(
        rows[0]["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("logged in")),
        "{rows}"
    );
    assert_eq!(rows[0]["login"]["scopes"], json!(["files:read"]));
    assert_eq!(rows[0]["login"]["refreshable"], true);

    let (code, _, stderr) = mcpctl(&["auth", "login", "local"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("stdio server"), "{stderr}");

    let (code, stdout, stderr) = mcpctl(&["auth", "logout", "remote"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Logged out of remote"), "{stdout}");
    let (_, stdout, _) = mcpctl(&["--json", "auth", "status"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert!(rows[0]["login"].is_null(), "{rows}");
    let text = std::fs::read_to_string(&store).expect("store");
    assert!(!text.contains("secret-access-token"), "{text}");
}
