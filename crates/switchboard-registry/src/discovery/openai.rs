//! An [`Embedder`] for OpenAI-compatible `/v1/embeddings` endpoints.

use std::{env, fmt, time::Duration};

use serde::Deserialize;
use serde_json::json;

use super::{EmbedError, EmbedFuture, Embedder};

/// Where and how [`OpenAiEmbedder`] asks for embeddings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// The API base URL including the version, to which `/embeddings` is
    /// appended: `https://api.openai.com/v1`, Ollama's
    /// `http://localhost:11434/v1`, or a vLLM or TEI server's `…/v1`.
    pub base_url: String,
    /// The model name sent with each request, for example
    /// `text-embedding-3-small` or `nomic-embed-text`.
    pub model: String,
    /// The name of the environment variable holding the API key, sent as a
    /// bearer token; `None` sends no key (local servers). Default `None`.
    pub api_key_env: Option<String>,
    /// Deadline of one request. Default 30 seconds.
    pub timeout: Duration,
}

impl OpenAiConfig {
    /// A configuration for `model` at `base_url`, with no API key and a
    /// 30-second timeout.
    pub fn new(base_url: &str, model: &str) -> Self {
        OpenAiConfig {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            api_key_env: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Embeddings from an OpenAI-compatible `POST {base_url}/embeddings`
/// endpoint (OpenAI, Ollama, vLLM, Hugging Face TEI, LiteLLM…).
#[derive(Clone)]
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl OpenAiEmbedder {
    /// An embedder for `config`; reads the API key from the named
    /// environment variable now.
    pub fn new(config: OpenAiConfig) -> Result<Self, EmbedError> {
        let url = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        let api_key = match &config.api_key_env {
            Some(name) => match env::var(name) {
                Ok(key) => Some(key),
                Err(_) => return Err(EmbedError::MissingApiKey { name: name.clone() }),
            },
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| EmbedError::Request {
                url: url.clone(),
                source: Box::new(e),
            })?;
        Ok(OpenAiEmbedder {
            client,
            url,
            model: config.model,
            api_key,
        })
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let failed = |e: reqwest::Error| EmbedError::Request {
            url: self.url.clone(),
            source: Box::new(e),
        };
        let mut request = self
            .client
            .post(&self.url)
            .json(&json!({ "model": self.model, "input": texts }));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let body = response.bytes().await.map_err(failed)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(EmbedError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        let parsed: EmbeddingResponse =
            serde_json::from_slice(&body).map_err(|e| EmbedError::InvalidResponse {
                url: self.url.clone(),
                source: Box::new(e),
            })?;
        let mut data = parsed.data;
        if data.len() != texts.len() {
            return Err(EmbedError::Count {
                expected: texts.len(),
                got: data.len(),
            });
        }
        data.sort_by_key(|d| d.index);
        Ok(data.into_iter().map(|d| d.embedding).collect())
    }
}

impl Embedder for OpenAiEmbedder {
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(self.request(texts))
    }
}

/// The part of an OpenAI embeddings response that matters here.
#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingData>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    embedding: Vec<f32>,
    #[serde(default)]
    index: usize,
}
