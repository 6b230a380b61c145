//! `mcpctl auth`: log in to OAuth-protected HTTP servers, show and forget the stored logins.
//!
//! The flows and the credential store are `switchboard::transport::auth`'s; this module only
//! parses arguments, talks to the person and prints.

use std::time::Duration;

use clap::Subcommand;
use serde::Serialize;
use switchboard::{
    config::{Config, ServerConfig},
    transport::{
        HttpAuth, HttpSpec, OAuthGrant, TransportSpec,
        auth::{self, LoginOptions, LoginStatus, LoopbackAuthorizer, TokenStore},
    },
};

use crate::{EXIT_FAILURE, EXIT_USAGE};

/// `mcpctl auth` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Log in to an HTTP server: opens the authorization page in the browser (or prints its
    /// URL) and receives the answer on a loopback port. For a server configured with the
    /// client-credentials grant, fetches a token instead.
    Login {
        /// The server, as named in the configuration.
        server: String,
        /// Ask for this scope too (repeatable), e.g. one the server said it needs.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Print the URL only; do not start a browser.
        #[arg(long)]
        no_browser: bool,
        /// The loopback port of the redirect (default: the configured `redirect_port`, else a
        /// free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Show, for every HTTP server, how it is authorized and the state of its login.
    Status,
    /// Forget the stored login (tokens and client registration) of a server.
    Logout {
        /// The server, as named in the configuration.
        server: String,
    },
}

/// One line of `mcpctl auth status`.
#[derive(Debug, Serialize)]
struct ServerAuth {
    server: String,
    url: String,
    /// `none`, `bearer`, `oauth` or `client_credentials`.
    method: &'static str,
    /// `logged in`, `expired`, `not logged in`, …
    state: String,
    login: Option<LoginStatus>,
    store: Option<String>,
}

/// Runs an `auth` subcommand; returns the exit code.
pub(crate) async fn run(command: &AuthCommand, config: &Config, json: bool) -> u8 {
    match command {
        AuthCommand::Login {
            server,
            scopes,
            no_browser,
            port,
        } => login(config, server, scopes, *no_browser, *port).await,
        AuthCommand::Status => status(config, json),
        AuthCommand::Logout { server } => logout(config, server),
    }
}

/// The server's configuration and HTTP settings.
fn http_server<'c>(config: &'c Config, name: &str) -> Result<(&'c ServerConfig, &'c HttpSpec), u8> {
    let Some(server) = config.server(name) else {
        let known: Vec<&str> = config
            .servers
            .iter()
            .filter(|s| matches!(s.spec.transport, TransportSpec::Http(_)))
            .map(ServerConfig::name)
            .collect();
        eprintln!(
            "mcpctl: no server {name:?} in the configuration; HTTP servers: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
        return Err(EXIT_USAGE);
    };
    match &server.spec.transport {
        TransportSpec::Http(http) => Ok((server, http)),
        TransportSpec::Stdio(_) => {
            eprintln!("mcpctl: server {name} is a stdio server; only HTTP servers log in");
            Err(EXIT_USAGE)
        }
    }
}

/// The credential store of a server.
fn store_of(http: &HttpSpec) -> Result<TokenStore, String> {
    match &http.auth {
        HttpAuth::OAuth(oauth) => oauth.store(),
        _ => TokenStore::open_default(),
    }
    .map_err(|e| e.to_string())
}

async fn login(
    config: &Config,
    name: &str,
    scopes: &[String],
    no_browser: bool,
    port: Option<u16>,
) -> u8 {
    let (server, http) = match http_server(config, name) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let configured_port = match &http.auth {
        HttpAuth::OAuth(oauth) => oauth.redirect_port,
        _ => None,
    };
    let authorizer = match LoopbackAuthorizer::bind(port.or(configured_port)).await {
        Ok(authorizer) => authorizer,
        Err(error) => {
            eprintln!("mcpctl: {error}");
            return EXIT_FAILURE;
        }
    };
    let authorizer = authorizer.open_browser(!no_browser).on_url(|url, opened| {
        if opened {
            eprintln!("Opened the authorization page in your browser. If it did not open, visit:");
        } else {
            eprintln!("Open this page to authorize mcpctl:");
        }
        eprintln!("\n  {url}\n");
        eprintln!("Waiting for the authorization (5 minutes)...");
    });
    let options = LoginOptions {
        challenge: None,
        scopes: scopes.to_vec(),
    };
    match auth::login(&server.spec, &authorizer, options).await {
        Ok(outcome) => {
            let status = &outcome.status;
            let scopes = if status.scopes.is_empty() {
                String::new()
            } else {
                format!(" with scopes {}", status.scopes.join(" "))
            };
            println!(
                "Logged in to {name}{scopes}{}. Tokens are stored in {}.",
                expiry(status)
                    .map(|e| format!("; the access token {e}"))
                    .unwrap_or_default(),
                outcome.store.display()
            );
            0
        }
        Err(error) => {
            eprintln!("mcpctl: {error}");
            EXIT_FAILURE
        }
    }
}

/// "expires in 59m", "expired", or nothing when unknown.
fn expiry(status: &LoginStatus) -> Option<String> {
    let left = status.expires_in()?;
    if left.is_zero() {
        return Some("has expired".to_owned());
    }
    Some(format!("expires in {}", short_duration(left)))
}

fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d", secs / 86_400),
    }
}

fn status(config: &Config, json: bool) -> u8 {
    let mut rows = Vec::new();
    for server in &config.servers {
        let TransportSpec::Http(http) = &server.spec.transport else {
            continue;
        };
        let method = match &http.auth {
            HttpAuth::None => "none",
            HttpAuth::BearerEnv(_) => "bearer",
            HttpAuth::OAuth(o) if o.grant == OAuthGrant::ClientCredentials => "client_credentials",
            HttpAuth::OAuth(_) => "oauth",
        };
        let (login, store, state) = match (&http.auth, store_of(http)) {
            (HttpAuth::BearerEnv(var), _) => {
                let set = std::env::var_os(var).is_some();
                let state = if set {
                    format!("token from ${var}")
                } else {
                    format!("${var} is not set")
                };
                (None, None, state)
            }
            (_, Err(error)) => (None, None, error),
            (_, Ok(store)) => match store.status(&http.url) {
                Ok(login) => {
                    let state = login_state(login.as_ref(), method);
                    (login, Some(store.path().display().to_string()), state)
                }
                Err(error) => (None, None, error.to_string()),
            },
        };
        rows.push(ServerAuth {
            server: server.name().to_owned(),
            url: http.url.clone(),
            method,
            state,
            login,
            store,
        });
    }
    if json {
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("mcpctl: {error}");
                return EXIT_FAILURE;
            }
        }
        return 0;
    }
    if rows.is_empty() {
        println!("No HTTP servers in the configuration.");
        return 0;
    }
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(["SERVER", "AUTH", "STATE", "SCOPES", "URL"]);
    for row in &rows {
        let scopes = row
            .login
            .as_ref()
            .map(|l| l.scopes.join(" "))
            .unwrap_or_default();
        table.add_row([
            row.server.as_str(),
            row.method,
            row.state.as_str(),
            scopes.as_str(),
            row.url.as_str(),
        ]);
    }
    println!("{table}");
    0
}

/// The state of a login, in words.
fn login_state(login: Option<&LoginStatus>, method: &str) -> String {
    let Some(login) = login.filter(|l| l.has_token) else {
        return match method {
            "none" => "no login (none needed unless the server asks)".to_owned(),
            _ => "not logged in".to_owned(),
        };
    };
    match (login.expires_in(), login.refreshable) {
        (Some(left), false) if left.is_zero() => "expired; log in again".to_owned(),
        (Some(left), true) if left.is_zero() => "logged in (refreshed on next use)".to_owned(),
        (Some(left), _) => format!("logged in, token expires in {}", short_duration(left)),
        (None, _) => "logged in".to_owned(),
    }
}

fn logout(config: &Config, name: &str) -> u8 {
    let (_, http) = match http_server(config, name) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let store = match store_of(http) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("mcpctl: {error}");
            return EXIT_FAILURE;
        }
    };
    match store.remove(&http.url) {
        Ok(true) => {
            println!("Logged out of {name}.");
            0
        }
        Ok(false) => {
            println!("No login stored for {name}.");
            0
        }
        Err(error) => {
            eprintln!("mcpctl: {error}");
            EXIT_FAILURE
        }
    }
}
