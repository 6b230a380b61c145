//! Configuration loading: every accepted format parses, and malformed files get the documented
//! error text.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use switchboard::config::{
    AuditSettings, BreakerMode, BreakerSettings, BulkheadSettings, CacheSettings, Config,
    ConfigError, Defaults, Fallback, Format, GlobalSettings, GroupSettings, Placement,
    PolicySettings, RateLimitSettings, RetrySettings, ServerConfig, TelemetrySettings,
};
use switchboard::telemetry::OtlpProtocol;
use switchboard_transport::{
    HttpAuth, HttpSpec, OAuthGrant, OAuthSpec, ProtocolMode, ReconnectPolicy, Secret, StdioSpec,
    TransportSpec,
};

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

const fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
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
    assert_eq!(api.auth, HttpAuth::None);
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
            policies: PolicySettings::default(),
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
            auth: HttpAuth::BearerEnv("SEARCH_TOKEN".into()),
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

    // Without call-path keys, everything is at its built-in default.
    assert_eq!(config.global, GlobalSettings::default());
    for server in &config.servers {
        assert_eq!(server.policies, PolicySettings::default());
        assert_eq!(server.placement, Placement::default());
        assert!(server.tools.policies.is_empty());
    }
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
         call_timeout, connect_timeout, protocol, attempt_timeout, retry, breaker, rate_limit, \
         bulkhead, cache"
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

// ---- call-path settings: policies, placement, retry budget, cache, routing, groups ----

/// The `[defaults]` policies of `policies.toml` and `policies.json`.
fn expected_default_policies() -> PolicySettings {
    PolicySettings {
        attempt_timeout: Some(secs(10)),
        retry: RetrySettings {
            max_attempts: Some(4),
            initial_backoff: Some(millis(50)),
            max_backoff: Some(secs(2)),
        },
        breaker: BreakerSettings {
            mode: Some(BreakerMode::Enabled),
            failure_rate: Some(0.25),
            window: Some(50),
            minimum_calls: Some(5),
            open_duration: Some(secs(20)),
            half_open_calls: Some(2),
        },
        rate_limit: RateLimitSettings {
            requests_per_second: Some(20),
            burst: Some(40),
            wait: Some(Duration::ZERO),
        },
        bulkhead: BulkheadSettings {
            max_concurrent: Some(32),
            max_queued: Some(8),
            queue_timeout: Some(millis(500)),
        },
        cache: CacheSettings {
            enabled: Some(false),
            ttl: Some(secs(120)),
        },
        idempotent: None,
        fallback: None,
    }
}

/// Checks every call-path field of `policies.toml` or its JSON twin.
fn assert_policies_fixture(config: &Config) {
    assert_eq!(config.defaults.call_timeout, secs(30));
    assert_eq!(config.defaults.policies, expected_default_policies());

    let mut groups = BTreeMap::new();
    groups.insert(
        "search".to_owned(),
        GroupSettings {
            servers: strings(&["search-a", "search-b"]),
            strategy: Some("locality".into()),
        },
    );
    groups.insert(
        "all".to_owned(),
        GroupSettings {
            servers: strings(&["local", "search-a", "search-b"]),
            strategy: None,
        },
    );
    assert_eq!(
        config.global,
        GlobalSettings {
            retry_budget_ratio: 0.1,
            retry_budget_min_per_second: 5,
            cache_max_bytes: 1_048_576,
            cache_stale_if_error: Duration::ZERO,
            cache_redis_url: Some("redis://localhost:6379/0".into()),
            region: Some("eu-west".into()),
            zone: Some("eu-west-1a".into()),
            naming: Default::default(),
            groups,
            detect_replicas: true,
            detect_strategy: Some("round_robin".into()),
            telemetry: TelemetrySettings::default(),
            audit: None,
        }
    );

    assert_eq!(names(config), ["search-a", "search-b", "local"]);
    let a = server(config, "search-a");
    assert_eq!(
        a.placement,
        Placement {
            region: Some("eu-west".into()),
            zone: Some("eu-west-1a".into()),
            tags: strings(&["primary", "gpu"]),
            weight: Some(3),
            priority: Some(0),
        }
    );
    assert_eq!(
        a.policies,
        PolicySettings {
            attempt_timeout: Some(secs(5)),
            retry: RetrySettings {
                max_attempts: Some(2),
                ..RetrySettings::default()
            },
            breaker: BreakerSettings {
                mode: Some(BreakerMode::MetricsOnly),
                failure_rate: Some(1.0),
                ..BreakerSettings::default()
            },
            rate_limit: RateLimitSettings {
                requests_per_second: Some(5),
                ..RateLimitSettings::default()
            },
            bulkhead: BulkheadSettings {
                max_concurrent: Some(4),
                ..BulkheadSettings::default()
            },
            cache: CacheSettings {
                enabled: None,
                ttl: Some(secs(30)),
            },
            idempotent: None,
            fallback: None,
        }
    );
    assert_eq!(a.tools.timeouts.get("search"), Some(&secs(60)));
    assert_eq!(
        a.tools.policies.keys().collect::<Vec<_>>(),
        ["delete_index", "search"]
    );
    assert_eq!(
        a.tools.policies["search"],
        PolicySettings {
            attempt_timeout: Some(secs(20)),
            retry: RetrySettings {
                max_attempts: Some(1),
                initial_backoff: None,
                max_backoff: Some(millis(100)),
            },
            breaker: BreakerSettings {
                mode: Some(BreakerMode::ForceOpen),
                ..BreakerSettings::default()
            },
            rate_limit: RateLimitSettings {
                burst: Some(1),
                ..RateLimitSettings::default()
            },
            bulkhead: BulkheadSettings {
                max_concurrent: None,
                max_queued: Some(0),
                queue_timeout: Some(secs(1)),
            },
            cache: CacheSettings {
                enabled: Some(true),
                ttl: None,
            },
            idempotent: Some(true),
            fallback: Some(Fallback::Tool("search.search".into())),
        }
    );
    assert_eq!(
        a.tools.policies["delete_index"],
        PolicySettings {
            idempotent: Some(false),
            fallback: Some(Fallback::Text(
                "Deleting is not possible right now; try again later.".into()
            )),
            ..PolicySettings::default()
        }
    );

    let b = server(config, "search-b");
    assert_eq!(
        b.placement,
        Placement {
            region: Some("us-east".into()),
            zone: None,
            tags: Vec::new(),
            weight: Some(0),
            priority: Some(1),
        }
    );
    assert_eq!(
        b.policies,
        PolicySettings {
            breaker: BreakerSettings {
                mode: Some(BreakerMode::Disabled),
                ..BreakerSettings::default()
            },
            ..PolicySettings::default()
        }
    );
    assert!(b.tools.policies.is_empty());

    let local = server(config, "local");
    assert_eq!(local.policies, PolicySettings::default());
    assert_eq!(local.placement, Placement::default());

    // Levels combine: tool over server over defaults over the built-in defaults.
    let search = PolicySettings::resolve(&[
        &a.tools.policies["search"],
        &a.policies,
        &config.defaults.policies,
    ]);
    assert_eq!(search.max_attempts, 1);
    assert_eq!(search.initial_backoff, millis(50));
    assert_eq!(search.max_backoff, millis(100));
    assert_eq!(search.attempt_timeout, Some(secs(20)));
    assert_eq!(search.cache, Some(true));
    assert_eq!(search.cache_ttl, secs(30));
    let b_server = PolicySettings::resolve_server(&[&b.policies, &config.defaults.policies]);
    assert_eq!(b_server.breaker_mode, BreakerMode::Disabled);
    assert_eq!(b_server.failure_rate, 0.25);
    assert_eq!(b_server.requests_per_second, Some(20));
    assert_eq!(b_server.rate_limit_wait, Duration::ZERO);
    assert_eq!(b_server.max_concurrent, 32);
}

#[test]
fn own_toml_with_every_call_path_key() {
    assert_policies_fixture(&load("policies.toml"));
}

#[test]
fn json_switchboard_section_with_every_call_path_key() {
    let json = load("policies.json");
    assert_policies_fixture(&json);
    // Same structure, same result.
    let toml = load("policies.toml");
    assert_eq!(json.defaults, toml.defaults);
    assert_eq!(json.servers, toml.servers);
    assert_eq!(json.global, toml.global);
}

#[test]
fn call_path_edge_values() {
    let config = parse(
        concat!(
            "[retry_budget]\nratio = 0\nmin_per_second = 0\n",
            "[cache]\nstale_if_error = \"0s\"\nmax_bytes = 8589934592\n",
            "[defaults]\nbreaker = { failure_rate = 1 }\nbulkhead = { max_queued = 0 }\n",
            "rate_limit = { wait = \"0ms\" }\n",
            "[servers.a]\ncommand = \"a\"\ntags = []\n",
            "[servers.a.tools.t]\nretry = {}\n",
        ),
        "switchboard.toml",
    );
    assert_eq!(config.global.retry_budget_ratio, 0.0);
    assert_eq!(config.global.retry_budget_min_per_second, 0);
    assert_eq!(config.global.cache_max_bytes, 8 << 30);
    assert_eq!(config.defaults.policies.breaker.failure_rate, Some(1.0));
    assert_eq!(
        config.defaults.policies.rate_limit.wait,
        Some(Duration::ZERO)
    );
    // An empty table sets nothing: no entry for the tool.
    assert!(server(&config, "a").tools.policies.is_empty());
    let config = parse(
        r#"{"switchboard": {"retry_budget": {"ratio": 1}, "cache": {"redis_url": "rediss://${API_KEY}@cache:6380"}}}"#,
        "mcp.json",
    );
    assert_eq!(config.global.retry_budget_ratio, 1.0);
    assert_eq!(
        config.global.cache_redis_url.as_deref(),
        Some("rediss://s3cret-api-key@cache:6380")
    );
}

#[test]
fn error_unknown_nested_policy_key_suggests_the_key() {
    let (path, error) = load_error("errors/retry_typo.toml");
    assert_eq!(error.key(), "servers.calc.retry.max_atempts");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: servers.calc.retry.max_atempts: unknown key \"max_atempts\"; did you mean \
             \"max_attempts\"?",
            path.display()
        )
    );
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"command": "a"}}, "switchboard": {"servers": {"a": {"tools": {"t": {"breaker": {"failure_ratio": 0.5}}}}}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.servers.a.tools.t.breaker.failure_ratio: unknown key \
         \"failure_ratio\"; did you mean \"failure_rate\"?"
    );
    assert_eq!(
        error_text("[defaults]\nbulkhead = { size = 4 }\n", "switchboard.toml"),
        "/project/switchboard.toml: defaults.bulkhead.size: unknown key \"size\"; expected one \
         of: max_concurrent, max_queued, queue_timeout"
    );
    assert_eq!(
        error_text(
            "[defaults]\nretries = { max_attempts = 2 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.retries: unknown key \"retries\"; did you mean \
         \"retry\"?"
    );
    assert_eq!(
        error_text("[retry_budgets]\nratio = 0.1\n", "switchboard.toml"),
        "/project/switchboard.toml: retry_budgets: unknown key \"retry_budgets\"; did you mean \
         \"retry_budget\"?"
    );
    assert_eq!(
        error_text("[routing]\nregoin = \"eu\"\n", "switchboard.toml"),
        "/project/switchboard.toml: routing.regoin: unknown key \"regoin\"; did you mean \
         \"region\"?"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\nwieght = 2\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.wieght: unknown key \"wieght\"; did you mean \
         \"weight\"?"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\nfallback = { answer = \"x\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.fallback.answer: unknown key \"answer\"; \
         expected one of: tool, text"
    );
}

#[test]
fn error_bad_breaker_mode() {
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\nbreaker = { mode = \"on\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.breaker.mode: unknown breaker mode \"on\"; \
         expected \"enabled\", \"disabled\", \"metrics_only\" or \"force_open\""
    );
}

#[test]
fn error_out_of_range_numbers() {
    assert_eq!(
        error_text(
            "[servers.calc]\ncommand = \"calc\"\nbreaker = { failure_rate = 1.5 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.calc.breaker.failure_rate: expected a number \
         greater than 0 and at most 1, found 1.5"
    );
    assert_eq!(
        error_text(
            "[defaults]\nbreaker = { failure_rate = 0 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.breaker.failure_rate: expected a number greater \
         than 0 and at most 1, found 0"
    );
    assert_eq!(
        error_text(
            "[defaults]\nbreaker = { failure_rate = \"50%\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.breaker.failure_rate: expected a number greater \
         than 0 and at most 1, found a string"
    );
    assert_eq!(
        error_text(
            r#"{"switchboard": {"retry_budget": {"ratio": -0.1}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.retry_budget.ratio: expected a number from 0 to 1, \
         found -0.1"
    );
    assert_eq!(
        error_text(
            "[servers.calc]\ncommand = \"calc\"\nretry = { max_attempts = 0 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.calc.retry.max_attempts: expected a whole number of \
         at least 1, found 0"
    );
    assert_eq!(
        error_text(
            "[defaults]\nretry = { max_attempts = 2.5 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.retry.max_attempts: expected a whole number, found \
         a number"
    );
    assert_eq!(
        error_text(
            "[defaults]\nrate_limit = { requests_per_second = 0 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.rate_limit.requests_per_second: expected a whole \
         number of at least 1, found 0"
    );
    assert_eq!(
        error_text(
            "[defaults]\nbulkhead = { max_queued = -1 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.bulkhead.max_queued: expected a whole number of at \
         least 0, found -1"
    );
    assert_eq!(
        error_text("[cache]\nmax_bytes = 0\n", "switchboard.toml"),
        "/project/switchboard.toml: cache.max_bytes: expected a whole number of at least 1, \
         found 0"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\nweight = 4294967296\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.weight: 4294967296 is too large"
    );
}

#[test]
fn error_policy_durations() {
    assert_eq!(
        error_text("[defaults]\nattempt_timeout = \"0s\"\n", "switchboard.toml"),
        "/project/switchboard.toml: defaults.attempt_timeout: must be longer than zero"
    );
    assert_eq!(
        error_text(
            "[defaults]\nbreaker = { open_duration = 30 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.breaker.open_duration: expected a duration string \
         such as \"30s\", found the number 30; write a whole number with a unit: \"250ms\", \
         \"30s\", \"5m\" or \"1h\""
    );
    assert_eq!(
        error_text(
            "[defaults]\nretry = { initial_backoff = \"1s\", max_backoff = \"100ms\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.retry.max_backoff: max_backoff (100ms) is shorter \
         than initial_backoff (1s); raise it"
    );
    // Across levels: the key a level sets is blamed on it.
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\nretry = { max_backoff = \"10ms\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.retry.max_backoff: max_backoff (10ms) is shorter \
         than initial_backoff (25ms, the default); raise it, or set a shorter initial_backoff \
         here"
    );
    assert_eq!(
        error_text(
            "[defaults]\nretry = { max_backoff = \"1s\" }\n[servers.a]\ncommand = \"a\"\n\
             [servers.a.tools.t]\nretry = { initial_backoff = \"2s\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.retry.initial_backoff: initial_backoff \
         (2s) is longer than max_backoff (1s, set in defaults.retry); lower it, or set a longer \
         max_backoff here"
    );
}

#[test]
fn error_group_with_unknown_member() {
    let (path, error) = load_error("errors/group_member.json");
    assert_eq!(error.key(), "switchboard.groups.math.servers[1]");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: switchboard.groups.math.servers[1]: no server is named \"calcs\"; did you mean \
             \"calc\"?",
            path.display()
        )
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[groups.g]\nservers = [\"a\", \"zzz\"]\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: groups.g.servers[1]: no server is named \"zzz\"; define it, \
         or remove it from the group"
    );
}

#[test]
fn error_group_named_like_a_server() {
    assert_eq!(
        error_text(
            "[servers.calc]\ncommand = \"calc\"\n[groups.calc]\nservers = [\"calc\"]\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: groups.calc: group \"calc\" has the name of a server, so \
         \"calc.tool\" would be ambiguous; rename the group"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[groups.\"a.b\"]\nservers = [\"a\"]\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: groups.\"a.b\": invalid name \"a.b\": a server name cannot \
         contain '.', which separates server and tool; rename the group"
    );
}

#[test]
fn error_group_members_and_strategy() {
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[groups.g]\nservers = [\"a\"]\nstrategy = \"random\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: groups.g.strategy: unknown strategy \"random\"; expected \
         \"p2c\", \"round_robin\", \"weighted\", \"priority\" or \"locality\""
    );
    assert_eq!(
        error_text("[groups.g]\nservers = []\n", "switchboard.toml"),
        "/project/switchboard.toml: groups.g.servers: a group needs at least one server"
    );
    assert_eq!(
        error_text("[groups.g]\nstrategy = \"p2c\"\n", "switchboard.toml"),
        "/project/switchboard.toml: groups.g: group \"g\" has no \"servers\"; list its member \
         servers"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[groups.g]\nservers = [\"a\", \"a\"]\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: groups.g.servers[1]: server \"a\" is listed twice; remove one"
    );
}

#[test]
fn error_fallback_with_both_tool_and_text() {
    let (path, error) = load_error("errors/fallback_both.toml");
    assert_eq!(error.key(), "servers.calc.tools.divide.fallback");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: servers.calc.tools.divide.fallback: give either \"tool\" or \"text\", not both; \
             a fallback is one or the other",
            path.display()
        )
    );
}

#[test]
fn error_fallback_targets() {
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\nfallback = {}\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.fallback: expected \"tool\" (another tool, \
         as \"server.tool\") or \"text\" (a fixed answer)"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\nfallback = { tool = \"u\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.fallback.tool: expected a tool as \
         \"server.tool\", found \"u\"; add the server"
    );
    assert_eq!(
        error_text(
            "[servers.calc]\ncommand = \"a\"\n[servers.calc.tools.t]\nfallback = { tool = \"calcs.t\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.calc.tools.t.fallback.tool: no server or group is \
         named \"calcs\"; did you mean \"calc\"?"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\nfallback = { tool = \"a.t\" }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.fallback.tool: \"a.t\" is this tool \
         itself; name another tool, or give a \"text\""
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\nfallback = \"a.u\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.fallback: expected a table, found a string"
    );
}

#[test]
fn error_tool_only_keys_elsewhere() {
    let (path, error) = load_error("errors/idempotent_server.toml");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: servers.calc.idempotent: \"idempotent\" applies to a single tool; set it in \
             servers.calc.tools.<tool> instead",
            path.display()
        )
    );
    assert_eq!(
        error_text(
            r#"{"mcpServers": {"a": {"command": "a"}}, "switchboard": {"servers": {"a": {"fallback": {"text": "x"}}}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.servers.a.fallback: \"fallback\" applies to a single \
         tool; set it in switchboard.servers.a.tools.<tool> instead"
    );
    assert_eq!(
        error_text("[defaults]\nidempotent = false\n", "switchboard.toml"),
        "/project/switchboard.toml: defaults.idempotent: \"idempotent\" applies to a single \
         tool; set it in servers.<server>.tools.<tool> instead"
    );
}

#[test]
fn error_misplaced_call_path_keys() {
    assert_eq!(
        error_text(
            "[defaults]\ncache = { max_bytes = 1024 }\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: defaults.cache.max_bytes: \"max_bytes\" is a setting of the \
         whole cache store; set it in the top-level [cache] table"
    );
    assert_eq!(
        error_text(r#"{"switchboard": {"cache": {"ttl": "5m"}}}"#, "mcp.json"),
        "/project/mcp.json: switchboard.cache.ttl: \"ttl\" is set per tool, not for the whole \
         cache store; write cache.ttl in defaults, in a server or in one of its tools"
    );
    assert_eq!(
        error_text("[defaults]\nregion = \"eu\"\n", "switchboard.toml"),
        "/project/switchboard.toml: defaults.region: \"region\" is set per server, in the \
         server's own settings; the region of this client is routing.region"
    );
}

#[test]
fn error_placement_and_routing_values() {
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\ntags = [\"x\", 1]\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tags[1]: expected a string, found a number"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\ntags = \"x\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tags: expected an array of strings, found a string"
    );
    assert_eq!(
        error_text("[routing]\nzone = \"\"\n", "switchboard.toml"),
        "/project/switchboard.toml: routing.zone: cannot be empty"
    );
    assert_eq!(
        error_text(
            "[routing]\ndetect_strategy = \"fastest\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: routing.detect_strategy: unknown strategy \"fastest\"; \
         expected \"p2c\", \"round_robin\", \"weighted\", \"priority\" or \"locality\""
    );
    assert_eq!(
        error_text("[routing]\ndetect_replicas = \"yes\"\n", "switchboard.toml"),
        "/project/switchboard.toml: routing.detect_replicas: expected true or false, found a \
         string"
    );
    assert_eq!(
        error_text(
            "[servers.a]\ncommand = \"a\"\n[servers.a.tools.t]\nidempotent = \"yes\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: servers.a.tools.t.idempotent: expected true or false, found \
         a string"
    );
}

#[test]
fn error_redis_url_is_checked_and_not_echoed() {
    let text = error_text(
        "[cache]\nredis_url = \"http://user:${API_KEY}@cache\"\n",
        "switchboard.toml",
    );
    assert_eq!(
        text,
        "/project/switchboard.toml: cache.redis_url: expected a Redis URL such as \
         \"redis://host:6379/\"; it must start with one of: redis://, rediss://, valkey://, \
         valkeys://, unix://, redis+unix://, valkey+unix://"
    );
    assert!(!text.contains("s3cret"));
    assert_eq!(
        error_text(
            "[cache]\nredis_url = \"redis://${NOPE}\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: cache.redis_url: environment variable \"NOPE\" is not set; \
         set it, or give a default with ${NOPE:-default}"
    );
}

// ---- telemetry and the audit log ----

/// The `[telemetry]` of `observability.toml` and `observability.json`.
fn expected_telemetry() -> TelemetrySettings {
    TelemetrySettings {
        enabled: true,
        service_name: "gateway".into(),
        sample_ratio: 0.25,
        prometheus_listen: Some("[::1]:9464".parse().expect("a socket address")),
        otlp_endpoint: Some("https://otel.example.com:4318".into()),
        otlp_protocol: OtlpProtocol::HttpProtobuf,
        otlp_certificate: None,
    }
}

/// The `[audit]` of `observability.toml` and `observability.json`: the file is resolved
/// against the fixture's directory.
fn expected_audit() -> AuditSettings {
    AuditSettings {
        file: fixture("logs/audit.jsonl"),
        redact_keys: strings(&["session_id", "X-Internal-Token"]),
    }
}

#[test]
fn telemetry_and_audit_of_own_toml() {
    let config = load("observability.toml");
    assert_eq!(config.global.telemetry, expected_telemetry());
    assert_eq!(config.global.audit, Some(expected_audit()));
    assert_eq!(names(&config), ["calc"]);
    // The other settings that exist once keep their defaults.
    assert_eq!(
        config.global,
        GlobalSettings {
            telemetry: expected_telemetry(),
            audit: Some(expected_audit()),
            ..GlobalSettings::default()
        }
    );
}

#[test]
fn telemetry_and_audit_of_a_json_switchboard_section() {
    let json = load("observability.json");
    assert_eq!(json.global.telemetry, expected_telemetry());
    assert_eq!(json.global.audit, Some(expected_audit()));
    let toml = load("observability.toml");
    assert_eq!(json.global, toml.global);
    assert_eq!(json.servers, toml.servers);
}

#[test]
fn telemetry_is_off_and_audit_absent_by_default() {
    let config = parse("[servers.a]\ncommand = \"a\"\n", "switchboard.toml");
    assert_eq!(config.global.telemetry, TelemetrySettings::default());
    assert!(!config.global.telemetry.enabled);
    assert_eq!(config.global.telemetry.service_name, "switchboard");
    assert_eq!(config.global.telemetry.sample_ratio, 1.0);
    assert_eq!(config.global.audit, None);
    // A table without an exporter leaves telemetry off.
    let config = parse(
        "[telemetry]\nservice_name = \"x\"\nsample_ratio = 0\n",
        "switchboard.toml",
    );
    assert!(!config.global.telemetry.enabled);
    assert_eq!(config.global.telemetry.service_name, "x");
    assert_eq!(config.global.telemetry.sample_ratio, 0.0);
    let config = parse(
        "[telemetry]\nenabled = true\nsample_ratio = 1\n",
        "switchboard.toml",
    );
    assert!(config.global.telemetry.enabled);
    assert_eq!(config.global.telemetry.sample_ratio, 1.0);
}

#[test]
fn an_exporter_enables_telemetry_unless_enabled_is_written() {
    let config = parse(
        "[telemetry]\nprometheus_listen = \"127.0.0.1:0\"\n",
        "switchboard.toml",
    );
    assert!(config.global.telemetry.enabled);
    assert_eq!(
        config.global.telemetry.prometheus_listen,
        Some("127.0.0.1:0".parse().expect("a socket address"))
    );
    let config = parse(
        r#"{"switchboard": {"telemetry": {"otlp_endpoint": "http://127.0.0.1:4318"}}}"#,
        "mcp.json",
    );
    assert!(config.global.telemetry.enabled);
    assert_eq!(
        config.global.telemetry.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4318")
    );
    // `enabled = false` written wins, before or after the exporter.
    for text in [
        "[telemetry]\nenabled = false\nprometheus_listen = \"[::1]:9464\"\n",
        "[telemetry]\notlp_endpoint = \"http://collector:4318\"\nenabled = false\n",
    ] {
        let config = parse(text, "switchboard.toml");
        assert!(!config.global.telemetry.enabled, "{text}");
    }
    let config = parse(
        r#"{"switchboard": {"telemetry": {"enabled": false, "prometheus_listen": "0.0.0.0:9464", "otlp_endpoint": "https://otel.${EMPTY:-example.com}"}}}"#,
        "mcp.json",
    );
    assert!(!config.global.telemetry.enabled);
    assert_eq!(
        config.global.telemetry.otlp_endpoint.as_deref(),
        Some("https://otel.example.com")
    );
}

#[test]
fn otlp_protocol_is_read_in_both_formats() {
    let config = parse(
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4317\"\notlp_protocol = \"grpc\"\n",
        "switchboard.toml",
    );
    assert_eq!(config.global.telemetry.otlp_protocol, OtlpProtocol::Grpc);
    let config = parse(
        r#"{"switchboard": {"telemetry": {"otlp_protocol": "http/protobuf", "otlp_endpoint": "http://127.0.0.1:4318"}}}"#,
        "mcp.json",
    );
    assert_eq!(
        config.global.telemetry.otlp_protocol,
        OtlpProtocol::HttpProtobuf
    );
    // Not written: HTTP/protobuf.
    let config = parse("[telemetry]\nenabled = true\n", "switchboard.toml");
    assert_eq!(
        config.global.telemetry.otlp_protocol,
        OtlpProtocol::HttpProtobuf
    );
}

#[test]
fn otlp_certificate_is_relative_to_the_configuration_file() {
    let config = parse(
        "[telemetry]\notlp_endpoint = \"https://otel.internal:4317\"\notlp_protocol = \"grpc\"\n\
         otlp_certificate = \"certs/ca.pem\"\n",
        "switchboard.toml",
    );
    assert_eq!(
        config.global.telemetry.otlp_certificate,
        Some(PathBuf::from("/project/certs/ca.pem"))
    );
    let config = parse(
        r#"{"switchboard": {"telemetry": {"otlp_certificate": "${HOME}/ca.pem"}}}"#,
        "mcp.json",
    );
    assert_eq!(
        config.global.telemetry.otlp_certificate,
        Some(PathBuf::from("/home/me/ca.pem"))
    );
}

#[test]
fn audit_file_is_relative_to_the_configuration_file() {
    let config = parse("[audit]\nfile = \"audit.jsonl\"\n", "switchboard.toml");
    assert_eq!(
        config.global.audit,
        Some(AuditSettings {
            file: PathBuf::from("/project/audit.jsonl"),
            redact_keys: Vec::new(),
        })
    );
    let config = parse(
        r#"{"switchboard": {"audit": {"file": "../logs/audit.jsonl", "redact_keys": []}}}"#,
        ".vscode/mcp.json",
    );
    assert_eq!(
        config.global.audit.map(|audit| audit.file),
        Some(PathBuf::from("/project/.vscode/../logs/audit.jsonl"))
    );
    // Variables are expanded; an absolute path stays as it is.
    let config = parse(
        "[audit]\nfile = \"${HOME}/audit.jsonl\"\nredact_keys = [\"pin\"]\n",
        "switchboard.toml",
    );
    assert_eq!(
        config.global.audit,
        Some(AuditSettings {
            file: PathBuf::from("/home/me/audit.jsonl"),
            redact_keys: strings(&["pin"]),
        })
    );
    let config = parse(
        "[audit]\nfile = \"${AUDIT_DIR:-/var/log}/sb.jsonl\"\n",
        "switchboard.toml",
    );
    assert_eq!(
        config.global.audit.map(|audit| audit.file),
        Some(PathBuf::from("/var/log/sb.jsonl"))
    );
}

#[test]
fn error_bad_prometheus_address() {
    let (path, error) = load_error("errors/telemetry_address.toml");
    assert_eq!(error.key(), "telemetry.prometheus_listen");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: telemetry.prometheus_listen: invalid socket address \"localhost:9464\"; write an \
             IP address and a port, such as \"127.0.0.1:9464\" or \"[::1]:9464\" (host names are \
             not resolved)",
            path.display()
        )
    );
    assert_eq!(
        error_text(
            r#"{"switchboard": {"telemetry": {"prometheus_listen": "127.0.0.1"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.telemetry.prometheus_listen: invalid socket address \
         \"127.0.0.1\"; write an IP address and a port, such as \"127.0.0.1:9464\" or \
         \"[::1]:9464\" (host names are not resolved)"
    );
    assert_eq!(
        error_text(
            "[telemetry]\nprometheus_listen = \"::1:9464\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: telemetry.prometheus_listen: invalid socket address \
         \"::1:9464\"; write an IP address and a port, such as \"127.0.0.1:9464\" or \
         \"[::1]:9464\" (host names are not resolved)"
    );
    assert_eq!(
        error_text(
            "[telemetry]\nprometheus_listen = 9464\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: telemetry.prometheus_listen: expected a string, found a \
         number"
    );
}

#[test]
fn error_bad_sample_ratio() {
    assert_eq!(
        error_text("[telemetry]\nsample_ratio = 1.5\n", "switchboard.toml"),
        "/project/switchboard.toml: telemetry.sample_ratio: expected a number from 0 to 1, \
         found 1.5"
    );
    assert_eq!(
        error_text(
            r#"{"switchboard": {"telemetry": {"sample_ratio": -0.1}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.telemetry.sample_ratio: expected a number from 0 to 1, \
         found -0.1"
    );
    assert_eq!(
        error_text("[telemetry]\nsample_ratio = \"10%\"\n", "switchboard.toml"),
        "/project/switchboard.toml: telemetry.sample_ratio: expected a number from 0 to 1, \
         found a string"
    );
}

#[test]
fn error_other_telemetry_values() {
    let cases = [
        (
            "enabled = \"yes\"",
            "telemetry.enabled: expected true or false, found a string",
        ),
        (
            "service_name = \"\"",
            "telemetry.service_name: cannot be empty",
        ),
        (
            "service_name = 1",
            "telemetry.service_name: expected a string, found a number",
        ),
        (
            "otlp_endpoint = \"grpc://collector:4317\"",
            "telemetry.otlp_endpoint: expected an http:// or https:// URL of an OTLP collector, \
             such as \"http://127.0.0.1:4318\" (or \"http://127.0.0.1:4317\" with otlp_protocol \
             = \"grpc\")",
        ),
        (
            "otlp_protocol = \"http/json\"",
            "telemetry.otlp_protocol: unknown OTLP protocol \"http/json\"; expected \
             \"http/protobuf\" or \"grpc\"",
        ),
        (
            "otlp_protocol = 4317",
            "telemetry.otlp_protocol: expected a string, found a number",
        ),
        (
            "otlp_certificate = \"\"",
            "telemetry.otlp_certificate: the CA certificate's path cannot be empty",
        ),
        (
            "otlp_endpoint = \"${NOPE}\"",
            "telemetry.otlp_endpoint: environment variable \"NOPE\" is not set; set it, or give \
             a default with ${NOPE:-default}",
        ),
    ];
    for (entry, expected) in cases {
        assert_eq!(
            error_text(&format!("[telemetry]\n{entry}\n"), "switchboard.toml"),
            format!("/project/switchboard.toml: {expected}"),
            "{entry}"
        );
    }
    assert_eq!(
        error_text("telemetry = true\n", "switchboard.toml"),
        "/project/switchboard.toml: telemetry: expected a table, found a boolean"
    );
    // The endpoint is not quoted back: a variable may have put a credential in it.
    let text = error_text(
        "[telemetry]\notlp_endpoint = \"collector/?key=${API_KEY}\"\n",
        "switchboard.toml",
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn error_missing_audit_file() {
    let (path, error) = load_error("errors/audit_no_file.json");
    assert_eq!(error.key(), "switchboard.audit");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: switchboard.audit: the audit log has no \"file\"; give the path of the log file \
             (relative to this configuration file)",
            path.display()
        )
    );
    assert_eq!(
        error_text("[audit]\n", "switchboard.toml"),
        "/project/switchboard.toml: audit: the audit log has no \"file\"; give the path of the \
         log file (relative to this configuration file)"
    );
    assert_eq!(
        error_text("[audit]\nfile = \"\"\n", "switchboard.toml"),
        "/project/switchboard.toml: audit.file: the audit log's path cannot be empty"
    );
    assert_eq!(
        error_text("[audit]\nfile = \"${EMPTY}\"\n", "switchboard.toml"),
        "/project/switchboard.toml: audit.file: the audit log's path cannot be empty"
    );
    assert_eq!(
        error_text(r#"{"switchboard": {"audit": "audit.jsonl"}}"#, "mcp.json"),
        "/project/mcp.json: switchboard.audit: expected an object, found a string"
    );
}

#[test]
fn error_bad_redact_keys() {
    assert_eq!(
        error_text(
            "[audit]\nfile = \"a.jsonl\"\nredact_keys = [\"pin\", \"\"]\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: audit.redact_keys[1]: cannot be empty"
    );
    assert_eq!(
        error_text(
            "[audit]\nfile = \"a.jsonl\"\nredact_keys = \"pin\"\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: audit.redact_keys: expected an array of strings, found a \
         string"
    );
    assert_eq!(
        error_text(
            r#"{"switchboard": {"audit": {"file": "a.jsonl", "redact_keys": [1]}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.audit.redact_keys[0]: expected a string, found a number"
    );
}

#[test]
fn error_telemetry_and_audit_typos_suggest_the_key() {
    assert_eq!(
        error_text("[telemetry]\nsample_rate = 0.5\n", "switchboard.toml"),
        "/project/switchboard.toml: telemetry.sample_rate: unknown key \"sample_rate\"; did you \
         mean \"sample_ratio\"?"
    );
    assert_eq!(
        error_text(
            r#"{"switchboard": {"telemetry": {"prometheusListen": "127.0.0.1:9464"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.telemetry.prometheusListen: unknown key \
         \"prometheusListen\"; did you mean \"prometheus_listen\"?"
    );
    assert_eq!(
        error_text("[telemetry]\nexporter = \"otlp\"\n", "switchboard.toml"),
        "/project/switchboard.toml: telemetry.exporter: unknown key \"exporter\"; expected one \
         of: enabled, service_name, sample_ratio, prometheus_listen, otlp_endpoint, \
         otlp_protocol, otlp_certificate"
    );
    assert_eq!(
        error_text(
            "[audit]\nfile = \"a.jsonl\"\nredact = [\"pin\"]\n",
            "switchboard.toml"
        ),
        "/project/switchboard.toml: audit.redact: unknown key \"redact\"; did you mean \
         \"redact_keys\"?"
    );
    assert_eq!(
        error_text("[telemetery]\nenabled = true\n", "switchboard.toml"),
        "/project/switchboard.toml: telemetery: unknown key \"telemetery\"; did you mean \
         \"telemetry\"?"
    );
    assert_eq!(
        error_text(
            r#"{"switchboard": {"audit_log": {"file": "a"}}}"#,
            "mcp.json"
        ),
        "/project/mcp.json: switchboard.audit_log: unknown key \"audit_log\"; did you mean \
         \"audit\"?"
    );
}

#[test]
fn documented_examples_load() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let text = std::fs::read_to_string(&docs).expect("the documentation is readable");
    let mut block: Option<(usize, &str, String)> = None;
    let mut checked = 0;
    for (index, line) in text.lines().enumerate() {
        match (&mut block, line.strip_prefix("```")) {
            (None, Some(lang)) => block = Some((index + 1, lang, String::new())),
            (Some(_), Some("")) => {
                let Some((start, lang, body)) = block.take() else {
                    continue;
                };
                let file = match lang {
                    "toml" => "switchboard.toml",
                    "json" | "jsonc" => "mcp.json",
                    _ => continue,
                };
                let origin = Path::new("/project").join(file);
                let loaded =
                    Config::from_str_with_env(&body, Format::from_path(&origin), &origin, &env);
                assert!(
                    loaded.is_ok(),
                    "the {lang} example at line {start} of docs/configuration.md: {loaded:?}"
                );
                checked += 1;
            }
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) | (Some(_), Some(_)) => {}
        }
    }
    assert!(checked >= 6, "only {checked} examples found");
}

#[test]
fn oauth_settings_of_own_toml() {
    let config = parse(
        "[servers.a]\nurl = \"https://a/mcp\"\noauth = true\n\n\
         [servers.b]\nurl = \"https://b/mcp\"\n\
         oauth = { client_id = \"switchboard\", client_secret_file = \"secrets/b\", \
         scopes = [\"read\", \"write\"], redirect_port = 8976, credentials_file = \"tokens.json\", \
         client_metadata_url = \"https://example.com/client.json\" }\n\n\
         [servers.c]\nurl = \"https://c/mcp\"\n\
         oauth = { grant = \"client_credentials\", client_id = \"svc\", client_secret_env = \"SVC_SECRET\" }\n",
        "switchboard.toml",
    );
    assert_eq!(
        http(&config, "a").auth,
        HttpAuth::OAuth(OAuthSpec::default())
    );
    assert_eq!(
        http(&config, "b").auth,
        HttpAuth::OAuth(OAuthSpec {
            grant: OAuthGrant::AuthorizationCode,
            client_id: Some("switchboard".into()),
            client_secret: Some(Secret::File("/project/secrets/b".into())),
            client_metadata_url: Some("https://example.com/client.json".into()),
            scopes: strings(&["read", "write"]),
            redirect_port: Some(8976),
            credentials: Some("/project/tokens.json".into()),
        })
    );
    assert_eq!(
        http(&config, "c").auth,
        HttpAuth::OAuth(OAuthSpec {
            grant: OAuthGrant::ClientCredentials,
            client_id: Some("svc".into()),
            client_secret: Some(Secret::Env("SVC_SECRET".into())),
            ..OAuthSpec::default()
        })
    );
}

#[test]
fn error_oauth_settings_name_the_key_and_the_fix() {
    let cases = [
        (
            "oauth = { grant = \"password\" }",
            "servers.a.oauth.grant: unknown grant \"password\"; expected \"authorization_code\" \
             (a person logs in with `mcpctl auth login`) or \"client_credentials\" (an \
             unattended service)",
        ),
        (
            "oauth = { grant = \"client_credentials\", client_id = \"svc\" }",
            "servers.a.oauth: the client_credentials grant needs \"client_id\" and \
             \"client_secret_env\" or \"client_secret_file\"",
        ),
        (
            "oauth = { client_secret_env = \"not a name!\" }",
            "servers.a.oauth.client_secret_env: expected the name of an environment variable \
             that holds the client secret (letters, digits and \"_\"), not the secret itself",
        ),
        (
            "oauth = { redirect_port = 70000 }",
            "servers.a.oauth.redirect_port: 70000 is not a port (1 to 65535)",
        ),
        (
            "oauth = { scope = [\"a\"] }",
            "servers.a.oauth.scope: unknown key \"scope\"; did you mean \"scopes\"?",
        ),
        (
            "bearer_token_env = \"TOKEN\"\noauth = true",
            "servers.a.oauth: a server authorizes with either \"bearer_token_env\" or \"oauth\"; \
             remove one",
        ),
    ];
    for (entry, expected) in cases {
        let text = error_text(
            &format!("[servers.a]\nurl = \"https://a/mcp\"\n{entry}\n"),
            "switchboard.toml",
        );
        assert!(
            text.starts_with(&format!("/project/switchboard.toml: {expected}")),
            "{entry}: {text}"
        );
    }
    let stdio = error_text(
        "[servers.a]\ncommand = \"x\"\noauth = true\n",
        "switchboard.toml",
    );
    assert!(
        stdio.contains("\"oauth\" applies only to HTTP servers"),
        "{stdio}"
    );
}

#[test]
fn naming_policy_renames_and_descriptions() {
    let text = r#"
[routing]
naming = "never"

[servers.calc]
command = "calc-server"
priority = 2

[servers.calc.tools.add]
rename = "plus"
description = "Adds two numbers."
"#;
    let config =
        Config::from_str(text, Format::Toml, Path::new("/etc/sb/switchboard.toml")).expect("valid");
    assert_eq!(
        config.global.naming,
        switchboard::config::NamingPolicy::Never
    );
    let tools = &config.servers[0].tools;
    assert_eq!(tools.renames.get("add").map(String::as_str), Some("plus"));
    assert_eq!(
        tools.descriptions.get("add").map(String::as_str),
        Some("Adds two numbers.")
    );
    let bad = "[routing]\nnaming = \"sometimes\"\n";
    let error = Config::from_str(bad, Format::Toml, Path::new("/etc/sb/switchboard.toml"))
        .expect_err("bad policy");
    assert_eq!(
        error.to_string(),
        "/etc/sb/switchboard.toml: routing.naming: unknown naming policy \"sometimes\"; expected \"on-collision\", \"always\" or \"never\""
    );
}
