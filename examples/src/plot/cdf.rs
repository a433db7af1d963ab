//! The empirical cumulative distribution of a set of latencies, thinned to
//! a bounded number of points so that a chart of a million samples stays a
//! small file.

use std::time::Duration;

/// Points `(latency in µs, fraction of samples at most that latency)`,
/// ascending in both, the last at fraction 1, and the exact p50 and p99.
///
/// Each point is a sample of the sorted set at an evenly spaced rank, so
/// the minimum and the maximum are always kept and a thinned line never
/// lies about the tail's end. The quantiles come from every sample (by
/// nearest rank, as the programs' JSON lines), not from the thinned points.
///
/// ```
/// use std::time::Duration;
/// use nexus_examples::plot::Cdf;
/// let samples: Vec<Duration> = (1..=1_000).map(Duration::from_micros).collect();
/// let cdf = Cdf::of(&samples, 10);
/// assert_eq!(cdf.points().len(), 11);
/// assert_eq!(cdf.points()[0], (1.0, 0.001));
/// assert_eq!(cdf.points()[10], (1_000.0, 1.0));
/// assert_eq!((cdf.p50_us(), cdf.p99_us()), (Some(500.0), Some(990.0)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Cdf {
    points: Vec<(f64, f64)>,
    /// p50 and p99 in µs; `None` without samples.
    quantiles: Option<(f64, f64)>,
}

impl Cdf {
    /// The distribution of `samples`, with at most `max_points + 1` points
    /// (every sample when there are fewer). Empty samples give no points.
    #[allow(clippy::cast_precision_loss)]
    pub fn of(samples: &[Duration], max_points: usize) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let steps = max_points.max(1);
        let ranks: Vec<usize> = if n <= steps + 1 {
            (1..=n).collect()
        } else {
            // Rank k·n/steps for k = 0..=steps, rounded up, the first at 1:
            // evenly spaced in fraction, ends included.
            let mut ranks: Vec<usize> = (0..=steps)
                .map(|k| (k * n).div_ceil(steps).max(1))
                .collect();
            ranks.dedup();
            ranks
        };
        let us = |rank: usize| sorted[rank - 1].as_secs_f64() * 1e6;
        let points = ranks
            .into_iter()
            .map(|rank| (us(rank), rank as f64 / n as f64))
            .collect();
        let quantiles = (n > 0).then(|| (us(nearest_rank(n, 0.5)), us(nearest_rank(n, 0.99))));
        Self { points, quantiles }
    }

    /// The points, ascending.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// The median of every sample, in µs.
    pub fn p50_us(&self) -> Option<f64> {
        self.quantiles.map(|(p50, _)| p50)
    }

    /// The 99th percentile of every sample, in µs.
    pub fn p99_us(&self) -> Option<f64> {
        self.quantiles.map(|(_, p99)| p99)
    }

    /// The smallest and largest latency (µs), if any.
    pub fn span_us(&self) -> Option<(f64, f64)> {
        Some((self.points.first()?.0, self.points.last()?.0))
    }
}

/// The 1-based rank of the `q` quantile of `n` samples, by nearest rank.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn nearest_rank(n: usize, q: f64) -> usize {
    ((q * n as f64).ceil() as usize).clamp(1, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_micros).collect()
    }

    #[test]
    fn few_samples_keep_every_one_in_order() {
        let cdf = Cdf::of(&micros(&[30, 10, 20, 10]), 100);
        assert_eq!(
            cdf.points(),
            &[(10.0, 0.25), (10.0, 0.5), (20.0, 0.75), (30.0, 1.0)]
        );
        assert_eq!(cdf.span_us(), Some((10.0, 30.0)));
    }

    #[test]
    fn thinning_keeps_the_extremes_and_stays_monotone() {
        // A long tail: 9,990 fast samples and 10 slow ones.
        let mut samples = vec![Duration::from_micros(5); 9_990];
        samples.extend(micros(&[
            1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 9_000, 90_000,
        ]));
        fastrand::shuffle(&mut samples);
        let cdf = Cdf::of(&samples, 200);
        let points = cdf.points();
        assert!(points.len() <= 201);
        assert_eq!(points.first(), Some(&(5.0, 0.0001)));
        assert_eq!(points.last(), Some(&(90_000.0, 1.0)));
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1)
        );
    }

    #[test]
    fn quantiles_come_from_every_sample_not_the_thinned_points() {
        // 985 fast samples, then 15 slow ones: 1 ms, 2 ms, … 15 ms.
        let mut samples = micros(&[5; 985]);
        samples.extend((1..=15).map(Duration::from_millis));
        fastrand::shuffle(&mut samples);
        let cdf = Cdf::of(&samples, 3);
        // Ranks 1, 334, 667 and 1,000: no point near the 990th.
        assert_eq!(cdf.points().len(), 4);
        assert_eq!(cdf.p50_us(), Some(5.0));
        // The 990th sample is the fifth slow one.
        assert_eq!(cdf.p99_us(), Some(5_000.0));
    }

    #[test]
    fn no_samples_no_points() {
        let cdf = Cdf::of(&[], 10);
        assert!(cdf.points().is_empty());
        assert_eq!(cdf.span_us(), None);
        assert_eq!((cdf.p50_us(), cdf.p99_us()), (None, None));
    }
}
