//! Two sides of a comparison measured in alternating turns: the disk and
//! the database are shared with whatever else runs, and their speed swings
//! by several times within seconds, so a side measured in one block can
//! land in a fast spell and the other in a slow one. In turns, each spell
//! falls on both.

use std::time::Duration;

use super::Throughput;

/// Turns each side takes within its time budget.
pub const TURNS: u32 = 6;

/// The length of one turn of a side whose whole time is `budget`.
///
/// ```
/// use std::time::Duration;
/// use nexus_examples::bench::turns;
/// assert_eq!(turns::turn(Duration::from_secs(6)), Duration::from_secs(1));
/// ```
pub fn turn(budget: Duration) -> Duration {
    budget / TURNS
}

/// A side's turns as one run: their operations over their summed time.
///
/// ```
/// use std::time::Duration;
/// use nexus_examples::bench::{Throughput, turns};
/// let turn = |ok| Throughput { ok, failed: 1, elapsed: Duration::from_millis(500) };
/// let both = turns::combined(&[turn(100), turn(300)]);
/// assert_eq!((both.ok, both.failed), (400, 2));
/// assert!((both.per_second() - 400.0).abs() < 1e-9);
/// ```
pub fn combined(turns: &[Throughput]) -> Throughput {
    Throughput {
        ok: turns.iter().map(|t| t.ok).sum(),
        failed: turns.iter().map(|t| t.failed).sum(),
        elapsed: turns.iter().map(|t| t.elapsed).sum(),
    }
}
