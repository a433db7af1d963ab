//! What one design did: the JSON line and the human table.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

/// The result of one design, printed as one JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DesignReport {
    /// `optimistic` or `actor`.
    pub design: String,
    /// Buyers that fired a reservation.
    pub buyers: usize,
    /// Seats on sale.
    pub seats: usize,
    /// Seats that ended with a holder, counted from the store.
    pub winners: u64,
    /// Seats with more than one booking, counted from the store.
    pub double_bookings: u64,
    /// Attempts that lost a version race and tried again.
    pub retries: u64,
    /// Median reservation latency.
    pub p50_ms: f64,
    /// 99th percentile reservation latency.
    pub p99_ms: f64,
    /// Time from the first request to the last answer.
    pub wall_ms: f64,
}

/// The `q` quantile (0..=1) of `latencies`, in milliseconds, by the
/// nearest-rank method.
///
/// ```
/// use std::time::Duration;
/// use nexus_examples::bakeoff::quantile_ms;
/// let l: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
/// assert_eq!(quantile_ms(&l, 0.5), 50.0);
/// assert_eq!(quantile_ms(&l, 0.99), 99.0);
/// ```
pub fn quantile_ms(latencies: &[Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1_000.0
}

/// A short table of the reports, for people.
///
/// ```
/// use nexus_examples::bakeoff::{DesignReport, table};
/// let report = DesignReport {
///     design: "actor".into(), buyers: 200, seats: 50, winners: 35, double_bookings: 0,
///     retries: 0, p50_ms: 1.5, p99_ms: 4.0, wall_ms: 9.0,
/// };
/// let text = table(&[report]);
/// assert!(text.starts_with("design"));
/// assert!(text.lines().nth(1).unwrap().starts_with("actor"));
/// ```
pub fn table(reports: &[DesignReport]) -> String {
    let mut out = format!(
        "{:<11} {:>7} {:>6} {:>8} {:>15} {:>8} {:>9} {:>9} {:>9}\n",
        "design",
        "buyers",
        "seats",
        "winners",
        "double_bookings",
        "retries",
        "p50_ms",
        "p99_ms",
        "wall_ms"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<11} {:>7} {:>6} {:>8} {:>15} {:>8} {:>9.3} {:>9.3} {:>9.1}",
            r.design,
            r.buyers,
            r.seats,
            r.winners,
            r.double_bookings,
            r.retries,
            r.p50_ms,
            r.p99_ms,
            r.wall_ms
        );
    }
    out
}
