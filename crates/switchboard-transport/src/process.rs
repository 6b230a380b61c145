//! Child processes of stdio servers: spawning in their own process group, stderr capture,
//! exit status, and killing the whole group.
//!
//! Every spawned group is recorded in a process-wide registry until it is killed, so that a
//! program can kill them all from a signal handler or a panic hook
//! ([`kill_all_process_groups`]) and never leave orphans behind.

use std::{
    collections::{BTreeSet, VecDeque},
    io,
    pin::Pin,
    process::Stdio,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use switchboard_core::ServerName;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader, ReadBuf},
    process::{ChildStdin, ChildStdout, Command},
    sync::watch,
};

use crate::{ConnectError, StdioSpec};

/// How many stderr lines of a server are kept for error reports.
const STDERR_TAIL_LINES: usize = 20;
/// Longest stdout line quoted in a garbage report.
const GARBAGE_QUOTE_BYTES: usize = 160;

static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Kills (SIGKILL) every process group of a stdio server that this process started and has
/// not killed yet. Safe to call from a signal handler task or a panic hook; it only sends
/// signals.
pub fn kill_all_process_groups() {
    let groups: Vec<i32> =
        std::mem::take(&mut *LIVE_GROUPS.lock().unwrap_or_else(PoisonError::into_inner))
            .into_iter()
            .collect();
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// The number of process groups started and not yet killed (for tests and diagnostics).
pub fn live_process_groups() -> usize {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo(pub String);

/// A running stdio server process; dropping it kills its whole process group.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    pid: u32,
    exit: watch::Receiver<Option<ExitInfo>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    killed: bool,
}

/// The pieces of a freshly spawned server.
pub(crate) struct Spawned {
    pub(crate) process: ChildProcess,
    pub(crate) stdin: ChildStdin,
    pub(crate) stdout: SniffingReader<ChildStdout>,
    pub(crate) garbage: Arc<Mutex<Option<String>>>,
}

/// Starts the server's command in a new process group with piped stdio.
pub(crate) fn spawn(server: &ServerName, spec: &StdioSpec) -> Result<Spawned, ConnectError> {
    let mut command = Command::new(&spec.command);
    command
        .args(&spec.args)
        .envs(&spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().map_err(|e| ConnectError::Spawn {
        command: spec.command.clone(),
        reason: describe_spawn_error(&e, spec),
    })?;
    let pid = child.id().ok_or_else(|| ConnectError::Spawn {
        command: spec.command.clone(),
        reason: "the process exited at once".to_owned(),
    })?;
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(pid_i32(pid));

    let (stdin, stdout, stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => {
                kill_group(pid, Signal::SIGKILL);
                return Err(ConnectError::Spawn {
                    command: spec.command.clone(),
                    reason: "stdio pipes were not created".to_owned(),
                });
            }
        };

    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
    tokio::spawn(forward_stderr(server.clone(), stderr, Arc::clone(&tail)));

    let (exit_tx, exit_rx) = watch::channel(None);
    let name = server.clone();
    tokio::spawn(async move {
        let info = match child.wait().await {
            Ok(status) => ExitInfo(describe_status(status)),
            Err(e) => ExitInfo(format!("unknown exit status: {e}")),
        };
        tracing::debug!(server = %name, pid, status = %info.0, "server process exited");
        let _ = exit_tx.send(Some(info));
    });

    let garbage = Arc::new(Mutex::new(None));
    Ok(Spawned {
        process: ChildProcess {
            pid,
            exit: exit_rx,
            stderr: tail,
            killed: false,
        },
        stdin,
        stdout: SniffingReader::new(server.clone(), stdout, Arc::clone(&garbage)),
        garbage,
    })
}

impl ChildProcess {
    /// The process id (also the process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// A receiver that holds the exit information once the process has exited.
    pub(crate) fn exit_watch(&self) -> watch::Receiver<Option<ExitInfo>> {
        self.exit.clone()
    }

    /// The last lines the process wrote to stderr.
    pub(crate) fn stderr_tail(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Waits until the process has exited, up to `timeout`.
    pub(crate) async fn wait_exit(&self, timeout: Duration) -> Option<ExitInfo> {
        let mut rx = self.exit.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(info)) => info.clone(),
            _ => None,
        }
    }

    /// Stops the process group: waits up to half of `timeout` for a voluntary exit (stdin is
    /// expected to be closed already), sends SIGTERM to the group, waits the rest, then SIGKILL.
    pub(crate) async fn stop(mut self, timeout: Duration) -> Option<ExitInfo> {
        let half = timeout / 2;
        let mut exit = self.wait_exit(half).await;
        if exit.is_none() {
            kill_group(self.pid, Signal::SIGTERM);
            exit = self.wait_exit(timeout.saturating_sub(half)).await;
        }
        // Always end the group: grandchildren (npx, uv, shells) may outlive the leader.
        kill_group(self.pid, Signal::SIGKILL);
        self.killed = true;
        if exit.is_none() {
            exit = self.wait_exit(Duration::from_millis(500)).await;
        }
        exit
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if !self.killed {
            kill_group(self.pid, Signal::SIGKILL);
        }
    }
}

fn pid_i32(pid: u32) -> i32 {
    i32::try_from(pid).unwrap_or(i32::MAX)
}

/// Signals a process group; SIGKILL also forgets it in the registry.
fn kill_group(pid: u32, signal: Signal) {
    let pgid = pid_i32(pid);
    if signal == Signal::SIGKILL {
        LIVE_GROUPS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pgid);
    }
    // ESRCH (the group is already gone) is the normal case after an orderly exit.
    let _ = killpg(Pid::from_raw(pgid), signal);
}

fn describe_spawn_error(error: &io::Error, spec: &StdioSpec) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => {
            if spec.cwd.as_ref().is_some_and(|d| !d.is_dir()) {
                format!(
                    "the working directory {} does not exist",
                    spec.cwd
                        .as_ref()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default()
                )
            } else {
                "command not found (is it installed and on PATH?)".to_owned()
            }
        }
        io::ErrorKind::PermissionDenied => "permission denied (is it executable?)".to_owned(),
        _ => error.to_string(),
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit code {code}")
    } else if let Some(signal) = status.signal() {
        let name = Signal::try_from(signal)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| format!("signal {signal}"));
        format!("killed by {name}")
    } else {
        status.to_string()
    }
}

async fn forward_stderr(
    server: ServerName,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "switchboard::server_stderr", server = %server, "{line}");
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

pin_project_lite::pin_project! {
    /// Passes a server's stdout through unchanged while noting lines that cannot be JSON-RPC
    /// messages (rmcp skips them silently), so that a server that writes logs or banners to
    /// stdout gets a clear diagnosis.
    pub(crate) struct SniffingReader<R> {
        #[pin]
        inner: R,
        server: ServerName,
        at_line_start: bool,
        capture: Option<Vec<u8>>,
        garbage: Arc<Mutex<Option<String>>>,
    }
}

impl<R> SniffingReader<R> {
    fn new(server: ServerName, inner: R, garbage: Arc<Mutex<Option<String>>>) -> Self {
        Self {
            inner,
            server,
            at_line_start: true,
            capture: None,
            garbage,
        }
    }
}

impl<R: AsyncRead> AsyncRead for SniffingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        let mut rest = &buf.filled()[before..];
        while !rest.is_empty() {
            if let Some(captured) = this.capture.as_mut() {
                let end = rest.iter().position(|&b| b == b'\n');
                let take = end.unwrap_or(rest.len());
                let room = GARBAGE_QUOTE_BYTES.saturating_sub(captured.len());
                captured.extend_from_slice(&rest[..take.min(room)]);
                match end {
                    Some(end) => {
                        let line = String::from_utf8_lossy(captured).trim_end().to_owned();
                        tracing::warn!(server = %this.server, line = %line, "server wrote a non-JSON line on stdout; ignored");
                        this.garbage
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(line);
                        *this.capture = None;
                        *this.at_line_start = true;
                        rest = &rest[end + 1..];
                    }
                    None => rest = &[],
                }
            } else if *this.at_line_start {
                match rest[0] {
                    b' ' | b'\t' | b'\r' | b'\n' => rest = &rest[1..],
                    b'{' | b'[' => *this.at_line_start = false,
                    _ => *this.capture = Some(Vec::with_capacity(GARBAGE_QUOTE_BYTES)),
                }
            } else {
                match rest.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        *this.at_line_start = true;
                        rest = &rest[end + 1..];
                    }
                    None => rest = &[],
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn sniffer_reports_the_first_garbage_line_and_passes_bytes_through() {
        let input: &[u8] = b"{\"jsonrpc\":\"2.0\"}\nStarting server on stdio...\n{\"a\":1}\nmore\n";
        let garbage = Arc::new(Mutex::new(None));
        let mut reader = SniffingReader::new("s".into(), input, Arc::clone(&garbage));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, input);
        assert_eq!(
            garbage.lock().expect("lock").as_deref(),
            Some("Starting server on stdio...")
        );
    }

    #[tokio::test]
    async fn sniffer_accepts_clean_json_lines() {
        let input: &[u8] = b"{\"a\":1}\n\n  {\"b\":2}\n";
        let garbage = Arc::new(Mutex::new(None));
        let mut reader = SniffingReader::new("s".into(), input, Arc::clone(&garbage));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.expect("read");
        assert_eq!(*garbage.lock().expect("lock"), None);
    }
}
