//! The browser step of a person's login: open the authorization page, receive the redirect on
//! a loopback port (RFC 8252).

use std::{fmt, path::Path, process::Stdio, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::Mutex,
};

use super::{Authorizer, LoginError};

/// Shows the authorization URL to a person: told through a callback, and opened with
/// `xdg-open` when it is installed.
type Notice = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// An [`Authorizer`] for a person at this machine: opens the authorization page in their
/// browser (with `xdg-open`, when installed) and receives the redirect on
/// `http://127.0.0.1:PORT/callback`.
#[derive(Clone)]
pub struct LoopbackAuthorizer {
    listener: Arc<Mutex<TcpListener>>,
    port: u16,
    open_browser: bool,
    timeout: Duration,
    notice: Notice,
}

impl fmt::Debug for LoopbackAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackAuthorizer")
            .field("port", &self.port)
            .field("open_browser", &self.open_browser)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LoopbackAuthorizer {
    /// Listens on `127.0.0.1:port` (a free port when `None`).
    ///
    /// # Errors
    /// The port is taken.
    pub async fn bind(port: Option<u16>) -> Result<Self, LoginError> {
        let listener = TcpListener::bind(("127.0.0.1", port.unwrap_or(0)))
            .await
            .map_err(|e| {
                LoginError::Authorization(format!(
                    "cannot listen for the redirect on 127.0.0.1:{}: {e}",
                    port.unwrap_or(0)
                ))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| LoginError::Authorization(e.to_string()))?
            .port();
        Ok(Self {
            listener: Arc::new(Mutex::new(listener)),
            port,
            open_browser: true,
            timeout: Duration::from_secs(300),
            notice: Arc::new(|url, opened| {
                tracing::info!(opened, "authorization page: {url}");
            }),
        })
    }

    /// Whether to open the browser (default: yes, when `xdg-open` is installed).
    pub fn open_browser(mut self, open: bool) -> Self {
        self.open_browser = open;
        self
    }

    /// How long to wait for the person (default 5 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Called with the authorization URL and whether a browser was started, before waiting:
    /// tell the person to open it.
    pub fn on_url(mut self, notice: impl Fn(&str, bool) + Send + Sync + 'static) -> Self {
        self.notice = Arc::new(notice);
        self
    }

    /// The port the redirect arrives on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts `xdg-open url`; whether it could be started.
    fn launch_browser(url: &str) -> bool {
        let found = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| is_executable(&dir.join("xdg-open")))
        });
        found
            && std::process::Command::new("xdg-open")
                .arg(url)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .is_ok()
    }

    /// Accepts connections until one is the redirect; returns its path and query.
    async fn receive(&self) -> Result<String, LoginError> {
        let listener = self.listener.lock().await;
        loop {
            let (mut stream, _) = listener
                .accept()
                .await
                .map_err(|e| LoginError::Authorization(e.to_string()))?;
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let target = head
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("GET "))
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or_default()
                .to_owned();
            if !target.starts_with("/callback") {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let body = "<!doctype html><title>Switchboard</title><p>You can close this window \
                        and return to the terminal.</p>";
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \
                 {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            return Ok(target);
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Authorizer for LoopbackAuthorizer {
    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    async fn authorize(&self, authorization_url: &str) -> Result<String, LoginError> {
        let opened = self.open_browser && Self::launch_browser(authorization_url);
        (self.notice)(authorization_url, opened);
        let target = tokio::time::timeout(self.timeout, self.receive())
            .await
            .map_err(|_| {
                LoginError::Authorization(format!("no redirect arrived within {:?}", self.timeout))
            })??;
        Ok(format!("http://127.0.0.1:{}{target}", self.port))
    }
}
