//! Fault and behaviour knobs of the test server.
//!
//! [`Knobs`] is plain data: the binary fills it from command-line flags and
//! `TESTKIT_*` environment variables, and in-process tests build it with
//! [`Knobs::default`] and the `with_*` methods.

use std::{path::PathBuf, time::Duration};

/// Server name reported in `serverInfo` unless [`Knobs::name`] says otherwise.
pub const DEFAULT_SERVER_NAME: &str = "switchboard-testkit";

/// Exit code of the process when the server "crashes" (the `crash` tool or
/// [`Knobs::crash_after`]).
pub const CRASH_EXIT_CODE: i32 = 70;

/// What a crash (the `crash` tool or [`Knobs::crash_after`]) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrashBehavior {
    /// Exit the whole process at once with [`CRASH_EXIT_CODE`], without
    /// answering the call. This is what the binary does.
    #[default]
    ExitProcess,
    /// Stop serving without answering the call and without exiting the
    /// process: the stdio or HTTP server started by this crate shuts down.
    /// Meant for servers embedded in a test process.
    StopServer,
}

/// Behaviour knobs of a [`TestServer`](crate::TestServer).
///
/// The default serves every call normally, without delay or injected faults.
///
/// Knobs that act on tool calls (latency, error rates, crash-after) leave the
/// `stats` tool alone, so that a test can always read the counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    /// Name reported in `serverInfo`.
    pub name: String,
    /// Delay added before every tool call answers.
    pub latency: Duration,
    /// Fraction (0..=1) of tool calls answered with JSON-RPC error -32603
    /// "injected failure".
    pub error_rate: f64,
    /// Fraction (0..=1) of tool calls answered with a `CallToolResult` whose
    /// `isError` is true.
    pub tool_error_rate: f64,
    /// Crash on the Nth tool call (1-based), before answering it.
    pub crash_after: Option<u64>,
    /// What a crash does.
    pub crash_behavior: CrashBehavior,
    /// stdio only: write non-JSON lines to stdout instead of serving MCP.
    pub garbage_stdout: bool,
    /// Refuse to start (the binary prints a message and exits with code 1;
    /// the library's serve functions return an error).
    pub fail_start: bool,
    /// Append one line `<tool name>\n` per tool call to this file.
    pub calls_log: Option<PathBuf>,
    /// Seed of the random number generator behind the error rates; `None`
    /// seeds from the operating system.
    pub seed: Option<u64>,
    /// `ttlMs` of `resources/read` results on 2026-07-28 sessions, with a public cache scope;
    /// `None` sends no cache hints.
    pub resource_ttl_ms: Option<u64>,
    /// `ttlMs` of list results on 2026-07-28 sessions (default 0: do not reuse).
    pub list_ttl_ms: Option<u64>,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            name: DEFAULT_SERVER_NAME.to_owned(),
            latency: Duration::ZERO,
            error_rate: 0.0,
            tool_error_rate: 0.0,
            crash_after: None,
            crash_behavior: CrashBehavior::ExitProcess,
            garbage_stdout: false,
            fail_start: false,
            calls_log: None,
            seed: None,
            resource_ttl_ms: None,
            list_ttl_ms: None,
        }
    }
}

impl Knobs {
    /// Sets [`Knobs::name`].
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets [`Knobs::latency`].
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets [`Knobs::error_rate`].
    #[must_use]
    pub fn with_error_rate(mut self, rate: f64) -> Self {
        self.error_rate = rate;
        self
    }

    /// Sets [`Knobs::tool_error_rate`].
    #[must_use]
    pub fn with_tool_error_rate(mut self, rate: f64) -> Self {
        self.tool_error_rate = rate;
        self
    }

    /// Sets [`Knobs::crash_after`].
    #[must_use]
    pub fn with_crash_after(mut self, calls: u64) -> Self {
        self.crash_after = Some(calls);
        self
    }

    /// Sets [`Knobs::crash_behavior`].
    #[must_use]
    pub fn with_crash_behavior(mut self, behavior: CrashBehavior) -> Self {
        self.crash_behavior = behavior;
        self
    }

    /// Sets [`Knobs::garbage_stdout`].
    #[must_use]
    pub fn with_garbage_stdout(mut self, garbage: bool) -> Self {
        self.garbage_stdout = garbage;
        self
    }

    /// Sets [`Knobs::fail_start`].
    #[must_use]
    pub fn with_fail_start(mut self, fail: bool) -> Self {
        self.fail_start = fail;
        self
    }

    /// Sets [`Knobs::calls_log`].
    #[must_use]
    pub fn with_calls_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.calls_log = Some(path.into());
        self
    }

    /// Sets [`Knobs::seed`].
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}
