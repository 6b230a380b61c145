//! The top level of a file: which sections each format has and how they combine.

use super::{
    Config, ConfigError, Defaults, Format, GlobalSettings, ServerConfig,
    call_path::{self, GLOBAL_KEYS, Level, POLICY_KEYS},
    node::{Node, child},
    read::{Ctx, suggest},
    server,
};

/// Top-level keys of the TOML format, and of the `switchboard` object of a JSON file, besides
/// [`GLOBAL_KEYS`].
const OWN_TOP_KEYS: &[&str] = &["defaults", "servers"];

/// Keys of `defaults` besides [`POLICY_KEYS`].
const DEFAULTS_KEYS: &[&str] = &["call_timeout", "connect_timeout", "protocol"];

/// Every top-level key of Switchboard's own settings.
fn own_top_keys() -> Vec<&'static str> {
    [OWN_TOP_KEYS, GLOBAL_KEYS].concat()
}

/// Turns a parsed file into a [`Config`].
pub(super) fn config(ctx: &Ctx<'_>, root: &Node) -> Result<Config, ConfigError> {
    match ctx.format {
        Format::Toml => own_file(ctx, root),
        Format::Json => json_file(ctx, root),
    }
}

/// Servers in file order, remembering where each was defined to report duplicates.
#[derive(Default)]
struct Servers {
    list: Vec<ServerConfig>,
    paths: Vec<String>,
}

impl Servers {
    /// Adds a server defined at `path`, unless one of that name exists.
    fn push(
        &mut self,
        ctx: &Ctx<'_>,
        path: String,
        server: ServerConfig,
    ) -> Result<(), ConfigError> {
        let name = server.spec.name.as_str();
        if let Some(at) = self.list.iter().position(|s| s.spec.name.as_str() == name) {
            return Err(ctx.error(
                &path,
                format!(
                    "server {name:?} is defined twice, at {} and at {path}; rename one of them",
                    self.paths[at]
                ),
            ));
        }
        self.list.push(server);
        self.paths.push(path);
        Ok(())
    }
}

/// Switchboard's own TOML format: `[defaults]`, `[servers.<name>]` and the tables that exist
/// once (`[retry_budget]`, `[cache]`, `[routing]`, `[groups.<name>]`, `[telemetry]`,
/// `[audit]`).
fn own_file(ctx: &Ctx<'_>, root: &Node) -> Result<Config, ConfigError> {
    let top_keys = own_top_keys();
    for (key, _) in ctx.table("", root)? {
        if !top_keys.contains(&key.as_str()) {
            return Err(ctx.unknown_key("", key, &top_keys));
        }
    }
    let defaults = match root.get("defaults") {
        Some(node) => defaults(ctx, "defaults", node)?,
        None => Defaults::default(),
    };
    let mut servers = Servers::default();
    if let Some(section) = root.get("servers") {
        for (name, entry) in ctx.table("servers", section)? {
            let server = server::own(ctx, &defaults, name, entry)?;
            servers.push(ctx, child("servers", name), server)?;
        }
    }
    let global = call_path::global(ctx, Some(root), &servers.list)?;
    finish(ctx, defaults, servers, global)
}

/// The configuration, once the checks that need all of it pass.
fn finish(
    ctx: &Ctx<'_>,
    defaults: Defaults,
    servers: Servers,
    global: GlobalSettings,
) -> Result<Config, ConfigError> {
    let config = Config {
        source: Some(ctx.file.to_path_buf()),
        defaults,
        servers: servers.list,
        global,
    };
    call_path::check(ctx, &config)?;
    Ok(config)
}

/// A JSON file: `mcpServers` and/or VS Code's `servers` (also under `mcp` in VS Code's
/// `settings.json`), plus an optional `switchboard` object. Other top-level keys belong to the
/// host that wrote the file and are ignored.
fn json_file(ctx: &Ctx<'_>, root: &Node) -> Result<Config, ConfigError> {
    let Node::Table(entries) = root else {
        return Err(ctx.error(
            "",
            format!(
                "expected an object at the top level, found {}",
                root.kind(true)
            ),
        ));
    };
    let own = root.get("switchboard");
    if let Some(own) = own {
        let top_keys = own_top_keys();
        for (key, _) in ctx.table("switchboard", own)? {
            if !top_keys.contains(&key.as_str()) {
                return Err(ctx.unknown_key("switchboard", key, &top_keys));
            }
        }
    }
    let defaults = match own.and_then(|own| own.get("defaults")) {
        Some(node) => defaults(ctx, "switchboard.defaults", node)?,
        None => Defaults::default(),
    };
    let mut servers = Servers::default();
    for (key, node) in entries {
        match key.as_str() {
            "mcpServers" | "servers" => foreign_section(ctx, &defaults, key, node, &mut servers)?,
            "mcp" => {
                if let Some(section) = node.get("servers") {
                    foreign_section(ctx, &defaults, "mcp.servers", section, &mut servers)?;
                }
            }
            "switchboard" | "inputs" => {}
            other => tracing::debug!(
                file = %ctx.file.display(),
                key = other,
                "ignoring a top-level key that is not about MCP servers"
            ),
        }
    }
    if let Some(overlays) = own.and_then(|own| own.get("servers")) {
        for (name, node) in ctx.table("switchboard.servers", overlays)? {
            let path = child("switchboard.servers", name);
            let found = servers
                .list
                .iter()
                .position(|s| s.spec.name.as_str() == name);
            let Some(at) = found else {
                let names = servers.list.iter().map(|s| s.spec.name.as_str());
                let hint = match suggest(name, names) {
                    Some(near) => format!("did you mean {near:?}?"),
                    None => "define it there first".to_owned(),
                };
                return Err(ctx.error(
                    &path,
                    format!(
                        "settings for server {name:?}, which is not defined under \"mcpServers\" \
                         or \"servers\"; {hint}"
                    ),
                ));
            };
            server::overlay(ctx, &mut servers.list[at], &path, node)?;
        }
    }
    let global = call_path::global(ctx, own, &servers.list)?;
    finish(ctx, defaults, servers, global)
}

/// The servers of an `mcpServers` or `servers` object.
fn foreign_section(
    ctx: &Ctx<'_>,
    defaults: &Defaults,
    path: &str,
    node: &Node,
    servers: &mut Servers,
) -> Result<(), ConfigError> {
    for (name, entry) in ctx.table(path, node)? {
        let server = server::foreign(ctx, defaults, path, name, entry)?;
        servers.push(ctx, child(path, name), server)?;
    }
    Ok(())
}

/// Reads `defaults`.
fn defaults(ctx: &Ctx<'_>, path: &str, node: &Node) -> Result<Defaults, ConfigError> {
    let mut defaults = Defaults::default();
    for (key, value) in ctx.table(path, node)? {
        let key_path = &child(path, key);
        match key.as_str() {
            "call_timeout" => defaults.call_timeout = ctx.positive_duration(key_path, value)?,
            "connect_timeout" => {
                defaults.connect_timeout = ctx.positive_duration(key_path, value)?
            }
            "protocol" => defaults.protocol = ctx.protocol(key_path, value)?,
            "region" | "zone" => {
                let routing = child(&child(call_path::own_root(ctx), "routing"), key);
                return Err(ctx.error(
                    key_path,
                    format!(
                        "{key:?} is set per server, in the server's own settings; the {key} of \
                         this client is {routing}"
                    ),
                ));
            }
            _ => {
                let tools = call_path::tools_of_any_server(ctx);
                let level = Level::Shared { tools: &tools };
                if !call_path::apply_policy(ctx, &mut defaults.policies, path, key, value, level)? {
                    let known = [DEFAULTS_KEYS, POLICY_KEYS].concat();
                    return Err(ctx.unknown_key(path, key, &known));
                }
            }
        }
    }
    Ok(defaults)
}
