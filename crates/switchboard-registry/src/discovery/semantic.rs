//! The semantic half of hybrid discovery: the [`Embedder`] trait, a caching
//! wrapper, cosine similarity and reciprocal rank fusion.

use std::{
    collections::{HashMap, HashSet},
    error::Error as StdError,
    fmt,
    future::Future,
    hash::{DefaultHasher, Hasher},
    pin::Pin,
    sync::Arc,
};

use moka::future::Cache;

use super::{ServerFilter, ToolDoc, lexical::field_texts};

/// What [`Embedder::embed`] returns: one vector per text, in order.
pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, EmbedError>> + Send + 'a>>;

/// Turns texts into embedding vectors.
///
/// Implementations return exactly one vector per text, in the same order,
/// all of one dimension. [`OpenAiEmbedder`](super::OpenAiEmbedder) calls an
/// OpenAI-compatible HTTP endpoint; wrap any embedder in a
/// [`CachedEmbedder`] to avoid embedding the same text twice.
pub trait Embedder: Send + Sync + fmt::Debug {
    /// Embeds `texts`.
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a>;
}

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The environment variable named for the API key is not set.
    #[error("environment variable {name} for the embedding api key is not set")]
    MissingApiKey {
        /// The variable's name.
        name: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("embedding request to {url} failed")]
    Request {
        /// The endpoint.
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The endpoint answered with an error status.
    #[error("embedding endpoint {url} answered {status}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The endpoint's answer is not an embeddings response.
    #[error("embedding endpoint {url} sent an invalid response")]
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// The decoding error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The embedder returned a different number of vectors than texts.
    #[error("embedder returned {got} vectors for {expected} texts")]
    Count {
        /// How many texts were sent.
        expected: usize,
        /// How many vectors came back.
        got: usize,
    },
    /// The embedder returned vectors of different dimensions.
    #[error("embedder returned vectors of {got} dimensions where {expected} were expected")]
    Dimensions {
        /// The query vector's dimension.
        expected: usize,
        /// The other vector's dimension.
        got: usize,
    },
    /// Any other failure of a custom embedder.
    #[error("embedder failed")]
    Other(#[source] Box<dyn StdError + Send + Sync>),
}

/// An error and its sources, joined by `": "`.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Settings of the semantic half of a hybrid [`Discovery`](super::Discovery).
#[derive(Clone, Debug, PartialEq)]
pub struct SemanticConfig {
    /// The `k` of reciprocal rank fusion: each ranking adds `1 / (k + rank)`.
    /// Default 60 (Cormack, Clarke and Büttcher, SIGIR 2009).
    pub rrf_k: f32,
    /// How deep each ranking goes before fusion (at least the query's `k`).
    /// Default 50.
    pub candidates: usize,
    /// Tools less similar than this (cosine) stay out of the semantic
    /// ranking. Default 0.0.
    pub min_similarity: f32,
    /// How many vectors the cache keeps (tools and queries). Default 10,000.
    pub cache_capacity: u64,
    /// How many texts go into one embedding request. Default 64.
    pub batch_size: usize,
}

impl Default for SemanticConfig {
    fn default() -> Self {
        SemanticConfig {
            rrf_k: 60.0,
            candidates: 50,
            min_similarity: 0.0,
            cache_capacity: 10_000,
            batch_size: 64,
        }
    }
}

/// The cache key of a text: a 64-bit SipHash of its bytes.
fn text_hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(text.as_bytes());
    hasher.finish()
}

/// An [`Embedder`] that remembers vectors by text hash and sends only the
/// texts it has not seen, in batches.
#[derive(Clone)]
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    cache: Cache<u64, Arc<[f32]>>,
    batch_size: usize,
}

impl fmt::Debug for CachedEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedEmbedder")
            .field("inner", &self.inner)
            .field("cached", &self.cache.entry_count())
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl CachedEmbedder {
    /// Caches up to `capacity` vectors from `inner`, asking it for at most
    /// `batch_size` texts at a time (at least one).
    pub fn new(inner: Arc<dyn Embedder>, capacity: u64, batch_size: usize) -> Self {
        CachedEmbedder {
            inner,
            cache: Cache::new(capacity),
            batch_size: batch_size.max(1),
        }
    }

    /// One vector per text, from the cache where possible.
    pub async fn vectors(&self, texts: &[&str]) -> Result<Vec<Arc<[f32]>>, EmbedError> {
        let keyed: Vec<(u64, &str)> = texts.iter().map(|&text| (text_hash(text), text)).collect();
        self.keyed_vectors(&keyed).await
    }

    /// Like [`vectors`](Self::vectors), for texts whose hash is known.
    async fn keyed_vectors(&self, texts: &[(u64, &str)]) -> Result<Vec<Arc<[f32]>>, EmbedError> {
        let mut found: HashMap<u64, Arc<[f32]>> = HashMap::new();
        let mut missing: Vec<(u64, &str)> = Vec::new();
        let mut asked: HashSet<u64> = HashSet::new();
        for &(hash, text) in texts {
            if found.contains_key(&hash) || asked.contains(&hash) {
                continue;
            }
            match self.cache.get(&hash).await {
                Some(vector) => {
                    found.insert(hash, vector);
                }
                None => {
                    asked.insert(hash);
                    missing.push((hash, text));
                }
            }
        }
        for batch in missing.chunks(self.batch_size) {
            let batch_texts: Vec<String> = batch.iter().map(|&(_, text)| text.to_owned()).collect();
            let vectors = self.inner.embed(&batch_texts).await?;
            if vectors.len() != batch.len() {
                return Err(EmbedError::Count {
                    expected: batch.len(),
                    got: vectors.len(),
                });
            }
            for (&(hash, _), vector) in batch.iter().zip(vectors) {
                let vector: Arc<[f32]> = vector.into();
                self.cache.insert(hash, Arc::clone(&vector)).await;
                found.insert(hash, vector);
            }
        }
        let mut out = Vec::with_capacity(texts.len());
        for (hash, _) in texts {
            match found.get(hash) {
                Some(vector) => out.push(Arc::clone(vector)),
                None => {
                    return Err(EmbedError::Count {
                        expected: texts.len(),
                        got: out.len(),
                    });
                }
            }
        }
        Ok(out)
    }
}

impl Embedder for CachedEmbedder {
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(async move {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = self.vectors(&texts).await?;
            Ok(vectors.iter().map(|v| v.to_vec()).collect())
        })
    }
}

/// Cosine similarity of two vectors; 0 when either is all zeros or their
/// lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    dot / (aa.sqrt() * bb.sqrt())
}

/// Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): each
/// key scores `Σ 1 / (k + rank)` over the rankings it appears in, ranks
/// counted from 1. Returns keys best first; ties go to the smaller key.
/// Each ranking should list a key at most once.
pub fn reciprocal_rank_fusion<'a>(rankings: &[&[&'a str]], k: f32) -> Vec<(&'a str, f32)> {
    let mut scores: HashMap<&'a str, f32> = HashMap::new();
    for ranking in rankings {
        for (i, &key) in ranking.iter().enumerate() {
            *scores.entry(key).or_insert(0.0) += 1.0 / (k + (i + 1) as f32);
        }
    }
    let mut fused: Vec<(&'a str, f32)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    fused
}

/// A tool's embedding text and where it comes from.
#[derive(Debug)]
struct SemanticDoc {
    server: String,
    text: String,
    hash: u64,
}

/// The tools' embedding texts; vectors live in the [`CachedEmbedder`].
pub(crate) struct SemanticIndex {
    config: SemanticConfig,
    embedder: CachedEmbedder,
    docs: HashMap<String, SemanticDoc>,
}

impl fmt::Debug for SemanticIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemanticIndex")
            .field("tools", &self.docs.len())
            .field("embedder", &self.embedder)
            .field("config", &self.config)
            .finish()
    }
}

impl SemanticIndex {
    pub(crate) fn new(config: SemanticConfig, embedder: Arc<dyn Embedder>) -> Self {
        let embedder = CachedEmbedder::new(embedder, config.cache_capacity, config.batch_size);
        SemanticIndex {
            config,
            embedder,
            docs: HashMap::new(),
        }
    }

    pub(crate) fn config(&self) -> &SemanticConfig {
        &self.config
    }

    pub(crate) fn upsert(&mut self, doc: &ToolDoc) {
        let text = field_texts(doc)
            .into_iter()
            .map(|(_, text)| text)
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let hash = text_hash(&text);
        self.docs.insert(
            doc.key.clone(),
            SemanticDoc {
                server: doc.server.clone(),
                text,
                hash,
            },
        );
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.docs.remove(key);
    }

    /// The `limit` tools most similar to the task, as (key, cosine), best first.
    pub(crate) async fn ranked(
        &self,
        task: &str,
        servers: &ServerFilter,
        limit: usize,
    ) -> Result<Vec<(String, f32)>, EmbedError> {
        let docs: Vec<(&String, &SemanticDoc)> = self
            .docs
            .iter()
            .filter(|(_, doc)| servers.allows(&doc.server))
            .collect();
        if docs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut texts: Vec<(u64, &str)> = docs
            .iter()
            .map(|(_, doc)| (doc.hash, doc.text.as_str()))
            .collect();
        texts.push((text_hash(task), task));
        let vectors = self.embedder.keyed_vectors(&texts).await?;
        let Some((query, tools)) = vectors.split_last() else {
            return Ok(Vec::new());
        };
        let mut similar = Vec::with_capacity(docs.len());
        for ((key, _), vector) in docs.iter().zip(tools) {
            if vector.len() != query.len() {
                return Err(EmbedError::Dimensions {
                    expected: query.len(),
                    got: vector.len(),
                });
            }
            let similarity = cosine(query, vector);
            if similarity >= self.config.min_similarity {
                similar.push(((*key).clone(), similarity));
            }
        }
        similar.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        similar.truncate(limit);
        Ok(similar)
    }
}
