//! A named set of latency samples: one line of a chart.

use std::time::Duration;

/// The latencies one workload or design measured, under the label its line
/// gets in the legend.
///
/// ```
/// use std::time::Duration;
/// use nexus_examples::plot::LatencySeries;
/// let series = LatencySeries::new("actor", vec![Duration::from_millis(3)]);
/// assert_eq!((series.label.as_str(), series.samples.len()), ("actor", 1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencySeries {
    /// The legend's name for the line.
    pub label: String,
    /// Every latency measured, in any order.
    pub samples: Vec<Duration>,
}

impl LatencySeries {
    /// A series named `label`.
    pub fn new(label: impl Into<String>, samples: Vec<Duration>) -> Self {
        Self {
            label: label.into(),
            samples,
        }
    }
}
