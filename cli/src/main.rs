//! `mcpctl`: call tools, read resources and get prompts across many MCP servers.
//!
//! A thin shell over the `switchboard` crate: argument parsing, output (tables and readable
//! content for people, `--json` for scripts) and exit codes. Exit codes: 0 success, 1 the tool
//! returned an error, 2 usage or configuration error, 3 connection, protocol or timeout error.

mod auth;
mod output;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::{Parser, Subcommand};
use serde_json::Value;
use switchboard::{
    BatchCall, BatchOptions, CallOptions, DiscoverOptions, Error, Switchboard,
    config::{Config, parse_duration},
    core::ErrorClass,
    rmcp::model::JsonObject,
    transport::kill_all_process_groups,
};

/// Exit code: the tool ran and reported an error.
const EXIT_TOOL_ERROR: u8 = 1;
/// Exit code: bad usage or configuration.
const EXIT_USAGE: u8 = 2;
/// Exit code: connection, protocol or timeout failure.
const EXIT_FAILURE: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "mcpctl",
    version,
    about = "Call tools, read resources and get prompts across many MCP servers",
    after_help = "Exit codes: 0 success, 1 the tool returned an error, 2 usage or configuration \
                  error, 3 connection, protocol or timeout error.\n\
                  Without --config, mcpctl uses the first of ./switchboard.toml, ./mcp.json, \
                  ./.mcp.json, ./.vscode/mcp.json and the user configuration directory's \
                  switchboard/config.toml or switchboard/mcp.json."
)]
struct Cli {
    /// Configuration file (mcpServers / servers JSON, or Switchboard TOML).
    #[arg(long, short = 'c', global = true, env = "MCPCTL_CONFIG")]
    config: Option<PathBuf>,
    /// Deadline of each call, e.g. 500ms, 30s, 2m (default: from the configuration, else 60s).
    #[arg(long, global = true, value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List servers: transport, state, protocol version, tool count, last error.
    Servers,
    /// List tools, of every server or of one.
    Tools {
        /// Only this server's tools.
        server: Option<String>,
    },
    /// Rank tools for a task: `mcpctl discover "find open issues about login"`.
    Discover {
        /// The task, in plain words.
        task: String,
        /// How many tools.
        #[arg(short, default_value_t = 5)]
        k: usize,
        /// Only tools of these servers (repeatable).
        #[arg(long = "server")]
        servers: Vec<String>,
    },
    /// The audit log: `mcpctl audit verify FILE` checks its hash chain.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// A snapshot of the key numbers per server (calls, failures, retries, breaker, latency)
    /// and of the cache, for people who run no metrics collector.
    Metrics,
    /// Per server: state, health, latency percentiles, error counts, breaker, last error.
    Health {
        /// Redraw every `--interval` until interrupted, probing each server.
        #[arg(long)]
        watch: bool,
        /// Interval of `--watch`.
        #[arg(long, default_value = "2s", value_parser = parse_timeout)]
        interval: Duration,
    },
    /// The tool-result cache: `stats`, or `clear [SERVER]`.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Call a tool: `mcpctl call server.tool key=value ...`, or many: `mcpctl call --batch FILE`.
    Call {
        /// The tool: `server.tool`, or a bare name offered by one server only.
        #[arg(required_unless_present = "batch")]
        tool: Option<String>,
        /// Arguments as KEY=VALUE (typed by the tool's input schema) or KEY:=JSON.
        pairs: Vec<String>,
        /// Arguments as one JSON object.
        #[arg(long, conflicts_with_all = ["pairs", "args_file"])]
        args: Option<String>,
        /// Arguments from a JSON file (`-` for standard input).
        #[arg(long, conflicts_with = "pairs")]
        args_file: Option<PathBuf>,
        /// Save images, audio and blobs into this directory instead of summarising them.
        #[arg(long)]
        save_dir: Option<PathBuf>,
        /// Run a batch: JSON lines `{"tool": ..., "arguments": {...}}` from FILE (`-` for
        /// stdin); one JSON line per call out, in input order.
        #[arg(long, conflicts_with_all = ["tool", "pairs", "args", "args_file"])]
        batch: Option<PathBuf>,
        /// Calls in flight at once per server in a batch.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Do not answer from the cache.
        #[arg(long)]
        no_cache: bool,
    },
    /// List resources and resource templates.
    Resources,
    /// Read a resource.
    Read {
        /// The resource URI.
        uri: String,
        /// Save blobs into this directory instead of summarising them.
        #[arg(long)]
        save_dir: Option<PathBuf>,
    },
    /// Log in to OAuth-protected HTTP servers: `auth login SERVER`, `auth status`, `auth logout
    /// SERVER`.
    Auth {
        #[command(subcommand)]
        command: auth::AuthCommand,
    },
    /// List prompts.
    Prompts,
    /// Get a prompt: `mcpctl prompt server.prompt key=value ...`.
    Prompt {
        /// The prompt: `server.prompt`, or a bare name offered by one server only.
        name: String,
        /// Arguments as KEY=VALUE.
        pairs: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Checks the hash chain; names the first bad record (exit 1) if the log was edited,
    /// truncated in the middle, reordered or has lines deleted.
    Verify {
        /// The audit log file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// Counters of the cache (of this process, plus what a shared Redis level holds).
    Stats,
    /// Drop cached results, of one server or all.
    Clear {
        /// Only this server's results.
        server: Option<String>,
    },
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_all_process_groups();
        default_hook(info);
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpctl: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            code = run(cli) => code,
            signal = shutdown_signal() => {
                kill_all_process_groups();
                eprintln!("mcpctl: interrupted by {signal}");
                130
            }
        }
    });
    // Whatever is still running (a server that ignored the orderly close) goes now.
    runtime.shutdown_timeout(Duration::from_millis(500));
    kill_all_process_groups();
    ExitCode::from(code)
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs the command; returns the exit code.
async fn run(cli: Cli) -> u8 {
    let config = match load_config(cli.config.as_deref()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("mcpctl: {message}");
            return EXIT_USAGE;
        }
    };
    // `audit verify` reads a file; it needs no configuration.
    if let Command::Audit {
        action: AuditAction::Verify { file },
    } = &cli.command
    {
        return verify_audit(file, cli.json);
    }
    // `auth` works on the configuration and the credential store, without connecting.
    if let Command::Auth { command } = &cli.command {
        return auth::run(command, &config, cli.json).await;
    }
    let switchboard = match Switchboard::connect(config).await {
        Ok(s) => s,
        Err(error) => return report(&error),
    };
    let code = match execute(&cli, &switchboard).await {
        Ok(code) => code,
        Err(error) => report(&error),
    };
    switchboard.shutdown().await;
    code
}

fn load_config(explicit: Option<&Path>) -> Result<Config, String> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
            match Config::discover(&cwd).map_err(|e| e.to_string())? {
                Some(path) => path,
                None => {
                    return Err(
                        "no configuration found: pass --config FILE, or create mcp.json or \
                         switchboard.toml here (see docs/configuration.md)"
                            .to_owned(),
                    );
                }
            }
        }
    };
    Config::load(&path).map_err(|e| e.to_string())
}

/// Prints an error and returns its exit code.
fn report(error: &Error) -> u8 {
    eprintln!("mcpctl: {error}");
    exit_code(error)
}

fn exit_code(error: &Error) -> u8 {
    if error.is_usage() {
        return EXIT_USAGE;
    }
    match error.class() {
        ErrorClass::Config | ErrorClass::InvalidInput => EXIT_USAGE,
        _ => EXIT_FAILURE,
    }
}

async fn execute(cli: &Cli, switchboard: &Switchboard) -> Result<u8, Error> {
    let out = output::Printer { json: cli.json };
    match &cli.command {
        Command::Servers => out.servers(&switchboard.servers()),
        Command::Tools { server } => {
            if let Some(server) = server {
                switchboard.connection(server)?;
            }
            let tools: Vec<_> = switchboard
                .tools()
                .into_iter()
                .filter(|t| server.as_deref().is_none_or(|s| t.server.as_str() == s))
                .collect();
            out.tools(&tools);
        }
        Command::Health { watch, interval } => loop {
            for server in switchboard.servers() {
                if server.connection.is_some() {
                    let _ = switchboard.probe(&server.name).await;
                }
            }
            if *watch && !cli.json {
                // Clear the screen and go home, like `watch`.
                print!("\x1b[2J\x1b[H");
            }
            out.health(&switchboard.servers());
            if !*watch {
                break;
            }
            tokio::time::sleep(*interval).await;
        },
        Command::Cache { action } => match action {
            CacheAction::Stats => out.cache_stats(switchboard.cache_stats()),
            CacheAction::Clear { server } => {
                switchboard.clear_cache(server.as_deref()).await?;
                if !cli.json {
                    eprintln!("cache cleared");
                }
            }
        },
        Command::Call {
            batch: Some(file),
            concurrency,
            no_cache,
            ..
        } => return run_batch(switchboard, file, *concurrency, cli.timeout, *no_cache).await,
        Command::Call {
            tool: Some(tool),
            pairs,
            args,
            args_file,
            save_dir,
            no_cache,
            ..
        } => {
            let entry = switchboard.tool(tool)?;
            let arguments = call_arguments(
                tool,
                &entry.tool.input_schema,
                pairs,
                args.as_deref(),
                args_file.as_deref(),
            )?;
            let options = CallOptions {
                timeout: cli.timeout,
                no_cache: *no_cache,
                ..CallOptions::default()
            };
            let output = switchboard
                .call_with(tool, Some(arguments), options)
                .await?;
            out.call(&output, save_dir.as_deref());
            if output.is_tool_error() {
                return Ok(EXIT_TOOL_ERROR);
            }
        }
        Command::Call { tool: None, .. } => {
            return Err(Error::InvalidArguments {
                tool: String::new(),
                message: "name a tool, or pass --batch FILE".to_owned(),
            });
        }
        Command::Resources => {
            out.resources(&switchboard.resources(), &switchboard.resource_templates())
        }
        Command::Read { uri, save_dir } => {
            let result = switchboard.read_resource(uri).await?;
            out.resource(&result, save_dir.as_deref());
        }
        Command::Prompts => out.prompts(&switchboard.prompts()),
        // Handled in `run`, before connecting.
        Command::Auth { .. } | Command::Audit { .. } => {}
        Command::Discover { task, k, servers } => {
            let options = DiscoverOptions {
                servers: servers.clone(),
                ..DiscoverOptions::default()
            };
            out.discovered(&switchboard.discover(task, *k, &options));
        }
        Command::Metrics => {
            for server in switchboard.servers() {
                if server.connection.is_some() {
                    let _ = switchboard.probe(&server.name).await;
                }
            }
            out.metrics(&switchboard.servers(), switchboard.cache_stats());
        }
        Command::Prompt { name, pairs } => {
            let arguments = switchboard::args::from_pairs(name, &JsonObject::new(), pairs)?;
            // Prompt arguments are strings by the spec.
            let arguments = arguments
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, Value::String(s)),
                    other => (k, Value::String(other.to_string())),
                })
                .collect();
            let result = switchboard.get_prompt(name, Some(arguments)).await?;
            out.prompt(&result);
        }
    }
    Ok(0)
}

/// `mcpctl audit verify FILE`: 0 when the chain holds, 1 naming the first bad record.
fn verify_audit(file: &Path, json: bool) -> u8 {
    match switchboard::telemetry::verify(file) {
        Ok(summary) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "records": summary.records})
                );
            } else {
                println!(
                    "{}: {} records, hash chain intact",
                    file.display(),
                    summary.records
                );
            }
            0
        }
        Err(error) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": error.to_string()})
                );
            } else {
                eprintln!("mcpctl: {}: {error}", file.display());
            }
            match error {
                switchboard::telemetry::VerifyError::Corrupt { .. } => EXIT_TOOL_ERROR,
                _ => EXIT_USAGE,
            }
        }
    }
}

/// Runs `--batch`: JSON lines in, JSON lines out (in input order). Exit code: 0 when every
/// call succeeded, 1 when any tool returned an error, 3 when any call failed.
async fn run_batch(
    switchboard: &Switchboard,
    file: &Path,
    concurrency: usize,
    timeout: Option<Duration>,
    no_cache: bool,
) -> Result<u8, Error> {
    let invalid = |message: String| Error::InvalidArguments {
        tool: "--batch".to_owned(),
        message,
    };
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| invalid(format!("cannot read standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?
    };
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let call: BatchCall =
            serde_json::from_str(line).map_err(|e| invalid(format!("line {}: {e}", n + 1)))?;
        calls.push(call);
    }
    let options = BatchOptions {
        max_concurrency_per_server: concurrency,
        call: CallOptions {
            timeout,
            no_cache,
            ..CallOptions::default()
        },
    };
    let results = switchboard.call_many(calls, options).await;
    let mut code = 0;
    for result in &results {
        let line = match result {
            Ok(output) => {
                if output.is_tool_error() {
                    code = code.max(EXIT_TOOL_ERROR);
                }
                serde_json::json!({ "ok": output })
            }
            Err(error) => {
                code = code.max(EXIT_FAILURE);
                serde_json::json!({ "error": { "message": error.to_string(), "class": error.class() } })
            }
        };
        println!("{line}");
    }
    Ok(code)
}

fn call_arguments(
    tool: &str,
    schema: &JsonObject,
    pairs: &[String],
    args: Option<&str>,
    args_file: Option<&Path>,
) -> Result<JsonObject, Error> {
    let invalid = |message: String| Error::InvalidArguments {
        tool: tool.to_owned(),
        message,
    };
    let text = match (args, args_file) {
        (Some(text), _) => Some(text.to_owned()),
        (None, Some(path)) if path == Path::new("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| invalid(format!("cannot read standard input: {e}")))?;
            Some(text)
        }
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?,
        ),
        (None, None) => None,
    };
    match text {
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(invalid("the arguments must be a JSON object".to_owned())),
            Err(e) => Err(invalid(format!("the arguments are not valid JSON: {e}"))),
        },
        None => switchboard::args::from_pairs(tool, schema, pairs),
    }
}
