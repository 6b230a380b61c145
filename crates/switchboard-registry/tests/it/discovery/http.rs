//! The OpenAI-compatible HTTP embedder against a loopback server: requests,
//! the cache seen from the server, hybrid discovery and degraded mode.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use switchboard_registry::discovery::{
    EmbedError, Embedder, Mode, OpenAiConfig, OpenAiEmbedder, Query,
};

use super::{bag_of_words, hybrid, tool};

/// What the loopback embeddings server saw.
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<AtomicUsize>,
    texts: Arc<AtomicUsize>,
    authorization: Arc<Mutex<Vec<String>>>,
    fail: bool,
}

impl Seen {
    fn counts(&self) -> (usize, usize) {
        (
            self.requests.load(Ordering::SeqCst),
            self.texts.load(Ordering::SeqCst),
        )
    }
}

/// `POST /v1/embeddings` as OpenAI answers it, with the data in reverse order.
async fn embeddings(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        seen.authorization
            .lock()
            .expect("not poisoned")
            .push(value.to_owned());
    }
    if seen.fail {
        return (StatusCode::SERVICE_UNAVAILABLE, "model is loading").into_response();
    }
    let inputs: Vec<String> = body["input"]
        .as_array()
        .expect("input is an array")
        .iter()
        .map(|t| t.as_str().expect("input holds strings").to_owned())
        .collect();
    seen.texts.fetch_add(inputs.len(), Ordering::SeqCst);
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(
            |(i, text)| json!({"object": "embedding", "index": i, "embedding": bag_of_words(text)}),
        )
        .collect();
    data.reverse();
    Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
}

/// Starts an embeddings server on a free loopback port; returns its `/v1` base URL.
async fn serve(seen: Seen) -> String {
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn http_embedder_sends_model_and_key_and_keeps_order() {
    let seen = Seen::default();
    let url = serve(seen.clone()).await;
    let mut config = OpenAiConfig::new(&format!("{url}/"), "test-embed");
    // Cargo sets this variable for the test process, so no environment edit is needed.
    config.api_key_env = Some("CARGO_PKG_NAME".to_owned());
    let embedder = OpenAiEmbedder::new(config).expect("embedder");
    let texts = vec!["weather forecast".to_owned(), "read a file".to_owned()];
    let vectors = embedder.embed(&texts).await.expect("embeddings");
    assert_eq!(vectors, [bag_of_words(&texts[0]), bag_of_words(&texts[1])]);
    assert_eq!(seen.counts(), (1, 2));
    assert_eq!(
        *seen.authorization.lock().expect("not poisoned"),
        ["Bearer switchboard-registry"]
    );
    assert!(
        !format!("{embedder:?}").contains("switchboard-registry"),
        "the key is redacted"
    );
}

#[tokio::test]
async fn http_embedder_needs_its_api_key_variable() {
    let mut config = OpenAiConfig::new("http://127.0.0.1:9/v1", "m");
    config.api_key_env = Some("SWITCHBOARD_TEST_UNSET_EMBEDDING_KEY".to_owned());
    let error = OpenAiEmbedder::new(config).expect_err("no such variable");
    assert!(matches!(error, EmbedError::MissingApiKey { .. }));
    assert_eq!(
        error.to_string(),
        "environment variable SWITCHBOARD_TEST_UNSET_EMBEDDING_KEY for the embedding api key is not set"
    );
}

#[tokio::test]
async fn hybrid_discovery_embeds_each_text_once() {
    let seen = Seen::default();
    let url = serve(seen.clone()).await;
    let embedder = OpenAiEmbedder::new(OpenAiConfig::new(&url, "test-embed")).expect("embedder");
    let mut discovery = hybrid(Arc::new(embedder));

    let query = Query::new("post a message to a slack channel", 3);
    let first = discovery.discover(&query).await;
    assert_eq!(first.mode, Mode::Hybrid);
    assert_eq!(first.degraded, None);
    assert_eq!(first.hits[0].key, "slack.chat.postMessage");
    let reason = &first.hits[0].reason;
    assert_eq!(reason.lexical.map(|r| r.rank), Some(1));
    assert_eq!(reason.semantic.map(|r| r.rank), Some(1));
    assert!(!reason.matches.is_empty());
    // 8 tools and the query in batches of 4.
    assert_eq!(seen.counts(), (3, 9));

    let second = discovery.discover(&query).await;
    assert_eq!(second, first);
    assert_eq!(
        seen.counts(),
        (3, 9),
        "the second call is served from the cache"
    );

    discovery.discover(&Query::new("read a file", 3)).await;
    assert_eq!(seen.counts(), (4, 10), "only the new query is embedded");

    discovery.upsert(&tool(
        "time",
        "get_current_time",
        "What time is it now, anywhere.",
        &[],
    ));
    discovery.discover(&Query::new("read a file", 3)).await;
    assert_eq!(seen.counts(), (5, 11), "only the changed tool is embedded");
}

#[tokio::test]
async fn embedder_failure_degrades_to_lexical_with_the_reason() {
    let seen = Seen {
        fail: true,
        ..Seen::default()
    };
    let url = serve(seen.clone()).await;
    let embedder = OpenAiEmbedder::new(OpenAiConfig::new(&url, "test-embed")).expect("embedder");
    let discovery = hybrid(Arc::new(embedder));

    let query = Query::new("post a message to a slack channel", 3);
    let found = discovery.discover(&query).await;
    assert_eq!(found.mode, Mode::Lexical);
    assert_eq!(
        found.degraded.as_deref(),
        Some(
            format!("embedding endpoint {url}/embeddings answered 503: model is loading").as_str()
        )
    );
    assert_eq!(found.hits, discovery.lexical().search(&query));
    assert_eq!(found.hits[0].key, "slack.chat.postMessage");
}

#[tokio::test]
async fn unreachable_embedder_degrades_too() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!(
        "http://{}/v1",
        listener.local_addr().expect("local address")
    );
    drop(listener);
    let embedder = OpenAiEmbedder::new(OpenAiConfig::new(&url, "m")).expect("embedder");
    let found = hybrid(Arc::new(embedder))
        .discover(&Query::new("read a file", 3))
        .await;
    assert_eq!(found.mode, Mode::Lexical);
    let reason = found.degraded.expect("a reason");
    assert!(
        reason.starts_with(&format!("embedding request to {url}/embeddings failed: ")),
        "{reason}"
    );
    assert_eq!(found.hits[0].key, "filesystem.read_text_file");
}
