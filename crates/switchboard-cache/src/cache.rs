//! The cache itself: [`Cache`], its builder, and what a lookup returns.
//!
//! A lookup goes through these steps:
//!
//! 1. A fresh local entry is returned as [`Served::Hit`].
//! 2. Otherwise the caller joins the load in flight for the key, or starts
//!    one. A load runs in its own Tokio task, so a caller that gives up does
//!    not cancel it for the others. The load first asks the second level, if
//!    any, and runs the loader only if that has nothing.
//! 3. If the load fails and the caller had seen a stale entry (one still
//!    inside its stale window), the stale value is returned as
//!    [`Served::Stale`]; otherwise the error is.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use moka::notification::RemovalCause;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config::CacheConfig;
use crate::error::{BoxError, Error, SecondLevelError};
use crate::second_level::{self, Codec, Invalidation, SecondLevel};
use crate::stats::{Counters, Stats};
use crate::weigh::{self, Weigh};

/// Longest fresh period or stale window an entry can have; longer values are
/// cut to this. Keeps deadline arithmetic far from overflow.
const MAX_PERIOD: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// What a loader returns: the value and how long it may be cached.
#[derive(Debug, Clone)]
pub struct Loaded<V> {
    value: V,
    ttl: Ttl,
}

#[derive(Debug, Clone, Copy)]
enum Ttl {
    Default,
    For(Duration),
    DoNotCache,
}

impl<V> Loaded<V> {
    /// A value that stays fresh for [`CacheConfig::default_ttl`].
    pub fn new(value: V) -> Self {
        Loaded {
            value,
            ttl: Ttl::Default,
        }
    }

    /// A value that stays fresh for `ttl` (for example an MCP `ttlMs` hint),
    /// clamped to [`CacheConfig::min_ttl`]..=[`CacheConfig::max_ttl`]. A zero
    /// TTL makes the entry stale at once: every lookup refreshes it, and the
    /// value is still served if a refresh fails within the stale window.
    pub fn with_ttl(value: V, ttl: Duration) -> Self {
        Loaded {
            value,
            ttl: Ttl::For(ttl),
        }
    }

    /// A value handed to the waiting callers but not stored (for example an
    /// error-flagged result).
    pub fn uncached(value: V) -> Self {
        Loaded {
            value,
            ttl: Ttl::DoNotCache,
        }
    }

    /// The value.
    pub fn value(&self) -> &V {
        &self.value
    }

    /// Takes the value out.
    pub fn into_value(self) -> V {
        self.value
    }
}

/// How a lookup was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Loaded now: this caller's load ran the loader.
    Fresh,
    /// A fresh local entry.
    Hit,
    /// This caller's load found the value in the second level (another
    /// instance had loaded it) and copied it into the local cache.
    SecondLevel,
    /// The refresh failed, and the value is a stale one still inside its
    /// stale window (RFC 5861 `stale-if-error`).
    Stale {
        /// Time since the value was loaded.
        age: Duration,
    },
    /// Another caller's load was in flight for the key; this caller joined it.
    Coalesced,
}

impl Served {
    /// True for [`Served::Stale`].
    pub fn is_stale(&self) -> bool {
        matches!(self, Served::Stale { .. })
    }
}

/// A value and how it was served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<V> {
    /// The value.
    pub value: V,
    /// How it was served.
    pub served: Served,
}

/// Tags of an entry, shared between the entry and its load.
type Tags = Arc<[Arc<str>]>;

/// What the cache stores in moka: the value and its freshness. moka cannot
/// return expired entries, so the entry lives for its fresh period plus its
/// stale window, and freshness is judged here.
#[derive(Debug)]
struct Entry<V> {
    value: V,
    tags: Tags,
    inserted_at: Instant,
    fresh_until: Instant,
    stale_until: Instant,
    /// Fresh period plus stale window: moka's per-entry time to live.
    lifetime: Duration,
}

impl<V> Entry<V> {
    /// An entry loaded at `inserted_at`, fresh until `now + fresh_for`.
    fn new(
        value: V,
        tags: Tags,
        inserted_at: Instant,
        now: Instant,
        fresh_for: Duration,
        stale_for: Duration,
    ) -> Self {
        let fresh_for = fresh_for.min(MAX_PERIOD);
        let lifetime = fresh_for + stale_for.min(MAX_PERIOD);
        Entry {
            value,
            tags,
            inserted_at,
            fresh_until: deadline(now, fresh_for),
            stale_until: deadline(now, lifetime),
            lifetime,
        }
    }
}

fn deadline(now: Instant, period: Duration) -> Instant {
    now.checked_add(period).unwrap_or(now)
}

/// moka's per-entry expiry: each entry lives for its own `lifetime`.
struct EntryExpiry;

impl<K, V> moka::Expiry<K, Arc<Entry<V>>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        entry: &Arc<Entry<V>>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.lifetime)
    }

    fn expire_after_update(
        &self,
        _key: &K,
        entry: &Arc<Entry<V>>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.lifetime)
    }
}

/// Where a load found its value.
#[derive(Debug, Clone, Copy)]
enum Source {
    Loader,
    SecondLevel,
}

type FlightResult<V> = Result<(V, Source), Error>;

/// What callers of one flight wait on.
type FlightFuture<V> = Shared<oneshot::Receiver<FlightResult<V>>>;

/// One load in flight. Callers wait on `result`; the load runs in its own
/// task and sends the result when done.
struct Flight<V> {
    id: u64,
    tags: Tags,
    result: FlightFuture<V>,
}

/// A user-supplied weigher: the bytes of a key and value.
type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> usize + Send + Sync + 'static>;

/// The second level and the codec that feeds it.
struct Remote<K, V> {
    store: Arc<dyn SecondLevel>,
    codec: Arc<dyn Codec<K, V>>,
}

/// Builds a [`Cache`] with a custom weigher or a second level.
pub struct CacheBuilder<K, V> {
    config: CacheConfig,
    weigher: Weigher<K, V>,
    remote: Option<Remote<K, V>>,
}

impl<K, V> std::fmt::Debug for CacheBuilder<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("config", &self.config)
            .field("second_level", &self.remote.is_some())
            .finish_non_exhaustive()
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder that weighs entries with [`Weigh`].
    pub fn new(config: CacheConfig) -> Self
    where
        K: Weigh,
        V: Weigh,
    {
        Self::with_weigher(config, |key: &K, value: &V| key.weigh() + value.weigh())
    }

    /// A builder that weighs entries with `weigher`, which returns the bytes
    /// of a key and its value. The cache adds its own per-entry overhead.
    pub fn with_weigher(
        config: CacheConfig,
        weigher: impl Fn(&K, &V) -> usize + Send + Sync + 'static,
    ) -> Self {
        CacheBuilder {
            config,
            weigher: Arc::new(weigher),
            remote: None,
        }
    }

    /// Adds a second level, shared with other instances, and the codec that
    /// turns keys and values into its bytes.
    pub fn second_level(
        mut self,
        store: Arc<dyn SecondLevel>,
        codec: Arc<dyn Codec<K, V>>,
    ) -> Self {
        self.remote = Some(Remote { store, codec });
        self
    }

    /// Builds the cache.
    ///
    /// With a second level, this subscribes to its invalidations in a new
    /// task, so it must run inside a Tokio runtime; otherwise it fails with
    /// [`Error::NoRuntime`].
    pub fn build(self) -> Result<Cache<K, V>, Error> {
        let runtime = match self.remote {
            Some(_) => Some(Handle::try_current().map_err(|_| Error::NoRuntime)?),
            None => None,
        };
        let inner = Arc::new(Inner::new(self.config, self.weigher, self.remote));
        if let (Some(runtime), Some(remote)) = (runtime, &inner.remote) {
            let invalidations = remote.store.invalidations();
            let task = runtime.spawn(listen(Arc::downgrade(&inner), invalidations));
            // Only this call sets it, once.
            let _unused = inner.listener.set(task.abort_handle());
        }
        Ok(Cache { inner })
    }
}

/// An async cache with fresh and stale windows, stale-if-error, request
/// coalescing, tag invalidation and an optional second level.
///
/// Cloning is cheap: clones share the same entries. Keys and values are
/// cloned out on every hit, so large values should be behind an [`Arc`].
///
/// See the [crate documentation](crate) for an example.
pub struct Cache<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.inner.config)
            .field("second_level", &self.inner.remote.is_some())
            .field("stats", &self.inner.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Weigh + 'static,
    V: Clone + Send + Sync + Weigh + 'static,
{
    /// A local cache (no second level) that weighs entries with [`Weigh`].
    pub fn new(config: CacheConfig) -> Self {
        let builder = CacheBuilder::new(config);
        Cache {
            inner: Arc::new(Inner::new(builder.config, builder.weigher, None)),
        }
    }

    /// A builder that weighs entries with [`Weigh`]; see
    /// [`CacheBuilder::with_weigher`] for other types.
    pub fn builder(config: CacheConfig) -> CacheBuilder<K, V> {
        CacheBuilder::new(config)
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Returns the value for `key`, loading it if needed:
    ///
    /// 1. A fresh local entry is returned as [`Served::Hit`].
    /// 2. Otherwise the call joins the load in flight for the key
    ///    ([`Served::Coalesced`]) or starts one. The load asks the second
    ///    level first, if there is one ([`Served::SecondLevel`]), then runs
    ///    the loader ([`Served::Fresh`]).
    /// 3. If the load fails and the call had found an entry inside its stale
    ///    window, that value is returned as [`Served::Stale`]; otherwise the
    ///    error is.
    ///
    /// `tags` label the entry if this call starts the load (for
    /// [`invalidate_tag`](Cache::invalidate_tag)); a caller joining a load
    /// gets the tags of the caller that started it. `loader` is called only
    /// if this call starts the load, and its future then runs in a spawned
    /// task: put the work in the future, not in the closure.
    ///
    /// A loader error is delivered to every caller waiting on that load and
    /// is not cached.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: K,
        tags: &[&str],
        loader: F,
    ) -> Result<Lookup<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded<V>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let inner = &self.inner;
        let now = Instant::now();
        let stale = match inner.l1.get(&key).await {
            Some(entry) if now < entry.fresh_until => {
                Counters::bump(&inner.counters.hits);
                return Ok(Lookup {
                    value: entry.value.clone(),
                    served: Served::Hit,
                });
            }
            Some(entry) if now < entry.stale_until => Some(entry),
            _ => None,
        };
        Counters::bump(&inner.counters.misses);
        let (result, joined) = Inner::join_or_start(inner, key, tags, loader)?;
        let result = result.await.unwrap_or(Err(Error::LoadAborted));
        match (result, stale) {
            (Ok((value, _)), _) if joined => Ok(Lookup {
                value,
                served: Served::Coalesced,
            }),
            (Ok((value, Source::Loader)), _) => Ok(Lookup {
                value,
                served: Served::Fresh,
            }),
            (Ok((value, Source::SecondLevel)), _) => Ok(Lookup {
                value,
                served: Served::SecondLevel,
            }),
            (Err(error), Some(entry)) => {
                Counters::bump(&inner.counters.stale_served);
                tracing::debug!(error = %error, "refresh failed, serving stale value");
                let age = Instant::now().saturating_duration_since(entry.inserted_at);
                Ok(Lookup {
                    value: entry.value.clone(),
                    served: Served::Stale { age },
                })
            }
            (Err(error), None) => Err(error),
        }
    }

    /// Returns the local entry for `key` without loading: fresh as
    /// [`Served::Hit`], inside its stale window as [`Served::Stale`].
    /// Neither counts in [`Stats`] nor asks the second level.
    pub async fn peek(&self, key: &K) -> Option<Lookup<V>> {
        let entry = self.inner.l1.get(key).await?;
        let now = Instant::now();
        if now < entry.fresh_until {
            Some(Lookup {
                value: entry.value.clone(),
                served: Served::Hit,
            })
        } else if now < entry.stale_until {
            let age = now.saturating_duration_since(entry.inserted_at);
            Some(Lookup {
                value: entry.value.clone(),
                served: Served::Stale { age },
            })
        } else {
            None
        }
    }

    /// Stores a value without a loader, locally and in the second level.
    pub async fn insert(&self, key: K, tags: &[&str], loaded: Loaded<V>) {
        let inner = &self.inner;
        let epoch = inner.epoch.load(Ordering::SeqCst);
        inner.store(&key, &to_tags(tags), epoch, loaded).await;
    }

    /// Drops `key` here, in the second level, and (through it) in the other
    /// instances. A load in flight for the key is not cached when it ends,
    /// and later callers start a new one.
    ///
    /// The local entry is always dropped; the error reports a failed
    /// second level.
    pub async fn invalidate(&self, key: &K) -> Result<(), Error> {
        let inner = &self.inner;
        inner.invalidate_local_key(key).await;
        if let Some(remote) = &inner.remote {
            let encoded = remote.codec.encode_key(key);
            remote
                .store
                .delete(&encoded)
                .await
                .map_err(|error| Error::SecondLevel(Arc::new(error)))?;
        }
        Ok(())
    }

    /// Drops every entry tagged `tag` here, in the second level, and
    /// (through it) in the other instances. Loads in flight with the tag are
    /// not cached when they end.
    ///
    /// The local entries are always dropped; the error reports a failed
    /// second level.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<(), Error> {
        let inner = &self.inner;
        inner.invalidate_local_tag(tag);
        if let Some(remote) = &inner.remote {
            remote
                .store
                .invalidate_tag(tag)
                .await
                .map_err(|error| Error::SecondLevel(Arc::new(error)))?;
        }
        Ok(())
    }

    /// Drops every local entry. The second level and other instances are
    /// left alone.
    pub fn clear_local(&self) {
        self.inner.clear_local();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Approximate number of local entries (exact after
    /// [`run_pending_tasks`](Cache::run_pending_tasks)).
    pub fn entry_count(&self) -> u64 {
        self.inner.l1.entry_count()
    }

    /// Approximate summed weight of local entries, in bytes (exact after
    /// [`run_pending_tasks`](Cache::run_pending_tasks)).
    pub fn weighted_size(&self) -> u64 {
        self.inner.l1.weighted_size()
    }

    /// Runs moka's pending maintenance now: evictions, expirations, removal
    /// of invalidated entries. It otherwise runs as a side effect of cache
    /// calls.
    pub async fn run_pending_tasks(&self) {
        self.inner.l1.run_pending_tasks().await;
    }
}

/// State shared by every clone of a [`Cache`] and by its load tasks.
struct Inner<K, V> {
    l1: moka::future::Cache<K, Arc<Entry<V>>>,
    config: CacheConfig,
    flights: Mutex<HashMap<K, Flight<V>>>,
    counters: Arc<Counters>,
    /// Bumped by every invalidation. A load that sees it change between its
    /// start and its store does not store.
    epoch: AtomicU64,
    next_flight_id: AtomicU64,
    remote: Option<Remote<K, V>>,
    /// The task applying the second level's invalidations.
    listener: OnceLock<AbortHandle>,
}

impl<K, V> Drop for Inner<K, V> {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(config: CacheConfig, weigher: Weigher<K, V>, remote: Option<Remote<K, V>>) -> Self {
        let counters = Arc::new(Counters::default());
        let listener_counters = Arc::clone(&counters);
        let l1 = moka::future::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(move |key: &K, entry: &Arc<Entry<V>>| {
                let tag_bytes: usize = entry.tags.iter().map(|tag| tag.len()).sum();
                weigh::entry_weight(weigher(key, &entry.value).saturating_add(tag_bytes))
            })
            .expire_after(EntryExpiry)
            .eviction_listener(move |_key, _entry, cause| match cause {
                RemovalCause::Size => Counters::bump(&listener_counters.evictions),
                RemovalCause::Expired => Counters::bump(&listener_counters.expirations),
                RemovalCause::Explicit | RemovalCause::Replaced => {}
            })
            .support_invalidation_closures()
            .build();
        Inner {
            l1,
            config,
            flights: Mutex::new(HashMap::new()),
            counters,
            epoch: AtomicU64::new(0),
            next_flight_id: AtomicU64::new(0),
            remote,
            listener: OnceLock::new(),
        }
    }

    /// Joins the flight for `key`, or starts one. Returns the result future
    /// and whether this call joined an existing flight.
    fn join_or_start<F, Fut, E>(
        this: &Arc<Self>,
        key: K,
        tags: &[&str],
        loader: F,
    ) -> Result<(FlightFuture<V>, bool), Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Loaded<V>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let mut flights = lock(&this.flights);
        if let Some(flight) = flights.get(&key) {
            Counters::bump(&this.counters.coalesced);
            return Ok((flight.result.clone(), true));
        }
        let runtime = Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let id = this.next_flight_id.fetch_add(1, Ordering::Relaxed);
        let tags = to_tags(tags);
        let (sender, receiver) = oneshot::channel();
        let result = receiver.shared();
        flights.insert(
            key.clone(),
            Flight {
                id,
                tags: Arc::clone(&tags),
                result: result.clone(),
            },
        );
        drop(flights);

        let epoch = this.epoch.load(Ordering::SeqCst);
        // Created before calling the loader: if the loader panics, dropping
        // the guard removes the flight.
        let guard = FlightGuard {
            inner: Arc::clone(this),
            key,
            id,
        };
        let load = loader();
        runtime.spawn(async move {
            let result = guard.inner.run_flight(&guard.key, &tags, epoch, load).await;
            // Leave the flight map before answering, after storing: a caller
            // that arrives now finds the entry instead of a finished flight.
            drop(guard);
            // Every waiter may have given up; the value is cached anyway.
            let _unused = sender.send(result);
        });
        Ok((result, false))
    }

    /// The body of a load task: second level, then loader, then store.
    async fn run_flight<Fut, E>(
        &self,
        key: &K,
        tags: &Tags,
        epoch: u64,
        load: Fut,
    ) -> FlightResult<V>
    where
        Fut: Future<Output = Result<Loaded<V>, E>>,
        E: Into<BoxError>,
    {
        if let Some(remote) = &self.remote
            && let Some(entry) = self.remote_get(remote, key, tags).await
        {
            Counters::bump(&self.counters.second_level_hits);
            let value = entry.value.clone();
            self.store_local(key, entry, epoch).await;
            return Ok((value, Source::SecondLevel));
        }
        Counters::bump(&self.counters.loads);
        let loaded = match AssertUnwindSafe(load).catch_unwind().await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(error)) => {
                Counters::bump(&self.counters.load_errors);
                return Err(Error::Load(Arc::from(error.into())));
            }
            Err(_panic) => {
                Counters::bump(&self.counters.load_errors);
                tracing::warn!("cache loader panicked");
                return Err(Error::LoadAborted);
            }
        };
        let value = loaded.value.clone();
        self.store(key, tags, epoch, loaded).await;
        Ok((value, Source::Loader))
    }

    /// Stores a loaded value locally and in the second level, unless it is
    /// uncacheable or an invalidation happened since `epoch`.
    async fn store(&self, key: &K, tags: &Tags, epoch: u64, loaded: Loaded<V>) {
        let fresh_for = match loaded.ttl {
            Ttl::Default => self.config.default_ttl,
            Ttl::For(ttl) => self.config.clamp_ttl(ttl),
            Ttl::DoNotCache => return,
        };
        let now = Instant::now();
        let entry = Entry::new(
            loaded.value,
            Arc::clone(tags),
            now,
            now,
            fresh_for,
            self.config.stale_if_error,
        );
        if entry.lifetime.is_zero() {
            return;
        }
        let entry = Arc::new(entry);
        self.store_local(key, Arc::clone(&entry), epoch).await;
        if let Some(remote) = &self.remote
            && self.epoch.load(Ordering::SeqCst) == epoch
        {
            self.remote_set(remote, key, &entry, fresh_for).await;
        }
    }

    /// Inserts into moka unless an invalidation happened since `epoch`. The
    /// second check catches an invalidation that raced with the insert.
    async fn store_local(&self, key: &K, entry: Arc<Entry<V>>, epoch: u64) {
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        self.l1.insert(key.clone(), entry).await;
        if self.epoch.load(Ordering::SeqCst) != epoch {
            self.l1.invalidate(key).await;
        }
    }

    /// Reads a fresh entry from the second level. Failures count and read
    /// as a miss: the loader still has a chance.
    async fn remote_get(
        &self,
        remote: &Remote<K, V>,
        key: &K,
        tags: &Tags,
    ) -> Option<Arc<Entry<V>>> {
        let encoded_key = remote.codec.encode_key(key);
        let found = match remote.store.get(&encoded_key).await {
            Ok(found) => found?,
            Err(error) => {
                self.second_level_failed(&error, "read");
                return None;
            }
        };
        let Some((stored_fresh_for, payload)) = second_level::unseal(&found.value) else {
            self.second_level_failed(&SecondLevelError::Codec("unknown envelope".into()), "read");
            return None;
        };
        let value = match remote.codec.decode_value(payload) {
            Ok(value) => value,
            Err(error) => {
                self.second_level_failed(&SecondLevelError::Codec(error), "read");
                return None;
            }
        };
        let fresh_for = found.ttl.unwrap_or(stored_fresh_for);
        if fresh_for.is_zero() {
            return None;
        }
        let now = Instant::now();
        let age = stored_fresh_for.saturating_sub(fresh_for);
        let inserted_at = now.checked_sub(age).unwrap_or(now);
        let entry = Entry::new(
            value,
            Arc::clone(tags),
            inserted_at,
            now,
            fresh_for,
            self.config.stale_if_error,
        );
        Some(Arc::new(entry))
    }

    /// Writes an entry to the second level for its fresh period. Failures
    /// (including a value over the size limit) count and are logged.
    async fn remote_set(
        &self,
        remote: &Remote<K, V>,
        key: &K,
        entry: &Entry<V>,
        fresh_for: Duration,
    ) {
        if fresh_for.is_zero() {
            return;
        }
        let payload = match remote.codec.encode_value(&entry.value) {
            Ok(payload) => payload,
            Err(error) => {
                self.second_level_failed(&SecondLevelError::Codec(error), "write");
                return;
            }
        };
        let sealed = second_level::seal(fresh_for, &payload);
        let limit = remote.store.max_value_bytes();
        if sealed.len() > limit {
            let error = SecondLevelError::TooLarge {
                size: sealed.len(),
                limit,
            };
            self.second_level_failed(&error, "write");
            return;
        }
        let encoded_key = remote.codec.encode_key(key);
        if let Err(error) = remote
            .store
            .set(&encoded_key, &sealed, fresh_for, &entry.tags)
            .await
        {
            self.second_level_failed(&error, "write");
        }
    }

    fn second_level_failed(&self, error: &SecondLevelError, operation: &str) {
        Counters::bump(&self.counters.second_level_errors);
        tracing::warn!(error = %error, operation, "second-level cache failed");
    }

    /// Applies an invalidation made by another instance.
    async fn apply(&self, invalidation: Invalidation) {
        match invalidation {
            Invalidation::Key(bytes) => {
                let Some(remote) = &self.remote else { return };
                match remote.codec.decode_key(&bytes) {
                    Some(key) => self.invalidate_local_key(&key).await,
                    None => tracing::debug!("ignoring invalidation of an undecodable key"),
                }
            }
            Invalidation::Tag(tag) => self.invalidate_local_tag(&tag),
            Invalidation::All => self.clear_local(),
        }
    }

    async fn invalidate_local_key(&self, key: &K) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        lock(&self.flights).remove(key);
        self.l1.invalidate(key).await;
    }

    fn invalidate_local_tag(&self, tag: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        lock(&self.flights).retain(|_, flight| !flight.tags.iter().any(|t| &**t == tag));
        let tag: Arc<str> = Arc::from(tag);
        let registered = self
            .l1
            .invalidate_entries_if(move |_key, entry| entry.tags.contains(&tag));
        if let Err(error) = registered {
            // Only possible without `support_invalidation_closures`, which
            // `Inner::new` always sets; fall back to dropping everything.
            tracing::warn!(error = %error, "tag invalidation unavailable, clearing the cache");
            self.l1.invalidate_all();
        }
    }

    fn clear_local(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        lock(&self.flights).clear();
        self.l1.invalidate_all();
    }
}

/// Removes its flight from the map when the load task ends, panics, or is
/// dropped with the runtime.
struct FlightGuard<K, V>
where
    K: Hash + Eq,
{
    inner: Arc<Inner<K, V>>,
    key: K,
    id: u64,
}

impl<K, V> Drop for FlightGuard<K, V>
where
    K: Hash + Eq,
{
    fn drop(&mut self) {
        let mut flights = lock(&self.inner.flights);
        if flights
            .get(&self.key)
            .is_some_and(|flight| flight.id == self.id)
        {
            flights.remove(&self.key);
        }
    }
}

/// Applies the second level's invalidations until the cache is dropped.
async fn listen<K, V>(
    inner: Weak<Inner<K, V>>,
    mut invalidations: futures::stream::BoxStream<'static, Invalidation>,
) where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    while let Some(invalidation) = invalidations.next().await {
        let Some(inner) = inner.upgrade() else { return };
        inner.apply(invalidation).await;
    }
}

fn to_tags(tags: &[&str]) -> Tags {
    tags.iter().map(|tag| Arc::from(*tag)).collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
