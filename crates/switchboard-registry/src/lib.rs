//! Catalog, naming, replica groups, routing, health and tool discovery for many MCP servers.
//!
//! - [`discovery`]: which tools fit a task, ranked with the reason (BM25F,
//!   optionally fused with embeddings).
//!
//! # Example
//!
//! ```
//! use switchboard_registry::discovery::{LexicalConfig, LexicalIndex, Query, ToolDoc};
//!
//! let mut index = LexicalIndex::new(LexicalConfig::default());
//! let mut read = ToolDoc::new("filesystem", "read_text_file");
//! read.description = Some("Read the complete contents of a file as text.".to_owned());
//! index.upsert(&read);
//! index.upsert(&ToolDoc::new("time", "get_current_time"));
//!
//! let hits = index.search(&Query::new("show me what is in notes.txt file", 5));
//! assert_eq!(hits[0].name, "read_text_file");
//! ```
//!
//! # Features
//!
//! - `http-embedder` (default): [`discovery::OpenAiEmbedder`], embeddings
//!   from an OpenAI-compatible HTTP endpoint. Adds `reqwest`.

pub mod discovery;
pub mod health;
pub mod routing;
