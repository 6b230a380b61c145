//! Starting the servers under load: testkit servers over stdio (children of the Switchboard
//! connections) or streamable HTTP (processes started here), or the servers of a
//! configuration file; and connecting a Switchboard to them, with or without telemetry.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use switchboard::{
    Switchboard,
    config::{Config, ServerConfig},
    telemetry::Telemetry,
    transport::{ConnectionState, HttpSpec, ServerSpec, StdioSpec, TransportSpec},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::options::Transport;

/// stderr lines of an HTTP server kept for error reports.
const STDERR_LINES: usize = 20;

/// Name of the testkit binary.
pub(crate) const TESTKIT: &str = "switchboard-testkit";

/// Finds the testkit binary: `explicit`, else next to the running executable (and one folder
/// up, for test binaries in `target/debug/deps`), else `target/debug` and `target/release`
/// of the current directory.
///
/// # Errors
/// None of these exists.
pub fn locate_testkit(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_owned());
        }
        bail!("the testkit binary {} does not exist", path.display());
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned));
    let mut candidates = Vec::new();
    if let Some(dir) = &exe_dir {
        candidates.push(dir.join(TESTKIT));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join(TESTKIT));
        }
    }
    candidates.push(PathBuf::from("target/debug").join(TESTKIT));
    candidates.push(PathBuf::from("target/release").join(TESTKIT));
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "cannot find the {TESTKIT} binary (looked at {}): build it with `cargo build -p \
                 switchboard-testkit`, or pass --testkit PATH / SWITCHBOARD_TESTKIT",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// An HTTP testkit server started here, in its own process group.
pub(crate) struct HttpServer {
    child: Child,
    pid: u32,
    url: String,
    testkit: PathBuf,
    args: Vec<String>,
}

impl HttpServer {
    /// Starts `testkit http --port PORT ARGS` (port 0: any free port) and waits for its
    /// `listening on URL` line. Its stderr is read here; the last lines explain a failed start.
    async fn start(testkit: &Path, port: u16, args: &[String]) -> Result<Self> {
        let mut child = Command::new(testkit)
            .args(["http", "--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", testkit.display()))?;
        let pid = child.id().context("the testkit server exited at once")?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let tail = Arc::clone(&stderr_tail);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(15),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let url = line.trim().strip_prefix("listening on ").map(str::to_owned);
        match (read, url) {
            (Ok(Ok(_)), Some(url)) => Ok(Self {
                child,
                pid,
                url,
                testkit: testkit.to_owned(),
                args: args.to_vec(),
            }),
            (read, _) => {
                // Give the reader a moment to collect the last words.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let stderr: Vec<String> = stderr_tail
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .cloned()
                    .collect();
                let what = match read {
                    Err(_) => "did not say where it listens within 15 s".to_owned(),
                    Ok(Err(error)) => format!("cannot be read: {error}"),
                    Ok(Ok(_)) => format!("said {line:?} instead of `listening on URL`"),
                };
                bail!(
                    "the testkit HTTP server {what}; its stderr: {}",
                    if stderr.is_empty() {
                        "(empty)".to_owned()
                    } else {
                        stderr.join(" | ")
                    }
                )
            }
        }
    }

    /// Process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills it (SIGKILL to its group) and reaps it.
    pub(crate) async fn kill(&mut self) {
        let group = Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait().await;
    }

    /// Starts the same server again on the same port (after [`HttpServer::kill`]), as a
    /// supervisor would.
    ///
    /// # Errors
    /// The server does not start (the port may be taken).
    pub(crate) async fn restart(&self) -> Result<Self> {
        let port = port_of(&self.url).with_context(|| format!("no port in {}", self.url))?;
        Self::start(&self.testkit, port, &self.args).await
    }

    /// Stops it: SIGTERM to its group, SIGKILL after 2 s.
    async fn stop(mut self) {
        let group = Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        let _ = killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
    }
}

/// The port of a `http://host:port/path` URL.
fn port_of(url: &str) -> Option<u16> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

/// The servers of a run: the HTTP processes to stop at the end.
#[derive(Default)]
pub(crate) struct Servers {
    http: Vec<HttpServer>,
}

impl Servers {
    /// Process ids of the HTTP servers.
    pub(crate) fn http_pids(&self) -> Vec<u32> {
        self.http.iter().map(HttpServer::pid).collect()
    }

    /// Takes the HTTP server with this process id out of the run (to kill it); hand it, or
    /// its restarted successor, back with [`Servers::keep`].
    pub(crate) fn take(&mut self, pid: u32) -> Option<HttpServer> {
        let k = self.http.iter().position(|s| s.pid == pid)?;
        Some(self.http.remove(k))
    }

    /// Stops this HTTP server with the others at the end of the run.
    pub(crate) fn keep(&mut self, server: HttpServer) {
        self.http.push(server);
    }

    /// Starts `count` testkit servers named `names(k)` (over HTTP; over stdio the connections
    /// start them) and returns the configuration of a Switchboard over them, with `deadline`
    /// as the call timeout. Connect with [`connect`].
    pub(crate) async fn testkit(
        &mut self,
        testkit: &Path,
        transport: Transport,
        names: impl Fn(usize) -> String,
        count: usize,
        args: &[String],
        deadline: Duration,
    ) -> Result<Config> {
        let mut config = Config::default();
        config.defaults.call_timeout = deadline;
        for k in 0..count {
            let transport_spec = match transport {
                Transport::Stdio => {
                    let mut stdio_args = vec!["stdio".to_owned()];
                    stdio_args.extend(args.iter().cloned());
                    TransportSpec::Stdio(StdioSpec::new(testkit.display().to_string(), stdio_args))
                }
                Transport::Http => {
                    let server = HttpServer::start(testkit, 0, args).await?;
                    let spec = TransportSpec::Http(HttpSpec::new(server.url.clone()));
                    self.http.push(server);
                    spec
                }
            };
            let mut spec = ServerSpec::new(names(k).as_str(), transport_spec);
            spec.handshake_timeout = Duration::from_secs(15);
            spec.reconnect.initial_backoff = Duration::from_millis(20);
            spec.reconnect.max_backoff = Duration::from_secs(1);
            // Crashes are injected on purpose in `faults` and `failover`; never give up on a
            // server.
            spec.reconnect.crash_budget = u32::MAX;
            config.servers.push(ServerConfig::new(spec));
        }
        Ok(config)
    }

    /// Stops the HTTP servers.
    pub(crate) async fn stop(self) {
        for server in self.http {
            server.stop().await;
        }
    }
}

/// Reads a configuration file (for `--config`).
pub(crate) fn load_config(path: &Path) -> Result<Config> {
    Config::load(path).with_context(|| format!("cannot load {}", path.display()))
}

/// Connects a Switchboard over `config`, with `telemetry` or the configuration's own, and
/// checks that every enabled server is ready.
pub(crate) async fn connect(config: Config, telemetry: Option<Telemetry>) -> Result<Switchboard> {
    let switchboard = Switchboard::connect_with(config, telemetry).await?;
    ensure_ready(&switchboard)?;
    Ok(switchboard)
}

/// Fails unless every enabled server is connected.
fn ensure_ready(switchboard: &Switchboard) -> Result<()> {
    let failed: Vec<String> = switchboard
        .servers()
        .into_iter()
        .filter_map(|s| {
            let connection = s.connection?;
            (connection.state != ConnectionState::Ready).then(|| {
                format!(
                    "{} is {}{}",
                    s.name,
                    connection.state,
                    connection
                        .last_error
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )
            })
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("servers not ready: {}", failed.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_testkit_is_reported_with_its_path() {
        let error = locate_testkit(Some(Path::new("/nonexistent/switchboard-testkit")))
            .expect_err("missing");
        assert!(
            error
                .to_string()
                .contains("/nonexistent/switchboard-testkit"),
            "{error}"
        );
    }

    #[test]
    fn ports_of_urls() {
        assert_eq!(port_of("http://127.0.0.1:41234/mcp"), Some(41234));
        assert_eq!(port_of("http://[::1]:8080/mcp"), Some(8080));
        assert_eq!(port_of("http://localhost/mcp"), None);
    }
}
