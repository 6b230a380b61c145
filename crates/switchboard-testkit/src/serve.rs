//! Running the test server over stdio and over streamable HTTP.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use rmcp::{
    ServiceExt as _,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{knobs::Knobs, server::TestServer};

/// Path under which the HTTP server serves MCP.
pub const MCP_PATH: &str = "/mcp";

/// What the server writes to stdout with [`Knobs::garbage_stdout`].
pub const GARBAGE_LINE: &str = "this is not json";

/// How long [`HttpServerHandle::shutdown`] waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves MCP over this process's stdin and stdout until the client closes
/// stdin (or a crash with [`CrashBehavior::StopServer`](crate::CrashBehavior::StopServer)
/// stops it).
///
/// Both lifecycles are answered: `initialize` (2025-06-18, 2025-11-25, ...)
/// and the per-request 2026-07-28 lifecycle opened by `server/discover`.
///
/// With [`Knobs::garbage_stdout`] it does not speak MCP at all: it writes
/// [`GARBAGE_LINE`] to stdout, answers the first line it reads with another
/// garbage line and returns, so the client's handshake fails with a closed
/// connection instead of hanging.
///
/// # Errors
///
/// Fails when [`Knobs::fail_start`] is set, when the handshake fails (for
/// example because the client disconnected first), or on I/O errors.
pub async fn serve_stdio(knobs: Knobs) -> anyhow::Result<()> {
    if knobs.fail_start {
        bail!("refusing to start (--fail-start)");
    }
    if knobs.garbage_stdout {
        return serve_garbage().await;
    }
    let server = TestServer::new(knobs);
    let stop = server.stop_token();
    let running = tokio::select! {
        running = server.serve(rmcp::transport::io::stdio_pipes()) => {
            running.context("MCP handshake over stdio failed")?
        }
        () = stop.cancelled() => return Ok(()),
    };
    tokio::select! {
        quit = running.waiting() => {
            let reason = quit.context("the stdio service task failed")?;
            tracing::debug!(?reason, "stdio service ended");
        }
        () = stop.cancelled() => tracing::warn!("stopped after a crash"),
    }
    Ok(())
}

/// The `--garbage-stdout` mode: non-protocol output instead of MCP.
async fn serve_garbage() -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    let line = format!("{GARBAGE_LINE}\n");
    stdout.write_all(line.as_bytes()).await?;
    stdout.flush().await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    if stdin.next_line().await?.is_some() {
        stdout
            .write_all(format!("{GARBAGE_LINE} either\n").as_bytes())
            .await?;
        stdout.flush().await?;
    }
    Ok(())
}

/// Options of the streamable HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HttpOptions {
    /// Answer simple requests with `application/json` bodies instead of SSE
    /// streams (only when [`HttpOptions::stateless`] is set; rmcp ignores it
    /// for session-mode requests).
    pub json_response: bool,
    /// Serve legacy (`initialize`) clients without `Mcp-Session-Id` sessions.
    /// 2026-07-28 clients are always served statelessly.
    pub stateless: bool,
}

/// A running streamable HTTP server.
///
/// Dropping the handle stops the server (in the background); call
/// [`HttpServerHandle::shutdown`] to stop it and wait.
#[derive(Debug)]
pub struct HttpServerHandle {
    /// Where the server listens.
    local_addr: SocketAddr,
    /// Stops the server when cancelled.
    cancel: CancellationToken,
    /// The axum server task.
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl HttpServerHandle {
    /// The address the server is bound to (with the real port when port 0
    /// was requested).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The MCP endpoint, e.g. `http://127.0.0.1:43210/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}{MCP_PATH}", self.local_addr)
    }

    /// Waits until the server stops by itself: after a crash with
    /// [`CrashBehavior::StopServer`](crate::CrashBehavior::StopServer), or
    /// when the server fails. Meant for a process that serves until killed.
    ///
    /// # Errors
    ///
    /// Fails when the server task fails.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        match self.task.take() {
            Some(task) => join_server(task).await,
            None => Ok(()),
        }
    }

    /// Stops the server: closes every session and waits (at most 5 s) for the
    /// open connections to end.
    ///
    /// # Errors
    ///
    /// Fails when the server task failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let abort = task.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, join_server(task)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                abort.abort();
                tracing::warn!("HTTP server did not stop in time; aborted it");
                Ok(())
            }
        }
    }
}

impl Drop for HttpServerHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Waits for the axum task and flattens its errors.
async fn join_server(task: JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    task.await
        .context("the HTTP server task panicked")?
        .context("the HTTP server failed")
}

/// Serves MCP over streamable HTTP at `http://ADDR/mcp`.
///
/// The address must be a loopback address; port 0 picks a free port (see
/// [`HttpServerHandle::local_addr`]). Returns once the socket is bound.
///
/// # Errors
///
/// Fails when [`Knobs::fail_start`] is set, when `addr` is not a loopback
/// address, or when binding fails.
pub async fn serve_http(
    addr: SocketAddr,
    options: HttpOptions,
    knobs: Knobs,
) -> anyhow::Result<HttpServerHandle> {
    if knobs.fail_start {
        bail!("refusing to start (--fail-start)");
    }
    ensure_loopback(addr.ip())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let local_addr = listener
        .local_addr()
        .context("cannot read the bound address")?;

    let server = TestServer::new(knobs);
    // A crash with `StopServer` cancels the parent token and so stops the server.
    let cancel = server.stop_token().child_token();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!options.stateless)
        .with_json_response(options.json_response)
        .with_cancellation_token(cancel.child_token());
    let service = StreamableHttpService::new(
        move || Ok(server.new_session()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new().nest_service(MCP_PATH, service);
    let shutdown = cancel.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    });
    tracing::info!(%local_addr, "serving MCP over streamable HTTP");
    Ok(HttpServerHandle {
        local_addr,
        cancel,
        task: Some(task),
    })
}

/// Resolves the `--host` argument: an IP address or `localhost`.
///
/// # Errors
///
/// Fails when `host` is neither, or is not a loopback address.
pub fn resolve_loopback_host(host: &str) -> anyhow::Result<IpAddr> {
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .with_context(|| format!("host {host:?} is not an IP address or \"localhost\""))?
    };
    ensure_loopback(ip)?;
    Ok(ip)
}

/// Refuses addresses other than loopback ones.
fn ensure_loopback(ip: IpAddr) -> anyhow::Result<()> {
    if !ip.is_loopback() {
        bail!(
            "refusing to bind {ip}: the test server only listens on loopback addresses \
             (127.0.0.0/8, ::1, localhost)"
        );
    }
    Ok(())
}
