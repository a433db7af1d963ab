//! At-least-once delivery for external effects: the handler runs, the
//! position is recorded every N events or T.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Batch, ProjectionError, Sink};
use crate::lease::Fence;
use crate::{BoxError, LogPosition};

/// Where an at-least-once projection records its position.
///
/// A write under a stale `fence` must be refused with
/// [`ProjectionError::Fenced`] in the same atomic step that would store it.
///
/// ```
/// use nexus_core::LogPosition;
/// use nexus_core::projection::{CheckpointStore, InMemoryCheckpoints};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let checkpoints = InMemoryCheckpoints::new();
/// checkpoints.save("mailer", LogPosition::new(3, 3), None).await.unwrap();
/// assert_eq!(checkpoints.load("mailer").await.unwrap(), Some(LogPosition::new(3, 3)));
/// # });
/// ```
#[async_trait]
pub trait CheckpointStore: Send + Sync + 'static {
    /// The recorded position of `projection`.
    async fn load(&self, projection: &str) -> Result<Option<LogPosition>, ProjectionError>;

    /// Records `position` for `projection`, if `fence` (when given) is current.
    async fn save(
        &self,
        projection: &str,
        position: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError>;
}

/// Checkpoints in memory (tests and examples); a stale fence is refused.
///
/// ```
/// use nexus_core::LogPosition;
/// use nexus_core::lease::Tenure;
/// use nexus_core::lease::Fence;
/// use nexus_core::projection::{CheckpointStore, InMemoryCheckpoints};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let checkpoints = InMemoryCheckpoints::new();
/// let tenure = Tenure::unbounded(0, 1);
/// let fence = Fence::new(tenure.clone());
/// tenure.revoke();
/// assert!(checkpoints.save("p", LogPosition::new(1, 1), Some(&fence)).await.unwrap_err().is_fenced());
/// # });
/// ```
#[derive(Debug, Default)]
pub struct InMemoryCheckpoints {
    positions: Mutex<HashMap<String, LogPosition>>,
}

impl InMemoryCheckpoints {
    /// No checkpoints yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CheckpointStore for InMemoryCheckpoints {
    async fn load(&self, projection: &str) -> Result<Option<LogPosition>, ProjectionError> {
        let positions = self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(positions.get(projection).copied())
    }

    async fn save(
        &self,
        projection: &str,
        position: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError> {
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(fence) = fence.filter(|f| !f.is_current()) {
            return Err(ProjectionError::Fenced {
                projection: projection.to_owned(),
                shard: fence.shard(),
                epoch: fence.epoch(),
            });
        }
        positions.insert(projection.to_owned(), position);
        Ok(())
    }
}

/// When an at-least-once projection records its position: after
/// `every_events` delivered events or `every` since the last record,
/// whichever comes first, and whenever the projection idles, pauses or
/// stops. Events after the recorded position are delivered again after a
/// crash: at most `every_events` plus one batch.
///
/// ```
/// use std::time::Duration;
/// use nexus_core::projection::CheckpointPolicy;
/// let policy = CheckpointPolicy::default();
/// assert_eq!(policy.every_events, 1000);
/// assert_eq!(policy.every, Duration::from_millis(500));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Record after this many delivered events.
    pub every_events: u64,
    /// Record after this long.
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            every_events: 1000,
            every: Duration::from_millis(500),
        }
    }
}

type Handler<E> = Box<
    dyn Fn(Batch<E>) -> std::pin::Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>
        + Send
        + Sync,
>;

/// A [`Sink`] for external effects: calls the handler with each batch, then
/// records the position per [`CheckpointPolicy`] in a [`CheckpointStore`].
///
/// Delivery is **at-least-once**: a crash between the handler and the next
/// record delivers those events again, so the handler deduplicates by
/// [`Projected::event_id`](super::Projected::event_id). See the
/// [module example](super).
pub struct AtLeastOnce<E> {
    name: String,
    checkpoints: Arc<dyn CheckpointStore>,
    handler: Handler<E>,
    policy: CheckpointPolicy,
    pending: Option<LogPosition>,
    since_record: u64,
    recorded_at: Instant,
}

impl<E: Send + 'static> AtLeastOnce<E> {
    /// A sink calling `handler` with every batch, recording its position in
    /// `checkpoints` under `name` (usually the projection's name).
    pub fn new<F, Fut>(
        name: impl Into<String>,
        checkpoints: Arc<dyn CheckpointStore>,
        handler: F,
    ) -> Self
    where
        F: Fn(Batch<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            checkpoints,
            handler: Box::new(move |batch| Box::pin(handler(batch))),
            policy: CheckpointPolicy::default(),
            pending: None,
            since_record: 0,
            recorded_at: Instant::now(),
        }
    }

    /// Records per `policy` rather than the default.
    #[must_use]
    pub fn policy(mut self, policy: CheckpointPolicy) -> Self {
        self.policy = policy;
        self
    }
}

#[async_trait]
impl<E: Send + 'static> Sink<E> for AtLeastOnce<E> {
    async fn load(&mut self) -> Result<Option<LogPosition>, ProjectionError> {
        self.pending = None;
        self.since_record = 0;
        self.checkpoints.load(&self.name).await
    }

    async fn deliver(
        &mut self,
        batch: Batch<E>,
        through: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError> {
        let delivered = batch.len() as u64;
        if !batch.is_empty() {
            (self.handler)(batch)
                .await
                .map_err(ProjectionError::Handler)?;
        }
        self.pending = Some(through);
        self.since_record += delivered;
        if self.since_record >= self.policy.every_events
            || self.recorded_at.elapsed() >= self.policy.every
        {
            self.flush(fence).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, fence: Option<&Fence>) -> Result<(), ProjectionError> {
        if let Some(position) = self.pending {
            self.checkpoints.save(&self.name, position, fence).await?;
            self.pending = None;
        }
        self.since_record = 0;
        self.recorded_at = Instant::now();
        Ok(())
    }
}
