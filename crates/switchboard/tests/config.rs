//! Configuration loading: every accepted format parses, and malformed files get the documented
//! error text.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use switchboard::config::{Config, ConfigError, Defaults, Format, ServerConfig};
use switchboard_transport::{HttpSpec, ProtocolMode, ReconnectPolicy, StdioSpec, TransportSpec};

/// The environment the tests expand variables from.
fn env(name: &str) -> Option<String> {
    let value = match name {
        "HOME" => "/home/me",
        "API_KEY" => "s3cret-api-key",
        "SEARCH_KEY" => "s3cret-search-key",
        "GITHUB_TOKEN" => "s3cret-github-token",
        "DB_CONNECTION_STRING" => "postgres://db/app",
        "EMPTY" => "",
        _ => return None,
    };
    Some(value.to_owned())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn load(name: &str) -> Config {
    Config::load_with_env(&fixture(name), &env).expect("the fixture loads")
}

/// Loads a fixture that must fail; returns its path and the error.
fn load_error(name: &str) -> (PathBuf, ConfigError) {
    let path = fixture(name);
    let error = Config::load_with_env(&path, &env).expect_err("the fixture is invalid");
    (path, error)
}

/// Parses text that must fail, as if read from `/project/<file>`; returns the error's text.
fn error_text(text: &str, file: &str) -> String {
    let origin = Path::new("/project").join(file);
    Config::from_str_with_env(text, Format::from_path(&origin), &origin, &env)
        .expect_err("the text is invalid")
        .to_string()
}

fn parse(text: &str, file: &str) -> Config {
    let origin = Path::new("/project").join(file);
    Config::from_str_with_env(text, Format::from_path(&origin), &origin, &env)
        .expect("the text is valid")
}

fn names(config: &Config) -> Vec<&str> {
    config.servers.iter().map(ServerConfig::name).collect()
}

fn server<'c>(config: &'c Config, name: &str) -> &'c ServerConfig {
    config.server(name).expect("the server is configured")
}

fn stdio<'c>(config: &'c Config, name: &str) -> &'c StdioSpec {
    match &server(config, name).spec.transport {
        TransportSpec::Stdio(spec) => spec,
        TransportSpec::Http(_) => panic!("{name} is not a stdio server"),
    }
}

fn http<'c>(config: &'c Config, name: &str) -> &'c HttpSpec {
    match &server(config, name).spec.transport {
        TransportSpec::Http(spec) => spec,
        TransportSpec::Stdio(_) => panic!("{name} is not an HTTP server"),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---- accepted formats ----

#[test]
fn claude_desktop() {
    let config = load("claude_desktop.json");
    assert_eq!(config.source, Some(fixture("claude_desktop.json")));
    assert_eq!(config.defaults, Defaults::default());
    assert_eq!(names(&config), ["filesystem", "github"]);
    let fs = stdio(&config, "filesystem");
    assert_eq!(fs.command, "npx");
    assert_eq!(
        fs.args,
        strings(&[
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "/Users/me/Desktop",
            "/Users/me/Downloads"
        ])
    );
    assert!(fs.env.is_empty());
    assert_eq!(fs.cwd, None);
    let github = stdio(&config, "github");
    assert_eq!(
        github.env,
        map(&[("GITHUB_PERSONAL_ACCESS_TOKEN", "github_pat_example")])
    );
    let spec = &server(&config, "github").spec;
    assert_eq!(spec.protocol, ProtocolMode::Auto);
    assert_eq!(spec.handshake_timeout, secs(30));
    assert_eq!(spec.shutdown_timeout, secs(2));
    assert_eq!(spec.reconnect, ReconnectPolicy::default());
    assert!(!server(&config, "github").disabled);
    assert_eq!(config.call_timeout("github", "any_tool"), secs(60));
}

#[test]
fn claude_code_with_type_and_defaults() {
    let config = load("claude_code.mcp.json");
    assert_eq!(names(&config), ["api", "local"]);
    let api = http(&config, "api");
    assert_eq!(api.url, "https://api.example.com/mcp");
    assert_eq!(
        api.headers,
        map(&[("Authorization", "Bearer s3cret-api-key")])
    );
    assert_eq!(api.bearer_token_env, None);
    assert_eq!(api.max_in_flight, 64);
    let local = stdio(&config, "local");
    assert_eq!(local.command, "/home/me/bin/mcp-server");
    assert_eq!(local.args, strings(&["--port", "8080"]));
    assert_eq!(local.env, map(&[("CACHE_DIR", "/tmp/mcp-cache")]));
}

#[test]
fn cursor_with_env_file() {
    let config = load("cursor.json");
    assert_eq!(names(&config), ["web-search", "fetch"]);
    let web = http(&config, "web-search");
    assert_eq!(web.url, "https://mcp.example.com/mcp");
    assert_eq!(web.headers, map(&[("X-Api-Key", "s3cret-search-key")]));
    let fetch = stdio(&config, "fetch");
    // The env file is read relative to the config file; "env" wins over it.
    assert_eq!(
        fetch.env,
        map(&[("FETCH_TIMEOUT", "10"), ("FETCH_USER_AGENT", "cursor")])
    );
}

#[test]
fn vscode_with_env_and_workspace_folder() {
    let config = load("vscode/.vscode/mcp.json");
    assert_eq!(names(&config), ["memory", "github"]);
    let workspace = fixture("vscode");
    let memory = stdio(&config, "memory");
    assert_eq!(
        memory.env,
        map(&[(
            "MEMORY_FILE_PATH",
            &format!("{}/memory.json", workspace.display())
        )])
    );
    let github = http(&config, "github");
    assert_eq!(github.url, "https://api.githubcopilot.com/mcp/");
    assert_eq!(
        github.headers,
        map(&[("Authorization", "Bearer s3cret-github-token")])
    );
}

#[test]
fn gemini_with_tool_filters_and_millisecond_timeouts() {
    let config = load("gemini.json");
    assert_eq!(names(&config), ["pythonTools", "httpServer"]);
    let python = server(&config, "pythonTools");
    assert_eq!(python.call_timeout, Some(secs(15)));
    assert_eq!(python.tools.include, strings(&["safe_tool", "file_*"]));
    assert_eq!(python.tools.exclude, strings(&["file_delete"]));
    assert!(python.tools.allows("safe_tool"));
    assert!(python.tools.allows("file_read"));
    assert!(!python.tools.allows("file_delete"));
    assert!(!python.tools.allows("shell"));
    let spec = stdio(&config, "pythonTools");
    assert_eq!(spec.cwd, Some(fixture("./mcp-servers/python")));
    assert_eq!(spec.env, map(&[("DATABASE_URL", "postgres://db/app")]));
    assert_eq!(http(&config, "httpServer").url, "http://localhost:3000/mcp");
    assert_eq!(config.call_timeout("httpServer", "x"), secs(5));
}

#[test]
fn cline_with_disabled_and_second_timeouts() {
    let config = load("cline.json");
    assert_eq!(names(&config), ["weather", "retired", "remote"]);
    let weather = server(&config, "weather");
    assert!(!weather.disabled);
    assert_eq!(weather.call_timeout, Some(secs(120)));
    assert!(server(&config, "retired").disabled);
    assert_eq!(server(&config, "retired").call_timeout, None);
    // Cline's "streamableHttp" type; an unknown key of another host is only a warning.
    assert_eq!(
        http(&config, "remote").url,
        "https://remote.example.com/mcp"
    );
    assert_eq!(config.call_timeout("remote", "x"), secs(30));
}

#[test]
fn own_toml() {
    let config = load("switchboard.toml");
    assert_eq!(
        config.defaults,
        Defaults {
            call_timeout: secs(45),
            connect_timeout: secs(10),
            protocol: ProtocolMode::Auto,
        }
    );
    assert_eq!(names(&config), ["fs", "search"]);

    let fs = server(&config, "fs");
    assert_eq!(
        fs.spec.transport,
        TransportSpec::Stdio(StdioSpec {
            command: "npx".into(),
            args: strings(&[
                "-y",
                "@modelcontextprotocol/server-filesystem",
                "/home/me/projects"
            ]),
            env: map(&[("LOG_LEVEL", "debug")]),
            cwd: Some(fixture("work")),
        })
    );
    assert_eq!(fs.call_timeout, Some(secs(120)));
    assert_eq!(fs.spec.protocol, ProtocolMode::Legacy);
    assert_eq!(fs.spec.handshake_timeout, secs(10));
    assert_eq!(fs.spec.shutdown_timeout, secs(5));
    assert_eq!(
        fs.spec.reconnect,
        ReconnectPolicy {
            initial_backoff: Duration::from_millis(250),
            max_backoff: secs(10),
            crash_budget: 3,
            budget_window: secs(300),
        }
    );
    assert_eq!(fs.tools.exclude, strings(&["write_*", "delete_*"]));
    assert!(!fs.tools.allows("write_file"));
    assert!(fs.tools.allows("read_file"));

    let search = server(&config, "search");
    assert_eq!(
        search.spec.transport,
        TransportSpec::Http(HttpSpec {
            url: "https://search.example.com/mcp".into(),
            headers: map(&[("X-Team", "docs")]),
            bearer_token_env: Some("SEARCH_TOKEN".into()),
            max_in_flight: 16,
            sse_max_retries: 5,
            sse_retry_base: Duration::from_millis(500),
        })
    );
    assert_eq!(search.spec.handshake_timeout, secs(5));
    assert_eq!(search.spec.protocol, ProtocolMode::Auto);
    assert!(!search.disabled);
    assert!(search.tools.allows("fetch_page"));
    assert!(!search.tools.allows("delete"));

    // Tool override > server override > default.
    assert_eq!(config.call_timeout("fs", "search_files"), secs(300));
    assert_eq!(config.call_timeout("fs", "read_file"), secs(120));
    assert_eq!(config.call_timeout("search", "search"), secs(45));
    assert_eq!(config.call_timeout("unknown", "x"), secs(45));
}

#[test]
fn json_with_switchboard_overlay() {
    let config = load("overlay.json");
    assert_eq!(config.defaults.call_timeout, secs(20));
    assert_eq!(config.defaults.connect_timeout, secs(30));
    assert_eq!(config.defaults.protocol, ProtocolMode::Modern);
    assert_eq!(names(&config), ["calc", "docs"]);
    let calc = server(&config, "calc");
    assert!(calc.disabled);
    assert_eq!(calc.spec.protocol, ProtocolMode::Modern);
    assert!(!calc.tools.allows("divide"));
    let docs = server(&config, "docs");
    assert_eq!(docs.call_timeout, Some(secs(90)));
    assert_eq!(http(&config, "docs").max_in_flight, 8);
    assert_eq!(config.call_timeout("docs", "search"), secs(180));
    assert_eq!(config.call_timeout("docs", "other"), secs(90));
    assert_eq!(config.call_timeout("calc", "add"), secs(20));
}

#[test]
fn empty_configurations_have_no_servers() {
    for (text, file) in [
        ("{}", "mcp.json"),
        (r#"{"mcpServers": {}}"#, "mcp.json"),
        (r#"{"servers": {}, "inputs": []}"#, "mcp.json"),
        ("", "switchboard.toml"),
        ("[servers]\n", "switchboard.toml"),
    ] {
        let config = parse(text, file);
        assert!(config.servers.is_empty(), "{text:?}");
        assert_eq!(config.defaults, Defaults::default());
    }
}

#[test]
fn both_sections_keep_file_order() {
    let config = parse(
        r#"{"servers": {"b": {"command": "b"}}, "mcpServers": {"z": {"command": "z"}, "a": {"url": "http://a/mcp"}}}"#,
        "mcp.json",
    );
    assert_eq!(names(&config), ["b", "z", "a"]);
}

#[test]
fn vscode_settings_nest_servers_under_mcp() {
    let config = parse(
        r#"{"editor.fontSize": 14, "mcp": {"servers": {"memory": {"command": "mem"}}}}"#,
        "settings.json",
    );
    assert_eq!(names(&config), ["memory"]);
}

#[test]
fn enabled_false_disables_and_timeouts_accept_strings() {
    let config = parse(
        r#"{"mcpServers": {"a": {"command": "a", "enabled": false, "timeout": "90s"}}}"#,
        "mcp.json",
    );
    assert!(server(&config, "a").disabled);
    assert_eq!(server(&config, "a").call_timeout, Some(secs(90)));
}

#[test]
fn env_file_relative_to_the_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("conf")).expect("mkdir");
    std::fs::write(dir.path().join("conf/.env"), "TOKEN=from-file\nOTHER='x'\n").expect("write");
    let path = dir.path().join("conf/mcp.json");
    std::fs::write(
        &path,
        r#"{"servers": {"s": {"type": "stdio", "command": "s", "envFile": ".env", "env": {"OTHER": "y"}}}}"#,
    )
    .expect("write");
    let config = Config::load_with_env(&path, &env).expect("valid");
    assert_eq!(
        stdio(&config, "s").env,
        map(&[("OTHER", "y"), ("TOKEN", "from-file")])
    );
}

#[test]
fn discovery_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let found = |expected: &str| {
        assert_eq!(
            Config::discover(cwd).expect("discovery works"),
            Some(cwd.join(expected))
        );
    };
    std::fs::create_dir(cwd.join(".vscode")).expect("mkdir");
    std::fs::write(cwd.join(".vscode/mcp.json"), "{}").expect("write");
    found(".vscode/mcp.json");
    std::fs::write(cwd.join(".mcp.json"), "{}").expect("write");
    found(".mcp.json");
    std::fs::write(cwd.join("mcp.json"), "{}").expect("write");
    found("mcp.json");
    std::fs::write(cwd.join("switchboard.toml"), "").expect("write");
    found("switchboard.toml");
    let candidates = Config::candidates(cwd);
    assert_eq!(candidates[0], cwd.join("switchboard.toml"));
    if let Some(user) = dirs::config_dir() {
        assert_eq!(
            candidates[4..],
            [
                user.join("switchboard/config.toml"),
                user.join("switchboard/mcp.json")
            ]
        );
    }
}

#[test]
fn load_uses_the_process_environment() {
    // PATH is set wherever tests run; nothing here mutates the environment.
    let config = Config::from_str(
        r#"{"mcpServers": {"a": {"command": "a", "env": {"P": "${PATH}"}}}}"#,
        Format::Json,
        Path::new("mcp.json"),
    )
    .expect("valid");
    assert_eq!(
        stdio(&config, "a").env.get("P"),
        std::env::var("PATH").ok().as_ref()
    );
}

// ---- errors from fixture files ----

#[test]
fn error_typo_in_overlay_suggests_the_key() {
    let (path, error) = load_error("errors/typo.json");
    assert_eq!(error.file(), path);
    assert_eq!(error.key(), "switchboard.servers.calc.call_timout");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: switchboard.servers.calc.call_timout: unknown key \"call_timout\"; did you mean \"call_timeout\"?",
            path.display()
        )
    );
}

#[test]
fn error_typo_in_toml_suggests_the_key() {
    let (path, error) = load_error("errors/typo.toml");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: servers.fs.comand: unknown key \"comand\"; did you mean \"command\"?",
            path.display()
        )
    );
}

#[test]
fn error_neither_command_nor_url() {
    let (path, error) = load_error("errors/no_command.json");
    assert_eq!(error.key(), "mcpServers.x");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: mcpServers.x: server \"x\" has neither \"command\" nor \"url\"; add \"command\" \
             for a stdio server or \"url\" for a streamable-HTTP server",
            path.display()
        )
    );
}

#[test]
fn error_legacy_sse() {
    let (path, error) = load_error("errors/sse.json");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: mcpServers.legacy.type: server \"legacy\" uses the legacy HTTP+SSE transport, \
             which Switchboard does not support; use the server's streamable-HTTP endpoint \
             (often ending in /mcp) with type \"http\"",
            path.display()
        )
    );
}

#[test]
fn error_missing_variable() {
    let (path, error) = load_error("errors/missing_variable.json");
    assert_eq!(error.key(), "mcpServers.github.env.GITHUB_TOKEN");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: mcpServers.github.env.GITHUB_TOKEN: environment variable \"GITHUB_PAT\" is not \
             set; set it, or give a default with ${{GITHUB_PAT:-default}}",
            path.display()
        )
    );
}

#[test]
fn error_bad_duration() {
    let (path, error) = load_error("errors/bad_duration.toml");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: servers.calc.call_timeout: invalid duration \"30 seconds\"; write a whole \
             number with a unit: \"250ms\", \"30s\", \"5m\" or \"1h\"",
            path.display()
        )
    );
    let (path, error) = load_error("errors/number_duration.toml");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: defaults.call_timeout: expected a duration string such as \"30s\", found the \
             number 30; write a whole number with a unit: \"250ms\", \"30s\", \"5m\" or \"1h\"",
            path.display()
        )
    );
}

#[test]
fn error_invalid_json_and_toml_give_line_and_column() {
    let (path, error) = load_error("errors/invalid.json");
    assert_eq!(error.key(), "");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: invalid JSON at line 4, column 5: expected `,` or `}}`",
            path.display()
        )
    );
    let (path, error) = load_error("errors/invalid.toml");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: invalid TOML at line 2, column 23: invalid basic string, expected `\"`",
            path.display()
        )
    );
}

#[test]
fn error_overlay_for_unknown_server() {
    let (path, error) = load_error("errors/unknown_overlay.json");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: switchboard.servers.calcs: settings for server \"calcs\", which is not defined \
             under \"mcpServers\" or \"servers\"; did you mean \"calc\"?",
            path.display()
        )
    );
}

#[test]
fn error_input_variables() {
    let (path, error) = load_error("errors/input.json");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: servers.search.headers.Authorization: \"${{input:api-key}}\" asks for a \
             prompted input, which Switchboard does not support; put the value in an \
             environment variable and write ${{env:NAME}}",
            path.display()
        )
    );
}

#[test]
fn error_missing_file() {
    let path = fixture("errors/does_not_exist.json");
    let error = Config::load(&path).expect_err("missing");
    assert!(matches!(error, ConfigError::Io { .. }));
    assert_eq!(error.key(), "");
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot read {}: ", path.display())),
        "{error}"
    );
}

// ---- errors from inline text ----

#[test]
fn error_both_command_and_url() {
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"x": {"command": "x", "url": "http://x/mcp"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.x: server \"x\" has both \"command\" and \"url\"; keep \
         \"command\" for a stdio server or \"url\" for a streamable-HTTP server"
    );
}

#[test]
fn error_invalid_server_names() {
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"git.hub": {"command": "x"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.\"git.hub\": invalid name \"git.hub\": a server name \
         cannot contain '.', which separates server and tool; rename the server"
    );
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"git hub": {"command": "x"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.\"git hub\": invalid name \"git hub\": a server name \
         cannot contain spaces or control characters; rename the server"
    );
}

#[test]
fn error_duplicate_names() {
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"command": "a"}}, "servers": {"a": {"command": "b"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: servers.a: server \"a\" is defined twice, at mcpServers.a and at \
         servers.a; rename one of them"
    );
    assert_eq!(
        error_text(
            "{\"mcpServers\": {\n  \"a\": {\"command\": \"a\"},\n  \"a\": {\"command\": \"b\"}\n}}",
            "mcp.json"
        ),
        "/project/mcp.json: invalid JSON at line 3, column 5: duplicate key \"a\""
    );
}

#[test]
fn error_wrong_types_name_the_key() {
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"command": "a", "args": ["x", 2]}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.a.args[1]: expected a string, found a number"
    );
    assert_eq!(
        error_text(r#"{"mcpServers": ["a"]}"#, "mcp.json"),
        "/project/mcp.json: mcpServers: expected an object, found an array"
    );
    assert_eq!(
        error_text("[1]", "mcp.json"),
        "/project/mcp.json: expected an object at the top level, found an array"
    );
    assert_eq!(
        error_text("[servers.a]\ncommand = 1\n", "switchboard.toml"),
        "/project/switchboard.toml: servers.a.command: expected a string, found a number"
    );
}

#[test]
fn error_unknown_transport_type() {
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"type": "ws", "url": "ws://a"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.a.type: unknown transport type \"ws\"; expected \
         \"stdio\" or \"http\""
    );
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"type": "stdio", "url": "http://a/mcp"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.a.type: server \"a\" is of type \"stdio\" but has \
         \"url\" instead of \"command\"; give the command that starts it, or use type \"http\""
    );
}

#[test]
fn error_url_must_be_http() {
    assert_eq!(
        error_text(r#"{"mcpServers": {"a": {"url": "ftp://a"}}}"#, "mcp.json"),
        "/project/mcp.json: mcpServers.a.url: expected an http:// or https:// URL"
    );
}

#[test]
fn error_own_keys() {
    assert_eq!(
        error_text("[defaults]\ncolor = \"red\"\n", "switchboard.toml"),
        "/project/switchboard.toml: defaults.color: unknown key \"color\"; expected one of: \
         call_timeout, connect_timeout, protocol"
    );
    assert_eq!(
        error_text("[server.a]\ncommand = \"a\"\n", "switchboard.toml"),
        "/project/switchboard.toml: server: unknown key \"server\"; did you mean \"servers\"?"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\nmax_in_flight = 4\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.max_in_flight: \"max_in_flight\" applies only to \
         HTTP servers, and server \"a\" is a stdio server; remove it"
    );
    assert_eq!(
        error_text(
            "[servers.a]\nurl = \"http://a/mcp\"\nargs = []\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.args: \"args\" does not apply to server \"a\", \
         which is an HTTP server; remove it"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\nprotocol = \"new\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.protocol: unknown protocol \"new\"; expected \
         \"auto\", \"legacy\" or \"modern\""
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\nreconnect = { initial_backoff = \"5s\", max_backoff = \"1s\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.reconnect.max_backoff: max_backoff (1s) is \
         shorter than initial_backoff (5s); raise it"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\ntimeout = \"1s\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.timeout: unknown key \"timeout\"; did you \
         mean \"call_timeout\"?"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\ncall_timeout = \"0s\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.call_timeout: must be longer than zero"
    );
}

#[test]
fn error_connection_keys_in_an_overlay() {
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"command": "a"}}, "switchboard": {"servers": {"a": {"args": ["x"]}}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.servers.a.args: \"args\" is a connection setting; set \
         it in the server's entry under \"mcpServers\" or \"servers\""
    );
    assert_eq!(
        error_text(r#"{"switchboard": {"default": {}}}"#, "mcp.json"),
        "/project/mcp.json: switchboard.default: unknown key \"default\"; did you mean \
         \"defaults\"?"
    );
}

#[test]
fn error_bearer_token_env_is_a_name_and_is_not_echoed() {
    let text = error_text(
        "[servers.a]\nurl = \"https://a/mcp\"\nbearer_token_env = \"Bearer abc.def\"\n",
        "switchboard.toml",
    );
    assert_eq!(
        text,
        "/project/switchboard.toml: servers.a.bearer_token_env: expected the name of an \
         environment variable that holds the token (letters, digits and \"_\"), not the token \
         itself"
    );
}

#[test]
fn error_messages_never_contain_expanded_secrets() {
    let text = error_text(
        r#"{"mcpServers": {"a": {"url": "${API_KEY}", "headers": {"A": "${API_KEY}"}}}}"#,
        "mcp.json",
    );
    assert_eq!(
        text,
        "/project/mcp.json: mcpServers.a.url: expected an http:// or https:// URL"
    );
    assert!(!text.contains("s3cret"));
}

#[test]
fn error_foreign_timeouts() {
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"command": "a", "timeout": -1}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.a.timeout: a timeout cannot be negative"
    );
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"command": "a", "timeout": true}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: mcpServers.a.timeout: expected a number of seconds (up to 3600) or \
         milliseconds, or a duration string such as \"30s\", found a boolean"
    );
}

#[test]
fn error_unreadable_env_file() {
    let text = error_text(
        r#"{"servers": {"a": {"command": "a", "envFile": "missing.env"}}}"#,
        "mcp.json",
    );
    assert!(
        text.starts_with(
            "/project/mcp.json: servers.a.envFile: cannot read /project/missing.env: "
        ),
        "{text}"
    );
}
