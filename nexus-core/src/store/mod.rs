//! The store contract: event streams, the global log, snapshots and durable
//! state, plus the in-memory implementations.
//!
//! Every implementation must pass the conformance suite
//! (`nexus_core::conformance`, feature `conformance`).

pub mod memory;
mod snapshot;
mod state;

pub use snapshot::{Snapshot, SnapshotStore};
pub use state::{StateStore, StoredState, VersionedState};

use std::ops::ControlFlow;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::lease::Fence;
use crate::{
    AppendOutcome, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, ReplayEvent,
    ReplayEventRef, StoreError, StreamId,
};

/// What [`EventStore::replay`] hands each event to, in version order; it
/// returns [`ControlFlow::Break`] to stop the read early (recovery does at
/// the first event that does not decode).
///
/// ```
/// use std::ops::ControlFlow;
/// use nexus_core::store::ReplayVisitor;
/// let mut count = 0_u64;
/// let visit: &mut ReplayVisitor<'_> = &mut |_event| {
///     count += 1;
///     ControlFlow::Continue(())
/// };
/// # let _ = visit;
/// ```
pub type ReplayVisitor<'v> = dyn FnMut(ReplayEventRef<'_>) -> ControlFlow<()> + Send + 'v;

/// An append-only store of event streams with one global log.
///
/// Guarantees every implementation keeps (and the conformance suite checks):
/// - **Atomic, versioned append**: a batch is stored whole or not at all; a
///   stale expected version stores nothing and fails with
///   [`StoreError::Conflict`] naming the stream, the expected and the actual
///   version. Versions in a stream are gapless, starting at 1.
/// - **Idempotent retry**: appending the same event ids at the same versions
///   again succeeds and returns the original positions.
/// - **Gap-free catch-up**: [`read_all`](Self::read_all) returns committed
///   events in [`LogPosition`] order, and an event committed later never gets a
///   position at or before one already returned to a reader.
///
/// ```
/// use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use nexus_core::store::memory::InMemoryEventStore;
/// # tokio_test_block_on(async {
/// let store = InMemoryEventStore::new();
/// let stream = StreamId::new("wallet-alice");
/// let e = NewEvent::new("wallet.deposited", 1, b"{}".to_vec());
/// let out = store.append(&stream, ExpectedVersion::NoStream, &[e]).await.unwrap();
/// assert_eq!(out.version, 1);
/// let err = store.append(&stream, ExpectedVersion::NoStream, &[]).await.unwrap_err();
/// assert_eq!(err.to_string(), "stream wallet-alice: expected version no stream (0), found 1");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if it is at `expected`, atomically.
    ///
    /// An empty batch stores nothing but still checks `expected`. The events
    /// are borrowed: a store copies what it keeps, and the caller keeps the
    /// batch, both to send the very same events again when an answer was
    /// lost and to reuse its buffers for the next one.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError>;

    /// Appends like [`append`](Self::append), only while `fence` is current:
    /// the fence is checked in the same atomic step that stores the batch, so
    /// a writer whose lease was taken over stores nothing and gets
    /// [`StoreError::Fenced`].
    ///
    /// The default refuses with [`StoreError::FencingUnsupported`]: a store
    /// that cannot check fences must not pretend to.
    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: &Fence,
    ) -> Result<AppendOutcome, StoreError> {
        let _ = (stream, expected, events, fence);
        Err(StoreError::FencingUnsupported {
            store: std::any::type_name::<Self>(),
        })
    }

    /// Reads `stream` from `from_version` (inclusive) to its end, in version
    /// order. A stream that does not exist reads as empty.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads `stream` from `from_version` (inclusive) as recovery needs it:
    /// versions and payloads, without positions and metadata, collected.
    /// The default reads the whole records; a store overrides it to fetch
    /// less. Recovery itself uses [`replay`](Self::replay), which hands the
    /// same events over as they are read instead of collecting them.
    async fn read_stream_for_replay(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<ReplayEvent>, StoreError> {
        let events = self.read_stream(stream, from_version).await?;
        Ok(events.into_iter().map(ReplayEvent::from).collect())
    }

    /// Replays `stream` from `from_version` (inclusive) to its end: what
    /// [`read_stream_for_replay`](Self::read_stream_for_replay) reads, handed
    /// to `visit` event by event as it is read instead of collected, in
    /// version order, until `visit` breaks. A stream that does not exist or
    /// is archived replays as empty.
    ///
    /// A store that overrides it holds one batch of rows at a time, so
    /// recovering a stream of any length takes memory bounded by the batch,
    /// not by the stream. The default reads
    /// [`read_stream_for_replay`](Self::read_stream_for_replay) whole and
    /// walks it, so a store that cannot stream still replays correctly.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
    /// use nexus_core::store::memory::InMemoryEventStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = InMemoryEventStore::new();
    /// let stream = StreamId::new("counter-c1");
    /// let events: Vec<_> = (0..5).map(|_| NewEvent::new("counter.added", 1, b"1".to_vec())).collect();
    /// store.append(&stream, ExpectedVersion::NoStream, &events).await.unwrap();
    ///
    /// let mut versions = Vec::new();
    /// store
    ///     .replay(&stream, 2, &mut |event| {
    ///         versions.push(event.version);
    ///         if event.version == 4 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(versions, [2, 3, 4]);
    /// # });
    /// ```
    async fn replay(
        &self,
        stream: &StreamId,
        from_version: u64,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), StoreError> {
        for event in self.read_stream_for_replay(stream, from_version).await? {
            if visit(event.borrowed()).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Reads up to `limit` events of the global log positioned after `after`,
    /// in position order. `limit` must be at least 1.
    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The current version of `stream` (0 when it has no events).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError>;

    /// The head of `stream`: its version and whether it is archived; `None`
    /// for a stream that has no events. The default reads
    /// [`stream_version`](Self::stream_version), for a store that cannot
    /// archive.
    async fn stream_head(&self, stream: &StreamId) -> Result<Option<StreamHead>, StoreError> {
        let version = self.stream_version(stream).await?;
        Ok((version > 0).then_some(StreamHead {
            version,
            archived: false,
        }))
    }

    /// Archives (soft-deletes) `stream`: its events stay stored, but
    /// [`read_stream`](Self::read_stream), [`read_all`](Self::read_all) and
    /// [`read_category`](Self::read_category) skip them, and appends fail
    /// with [`StoreError::StreamArchived`]. Archiving an archived stream is a
    /// no-op; a stream without events cannot be archived
    /// ([`StoreError::InvalidRequest`]).
    ///
    /// The default refuses with [`StoreError::InvalidRequest`]: a store that
    /// cannot skip a stream must not pretend to.
    async fn archive_stream(&self, stream: &StreamId) -> Result<(), StoreError> {
        Err(StoreError::InvalidRequest(format!(
            "{} cannot archive streams (asked for {stream})",
            std::any::type_name::<Self>()
        )))
    }

    /// Reads up to `limit` events positioned after `after` of every stream
    /// of `category` ([`StreamId::category`]), in position order, with the
    /// guarantees of [`read_all`](Self::read_all). `limit` must be at least
    /// 1. The default pages through the whole log and filters; a store
    /// overrides it with an index.
    async fn read_category(
        &self,
        category: &str,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Err(StoreError::InvalidRequest(
                "read_category: limit must be at least 1".to_owned(),
            ));
        }
        let mut out = Vec::new();
        let mut after = after;
        loop {
            let page = self.read_all(after, limit.max(256)).await?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            let last_page = page.len() < limit.max(256);
            after = last.position;
            for event in page {
                if event.stream_id.category() == category {
                    out.push(event);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            if last_page {
                return Ok(out);
            }
        }
    }
}

/// What a store knows of one stream without reading its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamHead {
    /// The version of the stream's last event.
    pub version: u64,
    /// Whether the stream is archived ([`EventStore::archive_stream`]).
    pub archived: bool,
}
