//! `switchboard-testkit`: an MCP test server with fault knobs.
//!
//! ```text
//! switchboard-testkit stdio [KNOBS]
//! switchboard-testkit http [--port N] [--host 127.0.0.1] [--json-response] [--stateless] [KNOBS]
//! ```
//!
//! stdout carries nothing but the protocol (stdio) or the single line
//! `listening on http://127.0.0.1:PORT/mcp` (http); logs go to stderr
//! (`RUST_LOG` filters them, default `warn,rmcp=error`). Every knob can also be set with
//! an environment variable `TESTKIT_<NAME>`, e.g. `TESTKIT_ERROR_RATE=0.5`.
//!
//! Exit codes: 0 after a clean stop, 1 on errors and `--fail-start`, 2 on bad
//! arguments (including a non-loopback `--host`), 70 on a crash.

use std::{io::Write as _, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use switchboard_testkit::{
    DEFAULT_SERVER_NAME, HttpOptions, Knobs, resolve_loopback_host, serve_http, serve_stdio,
};

/// Exit code for bad arguments, as clap uses.
const USAGE_EXIT_CODE: u8 = 2;

/// An MCP test server with fault knobs, over stdio or streamable HTTP.
#[derive(Debug, Parser)]
#[command(name = "switchboard-testkit", version)]
struct Cli {
    /// Transport to serve.
    #[command(subcommand)]
    command: Command,
}

/// The transports.
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over stdin/stdout.
    Stdio {
        /// Behaviour knobs.
        #[command(flatten)]
        knobs: KnobArgs,
    },
    /// Serve MCP over streamable HTTP at http://HOST:PORT/mcp (loopback only).
    Http {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Loopback address to listen on (127.0.0.1, ::1 or localhost).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Answer simple requests with application/json instead of SSE
        /// (stateless mode only).
        #[arg(long)]
        json_response: bool,
        /// No Mcp-Session-Id sessions for legacy clients.
        #[arg(long)]
        stateless: bool,
        /// Behaviour knobs.
        #[command(flatten)]
        knobs: KnobArgs,
    },
}

/// Behaviour knobs shared by both transports.
#[derive(Debug, Args)]
struct KnobArgs {
    /// serverInfo name.
    #[arg(long, env = "TESTKIT_NAME", default_value = DEFAULT_SERVER_NAME)]
    name: String,
    /// Delay added before every tool call answers, in milliseconds.
    #[arg(long, env = "TESTKIT_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Fraction (0..1) of tool calls answered with JSON-RPC error -32603.
    #[arg(long, env = "TESTKIT_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,
    /// Fraction (0..1) of tool calls answered with isError: true.
    #[arg(long, env = "TESTKIT_TOOL_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    tool_error_rate: f64,
    /// Exit with code 70 on the Nth tool call, before answering it.
    #[arg(long, env = "TESTKIT_CRASH_AFTER", value_parser = clap::value_parser!(u64).range(1..))]
    crash_after: Option<u64>,
    /// stdio: write non-JSON lines to stdout instead of serving MCP.
    #[arg(long, env = "TESTKIT_GARBAGE_STDOUT")]
    garbage_stdout: bool,
    /// Print a message to stderr and exit with code 1 at once.
    #[arg(long, env = "TESTKIT_FAIL_START")]
    fail_start: bool,
    /// Append one line with the tool name per tool call to this file.
    #[arg(long, env = "TESTKIT_CALLS_LOG")]
    calls_log: Option<PathBuf>,
    /// Seed of the random number generator behind the error rates.
    #[arg(long, env = "TESTKIT_SEED")]
    seed: Option<u64>,
    /// `ttlMs` (public scope) of `resources/read` results on 2026-07-28 sessions.
    #[arg(long, env = "TESTKIT_RESOURCE_TTL_MS")]
    resource_ttl_ms: Option<u64>,
    /// `ttlMs` of list results on 2026-07-28 sessions (default 0).
    #[arg(long, env = "TESTKIT_LIST_TTL_MS")]
    list_ttl_ms: Option<u64>,
}

impl KnobArgs {
    /// The library's knobs.
    fn into_knobs(self) -> Knobs {
        Knobs {
            name: self.name,
            latency: Duration::from_millis(self.latency_ms),
            error_rate: self.error_rate,
            tool_error_rate: self.tool_error_rate,
            crash_after: self.crash_after,
            garbage_stdout: self.garbage_stdout,
            fail_start: self.fail_start,
            calls_log: self.calls_log,
            seed: self.seed,
            resource_ttl_ms: self.resource_ttl_ms,
            list_ttl_ms: self.list_ttl_ms,
            ..Knobs::default()
        }
    }
}

/// Parses a rate in `0..=1`.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|error| format!("not a number: {error}"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let fail_start = match &cli.command {
        Command::Stdio { knobs } | Command::Http { knobs, .. } => knobs.fail_start,
    };
    if fail_start {
        eprintln!("testkit: refusing to start (--fail-start)");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("testkit: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli.command));
    // Exit without waiting for the runtime: a blocking stdin read would
    // otherwise keep the process alive.
    let _flushed = std::io::stdout().flush();
    std::process::exit(i32::from(code))
}

/// Runs one subcommand and returns the process exit code.
async fn run(command: Command) -> u8 {
    match command {
        Command::Stdio { knobs } => match serve_stdio(knobs.into_knobs()).await {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("testkit: {error:#}");
                1
            }
        },
        Command::Http {
            port,
            host,
            json_response,
            stateless,
            knobs,
        } => {
            let ip = match resolve_loopback_host(&host) {
                Ok(ip) => ip,
                Err(error) => {
                    eprintln!("testkit: {error:#}");
                    return USAGE_EXIT_CODE;
                }
            };
            let options = HttpOptions {
                json_response,
                stateless,
            };
            match run_http(SocketAddr::new(ip, port), options, knobs.into_knobs()).await {
                Ok(()) => 0,
                Err(error) => {
                    eprintln!("testkit: {error:#}");
                    1
                }
            }
        }
    }
}

/// Serves HTTP until Ctrl-C, a crash or a failure.
async fn run_http(addr: SocketAddr, options: HttpOptions, knobs: Knobs) -> anyhow::Result<()> {
    let handle = serve_http(addr, options, knobs).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", handle.url())?;
    stdout.flush()?;
    drop(stdout);
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            result?;
            // The `wait` future and the handle in it are dropped here, which
            // stops the server.
            Ok(())
        }
        result = handle.wait() => result,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn,rmcp=error`: rmcp
/// warns about every error response, which this server sends on purpose).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rmcp=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
