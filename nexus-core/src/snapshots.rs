//! When to snapshot, where to keep snapshots, and how many.

use std::fmt;
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, de::DeserializeOwned};

use crate::codec::{Codec, PayloadCodec};
use crate::store::{Snapshot, SnapshotStore};
use crate::{Aggregate, CodecError, StoreError, StreamId};

type Predicate<A> = Arc<dyn Fn(&A, &<A as Aggregate>::Event, u64) -> bool + Send + Sync>;

/// When an event-sourced entity saves a snapshot of its state.
///
/// The strategy is asked after each persisted event with the state after it,
/// the event and its version; when it says yes for any event of an append,
/// one snapshot is taken at the append's last version.
///
/// ```
/// use std::num::NonZeroU64;
/// use nexus_core::SnapshotStrategy;
/// # use nexus_core::testkit::doc::{Counter, CounterEvent};
/// let every_100 = SnapshotStrategy::<Counter>::every_n(NonZeroU64::new(100).unwrap());
/// assert!(every_100.should_snapshot(&Counter::default(), &CounterEvent::Added(1), 200));
/// assert!(!every_100.should_snapshot(&Counter::default(), &CounterEvent::Added(1), 201));
///
/// let big = SnapshotStrategy::<Counter>::when(|state, _, _| state.value > 1_000);
/// assert!(!big.should_snapshot(&Counter::default(), &CounterEvent::Added(1), 1));
/// ```
pub enum SnapshotStrategy<A: Aggregate> {
    /// Never snapshot: recovery always replays the whole stream.
    Never,
    /// Snapshot when the version is a multiple of N.
    EveryN(NonZeroU64),
    /// Snapshot when the predicate over (state, event, version) holds.
    When(Predicate<A>),
}

impl<A: Aggregate> SnapshotStrategy<A> {
    /// Never snapshot.
    pub fn never() -> Self {
        Self::Never
    }

    /// Snapshot every `n` events (Nexus PHP's `SnapshotStrategy::everyN`).
    pub fn every_n(n: NonZeroU64) -> Self {
        Self::EveryN(n)
    }

    /// Snapshot when `predicate(state_after, event, version)` holds.
    pub fn when(predicate: impl Fn(&A, &A::Event, u64) -> bool + Send + Sync + 'static) -> Self {
        Self::When(Arc::new(predicate))
    }

    /// Whether to snapshot after `event` brought the state to `version`.
    pub fn should_snapshot(&self, state: &A, event: &A::Event, version: u64) -> bool {
        match self {
            Self::Never => false,
            Self::EveryN(n) => version.is_multiple_of(n.get()),
            Self::When(predicate) => predicate(state, event, version),
        }
    }
}

impl<A: Aggregate> Clone for SnapshotStrategy<A> {
    fn clone(&self) -> Self {
        match self {
            Self::Never => Self::Never,
            Self::EveryN(n) => Self::EveryN(*n),
            Self::When(p) => Self::When(Arc::clone(p)),
        }
    }
}

impl<A: Aggregate> fmt::Debug for SnapshotStrategy<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("Never"),
            Self::EveryN(n) => write!(f, "EveryN({n})"),
            Self::When(_) => f.write_str("When(..)"),
        }
    }
}

/// Snapshotting for one aggregate kind: the strategy, the store, the codec of
/// the state and the retention.
///
/// ```
/// use std::{num::NonZeroU64, sync::Arc};
/// use nexus_core::{Snapshots, SnapshotStrategy, codec::Json};
/// use nexus_core::store::memory::InMemorySnapshotStore;
/// # use nexus_core::testkit::doc::Counter;
/// let snapshots = Snapshots::<Counter>::new(
///     SnapshotStrategy::every_n(NonZeroU64::new(100).unwrap()),
///     Arc::new(InMemorySnapshotStore::new()),
///     Json,
/// )
/// .keep_last(std::num::NonZeroUsize::new(2).unwrap());
/// # let _ = snapshots;
/// ```
pub struct Snapshots<A: Aggregate> {
    strategy: SnapshotStrategy<A>,
    store: Arc<dyn SnapshotStore>,
    codec: Arc<dyn PayloadCodec<A>>,
    keep_last: Option<NonZeroUsize>,
}

impl<A: Aggregate> Clone for Snapshots<A> {
    fn clone(&self) -> Self {
        Self {
            strategy: self.strategy.clone(),
            store: Arc::clone(&self.store),
            codec: Arc::clone(&self.codec),
            keep_last: self.keep_last,
        }
    }
}

impl<A: Aggregate> fmt::Debug for Snapshots<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshots")
            .field("strategy", &self.strategy)
            .field("codec", &self.codec.name())
            .field("keep_last", &self.keep_last)
            .finish_non_exhaustive()
    }
}

/// Why saving a snapshot failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The state did not encode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The snapshot store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<A: Aggregate + Serialize + DeserializeOwned> Snapshots<A> {
    /// Snapshots by `strategy` into `store`, encoded with `codec`, keeping all.
    pub fn new(
        strategy: SnapshotStrategy<A>,
        store: Arc<dyn SnapshotStore>,
        codec: impl Codec,
    ) -> Self {
        Self {
            strategy,
            store,
            codec: Arc::new(codec),
            keep_last: None,
        }
    }
}

impl<A: Aggregate> Snapshots<A> {
    /// Keep only the newest `k` snapshots of each stream.
    #[must_use]
    pub fn keep_last(mut self, k: NonZeroUsize) -> Self {
        self.keep_last = Some(k);
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> &SnapshotStrategy<A> {
        &self.strategy
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.store
    }

    /// Decodes a stored snapshot's state.
    pub fn decode(&self, snapshot: &Snapshot) -> Result<A, CodecError> {
        self.codec.decode_payload(&snapshot.payload, "snapshot")
    }

    /// Encodes and saves `state` as of `version`, applying the retention.
    pub async fn save(
        &self,
        stream: &StreamId,
        state: &A,
        version: u64,
    ) -> Result<(), SnapshotError> {
        let snapshot = self.encode(stream, state, version)?;
        self.save_encoded(snapshot).await?;
        Ok(())
    }

    /// Encodes `state` as of `version` without saving it, so that a caller
    /// that must not hold the state across an `.await` (an actor whose state
    /// is not `Sync`) can save it after with [`save_encoded`](Self::save_encoded).
    pub fn encode(
        &self,
        stream: &StreamId,
        state: &A,
        version: u64,
    ) -> Result<Snapshot, CodecError> {
        Ok(Snapshot {
            stream_id: stream.clone(),
            version,
            payload: self.codec.encode_payload(state, "snapshot")?,
            taken_at: SystemTime::now(),
        })
    }

    /// Saves a snapshot made by [`encode`](Self::encode), applying the
    /// retention.
    pub async fn save_encoded(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.store.save(snapshot, self.keep_last).await
    }

    /// Saves a snapshot made by [`encode`](Self::encode) only while `fence`
    /// is current (see [`SnapshotStore::save_fenced`]), applying the
    /// retention.
    pub async fn save_encoded_fenced(
        &self,
        snapshot: Snapshot,
        fence: &crate::lease::Fence,
    ) -> Result<(), StoreError> {
        self.store
            .save_fenced(snapshot, self.keep_last, fence)
            .await
    }
}
