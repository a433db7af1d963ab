//! kameo 0.22, the peer the in-memory workloads are measured against: the
//! same shapes as Nexus's (sequential asks, a burst of tells, 32 callers of
//! one actor), with plain messages and no persistence. Each function runs
//! right after its Nexus counterpart, in the same process and harness, so
//! that their ratio is taken on one machine state.

use std::time::{Duration, Instant};

use kameo::Actor;
use kameo::actor::Spawn;
use kameo::mailbox;
use kameo::message::{Context, Message};

use super::{Throughput, closed_loop};

/// The mailbox capacity of the Nexus side ([`super::memory`]), so that
/// both sides wait for room alike.
const MAILBOX: usize = 1_024;

/// The peer of [`super::Tally`]: a sum, kept in memory only.
#[derive(Actor, Default)]
struct Sum {
    total: u64,
}

/// Adds to the sum; replies the new sum.
struct Add(u64);

/// Replies the sum.
struct Total;

impl Message<Add> for Sum {
    type Reply = u64;

    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self, u64>) -> u64 {
        self.total += n;
        self.total
    }
}

impl Message<Total> for Sum {
    type Reply = u64;

    async fn handle(&mut self, _: Total, _: &mut Context<Self, u64>) -> u64 {
        self.total
    }
}

fn spawn() -> kameo::actor::ActorRef<Sum> {
    Sum::spawn_with_mailbox(Sum::default(), mailbox::bounded(MAILBOX))
}

/// What sequential asks measured: one latency sample per ask, and how
/// often the runtime's workers parked per ask.
pub struct Latency {
    pub samples: Vec<Duration>,
    pub parks_per_ask: f64,
}

/// Sequential asks to one actor for `budget`, `pace` of caller work apart,
/// each bounded by `timeout` when one is given the way Nexus bounded its
/// asks: a `tokio::time::timeout` around the ask, one fresh timer per ask.
pub async fn ask_latency(budget: Duration, timeout: Option<Duration>, pace: Duration) -> Latency {
    let sum = spawn();
    sum.ask(Total).await.expect("warm-up");
    let mut samples = Vec::new();
    let parks = super::parks::total();
    let start = Instant::now();
    while start.elapsed() < budget {
        super::memory::work_for(pace);
        let sent = Instant::now();
        match timeout {
            Some(timeout) => tokio::time::timeout(timeout, sum.ask(Add(1)))
                .await
                .expect("no kameo ask times out")
                .expect("a kameo ask succeeds"),
            None => sum.ask(Add(1)).await.expect("a kameo ask succeeds"),
        };
        samples.push(sent.elapsed());
    }
    let parks_per_ask = super::parks::per_op(parks, super::parks::total(), samples.len());
    stop(sum).await;
    Latency {
        samples,
        parks_per_ask,
    }
}

/// One sender tells in bursts of 256 for `budget`, then asks the total:
/// messages per second until every told message was handled.
pub async fn tell_throughput(budget: Duration) -> (f64, u64) {
    let sum = spawn();
    sum.ask(Total).await.expect("warm-up");
    let mut told = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..256 {
            sum.tell(Add(1)).await.expect("the mailbox waits for room");
        }
        told += 256;
    }
    // FIFO: when this is answered, every tell was handled.
    let total = sum.ask(Total).await.expect("a kameo ask succeeds");
    let elapsed = start.elapsed();
    assert_eq!(total, told, "every told message was handled");
    stop(sum).await;
    #[allow(clippy::cast_precision_loss)]
    let per_second = told as f64 / elapsed.as_secs_f64();
    (per_second, told)
}

/// `callers` concurrent callers ask one actor for `budget`.
pub async fn hot_actor(callers: usize, budget: Duration) -> Throughput {
    let sum = spawn();
    let run = {
        let sum = sum.clone();
        closed_loop(callers, budget, move |_| {
            let sum = sum.clone();
            async move { sum.ask(Add(1)).await }
        })
        .await
    };
    let total = sum.ask(Total).await.expect("a kameo ask succeeds");
    assert_eq!(total, run.ok, "the sum counts every answered ask");
    stop(sum).await;
    run
}

async fn stop(actor: kameo::actor::ActorRef<Sum>) {
    // An actor already gone has nothing left to stop.
    let _ = actor.stop_gracefully().await;
    actor.wait_for_shutdown().await;
}
