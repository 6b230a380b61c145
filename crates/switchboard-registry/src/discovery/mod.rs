//! Tool discovery: which of many tools fit a task, ranked, with the reason.
//!
//! With hundreds of tools across servers, a model does better when it sees
//! only the few that matter. [`Discovery::discover`] takes a task in plain
//! words and returns the best tools with a score and what matched.
//!
//! - **Lexical (default).** [`LexicalIndex`] is a BM25F index over five
//!   fields of each tool ([`Field`]): the name split into words (`_`, `-`,
//!   `.`, camelCase, digits), the title, the description, parameter names
//!   and parameter descriptions from the input schema. It needs no model and
//!   no network, and it is updated one tool at a time when the catalog
//!   changes. See [`tokenize`] for how text becomes terms.
//! - **Hybrid (optional).** Given an [`Embedder`] (for example
//!   [`OpenAiEmbedder`] for any OpenAI-compatible `/v1/embeddings` endpoint:
//!   OpenAI, Ollama, vLLM, TEI), discovery also ranks tools by cosine
//!   similarity of embeddings and fuses both rankings with reciprocal rank
//!   fusion ([`reciprocal_rank_fusion`]). Vectors are cached by text hash
//!   ([`CachedEmbedder`]). When the embedder fails, discovery answers from
//!   the lexical index alone and says why in [`Discovered::degraded`].
//!
//! Tools come in as [`ToolDoc`]s, a plain description with no MCP types;
//! the `switchboard` facade converts rmcp tools into it.
//!
//! ```
//! use switchboard_registry::discovery::{
//!     Discovery, Field, FieldMatch, LexicalConfig, Mode, Query, ServerFilter, Threshold, ToolDoc,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut discovery = Discovery::new(LexicalConfig::default());
//! let mut issue = ToolDoc::new("github", "createIssue"); // key "github.createIssue"
//! issue.description = Some("Open a new issue in a repository.".to_owned());
//! issue.input_schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {"title": {"type": "string", "description": "Issue title"}}
//! });
//! discovery.upsert(&issue); // add or replace, incrementally
//! discovery.upsert(&ToolDoc::new("time", "get_current_time"));
//!
//! let mut query = Query::new("open an issue about the crash", 5);
//! query.servers = ServerFilter { include: vec![], exclude: vec!["time".into()] };
//! query.threshold = Threshold { min_score: None, min_relative: Some(0.3) };
//! let found = discovery.discover(&query).await;
//! assert_eq!((found.mode, found.degraded), (Mode::Lexical, None));
//!
//! let best = &found.hits[0];
//! assert_eq!(best.key, "github.createIssue");
//! assert_eq!(
//!     best.reason.matches,
//!     [
//!         FieldMatch { field: Field::Name, terms: vec!["issue".into()] },
//!         FieldMatch { field: Field::Description, terms: vec!["open".into(), "issue".into()] },
//!         FieldMatch { field: Field::ParamDescriptions, terms: vec!["issue".into()] },
//!     ]
//! );
//! assert_eq!(best.reason.lexical.map(|r| r.rank), Some(1));
//!
//! discovery.remove("time.get_current_time");
//! assert_eq!(discovery.len(), 1);
//! # }
//! ```

use std::sync::Arc;

use serde_json::Value;

mod lexical;
#[cfg(feature = "http-embedder")]
mod openai;
mod semantic;
pub mod tokenize;

pub use lexical::LexicalIndex;
#[cfg(feature = "http-embedder")]
pub use openai::{OpenAiConfig, OpenAiEmbedder};
pub use semantic::{
    CachedEmbedder, EmbedError, EmbedFuture, Embedder, SemanticConfig, cosine,
    reciprocal_rank_fusion,
};

use semantic::SemanticIndex;

/// A tool as discovery sees it: what an MCP client learns from `tools/list`.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDoc {
    /// Unique key of the tool in the catalog, for example `"github.create_issue"`.
    pub key: String,
    /// The server that offers the tool (used by [`ServerFilter`]).
    pub server: String,
    /// The tool's name as the server gives it.
    pub name: String,
    /// The tool's human-readable title, if any.
    pub title: Option<String>,
    /// The tool's description, if any.
    pub description: Option<String>,
    /// The tool's JSON Schema for its arguments (`Value::Null` when unknown).
    pub input_schema: Value,
}

impl ToolDoc {
    /// A tool with key `"{server}.{name}"`, no title, no description and no
    /// input schema.
    pub fn new(server: &str, name: &str) -> Self {
        ToolDoc {
            key: format!("{server}.{name}"),
            server: server.to_owned(),
            name: name.to_owned(),
            title: None,
            description: None,
            input_schema: Value::Null,
        }
    }
}

/// The parts of a tool that the lexical index scores separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The tool name, split into words.
    Name,
    /// The tool title.
    Title,
    /// The tool description.
    Description,
    /// Parameter names from the input schema (one nesting level deep).
    ParamNames,
    /// Parameter titles and descriptions from the input schema.
    ParamDescriptions,
}

impl Field {
    /// Every field, in the order the index stores them.
    pub const ALL: [Field; 5] = [
        Field::Name,
        Field::Title,
        Field::Description,
        Field::ParamNames,
        Field::ParamDescriptions,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// How much a term occurrence in each field counts (BM25F field weights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldWeights {
    /// Weight of [`Field::Name`]. Default 3.0.
    pub name: f32,
    /// Weight of [`Field::Title`]. Default 2.0.
    pub title: f32,
    /// Weight of [`Field::Description`]. Default 1.0.
    pub description: f32,
    /// Weight of [`Field::ParamNames`]. Default 1.0.
    pub param_names: f32,
    /// Weight of [`Field::ParamDescriptions`]. Default 0.5.
    pub param_descriptions: f32,
}

impl Default for FieldWeights {
    fn default() -> Self {
        FieldWeights {
            name: 3.0,
            title: 2.0,
            description: 1.0,
            param_names: 1.0,
            param_descriptions: 0.5,
        }
    }
}

impl FieldWeights {
    fn as_array(&self) -> [f32; 5] {
        [
            self.name,
            self.title,
            self.description,
            self.param_names,
            self.param_descriptions,
        ]
    }
}

/// Settings of the lexical index.
#[derive(Clone, Debug, PartialEq)]
pub struct LexicalConfig {
    /// BM25 term-frequency saturation. Default 1.2.
    pub k1: f32,
    /// BM25 length normalization, 0 (none) to 1 (full), for every field.
    /// Default 0.75.
    pub b: f32,
    /// Field weights.
    pub weights: FieldWeights,
    /// Whether terms are stemmed (Snowball English). Default true.
    pub stem: bool,
}

impl Default for LexicalConfig {
    fn default() -> Self {
        LexicalConfig {
            k1: 1.2,
            b: 0.75,
            weights: FieldWeights::default(),
            stem: true,
        }
    }
}

/// Which servers' tools a query may return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFilter {
    /// Only these servers, when not empty.
    pub include: Vec<String>,
    /// Never these servers.
    pub exclude: Vec<String>,
}

impl ServerFilter {
    /// Whether tools of `server` may be returned.
    pub fn allows(&self, server: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|s| s == server);
        included && !self.exclude.iter().any(|s| s == server)
    }
}

/// Which hits are good enough to return. Both limits apply when both are set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Threshold {
    /// Drop hits scoring below this. The score is BM25F in lexical mode and
    /// the fused reciprocal-rank score in hybrid mode.
    pub min_score: Option<f32>,
    /// Drop hits scoring below this fraction of the best hit's score, for
    /// example 0.5 for "at least half as good as the best".
    pub min_relative: Option<f32>,
}

impl Threshold {
    /// How many of the (descending) scores pass.
    fn keep(&self, scores: impl Iterator<Item = f32>) -> usize {
        let mut top = None;
        let mut kept = 0;
        for score in scores {
            let best = *top.get_or_insert(score);
            let below_min = self.min_score.is_some_and(|min| score < min);
            let below_relative = self.min_relative.is_some_and(|r| score < r * best);
            if below_min || below_relative {
                break;
            }
            kept += 1;
        }
        kept
    }
}

/// A discovery request: the task and what to return.
#[derive(Clone, Debug, PartialEq)]
pub struct Query<'a> {
    /// The task, in plain words.
    pub task: &'a str,
    /// At most this many hits.
    pub k: usize,
    /// Which servers' tools may be returned.
    pub servers: ServerFilter,
    /// Which hits are good enough.
    pub threshold: Threshold,
}

impl<'a> Query<'a> {
    /// The best `k` tools for `task`, from every server, with no threshold.
    pub fn new(task: &'a str, k: usize) -> Self {
        Query {
            task,
            k,
            servers: ServerFilter::default(),
            threshold: Threshold::default(),
        }
    }
}

/// One discovered tool.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// The tool's [`ToolDoc::key`].
    pub key: String,
    /// The tool's server.
    pub server: String,
    /// The tool's name.
    pub name: String,
    /// Relevance: BM25F in lexical mode, the fused reciprocal-rank score in
    /// hybrid mode. Only comparable within one answer.
    pub score: f32,
    /// Why the tool was returned.
    pub reason: Reason,
}

/// Why a tool was returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reason {
    /// The query words found in each field, fields in [`Field`] order.
    pub matches: Vec<FieldMatch>,
    /// Rank and BM25F score in the lexical ranking, if the tool was in it.
    pub lexical: Option<Rank>,
    /// Rank and cosine similarity in the semantic ranking, if the tool was in it.
    pub semantic: Option<Rank>,
}

/// Query words found in one field of a tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldMatch {
    /// The field.
    pub field: Field,
    /// The query words (lowercased, before stemming) that matched there.
    pub terms: Vec<String>,
}

/// A position in one ranking and the score behind it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rank {
    /// 1 for the best.
    pub rank: usize,
    /// BM25F score (lexical) or cosine similarity (semantic).
    pub score: f32,
}

/// How an answer was ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// BM25F only.
    Lexical,
    /// BM25F and embeddings, fused by reciprocal rank.
    Hybrid,
}

/// The answer to a [`Query`].
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    /// The tools, best first.
    pub hits: Vec<Hit>,
    /// How they were ranked.
    pub mode: Mode,
    /// Why a hybrid index answered from the lexical index alone (the
    /// embedder's error), if it did.
    pub degraded: Option<String>,
}

/// A tool-discovery index: lexical, or hybrid with an [`Embedder`].
///
/// Keep it in step with the catalog through [`upsert`](Self::upsert) and
/// [`remove`](Self::remove); both are incremental.
#[derive(Debug)]
pub struct Discovery {
    lexical: LexicalIndex,
    semantic: Option<SemanticIndex>,
}

impl Discovery {
    /// A lexical-only index.
    pub fn new(config: LexicalConfig) -> Self {
        Discovery {
            lexical: LexicalIndex::new(config),
            semantic: None,
        }
    }

    /// A hybrid index that also ranks by embeddings from `embedder`
    /// (wrapped in a [`CachedEmbedder`] as `semantic` says).
    pub fn with_embedder(
        lexical: LexicalConfig,
        semantic: SemanticConfig,
        embedder: Arc<dyn Embedder>,
    ) -> Self {
        Discovery {
            lexical: LexicalIndex::new(lexical),
            semantic: Some(SemanticIndex::new(semantic, embedder)),
        }
    }

    /// The lexical index.
    pub fn lexical(&self) -> &LexicalIndex {
        &self.lexical
    }

    /// How many tools are indexed.
    pub fn len(&self) -> usize {
        self.lexical.len()
    }

    /// Whether no tool is indexed.
    pub fn is_empty(&self) -> bool {
        self.lexical.is_empty()
    }

    /// Adds a tool, or replaces the one with the same key; returns whether
    /// one was replaced.
    pub fn upsert(&mut self, doc: &ToolDoc) -> bool {
        if let Some(semantic) = &mut self.semantic {
            semantic.upsert(doc);
        }
        self.lexical.upsert(doc)
    }

    /// Removes the tool with this key; returns whether it was indexed.
    pub fn remove(&mut self, key: &str) -> bool {
        if let Some(semantic) = &mut self.semantic {
            semantic.remove(key);
        }
        self.lexical.remove(key)
    }

    /// The best tools for the query, best first.
    ///
    /// A hybrid index embeds the task and any tool whose vector is not
    /// cached yet; if that fails, the answer is lexical and
    /// [`Discovered::degraded`] holds the reason.
    pub async fn discover(&self, query: &Query<'_>) -> Discovered {
        let Some(semantic) = &self.semantic else {
            return Discovered {
                hits: self.lexical.search(query),
                mode: Mode::Lexical,
                degraded: None,
            };
        };
        let depth = semantic.config().candidates.max(query.k);
        let similar = match semantic.ranked(query.task, &query.servers, depth).await {
            Ok(similar) => similar,
            Err(error) => {
                return Discovered {
                    hits: self.lexical.search(query),
                    mode: Mode::Lexical,
                    degraded: Some(semantic::error_chain(&error)),
                };
            }
        };
        let lexical = self.lexical.ranked_keys(query.task, &query.servers, depth);
        let lexical_keys: Vec<&str> = lexical.iter().map(|(key, _)| key.as_str()).collect();
        let semantic_keys: Vec<&str> = similar.iter().map(|(key, _)| key.as_str()).collect();
        let fused = reciprocal_rank_fusion(
            &[lexical_keys.as_slice(), semantic_keys.as_slice()],
            semantic.config().rrf_k,
        );
        let kept = query
            .threshold
            .keep(fused.iter().map(|(_, score)| *score))
            .min(query.k);

        let hits = fused
            .into_iter()
            .take(kept)
            .map(|(key, score)| {
                let rank_in = |list: &[(String, f32)]| {
                    list.iter().position(|(k, _)| k == key).map(|i| Rank {
                        rank: i + 1,
                        score: list[i].1,
                    })
                };
                let (server, name, matches) =
                    self.lexical.explain(key, query.task).unwrap_or_default();
                Hit {
                    key: key.to_owned(),
                    server,
                    name,
                    score,
                    reason: Reason {
                        matches,
                        lexical: rank_in(&lexical),
                        semantic: rank_in(&similar),
                    },
                }
            })
            .collect();
        Discovered {
            hits,
            mode: Mode::Hybrid,
            degraded: None,
        }
    }
}
