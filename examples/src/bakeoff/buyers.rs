//! All buyers at once: one tokio task per buyer, each timed from its own
//! request to its own answer.

use std::time::{Duration, Instant};

use super::error::BakeoffError;

/// What the buyers of one design got back, in buyer order.
pub struct Fired<T> {
    /// Each buyer's answer.
    pub answers: Vec<T>,
    /// How long each buyer waited for its answer.
    pub latencies: Vec<Duration>,
    /// From spawning the first buyer to the last answer.
    pub wall: Duration,
}

/// Spawns `buy(buyer, seat)` for every buyer of `choices` before awaiting
/// any, so they all compete.
pub async fn fire<T, F, Fut>(choices: &[usize], buy: F) -> Result<Fired<T>, BakeoffError>
where
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = choices
        .iter()
        .enumerate()
        .map(|(buyer, &seat)| {
            let request = buy(buyer, seat);
            tokio::spawn(async move {
                let asked = Instant::now();
                let answer = request.await;
                (answer, asked.elapsed())
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (answer, latency) = task.await?;
        answers.push(answer);
        latencies.push(latency);
    }
    Ok(Fired {
        answers,
        latencies,
        wall: started.elapsed(),
    })
}

/// The name of buyer number `buyer`.
pub fn buyer_name(buyer: usize) -> String {
    format!("buyer-{buyer}")
}
