//! Building the tool-result cache from the configuration, and its public controls.

use std::sync::Arc;

use switchboard_cache::{CacheBuilder, CacheConfig, Stats};

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
