//! A small in-process recorder: the runtime's own counts, read back in
//! tests, benchmarks and tools without an exporter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Keeps every counter's total, every gauge's value and every histogram's
/// count and sum, by name and labels. Scope it to the code under test with
/// [`metrics::with_local_recorder`] (the runtime binds its metrics when
/// `Entities` is built, so build inside the scope), or install it globally.
///
/// ```
/// use nexus_core::telemetry::InMemoryRecorder;
/// let recorder = InMemoryRecorder::new();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("nexus_example_total", "aggregate" => "counter").increment(2);
///     metrics::histogram!("nexus_example_seconds").record(0.5);
/// });
/// assert_eq!(recorder.counter("nexus_example_total", &[("aggregate", "counter")]), 2);
/// assert_eq!(recorder.histogram("nexus_example_seconds", &[]), (1, 0.5));
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryRecorder {
    metrics: Arc<Mutex<HashMap<Key, Arc<Cell>>>>,
}

/// One metric's value. Counters and gauges use `value` (a gauge as the
/// bits of an `f64`); histograms `count` and the bits of their sum.
#[derive(Debug, Default)]
struct Cell {
    value: AtomicU64,
    count: AtomicU64,
}

impl Cell {
    fn update_f64(&self, change: impl Fn(f64) -> f64) {
        let _ = self
            .value
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                Some(change(f64::from_bits(bits)).to_bits())
            });
    }
}

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.value.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.value.fetch_max(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.update_f64(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update_f64(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::Release);
    }
}

impl HistogramFn for Cell {
    fn record(&self, value: f64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.update_f64(|v| v + value);
    }
}

impl InMemoryRecorder {
    /// A recorder with nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    fn cell(&self, key: &Key) -> Arc<Cell> {
        let mut metrics = self.metrics.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(metrics.entry(key.clone()).or_default())
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<Arc<Cell>> {
        let metrics = self.metrics.lock().unwrap_or_else(PoisonError::into_inner);
        metrics
            .iter()
            .find(|(key, _)| {
                key.name() == name
                    && key.labels().count() == labels.len()
                    && labels.iter().all(|(k, v)| {
                        key.labels()
                            .any(|label| label.key() == *k && label.value() == *v)
                    })
            })
            .map(|(_, cell)| Arc::clone(cell))
    }

    /// The total of counter `name` with exactly these labels (0 if never registered).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.find(name, labels)
            .map_or(0, |cell| cell.value.load(Ordering::Relaxed))
    }

    /// The sum of counter `name` over every label set.
    pub fn counter_sum(&self, name: &str) -> u64 {
        let metrics = self.metrics.lock().unwrap_or_else(PoisonError::into_inner);
        metrics
            .iter()
            .filter(|(key, _)| key.name() == name)
            .map(|(_, cell)| cell.value.load(Ordering::Relaxed))
            .sum()
    }

    /// The value of gauge `name` with exactly these labels (0 if never registered).
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map_or(0.0, |cell| {
            f64::from_bits(cell.value.load(Ordering::Acquire))
        })
    }

    /// How many values histogram `name` with exactly these labels recorded, and their sum.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (u64, f64) {
        self.find(name, labels).map_or((0, 0.0), |cell| {
            (
                cell.count.load(Ordering::Relaxed),
                f64::from_bits(cell.value.load(Ordering::Acquire)),
            )
        })
    }
}

impl Recorder for InMemoryRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}
