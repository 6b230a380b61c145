//! A Redis second level (feature `redis`), shared by several instances.
//!
//! [`RedisSecondLevel`] stores each value under `{key_prefix}k:{key}` with a
//! Redis TTL (`PX`) equal to its fresh period, and records tag membership in
//! Redis sets `{key_prefix}t:{tag}`. Deletes and tag invalidations are
//! published on a pub/sub channel; every other instance subscribed to it
//! drops its local copy. An instance ignores its own messages: use one
//! `RedisSecondLevel` per cache.
//!
//! Commands go over one multiplexed connection, re-opened after an
//! unrecoverable error. The subscription reconnects on its own; after a
//! reconnect it reports [`Invalidation::All`], since messages may have been
//! missed. Tag invalidation runs a Lua script on keys it finds in the tag
//! set, so this works against a single Redis server, not Redis Cluster.
//! Tags use `PEXPIRE … NX` / `GT`, which need Redis 7.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::{MultiplexedConnection, PubSub};
use ::redis::{Client, Pipeline, RedisError};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

use crate::error::SecondLevelError;
use crate::second_level::{Invalidation, RemoteEntry, SecondLevel};

/// Configuration of a [`RedisSecondLevel`].
///
/// | field | default |
/// |---|---|
/// | `url` | `redis://127.0.0.1:6379/` |
/// | `key_prefix` | `switchboard:cache:` |
/// | `channel` | `switchboard:cache:invalidations` |
/// | `max_value_bytes` | 1 MiB |
/// | `resubscribe_delay` | 1 s |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Redis connection URL (`redis://[user:password@]host:port/db`).
    /// Default: `redis://127.0.0.1:6379/`.
    pub url: String,
    /// Prefix of every key this cache writes. Instances that share entries
    /// must use the same prefix. Default: `switchboard:cache:`.
    pub key_prefix: String,
    /// Pub/sub channel for invalidations. Instances that share entries must
    /// use the same channel. Default: `switchboard:cache:invalidations`.
    pub channel: String,
    /// Largest stored value, in bytes (the encoded value plus a 9-byte
    /// header). Larger values are rejected and not stored. Default: 1 MiB.
    pub max_value_bytes: usize,
    /// Pause between attempts to re-subscribe after the subscription
    /// connection is lost. Default: 1 s.
    pub resubscribe_delay: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/".to_owned(),
            key_prefix: "switchboard:cache:".to_owned(),
            channel: "switchboard:cache:invalidations".to_owned(),
            max_value_bytes: 1024 * 1024,
            resubscribe_delay: Duration::from_secs(1),
        }
    }
}

/// Deletes every key in the tag set `KEYS[1]`, then the set itself.
const INVALIDATE_TAG_SCRIPT: &str = r"
local members = redis.call('SMEMBERS', KEYS[1])
for i = 1, #members, 500 do
  redis.call('DEL', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', KEYS[1])
return #members
";

/// A [`SecondLevel`] on Redis. See the [module docs](self).
pub struct RedisSecondLevel {
    client: Client,
    connection: Mutex<MultiplexedConnection>,
    config: RedisConfig,
    /// This instance's id in published messages.
    origin: u64,
    invalidations: broadcast::Sender<Invalidation>,
    subscriber: AbortHandle,
}

impl std::fmt::Debug for RedisSecondLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSecondLevel")
            .field("config", &self.config)
            .field("origin", &format_args!("{:016x}", self.origin))
            .finish_non_exhaustive()
    }
}

impl Drop for RedisSecondLevel {
    fn drop(&mut self) {
        self.subscriber.abort();
    }
}

impl RedisSecondLevel {
    /// Connects, subscribes to the invalidation channel, and starts the task
    /// that receives invalidations. Must run inside a Tokio runtime.
    pub async fn connect(config: RedisConfig) -> Result<Self, SecondLevelError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|error| SecondLevelError::Backend(error.into()))?;
        let client = Client::open(config.url.as_str()).map_err(backend)?;
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(backend)?;
        let pubsub = subscribe(&client, &config.channel).await.map_err(backend)?;
        let origin = new_origin();
        let (invalidations, _) = broadcast::channel(1024);
        let subscriber = runtime
            .spawn(receive_invalidations(
                client.clone(),
                pubsub,
                config.clone(),
                origin,
                invalidations.clone(),
            ))
            .abort_handle();
        Ok(RedisSecondLevel {
            client,
            connection: Mutex::new(connection),
            config,
            origin,
            invalidations,
            subscriber,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    fn value_key(&self, key: &[u8]) -> Vec<u8> {
        let mut name = Vec::with_capacity(self.config.key_prefix.len() + 2 + key.len());
        name.extend_from_slice(self.config.key_prefix.as_bytes());
        name.extend_from_slice(b"k:");
        name.extend_from_slice(key);
        name
    }

    fn tag_key(&self, tag: &str) -> String {
        format!("{}t:{tag}", self.config.key_prefix)
    }

    /// A published message: origin (16 hex digits), kind byte, payload.
    fn message(&self, kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut message = format!("{:016x}", self.origin).into_bytes();
        message.push(kind);
        message.extend_from_slice(payload);
        message
    }

    /// Runs a pipeline, re-opening the connection after an unrecoverable
    /// error so the next call can succeed.
    async fn query<T: ::redis::FromRedisValue>(
        &self,
        pipeline: &Pipeline,
    ) -> Result<T, SecondLevelError> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match pipeline.query_async(&mut connection).await {
            Ok(value) => Ok(value),
            Err(error) => {
                if error.is_unrecoverable_error() {
                    self.reconnect().await;
                }
                Err(backend(error))
            }
        }
    }

    async fn reconnect(&self) {
        match self.client.get_multiplexed_async_connection().await {
            Ok(connection) => {
                *self
                    .connection
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = connection;
            }
            Err(error) => tracing::warn!(error = %error, "redis reconnect failed"),
        }
    }
}

impl SecondLevel for RedisSecondLevel {
    fn max_value_bytes(&self) -> usize {
        self.config.max_value_bytes
    }

    fn get<'a>(
        &'a self,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<RemoteEntry>, SecondLevelError>> {
        Box::pin(async move {
            let name = self.value_key(key);
            let mut pipeline = ::redis::pipe();
            pipeline
                .atomic()
                .cmd("GET")
                .arg(&name)
                .cmd("PTTL")
                .arg(&name);
            let (value, ttl_millis): (Option<Vec<u8>>, i64) = self.query(&pipeline).await?;
            // PTTL is -2 for a missing key and -1 for a key without expiry.
            let ttl = u64::try_from(ttl_millis).ok().map(Duration::from_millis);
            Ok(value.map(|value| RemoteEntry { value, ttl }))
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Duration,
        tags: &'a [Arc<str>],
    ) -> BoxFuture<'a, Result<(), SecondLevelError>> {
        Box::pin(async move {
            let limit = self.config.max_value_bytes;
            if value.len() > limit {
                return Err(SecondLevelError::TooLarge {
                    size: value.len(),
                    limit,
                });
            }
            let ttl_millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let name = self.value_key(key);
            let mut pipeline = ::redis::pipe();
            pipeline.atomic();
            pipeline
                .cmd("SET")
                .arg(&name)
                .arg(value)
                .arg("PX")
                .arg(ttl_millis)
                .ignore();
            for tag in tags {
                let tag_key = self.tag_key(tag);
                pipeline.cmd("SADD").arg(&tag_key).arg(&name).ignore();
                // The set lives as long as its longest-lived member.
                pipeline
                    .cmd("PEXPIRE")
                    .arg(&tag_key)
                    .arg(ttl_millis)
                    .arg("NX")
                    .ignore();
                pipeline
                    .cmd("PEXPIRE")
                    .arg(&tag_key)
                    .arg(ttl_millis)
                    .arg("GT")
                    .ignore();
            }
            self.query(&pipeline).await
        })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<(), SecondLevelError>> {
        Box::pin(async move {
            let mut pipeline = ::redis::pipe();
            pipeline.atomic();
            pipeline.cmd("DEL").arg(self.value_key(key)).ignore();
            pipeline
                .cmd("PUBLISH")
                .arg(&self.config.channel)
                .arg(self.message(b'k', key))
                .ignore();
            self.query(&pipeline).await
        })
    }

    fn invalidate_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), SecondLevelError>> {
        Box::pin(async move {
            let mut pipeline = ::redis::pipe();
            pipeline.atomic();
            pipeline
                .cmd("EVAL")
                .arg(INVALIDATE_TAG_SCRIPT)
                .arg(1)
                .arg(self.tag_key(tag))
                .ignore();
            pipeline
                .cmd("PUBLISH")
                .arg(&self.config.channel)
                .arg(self.message(b't', tag.as_bytes()))
                .ignore();
            self.query(&pipeline).await
        })
    }

    fn invalidations(&self) -> BoxStream<'static, Invalidation> {
        let receiver = self.invalidations.subscribe();
        Box::pin(futures::stream::unfold(
            receiver,
            |mut receiver| async move {
                match receiver.recv().await {
                    Ok(invalidation) => Some((invalidation, receiver)),
                    // Messages were dropped: only clearing everything is safe.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Some((Invalidation::All, receiver))
                    }
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            },
        ))
    }
}

async fn subscribe(client: &Client, channel: &str) -> Result<PubSub, RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Forwards other instances' invalidations until aborted, re-subscribing
/// whenever the subscription connection ends.
async fn receive_invalidations(
    client: Client,
    mut pubsub: PubSub,
    config: RedisConfig,
    origin: u64,
    sender: broadcast::Sender<Invalidation>,
) {
    loop {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            if let Some(invalidation) = parse_message(message.get_payload_bytes(), origin) {
                // No receiver yet (or any more) is fine.
                let _unused = sender.send(invalidation);
            }
        }
        tracing::warn!(channel = %config.channel, "redis invalidation subscription lost");
        pubsub = loop {
            tokio::time::sleep(config.resubscribe_delay).await;
            match subscribe(&client, &config.channel).await {
                Ok(pubsub) => break pubsub,
                Err(error) => tracing::warn!(error = %error, "redis resubscribe failed"),
            }
        };
        // Whatever was published while disconnected is lost.
        let _unused = sender.send(Invalidation::All);
    }
}

/// Parses a published message; `None` for our own messages and for
/// messages that are not ours to read.
fn parse_message(message: &[u8], own_origin: u64) -> Option<Invalidation> {
    if message.len() < 17 {
        return None;
    }
    let (origin, rest) = message.split_at(16);
    let origin = u64::from_str_radix(std::str::from_utf8(origin).ok()?, 16).ok()?;
    if origin == own_origin {
        return None;
    }
    let (&kind, payload) = rest.split_first()?;
    match kind {
        b'k' => Some(Invalidation::Key(payload.to_vec())),
        b't' => Some(Invalidation::Tag(String::from_utf8(payload.to_vec()).ok()?)),
        b'a' => Some(Invalidation::All),
        _ => None,
    }
}

/// A random id for this instance's messages.
fn new_origin() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

fn backend(error: RedisError) -> SecondLevelError {
    SecondLevelError::Backend(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messages_and_skips_own() {
        let own = 0xabcd;
        assert_eq!(parse_message(b"000000000000abcdkkey", own), None);
        assert_eq!(
            parse_message(b"0000000000000001kkey", own),
            Some(Invalidation::Key(b"key".to_vec()))
        );
        assert_eq!(
            parse_message(b"0000000000000001tgithub", own),
            Some(Invalidation::Tag("github".to_owned()))
        );
        assert_eq!(
            parse_message(b"0000000000000001a", own),
            Some(Invalidation::All)
        );
        assert_eq!(parse_message(b"short", own), None);
        assert_eq!(parse_message(b"zzzzzzzzzzzzzzzzk", own), None);
    }
}
