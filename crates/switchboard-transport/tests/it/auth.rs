//! OAuth: a person's login through the loopback authorizer against a mock authorization
//! server, the credential store it fills, and the error a connection reports when the stored
//! token can no longer be refreshed.

use std::{
    os::unix::fs::PermissionsExt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use switchboard_transport::{
    Connection, ConnectionState, HttpAuth, HttpSpec, OAuthSpec, ServerSpec, TransportSpec,
    auth::{self, LoginOptions, LoopbackAuthorizer, TokenStore},
};

/// A mock MCP server that wants a token, with its own authorization server: protected-resource
/// metadata, authorization-server metadata, dynamic registration, an authorization endpoint that
/// approves at once, and a token endpoint that issues tokens but rejects every refresh.
struct MockAuthServer {
    base: String,
    registrations: Arc<AtomicUsize>,
    refreshes: Arc<AtomicUsize>,
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn pairs(text: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{text}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn param(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

impl MockAuthServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let registrations = Arc::new(AtomicUsize::new(0));
        let refreshes = Arc::new(AtomicUsize::new(0));
        let prm = {
            let base = base.clone();
            move || async move {
                json_response(
                    StatusCode::OK,
                    json!({
                        "resource": format!("{base}/mcp"),
                        "authorization_servers": [base],
                        "scopes_supported": ["mcp:read"],
                    }),
                )
            }
        };
        let asm = {
            let base = base.clone();
            move || async move {
                json_response(
                    StatusCode::OK,
                    json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "registration_endpoint": format!("{base}/register"),
                        "response_types_supported": ["code"],
                        "grant_types_supported": ["authorization_code", "refresh_token"],
                        "code_challenge_methods_supported": ["S256"],
                        "token_endpoint_auth_methods_supported": ["none"],
                        "authorization_response_iss_parameter_supported": true,
                    }),
                )
            }
        };
        let register = {
            let registrations = Arc::clone(&registrations);
            move |body: Bytes| async move {
                registrations.fetch_add(1, Ordering::SeqCst);
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                json_response(
                    StatusCode::CREATED,
                    json!({
                        "client_id": "registered-client",
                        "redirect_uris": request["redirect_uris"],
                    }),
                )
            }
        };
        let authorize = {
            let base = base.clone();
            move |uri: Uri| async move {
                let query = pairs(uri.query().unwrap_or_default());
                let location = format!(
                    "{}?code=the-code&state={}&iss={}",
                    param(&query, "redirect_uri"),
                    param(&query, "state"),
                    base
                );
                (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
            }
        };
        let token = {
            let refreshes = Arc::clone(&refreshes);
            move |body: Bytes| async move {
                let form = pairs(&String::from_utf8_lossy(&body));
                match param(&form, "grant_type").as_str() {
                    "authorization_code" if param(&form, "code") == "the-code" => json_response(
                        StatusCode::OK,
                        json!({
                            "access_token": "access-1",
                            "token_type": "Bearer",
                            "expires_in": 3600,
                            "refresh_token": "refresh-1",
                            "scope": "mcp:read",
                        }),
                    ),
                    "refresh_token" => {
                        refreshes.fetch_add(1, Ordering::SeqCst);
                        json_response(
                            StatusCode::BAD_REQUEST,
                            json!({"error": "invalid_grant", "error_description": "revoked"}),
                        )
                    }
                    _ => {
                        json_response(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"}))
                    }
                }
            }
        };
        let mcp = {
            let base = base.clone();
            move || async move {
                let challenge = format!(
                    "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read\""
                );
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, challenge)],
                    "unauthorized",
                )
                    .into_response()
            }
        };
        let app = Router::new()
            .route("/.well-known/oauth-protected-resource/mcp", get(prm))
            .route("/.well-known/oauth-authorization-server", get(asm))
            .route("/register", post(register))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/mcp", post(mcp.clone()).get(mcp));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            registrations,
            refreshes,
        }
    }

    fn spec(&self, store: &std::path::Path) -> ServerSpec {
        let mut http = HttpSpec::new(format!("{}/mcp", self.base));
        http.auth = HttpAuth::OAuth(OAuthSpec {
            credentials: Some(store.to_owned()),
            ..OAuthSpec::default()
        });
        let mut spec = ServerSpec::new("guarded", TransportSpec::Http(http));
        spec.handshake_timeout = Duration::from_secs(10);
        spec
    }
}

/// Logs in through the loopback authorizer; the "browser" follows the authorization page's
/// redirect to the loopback listener.
async fn login(spec: &ServerSpec) -> auth::LoginOutcome {
    let authorizer = LoopbackAuthorizer::bind(None)
        .await
        .expect("a loopback port")
        .open_browser(false)
        .timeout(Duration::from_secs(10))
        .on_url(|url, opened| {
            assert!(!opened, "no browser is started in tests");
            let url = url.to_owned();
            tokio::spawn(async move {
                let _ = reqwest::get(url).await;
            });
        });
    auth::login(spec, &authorizer, LoginOptions::default())
        .await
        .expect("logged in")
}

#[tokio::test]
async fn a_person_logs_in_through_the_loopback_redirect() {
    let server = MockAuthServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("switchboard/credentials.json");
    let spec = server.spec(&store_path);

    let outcome = login(&spec).await;
    assert_eq!(outcome.store, store_path);
    let status = outcome.status;
    assert!(status.has_token && status.refreshable);
    assert_eq!(status.client_id.as_deref(), Some("registered-client"));
    assert_eq!(status.issuer.as_deref(), Some(server.base.as_str()));
    assert_eq!(status.scopes, ["mcp:read"]);
    assert_eq!(server.registrations.load(Ordering::SeqCst), 1);
    let mode = std::fs::metadata(&store_path)
        .expect("the store exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&store_path).expect("readable");
    assert!(text.contains("registered-client"));

    // Logging in again reuses the registration only for the same redirect URI: the loopback
    // port changed, so the client registers again.
    login(&spec).await;
    assert_eq!(server.registrations.load(Ordering::SeqCst), 2);
    let logins = TokenStore::at(&store_path).list().expect("readable");
    assert_eq!(logins.len(), 1);
}

#[tokio::test]
async fn an_unrefreshable_token_names_the_command_that_fixes_it() {
    let server = MockAuthServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("credentials.json");
    let spec = server.spec(&store_path);
    login(&spec).await;

    // The access token expired an hour ago.
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&store_path).expect("readable"))
            .expect("json");
    let url = format!("{}/mcp", server.base);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    document["logins"][&url]["credentials"]["token_received_at"] = json!(now - 7200);
    std::fs::write(&store_path, document.to_string()).expect("written");

    let connection = Connection::start(spec);
    let status = connection.wait_first_attempt(Duration::from_secs(15)).await;
    connection.shutdown().await;
    assert_eq!(status.state, ConnectionState::Failed);
    assert!(status.needs_login);
    let error = status.last_error.expect("an error");
    assert_eq!(
        error,
        "server guarded requires authorization (the access token expired and could not be \
         refreshed); run: mcpctl auth login guarded"
    );
    assert!(!error.contains("access-1") && !error.contains("refresh-1"));
    assert_eq!(server.refreshes.load(Ordering::SeqCst), 1);
    // The dead tokens are gone; the registration stays for the next login.
    let status = TokenStore::at(&store_path)
        .status(&url)
        .expect("readable")
        .expect("kept");
    assert!(!status.has_token);
}
