//! The second level (L2): a byte store shared by several cache instances.
//!
//! A [`Cache`](crate::Cache) with a second level looks there before it runs
//! its loader, and writes what the loader returned there too. The second
//! level holds only fresh values: its entries expire at the end of the fresh
//! period, so stale-if-error serving stays a local decision of each instance.
//!
//! Invalidations go through the second level as well: [`SecondLevel::delete`]
//! and [`SecondLevel::invalidate_tag`] must tell the *other* instances, which
//! receive it from [`SecondLevel::invalidations`] and drop their local copy.
//!
//! The Redis implementation lives in `crate::redis` (feature `redis`).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::{BoxError, SecondLevelError};

/// An entry read from the second level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// How long the entry stays fresh, if the store knows.
    pub ttl: Option<Duration>,
}

/// An invalidation made by another instance, to be applied locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// Drop one key, as encoded by [`Codec::encode_key`].
    Key(Vec<u8>),
    /// Drop every entry with this tag.
    Tag(String),
    /// Drop every local entry: invalidations may have been lost (for example
    /// while the subscription reconnected).
    All,
}

/// A byte store shared by several cache instances.
///
/// Methods return boxed futures so the trait stays object safe; the cache
/// holds it as `Arc<dyn SecondLevel>`.
pub trait SecondLevel: Send + Sync + 'static {
    /// The largest value, in bytes, that [`set`](SecondLevel::set) accepts.
    fn max_value_bytes(&self) -> usize;

    /// Reads one key.
    fn get<'a>(
        &'a self,
        key: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<RemoteEntry>, SecondLevelError>>;

    /// Stores a value for `ttl` and records its tags. A value larger than
    /// [`max_value_bytes`](SecondLevel::max_value_bytes) must be rejected
    /// with [`SecondLevelError::TooLarge`] and not stored.
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Duration,
        tags: &'a [Arc<str>],
    ) -> BoxFuture<'a, Result<(), SecondLevelError>>;

    /// Deletes one key and tells the other instances.
    fn delete<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<(), SecondLevelError>>;

    /// Deletes every key with this tag and tells the other instances.
    fn invalidate_tag<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), SecondLevelError>>;

    /// The invalidations made by other instances. Called once per cache at
    /// build time. The default never yields anything.
    fn invalidations(&self) -> BoxStream<'static, Invalidation> {
        Box::pin(futures::stream::empty())
    }
}

/// Turns keys and values into bytes for a [`SecondLevel`], and back.
///
/// Key encoding must be deterministic and the same on every instance: it is
/// the shared identity of an entry.
pub trait Codec<K, V>: Send + Sync + 'static {
    /// Encodes a key.
    fn encode_key(&self, key: &K) -> Vec<u8>;
    /// Decodes a key received in an [`Invalidation::Key`]; `None` if the
    /// bytes are not a key of this codec.
    fn decode_key(&self, bytes: &[u8]) -> Option<K>;
    /// Encodes a value.
    fn encode_value(&self, value: &V) -> Result<Vec<u8>, BoxError>;
    /// Decodes a value.
    fn decode_value(&self, bytes: &[u8]) -> Result<V, BoxError>;
}

/// Version byte of the envelope the cache wraps around encoded values.
const ENVELOPE_VERSION: u8 = 1;
const ENVELOPE_HEADER: usize = 1 + 8;

/// Wraps an encoded value with the fresh period it was stored with, so an
/// instance reading it can tell its age.
pub(crate) fn seal(fresh_for: Duration, payload: &[u8]) -> Vec<u8> {
    let millis = u64::try_from(fresh_for.as_millis()).unwrap_or(u64::MAX);
    let mut sealed = Vec::with_capacity(ENVELOPE_HEADER + payload.len());
    sealed.push(ENVELOPE_VERSION);
    sealed.extend_from_slice(&millis.to_le_bytes());
    sealed.extend_from_slice(payload);
    sealed
}

/// Undoes [`seal`]: the original fresh period and the payload.
pub(crate) fn unseal(sealed: &[u8]) -> Option<(Duration, &[u8])> {
    let (&version, rest) = sealed.split_first()?;
    if version != ENVELOPE_VERSION || rest.len() < 8 {
        return None;
    }
    let (millis, payload) = rest.split_at(8);
    let mut buf = [0u8; 8];
    buf.copy_from_slice(millis);
    Some((Duration::from_millis(u64::from_le_bytes(buf)), payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips() {
        let sealed = seal(Duration::from_millis(1500), b"payload");
        assert_eq!(
            unseal(&sealed),
            Some((Duration::from_millis(1500), &b"payload"[..]))
        );
        assert_eq!(unseal(b""), None);
        assert_eq!(unseal(&[2, 0, 0]), None);
    }
}
