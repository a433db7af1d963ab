//! The seat-reservation bake-off: the experiment of the seat-reservation bake-off article, reproducible.
//!
//! Buyers fire one reservation each at a seat, most of them at a few hot
//! seats, all at once, against two designs on the same store: a version
//! column with retries ([`SeatTable`], no actors) and one event-sourced
//! entity per seat ([`Seat`](crate::domain::seat::Seat)). Winners and double
//! bookings are counted from the store afterwards, never from what the
//! buyers were told. [`cli_main`] is the `seat-bakeoff` program; [`run`] is
//! the same without the printing.

mod actor;
mod args;
mod buyers;
mod cli;
mod error;
mod optimistic;
mod report;
mod run;
mod workload;

pub use actor::seat_id;
pub use args::Args;
pub use cli::cli_main;
pub use error::BakeoffError;
pub use optimistic::{Attempt, MemorySeats, PgSeats, RETRY_CAP, SeatTable, buy};
pub use report::{DesignReport, quantile_ms, table};
pub use run::{DesignRun, run};
pub use workload::{Workload, WorkloadError};
