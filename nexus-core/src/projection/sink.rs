//! Where a projection applies its batches and keeps its position.

use async_trait::async_trait;

use super::Batch;
use crate::lease::Fence;
use crate::{BoxError, CodecError, LogPosition, StoreError};

/// Why a projection step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The checkpoint write carried a fence that is no longer current:
    /// another instance owns the projection now. Nothing of the batch was
    /// recorded (exactly-once sinks roll the batch back too).
    #[error("projection {projection}: checkpoint refused, epoch {epoch} of shard {shard} is stale")]
    Fenced {
        /// The projection's name.
        projection: String,
        /// The shard of the lease.
        shard: u32,
        /// The stale epoch.
        epoch: u64,
    },
    /// The checkpoint moved under this instance (another unfenced instance
    /// wrote it): nothing of the batch was recorded.
    #[error("projection {projection}: the checkpoint was moved by another instance")]
    Moved {
        /// The projection's name.
        projection: String,
    },
    /// An event of the log does not decode: the projection stops at it
    /// rather than skip it.
    #[error("projection {projection}: event at {position} does not decode: {source}")]
    Decode {
        /// The projection's name.
        projection: String,
        /// Where the event is.
        position: LogPosition,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The store failed.
    #[error("projection store: {0}")]
    Store(#[from] StoreError),
    /// The handler failed; the batch is retried.
    #[error("projection handler: {0}")]
    Handler(#[source] BoxError),
    /// The sink cannot do this (a rebuild of a sink without tables).
    #[error("{0}")]
    Unsupported(String),
}

impl ProjectionError {
    /// Whether another instance holds the projection now.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Fenced { .. } | Self::Moved { .. })
            || matches!(self, Self::Store(e) if e.is_fenced())
    }
}

/// Applies a projection's batches and records how far it has read.
///
/// [`deliver`](Self::deliver) gets the selected events of one page of the
/// log and `through`, the position of the page's last event (selected or
/// not). An exactly-once sink applies the batch and records `through` in one
/// transaction; an at-least-once sink may record it later, so events after
/// the recorded position are delivered again after a crash. Every write of
/// the position presents `fence` when the runner holds a lease, and a stale
/// fence is refused with [`ProjectionError::Fenced`].
///
/// ```
/// use async_trait::async_trait;
/// use nexus_core::LogPosition;
/// use nexus_core::lease::Fence;
/// use nexus_core::projection::{Batch, ProjectionError, Sink};
///
/// /// Counts events; forgets its position on restart (a toy).
/// struct Count(usize, Option<LogPosition>);
///
/// #[async_trait]
/// impl Sink<u64> for Count {
///     async fn load(&mut self) -> Result<Option<LogPosition>, ProjectionError> { Ok(self.1) }
///     async fn deliver(&mut self, batch: Batch<u64>, through: LogPosition, _: Option<&Fence>)
///         -> Result<(), ProjectionError> {
///         self.0 += batch.len();
///         self.1 = Some(through);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Sink<E>: Send + 'static {
    /// The recorded position, `None` if the projection never ran.
    async fn load(&mut self) -> Result<Option<LogPosition>, ProjectionError>;

    /// Applies `batch` and records (now or later) that the log was read
    /// through `through`.
    async fn deliver(
        &mut self,
        batch: Batch<E>,
        through: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError>;

    /// Records any position delivered but not yet recorded (called when the
    /// projection pauses, stops or is idle). The default has nothing to do.
    async fn flush(&mut self, fence: Option<&Fence>) -> Result<(), ProjectionError> {
        let _ = fence;
        Ok(())
    }

    /// Starts a rebuild: later deliveries go to a fresh, empty read model
    /// that readers do not see yet. The default refuses.
    async fn begin_rebuild(&mut self, fence: Option<&Fence>) -> Result<(), ProjectionError> {
        let _ = fence;
        Err(ProjectionError::Unsupported(
            "this projection's sink cannot rebuild".to_owned(),
        ))
    }

    /// Ends a rebuild that has caught up to `through`: readers see the fresh
    /// read model from now on, atomically, and the recorded position is
    /// `through`.
    async fn finish_rebuild(
        &mut self,
        through: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError> {
        let _ = (through, fence);
        Err(ProjectionError::Unsupported(
            "this projection's sink cannot rebuild".to_owned(),
        ))
    }
}
