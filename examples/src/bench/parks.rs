//! How often the runtime's workers parked: a worker parks when it runs out
//! of work and is woken (unparked) by the next task or timer it must run,
//! so parks per operation count the cross-thread wake-ups an operation
//! costs.

/// Parks of every worker of the current runtime so far.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap().block_on(async {
/// let before = nexus_examples::bench::parks::total();
/// tokio::spawn(async {}).await.unwrap();
/// assert!(nexus_examples::bench::parks::total() >= before);
/// # });
/// ```
pub fn total() -> u64 {
    let metrics = tokio::runtime::Handle::current().metrics();
    (0..metrics.num_workers())
        .map(|worker| metrics.worker_park_count(worker))
        .sum()
}

/// Parks per operation between two readings of [`total`].
#[allow(clippy::cast_precision_loss)]
pub fn per_op(before: u64, after: u64, ops: usize) -> f64 {
    (after - before) as f64 / ops.max(1) as f64
}
