//! A read cache of durable state that never goes back in time (the
//! second-level-cache page of Nexus PHP, on a cache shared by every process).
//!
//! [`WriteThrough`] wraps a [`StateStore`]: after the store's save returned
//! (the write committed) it writes the new state and version to the
//! [`ReadCache`]; the cache keeps an entry only if its version is newer than
//! the one it holds, in one server-side step, so two writers racing, or a
//! late write-through, can never replace a newer state with an older one.
//! [`CachedReads`] serves readers that bypass the actor: the cache first,
//! the store on a miss or when the cache is unreachable (logged and counted
//! in [`CachedReads::outages`]); writes never fail because of the cache.
//!
//! [`RedisCache`] (feature `redis`) implements [`ReadCache`] on Redis with a
//! Lua script. Never use a per-process cache in a pool of workers: one
//! worker's write is invisible to the others.

#[cfg(feature = "redis")]
mod redis_cache;

#[cfg(feature = "redis")]
pub use redis_cache::RedisCache;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::lease::Fence;
use crate::store::{StateStore, StoredState, VersionedState};
use crate::{BoxError, ExpectedVersion, StoreError, StreamId};

/// A shared cache of versioned states.
#[async_trait]
pub trait ReadCache: Send + Sync + 'static {
    /// The cached state of `id`, if any.
    async fn get(&self, id: &StreamId) -> Result<Option<StoredState>, BoxError>;

    /// Caches `state` unless the cache holds `id` at `state.version` or newer;
    /// returns whether it was stored. Atomic: never replaces a newer version.
    async fn put_if_newer(&self, id: &StreamId, state: &StoredState) -> Result<bool, BoxError>;
}

/// Where a [`CachedReads::load`] answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// The shared cache.
    Cache,
    /// The store (a miss, or the cache was unreachable).
    Store,
}

impl ReadFrom {
    /// `"cache"` or `"store"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cache => "cache",
            Self::Store => "store",
        }
    }
}

/// Counts cache outages, shared by [`WriteThrough`] and [`CachedReads`].
#[derive(Debug, Default)]
struct Outages(AtomicU64);

/// A [`StateStore`] that writes every committed save through to a
/// [`ReadCache`]. A cache failure is logged and counted, never returned.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::cache::{CachedReads, ReadFrom, WriteThrough};
/// use nexus_core::store::{StateStore, memory::InMemoryStateStore};
/// use nexus_core::{ExpectedVersion, StreamId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let cache = Arc::new(nexus_core::cache::doc_cache());
/// let store = WriteThrough::new(InMemoryStateStore::new(), cache);
/// let id = StreamId::new("ledger-alice");
/// store.save(&id, ExpectedVersion::NoStream, b"1".to_vec()).await.unwrap();
/// let reads = store.reads();
/// let (state, from) = reads.load(&id).await.unwrap();
/// assert_eq!((state.unwrap().version, from), (1, ReadFrom::Cache));
/// # });
/// ```
#[derive(Debug)]
pub struct WriteThrough<S> {
    inner: Arc<S>,
    cache: Arc<dyn ReadCacheDebug>,
    outages: Arc<Outages>,
}

/// [`ReadCache`] + `Debug`, so the decorators can derive `Debug`.
trait ReadCacheDebug: ReadCache + std::fmt::Debug {}
impl<T: ReadCache + std::fmt::Debug> ReadCacheDebug for T {}

impl<S: StateStore> WriteThrough<S> {
    /// Wraps `inner`, writing through to `cache`.
    pub fn new<C: ReadCache + std::fmt::Debug>(inner: S, cache: Arc<C>) -> Self {
        Self {
            inner: Arc::new(inner),
            cache,
            outages: Arc::new(Outages::default()),
        }
    }

    /// The read API for readers that bypass the actor, sharing this store
    /// and cache.
    pub fn reads(&self) -> CachedReads<S> {
        CachedReads {
            store: Arc::clone(&self.inner),
            cache: Arc::clone(&self.cache),
            outages: Arc::clone(&self.outages),
        }
    }

    async fn write_through(&self, id: &StreamId, version: u64, payload: Vec<u8>) {
        let state = StoredState { version, payload };
        if let Err(error) = self.cache.put_if_newer(id, &state).await {
            self.outages.0.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%id, version, %error, "read cache unreachable; write-through skipped");
        }
    }
}

#[async_trait]
impl<S: StateStore> StateStore for WriteThrough<S> {
    async fn load(&self, id: &StreamId) -> Result<Option<StoredState>, StoreError> {
        self.inner.load(id).await
    }

    async fn save(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
    ) -> Result<u64, StoreError> {
        let version = self.inner.save(id, expected, payload.clone()).await?;
        self.write_through(id, version, payload).await;
        Ok(version)
    }

    async fn save_fenced(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        let version = self
            .inner
            .save_fenced(id, expected, payload.clone(), fence)
            .await?;
        self.write_through(id, version, payload).await;
        Ok(version)
    }

    async fn version(&self, id: &StreamId) -> Result<u64, StoreError> {
        self.inner.version(id).await
    }

    /// The inner store's, so its tombstones' versions are kept.
    async fn load_versioned(&self, id: &StreamId) -> Result<VersionedState, StoreError> {
        self.inner.load_versioned(id).await
    }

    async fn delete(&self, id: &StreamId, expected: ExpectedVersion) -> Result<(), StoreError> {
        self.inner.delete(id, expected).await
    }
}

/// Reads of durable state that bypass the actor: the cache first, the store
/// on a miss or an outage (and a miss is written back, version-guarded).
#[derive(Debug)]
pub struct CachedReads<S> {
    store: Arc<S>,
    cache: Arc<dyn ReadCacheDebug>,
    outages: Arc<Outages>,
}

impl<S> Clone for CachedReads<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            cache: Arc::clone(&self.cache),
            outages: Arc::clone(&self.outages),
        }
    }
}

impl<S: StateStore> CachedReads<S> {
    /// The state of `id` and where it was read from.
    pub async fn load(&self, id: &StreamId) -> Result<(Option<StoredState>, ReadFrom), StoreError> {
        match self.cache.get(id).await {
            Ok(Some(state)) => return Ok((Some(state), ReadFrom::Cache)),
            Ok(None) => {
                let state = self.store.load(id).await?;
                if let Some(state) = &state
                    && let Err(error) = self.cache.put_if_newer(id, state).await
                {
                    self.outage(id, &error);
                }
                return Ok((state, ReadFrom::Store));
            }
            Err(error) => self.outage(id, &error),
        }
        Ok((self.store.load(id).await?, ReadFrom::Store))
    }

    /// The state of `id` and where it was read from, never older than what
    /// the store held when the call began: a cache hit is served only if
    /// the store's version (one lookup, no payload) is not newer, else the
    /// store's state is read and written back, version-guarded.
    ///
    /// [`load`](Self::load) trusts the cache, which is stale when a write
    /// committed while its writer could not reach the cache (an outage of
    /// one process, or of the cache while others kept serving from it):
    /// a reader that had seen the newer state through the store could then
    /// read the older one back. This read costs a version lookup on a hit
    /// and closes that gap; readers across processes never go back in time
    /// as long as the store answers.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use nexus_core::cache::{ReadFrom, WriteThrough};
    /// use nexus_core::store::{StateStore, memory::InMemoryStateStore};
    /// use nexus_core::{ExpectedVersion, StreamId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = WriteThrough::new(InMemoryStateStore::new(), Arc::new(nexus_core::cache::doc_cache()));
    /// let id = StreamId::new("ledger-alice");
    /// store.save(&id, ExpectedVersion::NoStream, b"1".to_vec()).await.unwrap();
    /// let (state, from) = store.reads().load_fresh(&id).await.unwrap();
    /// assert_eq!((state.unwrap().version, from), (1, ReadFrom::Cache));
    /// # });
    /// ```
    pub async fn load_fresh(
        &self,
        id: &StreamId,
    ) -> Result<(Option<StoredState>, ReadFrom), StoreError> {
        match self.cache.get(id).await {
            Ok(Some(cached)) => {
                if self.store.version(id).await? <= cached.version {
                    return Ok((Some(cached), ReadFrom::Cache));
                }
            }
            Ok(None) => {}
            Err(error) => {
                self.outage(id, &error);
                return Ok((self.store.load(id).await?, ReadFrom::Store));
            }
        }
        let state = self.store.load(id).await?;
        if let Some(state) = &state
            && let Err(error) = self.cache.put_if_newer(id, state).await
        {
            self.outage(id, &error);
        }
        Ok((state, ReadFrom::Store))
    }

    /// How many cache operations failed (reads fell back to the store,
    /// write-throughs were skipped).
    pub fn outages(&self) -> u64 {
        self.outages.0.load(Ordering::Relaxed)
    }

    fn outage(&self, id: &StreamId, error: &BoxError) {
        self.outages.0.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%id, %error, "read cache unreachable; reading the store");
    }
}

/// A process-local cache for doc examples only (never in a worker pool).
#[doc(hidden)]
pub fn doc_cache() -> DocCache {
    DocCache::default()
}

#[doc(hidden)]
#[derive(Debug, Default)]
pub struct DocCache(std::sync::Mutex<std::collections::HashMap<StreamId, StoredState>>);

#[async_trait]
impl ReadCache for DocCache {
    async fn get(&self, id: &StreamId) -> Result<Option<StoredState>, BoxError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned())
    }

    async fn put_if_newer(&self, id: &StreamId, state: &StoredState) -> Result<bool, BoxError> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map
            .get(id)
            .is_some_and(|held| held.version >= state.version)
        {
            return Ok(false);
        }
        map.insert(id.clone(), state.clone());
        Ok(true)
    }
}
