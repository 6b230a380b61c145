//! Credentials for HTTP servers: a bearer token from the environment, or OAuth 2.1 on rmcp's
//! `auth` feature.
//!
//! rmcp does the protocol work — protected-resource metadata (RFC 9728) and authorization
//! server discovery (RFC 8414, OpenID Connect), client registration (pre-registered, client ID
//! metadata document, or dynamic registration), PKCE, RFC 8707 resource binding, `iss`
//! validation (RFC 9207), scope selection and token refresh. This module adds what an
//! application needs around it:
//!
//! - [`login`]: the authorization-code flow for a person, driven by an [`Authorizer`] that
//!   shows the authorization page and returns the redirect ([`LoopbackAuthorizer`] opens the
//!   browser and receives the redirect on a loopback port); for a server configured with the
//!   client-credentials grant it fetches a token instead;
//! - [`TokenStore`]: the credential store file, readable only by the user and shared safely by
//!   concurrent processes, which the [`Connection`](crate::Connection) of an HTTP server reads
//!   its tokens from (refreshing them before they expire);
//! - step-up: a server that answers 403 `insufficient_scope` fails the request with
//!   [`TransportError::Unauthorized`](crate::TransportError::Unauthorized) carrying the
//!   challenge; [`login`] with that challenge asks for the union of the granted and the
//!   required scopes.

mod browser;
mod store;

use std::{fmt, future::Future, path::PathBuf, time::Duration};

use rmcp::{
    service::ClientServiceExt,
    transport::{
        AuthorizationManager, AuthorizationRequest, AuthorizationSession, ClientCredentialsConfig,
        StreamableHttpClientTransport, WWWAuthenticateParams,
        auth::{AuthError, AuthorizationCallback, AuthorizationMetadata, OAuthClientConfig},
    },
};

pub use browser::LoopbackAuthorizer;
pub use store::{CREDENTIALS_ENV, LoginStatus, StoreError, TokenStore};
pub(crate) use store::{Login, Registration, TokenFacts, now_secs};

use crate::{HttpSpec, ServerSpec, TransportSpec, error::error_chain};

/// How the requests to an HTTP server are authorized.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum HttpAuth {
    /// Nothing configured: requests go out without credentials, unless a login for the
    /// server's URL is in the default [`TokenStore`] (from `mcpctl auth login`), whose tokens
    /// are then used and refreshed.
    #[default]
    None,
    /// A static bearer token, read from this environment variable when connecting.
    BearerEnv(String),
    /// OAuth 2.1.
    OAuth(OAuthSpec),
}

/// OAuth settings of one server. Everything is optional: with nothing set, the client
/// registers itself dynamically and the server's metadata decides the scopes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OAuthSpec {
    /// How tokens are obtained.
    pub grant: OAuthGrant,
    /// A client ID registered with the authorization server beforehand. Required by the
    /// client-credentials grant; otherwise a client ID metadata document or dynamic
    /// registration is used.
    pub client_id: Option<String>,
    /// The secret of a confidential pre-registered client.
    pub client_secret: Option<Secret>,
    /// The HTTPS URL of this client's metadata document (SEP-991), used as the client ID when
    /// the authorization server supports it.
    pub client_metadata_url: Option<String>,
    /// Scopes to ask for; by default those of the server's challenge or metadata.
    pub scopes: Vec<String>,
    /// The loopback port of the redirect URI during `mcpctl auth login`; by default a free
    /// port chosen at login time. Pre-registered clients usually need a fixed one.
    pub redirect_port: Option<u16>,
    /// The credential store file; by default [`TokenStore::default_path`].
    pub credentials: Option<PathBuf>,
}

impl OAuthSpec {
    /// The credential store these settings use.
    ///
    /// # Errors
    /// When no store is configured and the default location is unknown.
    pub fn store(&self) -> Result<TokenStore, StoreError> {
        match &self.credentials {
            Some(path) => Ok(TokenStore::at(path)),
            None => TokenStore::open_default(),
        }
    }
}

/// The OAuth grant a server's tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OAuthGrant {
    /// A person authorizes in a browser (`mcpctl auth login`); the tokens are refreshed
    /// without them afterwards.
    #[default]
    AuthorizationCode,
    /// An unattended service authenticates with its client ID and secret (OAuth client
    /// credentials, SEP-1046).
    ClientCredentials,
}

/// Where a secret comes from; the secret itself never appears in configuration.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// This environment variable.
    Env(String),
    /// The content of this file (surrounding whitespace removed).
    File(PathBuf),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(var) => write!(f, "Env({var})"),
            Self::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

impl Secret {
    /// Reads the secret.
    ///
    /// # Errors
    /// An unset variable or an unreadable or empty file.
    pub fn read(&self) -> Result<String, LoginError> {
        let value = match self {
            Self::Env(var) => std::env::var(var).map_err(|_| {
                LoginError::Invalid(format!(
                    "the client secret variable {var} is not set in the environment"
                ))
            })?,
            Self::File(path) => std::fs::read_to_string(path).map_err(|e| {
                LoginError::Invalid(format!(
                    "cannot read the client secret from {}: {e}",
                    path.display()
                ))
            })?,
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(LoginError::Invalid(format!(
                "the client secret from {self:?} is empty"
            )));
        }
        Ok(value)
    }
}

/// A failed login.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The server's settings do not allow a login.
    #[error("{0}")]
    Invalid(String),
    /// The credential store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server could not be reached.
    #[error("cannot reach server {server}: {reason}")]
    Unreachable {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// Discovery, registration, authorization or the token exchange failed.
    #[error("authorization with server {server} failed: {reason}")]
    OAuth {
        /// The server.
        server: String,
        /// Why (never a token).
        reason: String,
    },
    /// The browser step failed: no redirect arrived, or it carried an error.
    #[error("the authorization was not completed: {0}")]
    Authorization(String),
}

/// Shows the authorization page to whoever can grant access and returns where the
/// authorization server redirected afterwards.
pub trait Authorizer: Send + Sync {
    /// The redirect URI to register and send (it must reach [`Authorizer::authorize`]).
    fn redirect_uri(&self) -> String;

    /// Shows `authorization_url` and returns the full redirect URL, with its `code`, `state`
    /// and `iss` parameters.
    fn authorize(
        &self,
        authorization_url: &str,
    ) -> impl Future<Output = Result<String, LoginError>> + Send;
}

/// Options of one [`login`].
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// The server's `WWW-Authenticate` challenge (from a 401, or a 403 `insufficient_scope`),
    /// when the caller has one; otherwise the server is probed for it.
    pub challenge: Option<String>,
    /// Scopes to ask for on top of the configured ones.
    pub scopes: Vec<String>,
}

/// What a successful [`login`] stored.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// The stored login.
    pub status: LoginStatus,
    /// The credential store.
    pub store: PathBuf,
}

/// The HTTP settings and URL of a server.
fn http_of(spec: &ServerSpec) -> Result<&HttpSpec, LoginError> {
    match &spec.transport {
        TransportSpec::Http(http) => Ok(http),
        TransportSpec::Stdio(_) => Err(LoginError::Invalid(format!(
            "server {} is a stdio server; only HTTP servers use OAuth",
            spec.name
        ))),
    }
}

/// The OAuth settings of a server: configured ones, or the defaults when none are.
pub(crate) fn oauth_of(spec: &ServerSpec, http: &HttpSpec) -> Result<OAuthSpec, LoginError> {
    match &http.auth {
        HttpAuth::OAuth(oauth) => Ok(oauth.clone()),
        HttpAuth::None => Ok(OAuthSpec::default()),
        HttpAuth::BearerEnv(var) => Err(LoginError::Invalid(format!(
            "server {} uses the bearer token in ${var}; there is nothing to log in to",
            spec.name
        ))),
    }
}

/// Obtains tokens for an HTTP server and saves them in its credential store.
///
/// With the authorization-code grant: discovers the authorization server from the server's
/// challenge (probing the server when `options` has none), registers or identifies the
/// client, asks for scopes — the union of those granted before, the challenge's and the
/// configured ones, else what the server's metadata suggests — and lets `authorizer` show the
/// authorization page. With the client-credentials grant: fetches a token with the client's
/// ID and secret.
///
/// # Errors
/// A stdio server, a server with a static bearer token, an unreachable server, or a failed
/// authorization.
pub async fn login(
    spec: &ServerSpec,
    authorizer: &impl Authorizer,
    options: LoginOptions,
) -> Result<LoginOutcome, LoginError> {
    let http = http_of(spec)?;
    let oauth = oauth_of(spec, http)?;
    let store = oauth.store()?;
    let url = http.url.as_str();
    let challenge = match options.challenge {
        Some(challenge) => Some(challenge),
        None => probe_challenge(spec, http).await?,
    };
    let oauth_error = |e: AuthError| LoginError::OAuth {
        server: spec.name.to_string(),
        reason: e.to_string(),
    };
    let mut manager = new_manager(url).await.map_err(oauth_error)?;
    manager.set_credential_store(store.for_url(url));
    let metadata = manager
        .resolve_metadata_from_challenge(challenge.as_deref())
        .await
        .map_err(oauth_error)?
        .metadata;
    manager.set_metadata(metadata.clone());

    if oauth.grant == OAuthGrant::ClientCredentials {
        exchange_client_credentials(spec, &oauth, &mut manager)
            .await
            .map_err(oauth_error)?;
    } else {
        authorize(
            spec,
            &oauth,
            &store,
            manager,
            &metadata,
            authorizer,
            challenge.as_deref(),
            &options.scopes,
        )
        .await?;
    }

    let name = spec.name.to_string();
    let status = tokio::task::spawn_blocking({
        let store = store.clone();
        let url = url.to_owned();
        move || {
            store.update(&url, |login| {
                let login = login.get_or_insert_with(Login::default);
                login.server = Some(name);
                if challenge.is_some() {
                    login.challenge = challenge;
                }
                login.status(&url)
            })
        }
    })
    .await
    .map_err(|e| LoginError::Invalid(e.to_string()))??;
    store.tighten_permissions();
    Ok(LoginOutcome {
        status,
        store: store.path().to_owned(),
    })
}

/// The authorization-code flow, up to the stored tokens.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces of one flow"
)]
async fn authorize(
    spec: &ServerSpec,
    oauth: &OAuthSpec,
    store: &TokenStore,
    mut manager: AuthorizationManager,
    metadata: &AuthorizationMetadata,
    authorizer: &impl Authorizer,
    challenge: Option<&str>,
    extra_scopes: &[String],
) -> Result<(), LoginError> {
    let server = spec.name.to_string();
    let oauth_error = |e: AuthError| LoginError::OAuth {
        server: server.clone(),
        reason: e.to_string(),
    };
    let url = http_of(spec)?.url.as_str();
    let previous = {
        let store = store.clone();
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || store.login(&url))
            .await
            .map_err(|e| LoginError::Invalid(e.to_string()))??
            .unwrap_or_default()
    };

    // Scopes: what was granted before, plus what the server now asks for (SEP-2350), plus the
    // configured ones. With none of these, rmcp picks them from the challenge or the metadata.
    let mut scopes: Vec<String> = Vec::new();
    let granted = previous
        .credentials
        .as_ref()
        .filter(|c| c.issuer == metadata.issuer)
        .map(|c| c.granted_scopes.clone())
        .unwrap_or_default();
    let challenged = challenge
        .and_then(|c| reqwest::Url::parse(url).ok().map(|base| (c, base)))
        .and_then(|(c, base)| WWWAuthenticateParams::parse(c, &base).scope)
        .map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .unwrap_or_default();
    if !granted.is_empty() {
        scopes.extend(granted);
        scopes.extend(challenged);
    }
    scopes.extend(oauth.scopes.iter().cloned());
    scopes.extend(extra_scopes.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    scopes.retain(|s| seen.insert(s.clone()));

    let redirect_uri = authorizer.redirect_uri();
    let mut request =
        AuthorizationRequest::new(redirect_uri.clone()).with_client_name("Switchboard");
    if scopes.is_empty() {
        request = request.with_initial_scope_selection();
    } else {
        request = request.with_scopes(scopes.clone());
    }
    let supports_cimd = metadata
        .additional_fields
        .get("client_id_metadata_document_supported")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let mut registered = None;
    if let Some(client_id) = &oauth.client_id {
        request = request.with_preregistered_client(client_id);
        if let Some(secret) = &oauth.client_secret {
            request = request.with_client_secret(secret.read()?);
        }
    } else if let Some(document) = oauth.client_metadata_url.as_ref().filter(|_| supports_cimd) {
        request = request.with_client_metadata_url(document);
    } else if let Some(registration) = previous
        .registration
        .filter(|r| r.issuer == metadata.issuer && r.redirect_uri == redirect_uri)
    {
        // The client registered with this authorization server before.
        request = request.with_preregistered_client(&registration.client_id);
        if let Some(secret) = &registration.client_secret {
            request = request.with_client_secret(secret);
        }
    } else {
        let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let config = manager
            .register_client("Switchboard", &redirect_uri, &scope_refs)
            .await
            .map_err(oauth_error)?;
        request = request.with_preregistered_client(&config.client_id);
        if let Some(secret) = &config.client_secret {
            request = request.with_client_secret(secret);
        }
        registered = Some(Registration {
            client_id: config.client_id,
            client_secret: config.client_secret,
            redirect_uri: redirect_uri.clone(),
            issuer: metadata.issuer.clone(),
        });
    }

    let session = AuthorizationSession::new(manager, request)
        .await
        .map_err(|(_, e)| oauth_error(e))?;
    let redirect = authorizer
        .authorize(session.get_authorization_url())
        .await?;
    let callback =
        AuthorizationCallback::from_redirect_url(&redirect).map_err(|_| {
            LoginError::Authorization(redirect_error(&redirect).unwrap_or_else(|| {
                "the redirect carries no authorization code and state".to_owned()
            }))
        })?;
    session
        .handle_callback_with_issuer(
            &callback.code,
            &callback.csrf_token,
            callback.issuer.as_deref(),
        )
        .await
        .map_err(oauth_error)?;

    if let Some(registration) = registered {
        let store = store.clone();
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || {
            store.update(&url, |login| {
                login.get_or_insert_with(Login::default).registration = Some(registration);
            })
        })
        .await
        .map_err(|e| LoginError::Invalid(e.to_string()))??;
    }
    Ok(())
}

/// The `error` and `error_description` of a redirect that reports a refusal.
fn redirect_error(redirect: &str) -> Option<String> {
    let url = reqwest::Url::parse(redirect).ok()?;
    let mut error = None;
    let mut description = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    let error = error?;
    Some(match description {
        Some(d) => format!("the authorization server answered {error}: {d}"),
        None => format!("the authorization server answered {error}"),
    })
}

/// An authorization manager for `url`. Discovered metadata may name private or loopback
/// addresses only when the server itself is at one (rmcp's protection against metadata
/// pointing the client at internal services).
pub(crate) async fn new_manager(url: &str) -> Result<AuthorizationManager, AuthError> {
    AuthorizationManager::new(url).await
}

/// The client-credentials exchange: the token lands in the manager's credential store.
pub(crate) async fn exchange_client_credentials(
    spec: &ServerSpec,
    oauth: &OAuthSpec,
    manager: &mut AuthorizationManager,
) -> Result<(), AuthError> {
    let http = match &spec.transport {
        TransportSpec::Http(http) => http,
        TransportSpec::Stdio(_) => return Err(AuthError::NoAuthorizationSupport),
    };
    let Some(client_id) = oauth.client_id.clone() else {
        return Err(AuthError::ClientCredentialsError(
            "the client-credentials grant needs a client_id".to_owned(),
        ));
    };
    let client_secret = match &oauth.client_secret {
        Some(secret) => secret
            .read()
            .map_err(|e| AuthError::ClientCredentialsError(e.to_string()))?,
        None => {
            return Err(AuthError::ClientCredentialsError(
                "the client-credentials grant needs a client secret".to_owned(),
            ));
        }
    };
    let config = ClientCredentialsConfig::ClientSecret {
        client_id,
        client_secret,
        scopes: oauth.scopes.clone(),
        resource: Some(http.url.clone()),
    };
    manager.validate_client_credentials_metadata(&config)?;
    manager.configure_client_credentials(&config)?;
    manager.exchange_client_credentials(&config).await?;
    Ok(())
}

/// Configures the manager's client from what the store and the settings know: the stored
/// tokens' client, with the secret of the settings or of the dynamic registration.
pub(crate) fn configure_stored_client(
    manager: &mut AuthorizationManager,
    oauth: &OAuthSpec,
    login: &Login,
) -> Result<(), AuthError> {
    let Some(client_id) = login.credentials.as_ref().map(|c| c.client_id.clone()) else {
        return Ok(());
    };
    let secret = if oauth.client_id.as_deref() == Some(client_id.as_str()) {
        match &oauth.client_secret {
            Some(secret) => Some(
                secret
                    .read()
                    .map_err(|e| AuthError::InternalError(e.to_string()))?,
            ),
            None => None,
        }
    } else {
        login
            .registration
            .as_ref()
            .filter(|r| r.client_id == client_id)
            .and_then(|r| r.client_secret.clone())
    };
    if let Some(secret) = secret {
        let redirect = login
            .registration
            .as_ref()
            .map(|r| r.redirect_uri.clone())
            .unwrap_or_else(|| "http://127.0.0.1/callback".to_owned());
        manager.configure_client(
            OAuthClientConfig::new(client_id, redirect).with_client_secret(secret),
        )?;
    }
    Ok(())
}

/// Connects without credentials to learn the server's `WWW-Authenticate` challenge: from the
/// handshake, or else from `tools/list` (some servers let anyone connect and protect only
/// their operations). `None` when the server asked for nothing.
async fn probe_challenge(spec: &ServerSpec, http: &HttpSpec) -> Result<Option<String>, LoginError> {
    let unreachable = |reason: String| LoginError::Unreachable {
        server: spec.name.to_string(),
        reason,
    };
    let config = crate::http::base_config(http).map_err(|e| unreachable(e.to_string()))?;
    let transport = StreamableHttpClientTransport::with_client(crate::http::http_client(), config);
    let mode = crate::connection::lifecycle(spec.protocol);
    let handshake = ().serve_with_lifecycle(transport, mode);
    let running = match tokio::time::timeout(spec.handshake_timeout, handshake).await {
        Err(_) => {
            return Err(unreachable(format!(
                "no handshake within {:?}",
                spec.handshake_timeout
            )));
        }
        Ok(Err(error)) => {
            return match error.auth_challenge() {
                Some(challenge) => Ok(Some(challenge.to_owned())),
                None => Err(unreachable(error_chain(&error))),
            };
        }
        Ok(Ok(running)) => running,
    };
    let listed = tokio::time::timeout(Duration::from_secs(30), running.list_tools(None)).await;
    let challenge = match listed {
        Ok(Err(error)) => error.auth_challenge().map(str::to_owned),
        _ => None,
    };
    let _ = running.cancel().await;
    Ok(challenge)
}
