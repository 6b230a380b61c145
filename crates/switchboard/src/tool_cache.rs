//! Building the tool-result cache from the configuration, and its public controls.

use std::sync::Arc;

use std::time::Duration;

use rmcp::model::{CacheScope, ReadResourceResult, ResourceContents};
use serde_json::Value;
use switchboard_cache::{CacheBuilder, CacheConfig, Loaded, Stats, json::JsonKey};
use switchboard_transport::Connection;

use crate::{
    Error, Switchboard,
    call::{CallCodec, ToolCache, weigh},
    config::GlobalSettings,
};

/// Builds the cache: in-process always; with a Redis second level when `cache.redis_url` is
/// set and the `redis` feature is on. A second level that cannot be reached is reported and
/// left out: the cache then works locally.
pub(crate) async fn build(global: &GlobalSettings) -> Option<ToolCache> {
    let config = CacheConfig {
        max_bytes: global.cache_max_bytes,
        stale_if_error: global.cache_stale_if_error,
        ..CacheConfig::default()
    };
    let builder = CacheBuilder::with_weigher(config, weigh);
    let builder = with_second_level(builder, global).await;
    match builder.build() {
        Ok(cache) => Some(cache),
        Err(error) => {
            tracing::error!(%error, "the tool cache cannot be built; caching is off");
            None
        }
    }
}

#[cfg(feature = "redis")]
async fn with_second_level(
    builder: CacheBuilder<switchboard_cache::json::JsonKey, Arc<crate::call::CachedCall>>,
    global: &GlobalSettings,
) -> CacheBuilder<switchboard_cache::json::JsonKey, Arc<crate::call::CachedCall>> {
    use switchboard_cache::redis::{RedisConfig, RedisSecondLevel};
    let Some(url) = &global.cache_redis_url else {
        return builder;
    };
    let config = RedisConfig {
        url: url.clone(),
        ..RedisConfig::default()
    };
    match RedisSecondLevel::connect(config).await {
        Ok(store) => builder.second_level(Arc::new(store), Arc::new(CallCodec)),
        Err(error) => {
            tracing::error!(%error, "the Redis second-level cache is unreachable; caching locally only");
            builder
        }
    }
}

#[cfg(not(feature = "redis"))]
async fn with_second_level(
    builder: CacheBuilder<switchboard_cache::json::JsonKey, Arc<crate::call::CachedCall>>,
    global: &GlobalSettings,
) -> CacheBuilder<switchboard_cache::json::JsonKey, Arc<crate::call::CachedCall>> {
    if global.cache_redis_url.is_some() {
        tracing::warn!(
            "cache.redis_url is set but this build has no `redis` feature; caching locally only"
        );
    }
    let _ = CallCodec;
    builder
}

/// Cached `resources/read` results (this process only).
pub(crate) type ReadCache = switchboard_cache::Cache<JsonKey, Arc<ReadResourceResult>>;

/// The read cache: a quarter of the tool cache's byte budget, in this process only.
pub(crate) fn build_read_cache(global: &GlobalSettings) -> Option<ReadCache> {
    let config = CacheConfig {
        max_bytes: (global.cache_max_bytes / 4).max(1),
        stale_if_error: global.cache_stale_if_error,
        ..CacheConfig::default()
    };
    let weigh = |key: &JsonKey, value: &Arc<ReadResourceResult>| {
        let contents: usize = value
            .contents
            .iter()
            .map(|c| {
                96 + match c {
                    ResourceContents::TextResourceContents { uri, text, .. } => {
                        uri.len() + text.len()
                    }
                    ResourceContents::BlobResourceContents { uri, blob, .. } => {
                        uri.len() + blob.len()
                    }
                    _ => 256,
                }
            })
            .sum();
        key.as_str().len() + contents + 128
    };
    match CacheBuilder::with_weigher(config, weigh).build() {
        Ok(cache) => Some(cache),
        Err(error) => {
            tracing::error!(%error, "the resource cache cannot be built; resource reads are not cached");
            None
        }
    }
}

/// The tag of every cached read of one resource (dropped on `resources/updated`).
pub(crate) fn resource_tag(uri: &str) -> String {
    format!("resource:{uri}")
}

/// Reads through the cache: a result the server marked cacheable (`ttlMs` > 0, scope not
/// `private` — reads carry no principal) is kept for its `ttlMs`; any other is passed through.
pub(crate) async fn read_cached(
    cache: &ReadCache,
    connection: &Connection,
    uri: &str,
    timeout: Duration,
) -> Result<ReadResourceResult, Error> {
    let server = connection.name().clone();
    let read = {
        let (connection, server, uri) = (connection.clone(), server.clone(), uri.to_owned());
        async move {
            match tokio::time::timeout(timeout, connection.read_resource(&uri)).await {
                Ok(result) => result.map_err(Error::from),
                Err(_) => Err(Error::Timeout {
                    server,
                    operation: "resources/read".to_owned(),
                    after: timeout,
                }),
            }
        }
    };
    let key = JsonKey::scoped(
        &["resources/read", server.as_str()],
        &Value::String(uri.to_owned()),
    );
    let tags = [server.as_str(), &resource_tag(uri)];
    let lookup = cache
        .get_or_load(key, &tags, move || async move {
            let result = read.await?;
            let private = matches!(result.cache_scope, Some(CacheScope::Private));
            Ok::<_, Error>(match result.ttl_ms.filter(|ttl| *ttl > 0) {
                Some(ttl) if !private => {
                    Loaded::with_ttl(Arc::new(result), Duration::from_millis(ttl))
                }
                _ => Loaded::uncached(Arc::new(result)),
            })
        })
        .await;
    match lookup {
        Ok(lookup) => {
            tracing::debug!(server = %server, uri, served = ?lookup.served, "resources/read");
            Ok(ReadResourceResult::clone(&lookup.value))
        }
        Err(error) => Err(error
            .load_error()
            .and_then(|e| e.downcast_ref::<Error>())
            .cloned()
            .unwrap_or_else(|| Error::ResourceNotFound {
                uri: uri.to_owned(),
                detail: Some(error.to_string()),
            })),
    }
}

impl Switchboard {
    /// Counters of the tool-result cache (hits, misses, stale answers, coalesced calls, …);
    /// `None` when caching is off.
    pub fn cache_stats(&self) -> Option<Stats> {
        self.inner.cache.as_ref().map(|c| c.stats())
    }

    /// Drops cached tool results: of one server, or all of them.
    ///
    /// # Errors
    /// An unknown server, or a second level (Redis) that could not be told.
    pub async fn clear_cache(&self, server: Option<&str>) -> Result<(), Error> {
        let Some(cache) = &self.inner.cache else {
            return Ok(());
        };
        let result = match server {
            Some(server) => {
                self.connection(server)?;
                cache.invalidate_tag(server).await
            }
            None => {
                cache.clear_local();
                let mut last = Ok(());
                for slot in &self.inner.servers {
                    if let Err(e) = cache.invalidate_tag(slot.config.spec.name.as_str()).await {
                        last = Err(e);
                    }
                }
                last
            }
        };
        result.map_err(|e| Error::InvalidArguments {
            tool: "cache".to_owned(),
            message: e.to_string(),
        })
    }
}
