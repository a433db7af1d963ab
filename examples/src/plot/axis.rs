//! The latency axis: whole decades on a log scale, ticks at every multiple
//! of a power of ten, labels where they fit, each in the unit that reads
//! best at it (`50 µs`, `2 ms`, `1.5 s`).

/// The decades a chart's latency axis spans: from the power of ten at or
/// below the smallest latency to the one at or above the largest, at least
/// one decade wide.
///
/// ```
/// use nexus_examples::plot::LatencyRange;
/// let range = LatencyRange::covering(3.2, 870.0);
/// assert_eq!((range.from_us, range.to_us), (1.0, 1_000.0));
/// assert_eq!(LatencyRange::covering(10.0, 10.0).to_us, 100.0);
/// assert_eq!(range.labelled_us(), [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyRange {
    /// The axis' start, in µs.
    pub from_us: f64,
    /// The axis' end, in µs.
    pub to_us: f64,
}

/// Up to this many decades, ticks at 2× and 5× are labelled too.
const LABEL_MULTIPLES_UP_TO: i32 = 3;

impl LatencyRange {
    /// The decades around `[min_us, max_us]`; latencies below 0.1 µs are
    /// drawn at 0.1 µs, since a log axis has no zero.
    pub fn covering(min_us: f64, max_us: f64) -> Self {
        let floor = 0.1_f64;
        let from = 10_f64.powf(min_us.max(floor).log10().floor());
        let to = 10_f64
            .powf(max_us.max(floor).log10().ceil())
            .max(from * 10.0);
        Self {
            from_us: from,
            to_us: to,
        }
    }

    /// Every power of ten from the start to the end, in µs.
    fn decades(&self) -> impl Iterator<Item = f64> {
        #[allow(clippy::cast_possible_truncation)]
        let (first, last) = (
            self.from_us.log10().round() as i32,
            self.to_us.log10().round() as i32,
        );
        (first..=last).map(|exponent| 10_f64.powi(exponent))
    }

    fn decade_count(&self) -> i32 {
        #[allow(clippy::cast_possible_truncation)]
        let count = (self.to_us / self.from_us).log10().round() as i32;
        count
    }

    /// The ticks that get a label, in µs: every power of ten, and 2× and 5×
    /// as well on an axis of a few decades.
    pub fn labelled_us(&self) -> Vec<f64> {
        let multiples: &[f64] = if self.decade_count() <= LABEL_MULTIPLES_UP_TO {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        self.ticks(multiples)
    }

    /// The unlabelled ticks, in µs: every other multiple of a power of ten.
    pub fn minor_us(&self) -> Vec<f64> {
        let labelled = self.labelled_us();
        self.ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
            .into_iter()
            .filter(|tick| !labelled.contains(tick))
            .collect()
    }

    fn ticks(&self, multiples: &[f64]) -> Vec<f64> {
        self.decades()
            .flat_map(|decade| multiples.iter().map(move |m| m * decade))
            .filter(|&tick| tick <= self.to_us * (1.0 + 1e-9))
            .collect()
    }
}

/// A latency given in µs, in the largest unit where it is at least one,
/// with at most three significant digits.
///
/// ```
/// use nexus_examples::plot::format_latency;
/// assert_eq!(format_latency(0.5), "0.5 µs");
/// assert_eq!(format_latency(50.0), "50 µs");
/// assert_eq!(format_latency(2_000.0), "2 ms");
/// assert_eq!(format_latency(1_500_000.0), "1.5 s");
/// // A tick that went through a logarithm and back is off by rounding.
/// assert_eq!(format_latency(999.999_999_9), "1 ms");
/// ```
pub fn format_latency(us: f64) -> String {
    let us = three_significant_digits(us);
    let (value, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    // Trailing zeros dropped: 1.50 → 1.5, 2.00 → 2, 100 stays.
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} {unit}")
}

fn three_significant_digits(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return value;
    }
    let step = 10_f64.powf(value.log10().floor() - 2.0);
    (value / step).round() * step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_switch_units_at_each_thousand() {
        assert_eq!(format_latency(999.0), "999 µs");
        assert_eq!(format_latency(1_000.0), "1 ms");
        assert_eq!(format_latency(12_340.0), "12.3 ms");
        assert_eq!(format_latency(100_000.0), "100 ms");
        assert_eq!(format_latency(1e6), "1 s");
        assert_eq!(format_latency(0.0), "0 µs");
    }

    #[test]
    fn the_range_is_whole_decades_around_the_samples() {
        assert_eq!(
            LatencyRange::covering(4.0, 65_000.0),
            LatencyRange {
                from_us: 1.0,
                to_us: 100_000.0
            }
        );
        // An exact power of ten is its own bound.
        assert_eq!(
            LatencyRange::covering(100.0, 1_000.0),
            LatencyRange {
                from_us: 100.0,
                to_us: 1_000.0
            }
        );
        assert_eq!(
            LatencyRange::covering(0.0, 0.0),
            LatencyRange {
                from_us: 0.1,
                to_us: 1.0
            }
        );
    }

    #[test]
    fn a_wide_axis_labels_decades_and_a_narrow_one_multiples_too() {
        let wide = LatencyRange::covering(2.0, 50_000.0);
        assert_eq!(
            wide.labelled_us(),
            [1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0]
        );
        let narrow = LatencyRange::covering(20_000.0, 80_000.0);
        assert_eq!(
            narrow.labelled_us(),
            [10_000.0, 20_000.0, 50_000.0, 100_000.0]
        );
        // Every multiple is a tick, and none twice.
        let minor = narrow.minor_us();
        assert_eq!(minor.len(), 6);
        assert!(minor.contains(&30_000.0) && !minor.contains(&20_000.0));
        assert!(wide.minor_us().len() == 5 * 8 && !wide.minor_us().contains(&100_000.0));
    }
}
