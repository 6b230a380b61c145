//! An rmcp-based MCP server with fault knobs, over stdio and streamable HTTP,
//! for Switchboard's tests, benchmarks and demos.
//!
//! The crate has two faces:
//!
//! - the `switchboard-testkit` binary (`stdio` and `http` subcommands), which
//!   tests spawn as a real child process;
//! - this library, which runs the same server inside a test process:
//!   [`serve_stdio`], [`serve_http`], or [`TestServer`] with any rmcp
//!   transport.
//!
//! The server answers both MCP lifecycles: the `initialize` handshake
//! (2025-06-18, 2025-11-25 and older) and the per-request 2026-07-28
//! lifecycle opened by `server/discover`. It offers tools (with
//! `listChanged`), resources, a resource template (see [`catalog`]), the
//! prompts `greet {name}` and `summarize {text, style?}`, and logging.
//! [`Knobs`] add latency, injected errors and crashes.
//!
//! # Tools
//!
//! | tool | arguments | result | hints |
//! |---|---|---|---|
//! | `echo` | `message` | the message as text | read-only, idempotent |
//! | `add` | `a`, `b` (numbers) | structured `{"sum": a + b}` (outputSchema) | read-only, idempotent |
//! | `image` / `audio` | | one PNG image / one WAV audio | read-only, idempotent |
//! | `embedded_resource` / `resource_link` | | `testkit://static/hello` embedded / linked | read-only, idempotent |
//! | `mixed` | | text, image, audio, embedded resource, link | read-only, idempotent |
//! | `structured` | | structured `{"name": "testkit", "items": [1, 2, 3]}` | read-only, idempotent |
//! | `sleep` | `ms` | "slept N ms"; progress every 100 ms | read-only, idempotent |
//! | `hang` | | never answers (cancellable) | read-only, idempotent |
//! | `fail` | `message?` | `isError: true` | read-only, idempotent |
//! | `crash` | | process exits with code 70 | destructive |
//! | `big` | `bytes` (≤ 64 MiB) | that many `x` | read-only, idempotent |
//! | `write_note` | `text` | number of notes | destructive, not idempotent |
//! | `increment` | | the counter's new value | not read-only, not destructive, not idempotent |
//! | `stats` | | structured `{"calls": {tool: n}, "total": n}` | read-only |
//! | `log` | `level?`, `message` | sends `notifications/message` | read-only |
//! | `add_tool` | `name` | adds an echoing tool, announces `tools/list_changed` | not read-only, not destructive |
//! | `last_meta` | | structured copy of the request's `_meta` | read-only |
//!
//! Every tool also says `openWorldHint: false`. Sessions opened with
//! `initialize` get `notifications/tools/list_changed` directly; 2026-07-28
//! clients get it on a `subscriptions/listen` stream (as the spec requires).

mod knobs;
mod serve;
mod server;
mod tools;

pub mod catalog;

pub use knobs::{CRASH_EXIT_CODE, CrashBehavior, DEFAULT_SERVER_NAME, Knobs};
pub use serve::{
    GARBAGE_LINE, HttpOptions, HttpServerHandle, MCP_PATH, resolve_loopback_host, serve_http,
    serve_stdio,
};
pub use server::TestServer;
pub use tools::BIG_MAX_BYTES;
