//! Server entries: the connection keys all formats share, the keys other hosts add, and
//! Switchboard's own per-server settings.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use switchboard_core::validate_server_name;
use switchboard_transport::{
    HttpAuth, HttpSpec, OAuthGrant, OAuthSpec, ReconnectPolicy, Secret, ServerSpec, StdioSpec,
    TransportSpec,
};

use super::{
    ConfigError, Defaults, PolicySettings, ServerConfig, ToolSettings,
    call_path::{self, Level, PLACEMENT_KEYS, POLICY_KEYS, TOOL_ONLY_KEYS},
    expand::is_variable_name,
    node::{Node, child},
    read::Ctx,
};

/// Connection keys of Switchboard's own server entries.
pub(super) const CONNECTION_KEYS: &[&str] =
    &["command", "args", "env", "cwd", "url", "headers", "type"];

/// Switchboard's own per-server keys, in TOML entries and in `switchboard.servers` overlays,
/// besides [`POLICY_KEYS`] and [`PLACEMENT_KEYS`] (see [`own_keys`]).
pub(super) const OWN_KEYS: &[&str] = &[
    "call_timeout",
    "connect_timeout",
    "shutdown_timeout",
    "protocol",
    "disabled",
    "bearer_token_env",
    "oauth",
    "max_in_flight",
    "sse_max_retries",
    "sse_retry_base",
    "include_tools",
    "exclude_tools",
    "reconnect",
    "tools",
];

/// Keys of `reconnect`.
const RECONNECT_KEYS: &[&str] = &[
    "initial_backoff",
    "max_backoff",
    "crash_budget",
    "budget_window",
];

/// Keys of `tools.<tool>` besides [`POLICY_KEYS`] and [`TOOL_ONLY_KEYS`].
const TOOL_KEYS: &[&str] = &["call_timeout", "rename", "description"];

/// Every own key of a server, for the suggestions of unknown-key errors.
fn own_keys() -> Vec<&'static str> {
    [OWN_KEYS, POLICY_KEYS, PLACEMENT_KEYS].concat()
}

/// Whether `key` is one of a server's own keys, or a tool-only key that gets its own error.
fn is_own_key(key: &str) -> bool {
    [OWN_KEYS, POLICY_KEYS, PLACEMENT_KEYS, TOOL_ONLY_KEYS]
        .iter()
        .any(|keys| keys.contains(&key))
}

/// Keys of other hosts that are accepted and have no effect here.
const IGNORED_FOREIGN_KEYS: &[&str] = &[
    "autoApprove",
    "alwaysAllow",
    "trust",
    "description",
    "gallery",
    "version",
    "dev",
];

/// Keys that only other hosts' formats use, for the hint in overlay errors.
const FOREIGN_CONNECTION_KEYS: &[&str] = &["envFile", "httpUrl", "transportType"];

/// The connection keys of one entry, gathered before they become a transport.
#[derive(Default)]
struct Connection<'n> {
    command: Option<&'n Node>,
    args: Option<&'n Node>,
    env: Option<&'n Node>,
    env_file: Option<&'n Node>,
    cwd: Option<&'n Node>,
    url: Option<&'n Node>,
    http_url: Option<&'n Node>,
    headers: Option<&'n Node>,
    kind: Option<&'n Node>,
    transport_type: Option<&'n Node>,
}

/// Which transport an entry's `type` asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdio,
    Http,
}

impl<'n> Connection<'n> {
    /// Records `key` when it is a connection key; `false` otherwise. Other hosts' formats
    /// (`foreign`) also have `envFile`, `httpUrl` (Gemini CLI) and `transportType` (Cline).
    fn take(&mut self, key: &str, value: &'n Node, foreign: bool) -> bool {
        let slot = match key {
            "command" => &mut self.command,
            "args" => &mut self.args,
            "env" => &mut self.env,
            "cwd" => &mut self.cwd,
            "url" => &mut self.url,
            "headers" => &mut self.headers,
            "type" => &mut self.kind,
            "envFile" if foreign => &mut self.env_file,
            "httpUrl" if foreign => &mut self.http_url,
            "transportType" if foreign => &mut self.transport_type,
            _ => return false,
        };
        *slot = Some(value);
        true
    }

    /// Turns the keys into a transport. In Switchboard's own format (`strict`), a key that does
    /// not apply to the transport is an error; in other hosts' formats, a warning.
    fn build(
        &self,
        ctx: &Ctx<'_>,
        path: &str,
        name: &str,
        strict: bool,
    ) -> Result<TransportSpec, ConfigError> {
        let kind = match (self.kind, self.transport_type) {
            (Some(node), _) => Some(("type", kind(ctx, &child(path, "type"), name, node)?)),
            (None, Some(node)) => Some((
                "transportType",
                kind(ctx, &child(path, "transportType"), name, node)?,
            )),
            (None, None) => None,
        };
        let url = match (self.url, self.http_url) {
            (Some(_), Some(_)) => {
                return Err(ctx.error(
                    path,
                    format!("server {name:?} has both \"url\" and \"httpUrl\"; keep one of them"),
                ));
            }
            (Some(url), None) => Some(("url", url)),
            (None, Some(url)) => Some(("httpUrl", url)),
            (None, None) => None,
        };
        match (self.command, url, kind) {
            (Some(_), Some(_), _) => Err(ctx.error(
                path,
                format!(
                    "server {name:?} has both \"command\" and \"url\"; keep \"command\" for a \
                     stdio server or \"url\" for a streamable-HTTP server"
                ),
            )),
            (None, None, _) => Err(ctx.error(
                path,
                format!(
                    "server {name:?} has neither \"command\" nor \"url\"; add \"command\" for a \
                     stdio server or \"url\" for a streamable-HTTP server"
                ),
            )),
            (Some(_), None, Some((key, Kind::Http))) => Err(ctx.error(
                &child(path, key),
                format!(
                    "server {name:?} is of type \"http\" but has \"command\" instead of \"url\"; \
                     give the server's URL, or use type \"stdio\""
                ),
            )),
            (None, Some((url_key, _)), Some((key, Kind::Stdio))) => Err(ctx.error(
                &child(path, key),
                format!(
                    "server {name:?} is of type \"stdio\" but has {url_key:?} instead of \
                     \"command\"; give the command that starts it, or use type \"http\""
                ),
            )),
            (Some(command), None, _) => {
                let misplaced = [("headers", self.headers)];
                misplaced_keys(ctx, path, name, strict, &misplaced, "a stdio")?;
                self.stdio(ctx, path, command).map(TransportSpec::Stdio)
            }
            (None, Some((url_key, url)), _) => {
                let misplaced = [
                    ("args", self.args),
                    ("env", self.env),
                    ("envFile", self.env_file),
                    ("cwd", self.cwd),
                ];
                misplaced_keys(ctx, path, name, strict, &misplaced, "an HTTP")?;
                self.http(ctx, path, url_key, url).map(TransportSpec::Http)
            }
        }
    }

    /// A stdio transport.
    fn stdio(&self, ctx: &Ctx<'_>, path: &str, command: &Node) -> Result<StdioSpec, ConfigError> {
        let command_path = child(path, "command");
        let command = ctx.expanded(&command_path, command)?;
        if command.trim().is_empty() {
            return Err(ctx.error(&command_path, "the command cannot be empty"));
        }
        let args = match self.args {
            Some(node) => ctx.expanded_list(&child(path, "args"), node)?,
            None => Vec::new(),
        };
        let mut env = BTreeMap::new();
        if let Some(node) = self.env_file {
            env.extend(read_env_file(ctx, &child(path, "envFile"), node)?);
        }
        if let Some(node) = self.env {
            env.extend(ctx.expanded_map(&child(path, "env"), node)?);
        }
        let cwd = match self.cwd {
            Some(node) => {
                let cwd_path = child(path, "cwd");
                let cwd = ctx.expanded(&cwd_path, node)?;
                if cwd.is_empty() {
                    return Err(ctx.error(&cwd_path, "the working directory cannot be empty"));
                }
                Some(ctx.dir.join(cwd))
            }
            None => None,
        };
        Ok(StdioSpec {
            command,
            args,
            env,
            cwd,
        })
    }

    /// A streamable-HTTP transport.
    fn http(
        &self,
        ctx: &Ctx<'_>,
        path: &str,
        url_key: &str,
        url: &Node,
    ) -> Result<HttpSpec, ConfigError> {
        let url_path = child(path, url_key);
        let url = ctx.expanded(&url_path, url)?;
        // The URL is not quoted back: its query may hold a token.
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ctx.error(&url_path, "expected an http:// or https:// URL"));
        }
        let mut spec = HttpSpec::new(url);
        if let Some(node) = self.headers {
            spec.headers = ctx.expanded_map(&child(path, "headers"), node)?;
        }
        Ok(spec)
    }
}

/// Reports keys present in the entry that the transport does not use.
fn misplaced_keys(
    ctx: &Ctx<'_>,
    path: &str,
    name: &str,
    strict: bool,
    keys: &[(&str, Option<&Node>)],
    transport: &str,
) -> Result<(), ConfigError> {
    for (key, _) in keys.iter().filter(|(_, node)| node.is_some()) {
        let key_path = child(path, key);
        if strict {
            return Err(ctx.error(
                &key_path,
                format!(
                    "{key:?} does not apply to server {name:?}, which is {transport} server; \
                     remove it"
                ),
            ));
        }
        tracing::warn!(
            file = %ctx.file.display(),
            key = %key_path,
            "ignoring a key that does not apply to {transport} server"
        );
    }
    Ok(())
}

/// Reads `type` (or Cline's `transportType`).
fn kind(ctx: &Ctx<'_>, key: &str, name: &str, node: &Node) -> Result<Kind, ConfigError> {
    match ctx.string(key, node)? {
        "stdio" => Ok(Kind::Stdio),
        "http" | "streamable-http" | "streamableHttp" => Ok(Kind::Http),
        "sse" => Err(ctx.error(
            key,
            format!(
                "server {name:?} uses the legacy HTTP+SSE transport, which Switchboard does not \
                 support; use the server's streamable-HTTP endpoint (often ending in /mcp) with \
                 type \"http\""
            ),
        )),
        other => Err(ctx.error(
            key,
            format!("unknown transport type {other:?}; expected \"stdio\" or \"http\""),
        )),
    }
}

/// Reads an `envFile`: `KEY=VALUE` lines, relative to the configuration file.
fn read_env_file(
    ctx: &Ctx<'_>,
    key: &str,
    node: &Node,
) -> Result<Vec<(String, String)>, ConfigError> {
    let path: PathBuf = ctx.dir.join(ctx.expanded(key, node)?);
    let text = std::fs::read_to_string(&path)
        .map_err(|error| ctx.error(key, format!("cannot read {}: {error}", path.display())))?;
    parse_env_file(&text).map_err(|line| {
        ctx.error(
            key,
            format!(
                "line {line} of {} is not of the form KEY=VALUE",
                path.display()
            ),
        )
    })
}

/// Parses `KEY=VALUE` lines; blank lines, `#` comments and an `export ` prefix are allowed, and
/// one pair of matching quotes around a value is removed. The error is the 1-based line number
/// (never the line, which may hold a secret).
fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err(index + 1);
        };
        let name = name.trim();
        if !is_variable_name(name) {
            return Err(index + 1);
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        pairs.push((name.to_owned(), unquoted.to_owned()));
    }
    Ok(pairs)
}

/// Checks a server name.
fn check_name(ctx: &Ctx<'_>, path: &str, name: &str) -> Result<(), ConfigError> {
    validate_server_name(name)
        .map_err(|error| ctx.error(path, format!("{error}; rename the server")))
}

/// A server with the file's defaults and no overrides.
fn with_defaults(name: &str, transport: TransportSpec, defaults: &Defaults) -> ServerConfig {
    let mut spec = ServerSpec::new(name, transport);
    spec.protocol = defaults.protocol;
    spec.handshake_timeout = defaults.connect_timeout;
    ServerConfig::new(spec)
}

/// A server entry of another host's format (`mcpServers`, VS Code's `servers`). Keys that
/// Switchboard does not know are ignored with a warning.
pub(super) fn foreign(
    ctx: &Ctx<'_>,
    defaults: &Defaults,
    section: &str,
    name: &str,
    node: &Node,
) -> Result<ServerConfig, ConfigError> {
    let path = child(section, name);
    check_name(ctx, &path, name)?;
    let mut connection = Connection::default();
    let mut disabled = false;
    let mut call_timeout = None;
    let mut tools = ToolSettings::default();
    for (key, value) in ctx.table(&path, node)? {
        if connection.take(key, value, true) {
            continue;
        }
        let key_path = child(&path, key);
        match key.as_str() {
            "disabled" => disabled |= ctx.boolean(&key_path, value)?,
            "enabled" => disabled |= !ctx.boolean(&key_path, value)?,
            "timeout" => call_timeout = Some(ctx.foreign_timeout(&key_path, value)?),
            "includeTools" => tools.include = ctx.patterns(&key_path, value)?,
            "excludeTools" => tools.exclude = ctx.patterns(&key_path, value)?,
            "oauth" => tracing::warn!(
                file = %ctx.file.display(),
                key = %key_path,
                "ignoring another host's OAuth settings; Switchboard's own are set with an \
                 \"oauth\" table in a switchboard.servers overlay (see docs/configuration.md), \
                 and a login stored by `mcpctl auth login` is used without any"
            ),
            known if IGNORED_FOREIGN_KEYS.contains(&known) => {}
            _ => ctx.warn_unknown(&key_path),
        }
    }
    let transport = connection.build(ctx, &path, name, false)?;
    let mut server = with_defaults(name, transport, defaults);
    server.disabled = disabled;
    server.call_timeout = call_timeout;
    server.tools = tools;
    Ok(server)
}

/// A `[servers.<name>]` entry of Switchboard's own TOML format: connection keys and own keys.
/// Unknown keys are errors.
pub(super) fn own(
    ctx: &Ctx<'_>,
    defaults: &Defaults,
    name: &str,
    node: &Node,
) -> Result<ServerConfig, ConfigError> {
    let path = child("servers", name);
    check_name(ctx, &path, name)?;
    let entry = ctx.table(&path, node)?;
    let mut connection = Connection::default();
    for (key, value) in entry {
        if !connection.take(key, value, false) && !is_own_key(key) {
            let known = [CONNECTION_KEYS, &own_keys()].concat();
            return Err(ctx.unknown_key(&path, key, &known));
        }
    }
    let transport = connection.build(ctx, &path, name, true)?;
    let mut server = with_defaults(name, transport, defaults);
    for (key, value) in entry {
        apply_own(ctx, &mut server, &path, key, value)?;
    }
    Ok(server)
}

/// Applies a `switchboard.servers.<name>` overlay of a JSON file to a server defined under
/// `mcpServers` or `servers`. Unknown keys are errors.
pub(super) fn overlay(
    ctx: &Ctx<'_>,
    server: &mut ServerConfig,
    path: &str,
    node: &Node,
) -> Result<(), ConfigError> {
    for (key, value) in ctx.table(path, node)? {
        if apply_own(ctx, server, path, key, value)? {
            continue;
        }
        if CONNECTION_KEYS.contains(&key.as_str())
            || FOREIGN_CONNECTION_KEYS.contains(&key.as_str())
        {
            return Err(ctx.error(
                &child(path, key),
                format!(
                    "{key:?} is a connection setting; set it in the server's entry under \
                     \"mcpServers\" or \"servers\""
                ),
            ));
        }
        return Err(ctx.unknown_key(path, key, &own_keys()));
    }
    Ok(())
}

/// Applies one of Switchboard's own keys; `false` when `key` is not one.
fn apply_own(
    ctx: &Ctx<'_>,
    server: &mut ServerConfig,
    path: &str,
    key: &str,
    value: &Node,
) -> Result<bool, ConfigError> {
    let key_path = &child(path, key);
    match key {
        "call_timeout" => server.call_timeout = Some(ctx.positive_duration(key_path, value)?),
        "connect_timeout" => {
            server.spec.handshake_timeout = ctx.positive_duration(key_path, value)?
        }
        "shutdown_timeout" => {
            server.spec.shutdown_timeout = ctx.positive_duration(key_path, value)?
        }
        "protocol" => server.spec.protocol = ctx.protocol(key_path, value)?,
        "disabled" => server.disabled = ctx.boolean(key_path, value)?,
        "include_tools" => server.tools.include = ctx.patterns(key_path, value)?,
        "exclude_tools" => server.tools.exclude = ctx.patterns(key_path, value)?,
        "reconnect" => server.spec.reconnect = reconnect(ctx, key_path, value)?,
        "tools" => tools(ctx, key_path, value, &mut server.tools)?,
        "bearer_token_env" => {
            let name = ctx.string(key_path, value)?;
            // The value is not quoted back: it may be the token itself, written by mistake.
            if !is_variable_name(name) {
                return Err(ctx.error(
                    key_path,
                    "expected the name of an environment variable that holds the token (letters, \
                     digits and \"_\"), not the token itself",
                ));
            }
            let http = http(ctx, server, key, key_path)?;
            if matches!(http.auth, HttpAuth::OAuth(_)) {
                return Err(ctx.error(
                    key_path,
                    "a server authorizes with either \"bearer_token_env\" or \"oauth\"; remove one",
                ));
            }
            http.auth = HttpAuth::BearerEnv(name.to_owned());
        }
        "oauth" => {
            let oauth = oauth(ctx, key_path, value)?;
            let http = http(ctx, server, key, key_path)?;
            if matches!(http.auth, HttpAuth::BearerEnv(_)) {
                return Err(ctx.error(
                    key_path,
                    "a server authorizes with either \"bearer_token_env\" or \"oauth\"; remove one",
                ));
            }
            http.auth = HttpAuth::OAuth(oauth);
        }
        "max_in_flight" => {
            let limit = ctx.count(key_path, value, 1)?;
            http(ctx, server, key, key_path)?.max_in_flight = limit as usize;
        }
        "sse_max_retries" => {
            let retries = ctx.count(key_path, value, 0)?;
            http(ctx, server, key, key_path)?.sse_max_retries = retries as usize;
        }
        "sse_retry_base" => {
            let base = ctx.positive_duration(key_path, value)?;
            http(ctx, server, key, key_path)?.sse_retry_base = base;
        }
        _ => {
            let tools = format!("{}.<tool>", child(path, "tools"));
            let level = Level::Shared { tools: &tools };
            return Ok(call_path::apply_policy(
                ctx,
                &mut server.policies,
                path,
                key,
                value,
                level,
            )? || call_path::apply_placement(
                ctx,
                &mut server.placement,
                path,
                key,
                value,
            )?);
        }
    }
    Ok(true)
}

/// The HTTP settings of a server, or an error saying that `key` applies only to HTTP servers.
fn http<'s>(
    ctx: &Ctx<'_>,
    server: &'s mut ServerConfig,
    key: &str,
    key_path: &str,
) -> Result<&'s mut HttpSpec, ConfigError> {
    let name = server.spec.name.clone();
    match &mut server.spec.transport {
        TransportSpec::Http(http) => Ok(http),
        TransportSpec::Stdio(_) => Err(ctx.error(
            key_path,
            format!(
                "{key:?} applies only to HTTP servers, and server {name:?} is a stdio server; \
                 remove it"
            ),
        )),
    }
}

/// Keys of `oauth`.
const OAUTH_KEYS: &[&str] = &[
    "grant",
    "client_id",
    "client_secret_env",
    "client_secret_file",
    "client_metadata_url",
    "scopes",
    "redirect_port",
    "credentials_file",
];

/// Reads `oauth = true` (every setting by default) or
/// `oauth = { grant, client_id, client_secret_env | client_secret_file, client_metadata_url,
/// scopes, redirect_port, credentials_file }`.
fn oauth(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<OAuthSpec, ConfigError> {
    let mut spec = OAuthSpec::default();
    if let Node::Bool(enabled) = node {
        if !enabled {
            return Err(ctx.error(
                path,
                "remove \"oauth\" instead of setting it to false (without it, a login stored \
                 by `mcpctl auth login` is still used)",
            ));
        }
        return Ok(spec);
    }
    let entries = ctx.table(path, node)?;
    for (key, value) in entries {
        let key_path = &child(path, key);
        match key.as_str() {
            "grant" => {
                spec.grant = match ctx.string(key_path, value)? {
                    "authorization_code" => OAuthGrant::AuthorizationCode,
                    "client_credentials" => OAuthGrant::ClientCredentials,
                    other => {
                        return Err(ctx.error(
                            key_path,
                            format!(
                                "unknown grant {other:?}; expected \"authorization_code\" (a \
                                 person logs in with `mcpctl auth login`) or \
                                 \"client_credentials\" (an unattended service)"
                            ),
                        ));
                    }
                }
            }
            "client_id" => {
                let id = ctx.expanded(key_path, value)?;
                if id.is_empty() {
                    return Err(ctx.error(key_path, "the client ID cannot be empty"));
                }
                spec.client_id = Some(id);
            }
            "client_secret_env" => {
                let name = ctx.string(key_path, value)?;
                // Not quoted back: it may be the secret itself, written by mistake.
                if !is_variable_name(name) {
                    return Err(ctx.error(
                        key_path,
                        "expected the name of an environment variable that holds the client \
                         secret (letters, digits and \"_\"), not the secret itself",
                    ));
                }
                spec.client_secret = Some(Secret::Env(name.to_owned()));
            }
            "client_secret_file" => {
                let file = ctx.expanded(key_path, value)?;
                if file.is_empty() {
                    return Err(ctx.error(key_path, "the file name cannot be empty"));
                }
                spec.client_secret = Some(Secret::File(ctx.dir.join(file)));
            }
            "client_metadata_url" => {
                let url = ctx.expanded(key_path, value)?;
                if !url.starts_with("https://") {
                    return Err(ctx.error(
                        key_path,
                        "expected the https:// URL of the client's metadata document",
                    ));
                }
                spec.client_metadata_url = Some(url);
            }
            "scopes" => {
                let scopes = ctx.expanded_list(key_path, value)?;
                if let Some(bad) = scopes
                    .iter()
                    .find(|s| s.is_empty() || s.contains(char::is_whitespace))
                {
                    return Err(ctx.error(
                        key_path,
                        format!("{bad:?} is not a scope; give one scope per string"),
                    ));
                }
                spec.scopes = scopes;
            }
            "redirect_port" => {
                let port = ctx.count(key_path, value, 1)?;
                spec.redirect_port = Some(u16::try_from(port).map_err(|_| {
                    ctx.error(key_path, format!("{port} is not a port (1 to 65535)"))
                })?);
            }
            "credentials_file" => {
                let file = ctx.expanded(key_path, value)?;
                if file.is_empty() {
                    return Err(ctx.error(key_path, "the file name cannot be empty"));
                }
                spec.credentials = Some(ctx.dir.join(file));
            }
            _ => return Err(ctx.unknown_key(path, key, OAUTH_KEYS)),
        }
    }
    let secrets = entries
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "client_secret_env" | "client_secret_file"))
        .count();
    if secrets > 1 {
        return Err(ctx.error(
            path,
            "give the client secret once: \"client_secret_env\" or \"client_secret_file\"",
        ));
    }
    if spec.client_secret.is_some() && spec.client_id.is_none() {
        return Err(ctx.error(
            &child(path, "client_id"),
            "a client secret belongs to a pre-registered client; add its \"client_id\"",
        ));
    }
    if spec.grant == OAuthGrant::ClientCredentials
        && (spec.client_id.is_none() || spec.client_secret.is_none())
    {
        return Err(ctx.error(
            path,
            "the client_credentials grant needs \"client_id\" and \"client_secret_env\" or \
             \"client_secret_file\"",
        ));
    }
    Ok(spec)
}

/// Reads `reconnect = { initial_backoff, max_backoff, crash_budget, budget_window }`.
fn reconnect(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<ReconnectPolicy, ConfigError> {
    let mut policy = ReconnectPolicy::default();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "initial_backoff" => policy.initial_backoff = ctx.duration(key_path, value)?,
            "max_backoff" => policy.max_backoff = ctx.positive_duration(key_path, value)?,
            "crash_budget" => policy.crash_budget = ctx.count(key_path, value, 0)?,
            "budget_window" => policy.budget_window = ctx.positive_duration(key_path, value)?,
            _ => return Err(ctx.unknown_key(path, key, RECONNECT_KEYS)),
        }
    }
    if policy.max_backoff < policy.initial_backoff {
        return Err(ctx.error(
            &child(path, "max_backoff"),
            format!(
                "max_backoff ({:?}) is shorter than initial_backoff ({:?}); raise it",
                policy.max_backoff, policy.initial_backoff
            ),
        ));
    }
    Ok(policy)
}

/// Reads `tools.<tool>`: each tool's `call_timeout` and policy settings. A tool that sets no
/// policy key gets no entry in [`ToolSettings::policies`].
fn tools(
    ctx: &Ctx<'_>,
    path: &str,
    node: &Node,
    settings: &mut ToolSettings,
) -> Result<(), ConfigError> {
    let mut timeouts: BTreeMap<String, Duration> = BTreeMap::new();
    let mut policies = BTreeMap::new();
    let mut renames = BTreeMap::new();
    let mut descriptions = BTreeMap::new();
    for (tool, entry) in ctx.table(path, node)? {
        let tool_path = child(path, tool);
        if tool.is_empty() {
            return Err(ctx.error(&tool_path, "a tool name cannot be empty"));
        }
        let mut tool_policies = PolicySettings::default();
        for (key, value) in ctx.table(&tool_path, entry)? {
            if key == "call_timeout" {
                let timeout = ctx.positive_duration(&child(&tool_path, key), value)?;
                timeouts.insert(tool.clone(), timeout);
            } else if key == "rename" {
                let key_path = child(&tool_path, key);
                let name = ctx.string(&key_path, value)?;
                if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(ctx.error(
                        &key_path,
                        "a tool name cannot be empty or contain spaces or control characters",
                    ));
                }
                renames.insert(tool.clone(), name.to_owned());
            } else if key == "description" {
                let text = ctx.string(&child(&tool_path, key), value)?;
                descriptions.insert(tool.clone(), text.to_owned());
            } else if !call_path::apply_policy(
                ctx,
                &mut tool_policies,
                &tool_path,
                key,
                value,
                Level::Tool,
            )? {
                let known = [TOOL_KEYS, POLICY_KEYS, TOOL_ONLY_KEYS].concat();
                return Err(ctx.unknown_key(&tool_path, key, &known));
            }
        }
        if tool_policies != PolicySettings::default() {
            policies.insert(tool.clone(), tool_policies);
        }
    }
    settings.timeouts = timeouts;
    settings.policies = policies;
    settings.renames = renames;
    settings.descriptions = descriptions;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_key_value_lines() {
        let text = "# comment\n\nA=1\nexport B = two words \nC=\"quoted\"\nD='single'\nE=\nF=a=b\n";
        let pairs = parse_env_file(text).expect("valid");
        let expected = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted"),
            ("D", "single"),
            ("E", ""),
            ("F", "a=b"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(pairs, expected);
        assert_eq!(parse_env_file("A=1\nnot a pair\n"), Err(2));
        assert_eq!(parse_env_file("A B=1\n"), Err(1));
    }
}
