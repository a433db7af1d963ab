//! Why a bake-off did not complete.

use nexus_core::{CodecError, ConfigError, StoreError};
use nexus_store_pg::PgSetupError;

use super::workload::WorkloadError;

/// Why a bake-off did not complete. Only [`Workload`](Self::Workload) is
/// the caller's mistake; it is found before anything is connected or
/// written.
///
/// ```
/// use nexus_examples::bakeoff::{BakeoffError, WorkloadError};
/// let error = BakeoffError::from(WorkloadError::HotShare(1.5));
/// assert_eq!(error.to_string(), "hot share must be between 0 and 1, got 1.5");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BakeoffError {
    /// The arguments describe no workload.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The database failed (connecting, or the optimistic design's SQL).
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// The event store's schema could not be named or migrated.
    #[error("event store setup: {0}")]
    PgSetup(#[from] PgSetupError),
    /// The seat entities could not be configured.
    #[error("seat entities: {0}")]
    Config(#[from] ConfigError),
    /// Reading a seat stream back failed.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// An event read back from the store did not decode.
    #[error("decoding a seat event: {0}")]
    Decode(#[from] CodecError),
    /// A buyer of the actor design got an answer other than the seat or
    /// "already reserved".
    #[error("reservation: {0}")]
    Reservation(String),
    /// A buyer's task panicked or was cancelled.
    #[error("buyer task: {0}")]
    Buyer(#[from] tokio::task::JoinError),
}
