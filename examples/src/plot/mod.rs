//! Latency pictures: the cumulative distribution of each series' latencies
//! drawn as one SVG line chart, on a logarithmic latency axis.
//!
//! `nexus-bench --plot FILE.svg` draws a line per workload that measures
//! latencies, `seat-bakeoff --plot FILE.svg` a line per design. The chart
//! says where a distribution's body and its tail lie in one look: a line
//! to the left is faster, a line that bends late has a long tail.
//!
//! ```
//! use std::time::Duration;
//! use nexus_examples::plot::{LatencySeries, write_latency_cdfs};
//! let fast = LatencySeries::new("fast", (1..=100).map(Duration::from_micros).collect());
//! let slow = LatencySeries::new("slow", (1..=100).map(Duration::from_millis).collect());
//! let path = std::env::temp_dir().join("nexus-plot-doc.svg");
//! write_latency_cdfs(&path, "example", &[fast, slow]).unwrap();
//! assert!(std::fs::read_to_string(&path).unwrap().contains("slow"));
//! ```

mod axis;
mod cdf;
mod series;
mod svg;

pub use axis::{LatencyRange, format_latency};
pub use cdf::Cdf;
pub use series::LatencySeries;
pub use svg::{PlotError, write_latency_cdfs};
