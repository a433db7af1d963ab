//! The seat-reservation bake-off: the seed's experiment, reproducible.
//!
//! Buyers fire one reservation each at a seat, most of them at a few hot
//! seats, against two designs on the same store: a version column with
//! retries (`optimistic`, over a [`SeatTable`]) and one entity per seat
//! (`actor`).
//! Winners and double bookings are counted from the store afterwards.

mod actor;
mod optimistic;
mod report;
mod run;
mod workload;

pub use actor::seat_id;
pub use optimistic::{Attempt, MemorySeats, PgSeats, RETRY_CAP, SeatTable, buy};
pub use report::{DesignReport, quantile_ms, table};
pub use run::{Args, BakeoffError, cli_main, run};
pub use workload::{Workload, WorkloadError};
