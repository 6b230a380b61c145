//! Support for Switchboard's end-to-end tests: locating the workspace binaries and the
//! reference servers that `cargo xtask test` installs, and starting HTTP servers on free
//! loopback ports (stopped when dropped).

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use switchboard::{
    config::{PolicySettings, ServerConfig},
    transport::{HttpSpec, ServerSpec, StdioSpec, TransportSpec},
};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Path of a binary of the workspace (built by `cargo xtask test`, or by
/// `cargo build --workspace --bins`).
///
/// # Panics
/// When the binary has not been built.
pub fn bin(name: &str) -> PathBuf {
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|dir| dir.join(name)));
    let candidates = from_exe
        .into_iter()
        .chain([workspace_root().join("target/debug").join(name)]);
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "binary {name} is not built: run `cargo xtask test` (or `cargo build --workspace --bins`) first"
    )
}

/// The folder holding the reference servers installed by `cargo xtask setup`.
///
/// # Panics
/// When they are not installed.
pub fn refservers() -> PathBuf {
    let dir = std::env::var_os("SWITCHBOARD_REFSERVERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/refservers"));
    assert!(
        dir.join("npm/.installed").is_file() && dir.join("py/.installed").is_file(),
        "reference servers are not installed in {}: run `cargo xtask test` (or `cargo xtask setup`)",
        dir.display()
    );
    dir
}

/// The entry script of an npm reference server, e.g. `server-everything`.
pub fn npm_server(package: &str) -> PathBuf {
    refservers()
        .join("npm/node_modules/@modelcontextprotocol")
        .join(package)
        .join("dist/index.js")
}

/// A Python reference server's executable, e.g. `mcp-server-time`.
pub fn python_server(name: &str) -> PathBuf {
    refservers().join("py/bin").join(name)
}

/// A spec for the testkit server over stdio with extra arguments (knobs).
pub fn testkit_stdio(name: &str, knobs: &[&str]) -> ServerSpec {
    let mut args = vec!["stdio".to_owned()];
    args.extend(knobs.iter().map(|s| (*s).to_owned()));
    let mut spec = ServerSpec::new(
        name,
        TransportSpec::Stdio(StdioSpec {
            command: bin("switchboard-testkit").display().to_string(),
            args,
            ..StdioSpec::default()
        }),
    );
    spec.handshake_timeout = Duration::from_secs(15);
    spec.reconnect.initial_backoff = Duration::from_millis(20);
    spec.reconnect.max_backoff = Duration::from_millis(500);
    spec
}

/// A server entry with the given policy settings and nothing else configured.
pub fn server_config(spec: ServerSpec, policies: PolicySettings) -> ServerConfig {
    ServerConfig {
        policies,
        ..ServerConfig::new(spec)
    }
}

/// What one testkit server counted itself: calls of `tool` (or `resources/read` requests),
/// read through its `stats` tool, which no fault knob touches.
///
/// # Panics
/// When the server is unknown or does not answer.
pub async fn served_calls(sb: &switchboard::Switchboard, server: &str, tool: &str) -> u64 {
    let stats = sb
        .connection(server)
        .expect("server")
        .call_tool(switchboard::rmcp::model::CallToolRequestParams::new(
            "stats",
        ))
        .await
        .expect("stats");
    stats
        .structured_content
        .as_ref()
        .and_then(|s| s["calls"][tool].as_u64())
        .unwrap_or(0)
}

/// A spec for a streamable-HTTP endpoint.
pub fn http_spec(name: &str, url: &str) -> ServerSpec {
    let mut spec = ServerSpec::new(name, TransportSpec::Http(HttpSpec::new(url)));
    spec.handshake_timeout = Duration::from_secs(15);
    spec.reconnect.initial_backoff = Duration::from_millis(20);
    spec.reconnect.max_backoff = Duration::from_millis(500);
    spec
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A server process started by a test, in its own process group; dropping it kills the group.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// The MCP endpoint URL.
    pub url: String,
}

impl ServerProcess {
    /// Starts the testkit server over HTTP on a free loopback port.
    ///
    /// # Panics
    /// When it does not start.
    pub fn testkit_http(knobs: &[&str]) -> Self {
        Self::testkit_http_on(0, knobs)
    }

    /// Starts the testkit server over HTTP on `port` (0 for any).
    ///
    /// # Panics
    /// When it does not start.
    pub fn testkit_http_on(port: u16, knobs: &[&str]) -> Self {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(bin("switchboard-testkit"))
            .args(["http", "--port", &port.to_string()])
            .args(knobs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start switchboard-testkit http");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from testkit: {line:?}"))
            .to_owned();
        Self { child, url }
    }

    /// Starts server-everything over streamable HTTP on a free loopback port.
    ///
    /// # Panics
    /// When it does not start listening within 20 s.
    pub fn everything_http() -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let preload = workspace_root().join("tests/support/loopback-only.cjs");
        let child = Command::new("node")
            .arg(npm_server("server-everything"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .env("NODE_OPTIONS", format!("--require {}", preload.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start server-everything");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        wait_for_port(port, Duration::from_secs(20));
        server
    }

    /// The process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server (SIGKILL to its group) and reaps it.
    pub fn kill(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
///
/// # Panics
/// After `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "nothing listens on {addr} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process exists (zombies count as gone).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            // The state follows the parenthesised command name.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// The pids of processes whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// A `redis-server` on a free loopback port, without persistence; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:PORT/`.
    pub url: String,
}

impl RedisServer {
    /// Starts one and waits until it accepts connections.
    ///
    /// # Panics
    /// When `redis-server` is not installed (`cargo xtask test` installs Debian's package when
    /// run as root, or prints the command) or does not start.
    pub fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it with `apt-get install redis-server`")
            });
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        wait_for_port(port, Duration::from_secs(10));
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
