//! The `auth/*` scenarios: Switchboard's OAuth login and authorized connections against the
//! suite's mock authorization and resource servers.
//!
//! Each scenario logs in ([`auth::login`]: probe for the challenge, discovery, registration,
//! authorization, token), connects with the stored tokens and exercises the server. A server
//! that then refuses the token (401), or wants another scope (403 `insufficient_scope`), gets a
//! new login with its challenge — at most [`MAX_LOGINS`] in all, so that a server that will
//! never be satisfied does not keep the client in a loop.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use switchboard_transport::{
    Connection, HttpAuth, OAuthGrant, OAuthSpec, Secret, ServerSpec, TransportError, TransportSpec,
    auth::{self, Authorizer, LoginError, LoginOptions},
};

use crate::{Failure, Run, arguments_for, call};

/// Most logins of one scenario.
const MAX_LOGINS: usize = 3;

/// The client ID metadata document the suite's authorization servers accept (SEP-991).
const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";

/// The redirect URI sent to the mock authorization servers; nothing listens there, the
/// redirect is read from the authorization response instead.
const REDIRECT_URI: &str = "http://localhost:3000/callback";

/// The "browser" of the scenarios: fetches the authorization URL and reads where the
/// authorization server redirects, without following it.
struct HeadlessBrowser {
    http: reqwest::Client,
}

impl Authorizer for HeadlessBrowser {
    fn redirect_uri(&self) -> String {
        REDIRECT_URI.to_owned()
    }

    async fn authorize(&self, authorization_url: &str) -> Result<String, LoginError> {
        let failed = |e: String| LoginError::Authorization(e);
        let response = self
            .http
            .get(authorization_url)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                failed(format!(
                    "the authorization endpoint answered {} without a redirect",
                    response.status()
                ))
            })?;
        let base = reqwest::Url::parse(authorization_url).map_err(|e| failed(e.to_string()))?;
        base.join(location)
            .map(String::from)
            .map_err(|e| failed(e.to_string()))
    }
}

/// A private folder for the scenario's credential store and client secret, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, Failure> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "switchboard-conformance-{}-{nanos}",
            std::process::id()
        ));
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self(dir))
    }

    /// Writes a secret readable only by the user; returns its path.
    fn secret(&self, value: &str) -> Result<PathBuf, Failure> {
        let path = self.0.join("client-secret");
        let mut file = fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(value.as_bytes())?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What a scenario does once connected.
#[derive(Clone, Copy)]
enum Exercise {
    /// List the tools and call each one.
    CallTools,
    /// List the tools three times (the authorization server changes in between).
    ListThrice,
}

/// Runs one `auth/*` scenario.
pub(crate) async fn scenario(name: &str, run: &Run) -> Result<(), Failure> {
    let scratch = Scratch::new()?;
    let mut oauth = OAuthSpec {
        credentials: Some(scratch.0.join("credentials.json")),
        ..OAuthSpec::default()
    };
    let mut exercise = Exercise::CallTools;
    match name {
        "auth/pre-registration" => {
            oauth.client_id = run.context.client_id.clone();
            if let Some(secret) = &run.context.client_secret {
                oauth.client_secret = Some(Secret::File(scratch.secret(secret)?));
            }
        }
        "auth/client-credentials-basic" => {
            oauth.grant = OAuthGrant::ClientCredentials;
            oauth.client_id = Some(
                run.context
                    .client_id
                    .clone()
                    .unwrap_or_else(|| "conformance-test-client".to_owned()),
            );
            let secret = run
                .context
                .client_secret
                .clone()
                .unwrap_or_else(|| "conformance-test-secret".to_owned());
            oauth.client_secret = Some(Secret::File(scratch.secret(&secret)?));
        }
        "auth/authorization-server-migration" => exercise = Exercise::ListThrice,
        "auth/client-credentials-jwt"
        | "auth/cross-app-access-complete-flow"
        | "auth/enterprise-managed-authorization"
        | "auth/dpop"
        | "auth/dpop-nonce"
        | "auth/wif-jwt-bearer" => {
            return Err(format!("{name} is an extension Switchboard does not implement").into());
        }
        _ => oauth.client_metadata_url = Some(CLIENT_METADATA_URL.to_owned()),
    }
    let mut spec = run.spec();
    if let TransportSpec::Http(http) = &mut spec.transport {
        http.auth = HttpAuth::OAuth(oauth);
    }
    authorized(&spec, exercise).await
}

/// Logs in, then connects and exercises the server, logging in again (with the server's
/// challenge) when it refuses the credentials.
async fn authorized(spec: &ServerSpec, exercise: Exercise) -> Result<(), Failure> {
    let browser = HeadlessBrowser {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?,
    };
    auth::login(spec, &browser, LoginOptions::default()).await?;
    let mut logins = 1;
    loop {
        let connection = Connection::start(spec.clone());
        let outcome = match connection.wait_ready(Duration::from_secs(15)).await {
            Ok(()) => run_exercise(&connection, exercise).await,
            Err(e) => Err(e),
        };
        let needs_login = connection.status().needs_login;
        connection.shutdown().await;
        let error = match outcome {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let refused = needs_login || matches!(error, TransportError::Unauthorized { .. });
        if !refused || logins >= MAX_LOGINS {
            return Err(error.into());
        }
        tracing::info!(%error, "logging in again");
        let options = LoginOptions {
            challenge: error.auth_challenge().map(str::to_owned),
            ..LoginOptions::default()
        };
        auth::login(spec, &browser, options).await?;
        logins += 1;
    }
}

async fn run_exercise(connection: &Connection, exercise: Exercise) -> Result<(), TransportError> {
    match exercise {
        Exercise::CallTools => {
            let tools = connection.list_tools().await?;
            for tool in &tools {
                let params = call(tool.name.to_string(), arguments_for(tool));
                match connection.call_tool(params).await {
                    Ok(_) => {}
                    Err(e @ TransportError::Unauthorized { .. }) => return Err(e),
                    Err(e) => tracing::info!(error = %e, "tool call failed"),
                }
            }
            Ok(())
        }
        Exercise::ListThrice => {
            for _ in 0..3 {
                connection.list_tools().await?;
            }
            Ok(())
        }
    }
}
