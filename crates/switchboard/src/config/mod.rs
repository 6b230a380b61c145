//! Configuration: which MCP servers to connect to and with which timeouts, read from the files
//! people already have.
//!
//! Accepted files (see `docs/configuration.md` for every key):
//! - `mcpServers` JSON, as written for Claude Desktop, Claude Code (`.mcp.json`), Cursor, Cline
//!   and Gemini CLI;
//! - `servers` JSON, as written for VS Code (`.vscode/mcp.json`);
//! - Switchboard's own TOML (`switchboard.toml`), and a `switchboard` object in a JSON file
//!   that overlays Switchboard's settings on servers defined in the same file.
//!
//! Switchboard's own settings also hold the call-path policies (retry, circuit breaker, rate
//! limit, bulkhead, caching, fallbacks) at three levels — [`Defaults::policies`],
//! [`ServerConfig::policies`] and [`ToolSettings::policies`] — a server's
//! [`ServerConfig::placement`], and the settings that exist once ([`Config::global`]: retry
//! budget, cache store, routing, replica groups, telemetry, audit log).
//!
//! `${VAR}`, `${VAR:-default}` and `${env:VAR}` are expanded in commands, arguments, `env`
//! values, `cwd`, URLs and header values (and in `cache.redis_url`, `telemetry.otlp_endpoint`
//! and `audit.file`). Every error names the file, the key and the fix.
//!
//! ```no_run
//! use std::path::Path;
//! use switchboard::config::Config;
//!
//! # fn main() -> Result<(), switchboard::config::ConfigError> {
//! if let Some(path) = Config::discover(Path::new("."))? {
//!     let config = Config::load(&path)?;
//!     for server in config.servers.iter().filter(|s| !s.disabled) {
//!         println!("{} over {}", server.name(), server.spec.transport_kind());
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod call_path;
mod duration;
mod error;
mod expand;
mod node;
mod parse;
mod policy;
mod read;
mod server;

use std::{
    collections::BTreeMap,
    io::ErrorKind,
    path::{Path, PathBuf},
    time::Duration,
};

use switchboard_transport::{ProtocolMode, ServerSpec};

pub use error::ConfigError;
pub use policy::{
    AuditSettings, BreakerMode, BreakerSettings, BulkheadSettings, CacheSettings, Fallback,
    GlobalSettings, GroupSettings, NamingPolicy, Placement, PolicySettings, RateLimitSettings,
    ResolvedPolicy, RetrySettings, ServerPolicy, TelemetrySettings,
};

/// Parses a duration written as in configuration files: `"250ms"`, `"30s"`, `"5m"`, `"1h"`.
///
/// # Errors
/// Says what a duration must look like.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text.trim())
        .ok_or_else(|| format!("invalid duration {text:?}: {}", duration::EXPECTED))
}

/// A loaded configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The file it was read from; `None` when built in code.
    pub source: Option<PathBuf>,
    /// Settings that apply to every server unless the server overrides them.
    pub defaults: Defaults,
    /// The servers, in the order of the file (disabled ones included).
    pub servers: Vec<ServerConfig>,
    /// Settings that exist once: retry budget, cache store, routing, replica groups, telemetry,
    /// audit log.
    pub global: GlobalSettings,
}

/// Settings that apply to every server unless the server overrides them.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// The longest a tool call may take. Default 60 s.
    pub call_timeout: Duration,
    /// The longest connecting (spawn or connect, plus the handshake) may take; becomes each
    /// server's [`ServerSpec::handshake_timeout`] unless the server sets its own. Default 30 s.
    pub connect_timeout: Duration,
    /// Which protocol lifecycle to use. Default [`ProtocolMode::Auto`].
    pub protocol: ProtocolMode,
    /// Policy settings for every server and tool unless they override them.
    pub policies: PolicySettings,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            protocol: ProtocolMode::Auto,
            policies: PolicySettings::default(),
        }
    }
}

/// One configured server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// How to reach the server, with the file's defaults already applied.
    pub spec: ServerSpec,
    /// Whether the server is switched off (`"disabled": true`, or `"enabled": false`).
    pub disabled: bool,
    /// This server's override of [`Defaults::call_timeout`].
    pub call_timeout: Option<Duration>,
    /// Which of its tools to use, and per-tool timeouts.
    pub tools: ToolSettings,
    /// This server's policy settings (over the defaults).
    pub policies: PolicySettings,
    /// Where the server is, for routing.
    pub placement: Placement,
}

impl ServerConfig {
    /// A server with no Switchboard settings of its own: enabled, the defaults' call timeout,
    /// every tool, the default policies, no placement.
    pub fn new(spec: ServerSpec) -> Self {
        Self {
            spec,
            disabled: false,
            call_timeout: None,
            tools: ToolSettings::default(),
            policies: PolicySettings::default(),
            placement: Placement::default(),
        }
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        self.spec.name.as_str()
    }
}

/// Which tools of a server to use, and per-tool timeouts and policies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolSettings {
    /// When not empty, only tools matching one of these patterns are used. A pattern is an exact
    /// tool name, or contains `*` wildcards that match any run of characters.
    pub include: Vec<String>,
    /// Tools matching one of these patterns are not used, even when included.
    pub exclude: Vec<String>,
    /// Per-tool overrides of the call timeout, by exact tool name.
    pub timeouts: BTreeMap<String, Duration>,
    /// Per-tool policy settings, by exact tool name; only tools that set a policy key have an
    /// entry.
    pub policies: BTreeMap<String, PolicySettings>,
    /// Names under which tools are exposed instead of their own (`tools.<tool>.rename`).
    pub renames: BTreeMap<String, String>,
    /// Descriptions that replace the server's (`tools.<tool>.description`).
    pub descriptions: BTreeMap<String, String>,
}

impl ToolSettings {
    /// Whether `tool` passes the include and exclude patterns.
    pub fn allows(&self, tool: &str) -> bool {
        let matches = |patterns: &[String]| patterns.iter().any(|p| glob_match(p, tool));
        (self.include.is_empty() || matches(&self.include)) && !matches(&self.exclude)
    }
}

/// Whether `text` matches `pattern`, in which `*` matches any run of characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: the pattern after it, and the text it swallowed to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            star = Some((p + 1, t));
            p += 1;
        } else if pattern.get(p) == Some(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((after_star, swallowed)) = star {
            star = Some((after_star, swallowed + 1));
            p = after_star;
            t = swallowed + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The syntax of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (comments and trailing commas allowed, as in VS Code's JSONC).
    Json,
    /// TOML.
    Toml,
}

impl Format {
    /// The format of a file by its extension: `.toml` is TOML, anything else JSON.
    pub fn from_path(path: &Path) -> Self {
        if path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"))
        {
            Self::Toml
        } else {
            Self::Json
        }
    }
}

impl Config {
    /// Reads a configuration file, in the format its extension says ([`Format::from_path`]), expanding
    /// variables from the process environment.
    ///
    /// # Errors
    /// The file cannot be read, or its content is not a valid configuration.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], looking variables up with `env` instead of the process
    /// environment.
    ///
    /// # Errors
    /// The file cannot be read, or its content is not a valid configuration.
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.to_path_buf(),
            source: source.into(),
        })?;
        Self::from_str_with_env(&text, Format::from_path(path), path, env)
    }

    /// Parses configuration text, expanding variables from the process environment. `origin`
    /// is the file the text came from: errors name it, and relative paths (`cwd`, `envFile`,
    /// `audit.file`) are resolved against its directory.
    ///
    /// # Errors
    /// The text is not a valid configuration.
    pub fn from_str(text: &str, format: Format, origin: &Path) -> Result<Self, ConfigError> {
        Self::from_str_with_env(text, format, origin, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_str`], looking variables up with `env` instead of the process
    /// environment.
    ///
    /// # Errors
    /// The text is not a valid configuration.
    pub fn from_str_with_env(
        text: &str,
        format: Format,
        origin: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let ctx = read::Ctx::new(origin, format, env);
        let root = match format {
            Format::Json => node::parse_json(text),
            Format::Toml => node::parse_toml(text),
        }
        .map_err(|message| ctx.error("", message))?;
        parse::config(&ctx, &root)
    }

    /// The files [`Config::discover`] looks for, in order: `switchboard.toml`, `mcp.json`,
    /// `.mcp.json` and `.vscode/mcp.json` in `cwd`, then `switchboard/config.toml` and
    /// `switchboard/mcp.json` in the user's configuration directory (`~/.config` on Linux).
    pub fn candidates(cwd: &Path) -> Vec<PathBuf> {
        let mut paths = vec![
            cwd.join("switchboard.toml"),
            cwd.join("mcp.json"),
            cwd.join(".mcp.json"),
            cwd.join(".vscode").join("mcp.json"),
        ];
        if let Some(dir) = dirs::config_dir() {
            let dir = dir.join("switchboard");
            paths.push(dir.join("config.toml"));
            paths.push(dir.join("mcp.json"));
        }
        paths
    }

    /// The first of [`Config::candidates`] that exists, if any.
    ///
    /// # Errors
    /// A candidate's existence cannot be checked (for example, permission denied).
    pub fn discover(cwd: &Path) -> Result<Option<PathBuf>, ConfigError> {
        for path in Self::candidates(cwd) {
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => return Ok(Some(path)),
                Ok(_) => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
                Err(source) => {
                    return Err(ConfigError::Io {
                        file: path,
                        source: source.into(),
                    });
                }
            }
        }
        Ok(None)
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name() == name)
    }

    /// The call timeout of `tool` on `server`: the tool's own, else the server's, else the
    /// default.
    pub fn call_timeout(&self, server: &str, tool: &str) -> Duration {
        let Some(server) = self.server(server) else {
            return self.defaults.call_timeout;
        };
        server
            .tools
            .timeouts
            .get(tool)
            .copied()
            .or(server.call_timeout)
            .unwrap_or(self.defaults.call_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names_and_wildcards() {
        assert!(glob_match("read_file", "read_file"));
        assert!(!glob_match("read_file", "read_files"));
        assert!(glob_match("read_*", "read_file"));
        assert!(glob_match("*_file", "read_file"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("**x", "abx"));
        assert!(!glob_match("", "a"));
    }

    #[test]
    fn tool_settings_include_then_exclude() {
        let everything = ToolSettings::default();
        assert!(everything.allows("anything"));
        let settings = ToolSettings {
            include: vec!["read_*".into(), "list".into()],
            exclude: vec!["read_secret*".into()],
            ..ToolSettings::default()
        };
        assert!(settings.allows("read_file"));
        assert!(settings.allows("list"));
        assert!(!settings.allows("write_file"));
        assert!(!settings.allows("read_secrets"));
        let only_exclude = ToolSettings {
            exclude: vec!["delete_*".into()],
            ..ToolSettings::default()
        };
        assert!(only_exclude.allows("read"));
        assert!(!only_exclude.allows("delete_all"));
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/switchboard.toml")),
            Format::Toml
        );
        assert_eq!(Format::from_path(Path::new("A.TOML")), Format::Toml);
        assert_eq!(Format::from_path(Path::new(".mcp.json")), Format::Json);
        assert_eq!(Format::from_path(Path::new("config")), Format::Json);
    }

    #[test]
    fn candidates_start_in_the_working_directory() {
        let paths = Config::candidates(Path::new("/p"));
        assert_eq!(
            paths[..4],
            [
                PathBuf::from("/p/switchboard.toml"),
                PathBuf::from("/p/mcp.json"),
                PathBuf::from("/p/.mcp.json"),
                PathBuf::from("/p/.vscode/mcp.json"),
            ]
        );
    }
}
