//! Streamable-HTTP sessions: the transport, its credentials and the handshake.
//!
//! Credentials, by [`HttpAuth`]:
//! - a bearer token from an environment variable goes out as a static `Authorization` header;
//! - OAuth, or a server with a login in the credential store, gets rmcp's `AuthClient`, which
//!   reads the token from the store on every request, refreshes it before it expires (under
//!   the store's refresh lock, so concurrent processes never spend the same refresh token) and
//!   lets a 401 challenge through to the caller; tokens of the client-credentials grant are
//!   fetched again before they expire by a task that lives as long as the session;
//! - otherwise requests go out without credentials.
//!
//! A server that refuses the handshake with 401 fails the attempt with
//! [`ConnectError::Unauthorized`], which names the command that fixes it.

use std::{collections::HashMap, sync::Arc, time::Duration};

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::{
    service::{
        ClientInitializeError, ClientLifecycleMode, ClientServiceExt, Peer, RoleClient,
        RunningService,
    },
    transport::{
        AuthClient, AuthorizationManager, ClientCredentialsConfig, StreamableHttpClientTransport,
        auth::AuthError,
        common::client_side_sse::ExponentialBackoff,
        streamable_http_client::{StreamableHttpClient, StreamableHttpClientTransportConfig},
    },
};
use tokio::sync::Mutex;

use crate::{
    ConnectError, HttpSpec, ServerSpec,
    auth::{self, HttpAuth, Login, OAuthGrant, OAuthSpec, TokenFacts, TokenStore},
    error::error_chain,
    events::EventHandler,
};

/// A session of an HTTP server.
pub(crate) type HttpSession = RunningService<RoleClient, EventHandler>;

/// Client-credentials tokens are fetched again this long before they expire.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// The reqwest client of every HTTP session: no idle connection pool (a pooled client stalls
/// ~40 ms per call on SSE responses, see rmcp's default client) and only same-origin 307/308
/// redirects, which keep the method and body and never replay headers to another host.
pub(crate) fn http_client() -> reqwest::Client {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(
            attempt.status(),
            reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
        );
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !keeps_body || !same_origin || attempt.previous().len() > 10 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(redirects)
        .build()
        .unwrap_or_default()
}

/// The transport settings of `spec`, without credentials.
pub(crate) fn base_config(
    spec: &HttpSpec,
) -> Result<StreamableHttpClientTransportConfig, ConnectError> {
    let url = reqwest::Url::parse(&spec.url)
        .map_err(|e| ConnectError::Invalid(format!("url {:?}: {e}", spec.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConnectError::Invalid(format!(
            "url {:?}: the scheme must be http or https",
            spec.url
        )));
    }
    let mut headers = HashMap::new();
    for (name, value) in &spec.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|e| ConnectError::Invalid(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| ConnectError::Invalid(format!("header {name}: invalid value")))?;
        headers.insert(name, value);
    }
    let mut config = StreamableHttpClientTransportConfig::with_uri(spec.url.as_str())
        .max_concurrent_requests(spec.max_in_flight)
        .custom_headers(headers);
    let mut backoff = ExponentialBackoff::default();
    backoff.max_times = Some(spec.sse_max_retries);
    backoff.base_duration = spec.sse_retry_base;
    backoff.max_delay = Some(Duration::from_secs(5));
    config.retry_config = Arc::new(backoff);
    Ok(config)
}

/// Connects to an HTTP server and runs the handshake, within `timeout`.
pub(crate) async fn connect(
    server: &ServerSpec,
    spec: &HttpSpec,
    handler: EventHandler,
    mode: ClientLifecycleMode,
    timeout: Duration,
) -> Result<HttpSession, ConnectError> {
    let mut config = base_config(spec)?;
    let oauth = match &spec.auth {
        HttpAuth::BearerEnv(var) => {
            let token = std::env::var(var).map_err(|_| {
                ConnectError::Invalid(format!(
                    "bearer_token_env names {var}, which is not set in the environment"
                ))
            })?;
            config = config.auth_header(token);
            None
        }
        HttpAuth::OAuth(oauth) => Some(oauth.clone()),
        // A login from `mcpctl auth login` is used when there is one.
        HttpAuth::None => TokenStore::open_default()
            .ok()
            .filter(|store| store.has_token(&spec.url))
            .map(|store| OAuthSpec {
                credentials: Some(store.path().to_owned()),
                ..OAuthSpec::default()
            }),
    };
    let Some(oauth) = oauth else {
        let transport = StreamableHttpClientTransport::with_client(http_client(), config);
        return handshake(server, transport, handler, mode, timeout).await;
    };

    let work = async {
        let (manager, renewal) = authorized_manager(server, spec, &oauth).await?;
        let client = AuthClient::new(http_client(), manager);
        let manager = Arc::clone(&client.auth_manager);
        let transport = StreamableHttpClientTransport::with_client(client, config);
        Ok::<_, ConnectError>((transport, manager, renewal))
    };
    let (transport, manager, renewal) = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ConnectError::HandshakeTimeout(timeout))??;
    let session = handshake(server, transport, handler, mode, timeout).await?;
    if let Some(config) = renewal {
        let store = oauth
            .store()
            .map_err(|e| ConnectError::Invalid(e.to_string()))?;
        tokio::spawn(renew_client_credentials(
            session.peer().clone(),
            manager,
            store,
            spec.url.clone(),
            config,
        ));
    }
    Ok(session)
}

/// Runs the handshake on `transport`.
async fn handshake<C>(
    server: &ServerSpec,
    transport: StreamableHttpClientTransport<C>,
    handler: EventHandler,
    mode: ClientLifecycleMode,
    timeout: Duration,
) -> Result<HttpSession, ConnectError>
where
    C: StreamableHttpClient + Send + Sync + 'static,
    C::Error: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(timeout, handler.serve_with_lifecycle(transport, mode)).await {
        Ok(Ok(running)) => Ok(running),
        Ok(Err(error)) => Err(handshake_error(server, &error)),
        Err(_) => Err(ConnectError::HandshakeTimeout(timeout)),
    }
}

fn handshake_error(server: &ServerSpec, error: &ClientInitializeError) -> ConnectError {
    if error.auth_challenge().is_some() || error.is_authorization_required() {
        return ConnectError::Unauthorized {
            server: server.name.to_string(),
            reason: "the server answered 401 Unauthorized".to_owned(),
        };
    }
    ConnectError::Handshake(error_chain(error))
}

/// An authorization manager holding the server's login, with a fresh token; and the
/// client-credentials settings to renew tokens with, for that grant.
async fn authorized_manager(
    server: &ServerSpec,
    spec: &HttpSpec,
    oauth: &OAuthSpec,
) -> Result<(AuthorizationManager, Option<ClientCredentialsConfig>), ConnectError> {
    let name = server.name.to_string();
    let unauthorized = |reason: String| ConnectError::Unauthorized {
        server: name.clone(),
        reason,
    };
    let store = oauth
        .store()
        .map_err(|e| ConnectError::Invalid(e.to_string()))?;
    let login = {
        let store = store.clone();
        let url = spec.url.clone();
        tokio::task::spawn_blocking(move || store.login(&url))
            .await
            .map_err(|e| ConnectError::Handshake(e.to_string()))?
            .map_err(|e| ConnectError::Handshake(e.to_string()))?
            .unwrap_or_default()
    };
    let transient = |e: AuthError| ConnectError::Handshake(format!("oauth: {e}"));
    let mut manager = auth::new_manager(&spec.url).await.map_err(transient)?;
    manager.set_credential_store(store.for_url(&spec.url));

    let has_token = login
        .credentials
        .as_ref()
        .is_some_and(|c| c.token_response.is_some());
    if oauth.grant == OAuthGrant::ClientCredentials {
        let metadata = manager
            .resolve_metadata_from_challenge(login.challenge.as_deref())
            .await
            .map_err(transient)?
            .metadata;
        manager.set_metadata(metadata);
        if !has_token || expires_within(&login, RENEW_MARGIN) {
            auth::exchange_client_credentials(server, oauth, &mut manager)
                .await
                .map_err(|e| match e {
                    AuthError::ClientCredentialsError(reason) => unauthorized(reason),
                    other => transient(other),
                })?;
        }
        let config = client_credentials_config(spec, oauth).map_err(unauthorized)?;
        manager
            .configure_client_credentials(&config)
            .map_err(transient)?;
        return Ok((manager, Some(config)));
    }

    if !has_token {
        // No login: connect without a token; a server that needs one answers 401.
        return Ok((manager, None));
    }
    let metadata = manager
        .resolve_metadata_from_challenge(login.challenge.as_deref())
        .await
        .map_err(transient)?
        .metadata;
    manager.set_metadata(metadata);
    if !manager.initialize_from_store().await.map_err(transient)? {
        return Err(unauthorized(
            "the server moved to another authorization server, so the stored login no longer \
             applies"
                .to_owned(),
        ));
    }
    auth::configure_stored_client(&mut manager, oauth, &login).map_err(transient)?;
    // Refresh now when the token is about to expire: a refresh token that was revoked is
    // better reported before the handshake than as a bare 401.
    match manager.get_access_token().await {
        Ok(_) => Ok((manager, None)),
        Err(AuthError::AuthorizationRequired) => Err(unauthorized(
            "the access token expired and could not be refreshed".to_owned(),
        )),
        Err(AuthError::TokenRefreshRejected(reason)) => Err(unauthorized(format!(
            "the refresh token was rejected: {reason}"
        ))),
        Err(other) => Err(transient(other)),
    }
}

/// Whether the login's access token expires within `margin`.
fn expires_within(login: &Login, margin: Duration) -> bool {
    let Some(credentials) = &login.credentials else {
        return true;
    };
    let facts = credentials.token_response.as_ref().map(TokenFacts::of);
    match (
        facts.and_then(|f| f.expires_in),
        credentials.token_received_at,
    ) {
        (Some(expires_in), Some(received_at)) => {
            received_at + expires_in <= auth::now_secs() + margin.as_secs()
        }
        _ => false,
    }
}

fn client_credentials_config(
    spec: &HttpSpec,
    oauth: &OAuthSpec,
) -> Result<ClientCredentialsConfig, String> {
    let client_id = oauth
        .client_id
        .clone()
        .ok_or_else(|| "the client-credentials grant needs a client_id".to_owned())?;
    let client_secret = oauth
        .client_secret
        .as_ref()
        .ok_or_else(|| "the client-credentials grant needs a client secret".to_owned())?
        .read()
        .map_err(|e| e.to_string())?;
    Ok(ClientCredentialsConfig::ClientSecret {
        client_id,
        client_secret,
        scopes: oauth.scopes.clone(),
        resource: Some(spec.url.clone()),
    })
}

/// Fetches a new client-credentials token shortly before the current one expires, for as
/// long as the session lives.
async fn renew_client_credentials(
    session: Peer<RoleClient>,
    manager: Arc<Mutex<AuthorizationManager>>,
    store: TokenStore,
    url: String,
    config: ClientCredentialsConfig,
) {
    loop {
        let login = {
            let store = store.clone();
            let url = url.clone();
            tokio::task::spawn_blocking(move || store.login(&url)).await
        };
        let Ok(Ok(Some(login))) = login else {
            return;
        };
        let Some(credentials) = &login.credentials else {
            return;
        };
        let facts = credentials.token_response.as_ref().map(TokenFacts::of);
        let (Some(expires_in), Some(received_at)) = (
            facts.and_then(|f| f.expires_in),
            credentials.token_received_at,
        ) else {
            return;
        };
        let renew_at = (received_at + expires_in).saturating_sub(RENEW_MARGIN.as_secs());
        if !sleep_while_open(&session, renew_at).await {
            return;
        }
        let renewed = manager
            .lock()
            .await
            .exchange_client_credentials(&config)
            .await;
        if let Err(error) = renewed {
            tracing::warn!(%url, %error, "cannot renew the client-credentials token");
            if !sleep_while_open(&session, auth::now_secs() + 10).await {
                return;
            }
        }
    }
}

/// Sleeps until `deadline` (seconds since the epoch); false when the session closed first.
async fn sleep_while_open(session: &Peer<RoleClient>, deadline: u64) -> bool {
    loop {
        if session.is_transport_closed() {
            return false;
        }
        let left = deadline.saturating_sub(auth::now_secs());
        if left == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(left.min(5))).await;
    }
}
