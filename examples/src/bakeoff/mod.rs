//! The seat-reservation bake-off: the seed's experiment, reproducible.

mod optimistic;
mod report;
mod workload;

pub use optimistic::{Attempt, MemorySeats, PgSeats, RETRY_CAP, SeatTable, buy};
pub use report::{DesignReport, quantile_ms, table};
pub use workload::{Workload, WorkloadError};
