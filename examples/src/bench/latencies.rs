//! Latency samples kept for `nexus-bench --plot`: each workload that times
//! requests hands its samples here as it reports them, and the program
//! draws them all once every workload is done.
//!
//! The store is process-wide so that a workload keeps its samples with one
//! call, without every workload's signature carrying a plot it mostly does
//! not need. It keeps nothing until [`keep_from_now`] is called, so a run
//! without `--plot` holds no samples past its workload.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::plot::LatencySeries;

/// `None` until a plot is wanted; then every kept series, in run order.
static KEPT: Mutex<Option<Vec<LatencySeries>>> = Mutex::new(None);

/// From now on, [`keep`] keeps what it is given.
///
/// ```
/// use std::time::Duration;
/// use nexus_examples::bench::latencies;
/// latencies::keep("before", &[Duration::from_micros(1)]);
/// latencies::keep_from_now();
/// latencies::keep("mem_ask_latency", &[Duration::from_micros(5)]);
/// let kept = latencies::take();
/// assert_eq!(kept.len(), 1);
/// assert_eq!(kept[0].label, "mem_ask_latency");
/// ```
pub fn keep_from_now() {
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    kept.get_or_insert_with(Vec::new);
}

/// Keeps a copy of `samples` under `label` if a plot is wanted; does
/// nothing otherwise.
pub fn keep(label: &str, samples: &[Duration]) {
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(kept) = kept.as_mut() {
        kept.push(LatencySeries::new(label, samples.to_vec()));
    }
}

/// Every series kept so far, leaving none behind (keeping goes on).
pub fn take() -> Vec<LatencySeries> {
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    kept.as_mut().map(std::mem::take).unwrap_or_default()
}
