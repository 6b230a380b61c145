//! An async cache with fresh and stale windows, stale-if-error, request
//! coalescing, tag invalidation and an optional shared second level.
//!
//! `switchboard-cache` wraps [`moka::future::Cache`] and adds what moka
//! leaves out:
//!
//! - **Freshness per entry.** The loader says how long its value stays
//!   fresh ([`Loaded::with_ttl`], for example from an MCP `ttlMs` hint), or
//!   that it must not be cached ([`Loaded::uncached`]).
//! - **Stale-if-error** (RFC 5861). After the fresh period the entry stays
//!   for a stale window; a lookup then refreshes it, and if the refresh
//!   fails it returns the old value marked [`Served::Stale`] with its age.
//! - **Request coalescing.** Concurrent lookups of one key share one load.
//!   The load runs in its own task, so a caller that is cancelled or times
//!   out does not fail the others. A failed load reaches every waiter and is
//!   not cached.
//! - **Tags.** [`Cache::invalidate_tag`] drops every entry with a tag (for
//!   example everything from one server).
//! - **Statistics** moka does not keep: [`Cache::stats`].
//! - **A second level** ([`SecondLevel`]) shared by several instances, with
//!   a Redis implementation behind the `redis` feature: an instance that
//!   misses locally looks there before loading, and invalidations reach the
//!   other instances over Redis pub/sub.
//! - **Canonical JSON keys** (`json` module): `{"a":1,"b":2}` and
//!   `{"b":2,"a":1.0}` make the same `json::JsonKey`.
//!
//! The crate knows nothing about MCP; it suits any async Rust program on
//! Tokio. Applications using Switchboard get it through the `switchboard`
//! facade; depend on it directly to cache something else.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use switchboard_cache::{Cache, CacheConfig, Loaded, Served};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CacheConfig { max_bytes: 1 << 20, ..CacheConfig::default() };
//! let cache: Cache<String, String> = Cache::new(config);
//!
//! // A miss runs the loader. It returns the value and its fresh period.
//! let first = cache
//!     .get_or_load("tools/list".to_owned(), &["github"], || async {
//!         Ok::<_, std::io::Error>(Loaded::with_ttl("[...]".to_owned(), Duration::from_secs(30)))
//!     })
//!     .await?;
//! assert_eq!(first.served, Served::Fresh);
//!
//! // A fresh entry is a hit; the loader is not called.
//! let second = cache
//!     .get_or_load("tools/list".to_owned(), &["github"], || async {
//!         Err::<Loaded<String>, _>(std::io::Error::other("not called"))
//!     })
//!     .await?;
//! assert_eq!(second.served, Served::Hit);
//! assert_eq!(second.value, "[...]");
//!
//! // Dropping by tag drops everything of that server.
//! cache.invalidate_tag("github").await?;
//! assert!(cache.peek(&"tools/list".to_owned()).await.is_none());
//! assert_eq!(cache.stats().hits, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `json` (default): the `json` module: `canonical_json`, `JsonKey`,
//!   and `JsonCodec` for the second level. Adds `serde_json`.
//! - `redis`: the `redis` module: a Redis [`SecondLevel`]. Adds `redis`.
//!
//! # Runtime
//!
//! Loads run in tasks spawned on the current Tokio runtime; a lookup that
//! must load outside one fails with [`Error::NoRuntime`].
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod config;
mod error;
pub mod second_level;
mod stats;
mod weigh;

#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub mod json;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

pub use crate::cache::{Cache, CacheBuilder, Loaded, Lookup, Served};
pub use crate::config::CacheConfig;
pub use crate::error::{BoxError, Error, SecondLevelError};
pub use crate::second_level::{Codec, Invalidation, RemoteEntry, SecondLevel};
pub use crate::stats::Stats;
pub use crate::weigh::{ENTRY_OVERHEAD, Weigh};
