//! The workloads of `nexus-bench`: each runs for a fixed time and reports
//! one JSON object with a `"workload"` field.
//!
//! [`memory`] holds the in-memory workloads (the runtime's own cost); the
//! Postgres workloads sit beside it in their own module and share the
//! [`Tally`] aggregate, the [`closed_loop`] driver and [`emit`].

pub mod allocs;
pub mod churn;
pub mod cluster;
mod kameo_peer;
pub mod latencies;
pub mod matrix;
pub mod memory;
pub mod parks;
pub mod postgres;
pub mod projection;
pub mod raw_commit;
mod selection;
pub mod turns;

pub use selection::Selection;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

/// How long each workload runs.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Wall time per workload.
    pub per_workload: Duration,
}

/// A counter: the smallest aggregate that persists an event per command.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    /// The sum of every increment.
    pub total: u64,
}

/// What happened to a [`Tally`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "tally")]
pub enum TallyEvent {
    /// The total grew by this much.
    Added(u64),
}

/// Why a [`Tally`] refused a command.
#[derive(Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum TallyError {
    /// Adding zero records nothing.
    #[error("cannot add zero")]
    Zero,
}

/// Adds to the total; replies the new total.
#[derive(Debug, Serialize, Deserialize)]
pub struct Add(pub u64);

/// Replies the total; writes nothing.
#[derive(Debug, Serialize, Deserialize)]
pub struct Total;

#[aggregate(name = "tally", event = TallyEvent, error = TallyError, commands(Add, Total))]
impl Tally {
    #[handle]
    fn add(&self, Add(n): &Add) -> Result<Effect<Self, u64>, TallyError> {
        if *n == 0 {
            return Err(TallyError::Zero);
        }
        Ok(Effect::persist(TallyEvent::Added(*n)).then_reply(|s: &Self| s.total))
    }

    #[handle]
    fn total(&self, _: &Total) -> Result<Effect<Self, u64>, TallyError> {
        Ok(Effect::none().then_reply(|s: &Self| s.total))
    }

    #[apply]
    fn apply(&mut self, event: &TallyEvent) {
        match event {
            TallyEvent::Added(n) => self.total += n,
        }
    }
}

/// Prints one result line: `{"workload": name, ...metrics}`.
///
/// ```
/// nexus_examples::bench::emit("example", serde_json::json!({"ops": 1}));
/// ```
pub fn emit(workload: &str, metrics: serde_json::Value) {
    let mut line = serde_json::Map::new();
    line.insert("workload".to_owned(), workload.into());
    if let serde_json::Value::Object(fields) = metrics {
        line.extend(fields);
    }
    println!("{}", serde_json::Value::Object(line));
}

/// What a closed-loop run did.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Wall time from start until every caller stopped.
    pub elapsed: Duration,
}

impl Throughput {
    /// Successful operations per second.
    #[allow(clippy::cast_precision_loss)]
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `callers` concurrent loops of `operation` (given the caller's index)
/// until `budget` has passed; each caller waits for its operation before
/// starting the next.
pub async fn closed_loop<F, Fut, T, E>(callers: usize, budget: Duration, operation: F) -> Throughput
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
    E: std::fmt::Display,
{
    let operation = Arc::new(operation);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (operation, stop, ok, failed) = (
                Arc::clone(&operation),
                Arc::clone(&stop),
                Arc::clone(&ok),
                Arc::clone(&failed),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match operation(caller).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            tracing::warn!(%error, "operation failed");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(budget).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        // A caller that panicked is a bug in the workload; report it loudly.
        task.await.expect("a benchmark caller panicked");
    }
    Throughput {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// The `q`-quantile (0..=1) of `samples`, in microseconds (sorts them).
///
/// ```
/// use std::time::Duration;
/// let mut samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
/// assert_eq!(nexus_examples::bench::quantile_us(&mut samples, 0.5), 50.0);
/// assert_eq!(nexus_examples::bench::quantile_us(&mut samples, 0.99), 99.0);
/// ```
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
pub fn quantile_us(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * q).ceil() as usize;
    let index = rank.clamp(1, samples.len()) - 1;
    samples[index].as_secs_f64() * 1e6
}
