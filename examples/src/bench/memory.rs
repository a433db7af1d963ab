//! The in-memory workloads: the runtime's own cost, with the in-memory
//! event store behind it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::{ActorSystem, Entities, WhenFull};
use serde_json::json;

use super::{
    Add, Budget, Selection, Tally, Total, closed_loop, emit, kameo_peer, parks, quantile_us,
};

/// Entities of the many-entities workload.
const ENTITIES: usize = 10_000;
/// Concurrent callers of the many-entities and hot-entity workloads.
const CALLERS: usize = 32;
/// Commands an entity commits together under load.
const GROUP_COMMIT: usize = 64;

fn tallies(system: &ActorSystem, group_commit: usize) -> Entities<Tally> {
    Entities::<Tally>::builder(system)
        .event_sourced(
            Arc::new(InMemoryEventStore::new()),
            EventCodec::new(Bincode),
        )
        .mailbox_capacity(1_024)
        .when_full(WhenFull::Wait)
        .group_commit(group_commit)
        .ask_timeout(Duration::from_secs(30))
        .build()
        .expect("the benchmark's options are valid")
}

/// Runs the in-memory workloads `only` selects, printing one line each.
pub async fn run(budget: Budget, only: &Selection) {
    if only.wants("mem_ask_latency") {
        ask_latency(budget).await;
    }
    if only.wants("mem_ask_in_task") {
        ask_in_task(budget).await;
    }
    if only.wants("mem_ask_paced") {
        ask_paced(budget).await;
    }
    if only.wants("mem_tell_throughput") {
        tell_throughput(budget).await;
    }
    if only.wants("mem_many_entities") {
        many_entities(budget).await;
    }
    if only.wants("mem_hot_entity") {
        hot_entity(budget).await;
    }
    if only.wants("mem_hot_entity_metrics") {
        hot_entity_metrics(budget).await;
    }
    if only.wants("mem_allocs") {
        super::allocs::run().await;
    }
    if only.wants("mem_entity_churn") {
        super::churn::run().await;
    }
}

/// Sequential asks to one entity: the latency of one persisted command,
/// then kameo's plain ask in the same harness, and kameo's ask bounded by
/// a fresh timer per ask as Nexus used to bound its own (what that timer
/// costs).
async fn ask_latency(budget: Budget) {
    ask_latency_paced("mem_ask_latency", budget, Duration::ZERO).await;
}

/// [`ask_latency`] with 50 µs of caller work before each ask, as an HTTP
/// handler has: the entity's worker has parked by the time the ask comes,
/// so every ask pays the wake-ups it causes.
async fn ask_paced(budget: Budget) {
    ask_latency_paced("mem_ask_paced", budget, Duration::from_micros(50)).await;
}

/// [`ask_latency`] from a task on the runtime rather than from `main`'s
/// thread: an entity woken by a task on a worker runs on that worker next
/// (tokio's LIFO slot), and its reply wakes the caller there too, so the
/// ask crosses no thread at all.
async fn ask_in_task(budget: Budget) {
    tokio::spawn(ask_latency_paced("mem_ask_in_task", budget, Duration::ZERO))
        .await
        .expect("the in-task workload panicked");
}

async fn ask_latency_paced(workload: &'static str, budget: Budget, pace: Duration) {
    const ASK_TIMEOUT: Duration = Duration::from_secs(30);
    let system = ActorSystem::new();
    let tally = tallies(&system, 1).of("latency");
    tally.ask(Total).await.expect("warm-up");
    let mut samples = Vec::new();
    let parks = parks::total();
    let start = Instant::now();
    while start.elapsed() < budget.per_workload {
        work_for(pace);
        let sent = Instant::now();
        tally.ask(Add(1)).await.expect("an in-memory ask succeeds");
        samples.push(sent.elapsed());
    }
    let parks_per_ask = parks::per_op(parks, parks::total(), samples.len());
    system.shutdown(Duration::from_secs(10)).await;
    // Nothing of Nexus's (its pooled timers) stays behind for kameo's turn.
    drop(tally);
    let count = samples.len();
    super::latencies::keep(workload, &samples);
    let p50 = quantile_us(&mut samples, 0.50);
    let mut peer = kameo_peer::ask_latency(budget.per_workload, None, pace).await;
    let peer_p50 = quantile_us(&mut peer.samples, 0.50);
    let mut timed = kameo_peer::ask_latency(budget.per_workload, Some(ASK_TIMEOUT), pace).await;
    emit(
        workload,
        json!({
            "p50_us": p50,
            "p99_us": quantile_us(&mut samples, 0.99),
            "asks": count,
            "parks_per_ask": parks_per_ask,
            "kameo_p50_us": peer_p50,
            "kameo_p99_us": quantile_us(&mut peer.samples, 0.99),
            "kameo_asks": peer.samples.len(),
            "kameo_parks_per_ask": peer.parks_per_ask,
            "kameo_with_timeout_p50_us": quantile_us(&mut timed.samples, 0.50),
            "kameo_with_timeout_parks_per_ask": timed.parks_per_ask,
            "speedup_vs_kameo": peer_p50 / p50,
        }),
    );
}

/// Busy for `pace` on the caller's thread (a sleep would be a timer, and
/// timers are what the paced workload measures).
pub(super) fn work_for(pace: Duration) {
    let start = Instant::now();
    while start.elapsed() < pace {
        std::hint::spin_loop();
    }
}

/// One sender tells as fast as the mailbox accepts; the time runs until
/// the entity has processed every told command.
async fn tell_throughput(budget: Budget) {
    let system = ActorSystem::new();
    let tally = tallies(&system, GROUP_COMMIT).of("tells");
    tally.ask(Total).await.expect("warm-up");
    let mut told = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget.per_workload {
        for _ in 0..256 {
            let accepted = tally.tell(Add(1)).await.is_ok();
            assert!(accepted, "the mailbox waits for room, it never refuses");
        }
        told += 256;
    }
    // The mailbox is FIFO: when this ask is answered, every tell was processed.
    let total = tally.ask(Total).await.expect("an in-memory ask succeeds");
    let elapsed = start.elapsed();
    assert_eq!(total, told, "every told command was processed");
    system.shutdown(Duration::from_secs(10)).await;
    #[allow(clippy::cast_precision_loss)]
    let per_second = told as f64 / elapsed.as_secs_f64();
    let (peer, peer_told) = kameo_peer::tell_throughput(budget.per_workload).await;
    emit(
        "mem_tell_throughput",
        json!({
            "msgs_per_s": per_second,
            "msgs": told,
            "group_commit": GROUP_COMMIT,
            "kameo_msgs_per_s": peer,
            "kameo_msgs": peer_told,
            "speedup_vs_kameo": per_second / peer,
        }),
    );
}

/// 32 callers ask random entities among 10,000.
async fn many_entities(budget: Budget) {
    let system = ActorSystem::new();
    let tallies = tallies(&system, GROUP_COMMIT);
    let ids: Arc<Vec<String>> = Arc::new((0..ENTITIES).map(|i| format!("t{i}")).collect());
    let run = {
        let tallies = tallies.clone();
        let ids = Arc::clone(&ids);
        closed_loop(CALLERS, budget.per_workload, move |_| {
            let tally = tallies.of(&ids[fastrand::usize(0..ids.len())]);
            async move { tally.ask(Add(1)).await }
        })
        .await
    };
    emit(
        "mem_many_entities",
        json!({
            "cmds_per_s": run.per_second(),
            "cmds": run.ok,
            "failed": run.failed,
            "entities": ENTITIES,
            "live_entities": tallies.live(),
            "callers": CALLERS,
        }),
    );
    system.shutdown(Duration::from_secs(10)).await;
}

/// 32 callers ask one entity, which group-commits what queues up.
async fn hot_entity(budget: Budget) {
    let system = ActorSystem::new();
    let tallies = tallies(&system, GROUP_COMMIT);
    let hot = tallies.of("hot");
    let run = closed_loop(CALLERS, budget.per_workload, move |_| {
        let hot = hot.clone();
        async move { hot.ask(Add(1)).await }
    })
    .await;
    let total = tallies
        .of("hot")
        .ask(Total)
        .await
        .expect("an in-memory ask succeeds");
    assert_eq!(
        total, run.ok,
        "the total is the sum of acknowledged commands"
    );
    system.shutdown(Duration::from_secs(10)).await;
    let peer = kameo_peer::hot_actor(CALLERS, budget.per_workload).await;
    emit(
        "mem_hot_entity",
        json!({
            "cmds_per_s": run.per_second(),
            "cmds": run.ok,
            "failed": run.failed,
            "callers": CALLERS,
            "group_commit": GROUP_COMMIT,
            "kameo_asks_per_s": peer.per_second(),
            "kameo_asks": peer.ok,
            "kameo_failed": peer.failed,
            "speedup_vs_kameo": run.per_second() / peer.per_second(),
        }),
    );
}

/// `mem_hot_entity` without a metrics recorder and with the Prometheus
/// recorder the wallet app serves, in alternating rounds of one run: the
/// cost of the runtime's metrics where they are recorded. The overhead is
/// the relative drop of the best round's throughput with the recorder.
async fn hot_entity_metrics(budget: Budget) {
    const ROUNDS: u32 = 3;
    let round = budget.per_workload / ROUNDS;
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        without.push(hot_round(None, round).await);
        with.push(hot_round(Some(&prometheus), round).await);
    }
    let best = |runs: &[f64]| runs.iter().copied().fold(0.0, f64::max);
    let (plain, recorded) = (best(&without), best(&with));
    let exposition = prometheus.handle().render();
    assert!(
        exposition.contains("nexus_commands_total"),
        "the recorder saw the commands"
    );
    emit(
        "mem_hot_entity_metrics",
        json!({
            "cmds_per_s_without_recorder": plain,
            "cmds_per_s_with_recorder": recorded,
            "overhead_pct": (plain - recorded) / plain * 100.0,
            "rounds": ROUNDS,
            "runs_without": without,
            "runs_with": with,
        }),
    );
}

/// One round of the hot-entity load, with the entities' metrics bound to
/// `recorder` (none: no-op handles). Returns commands per second.
async fn hot_round(recorder: Option<&dyn metrics::Recorder>, budget: Duration) -> f64 {
    let system = ActorSystem::new();
    let tallies = match recorder {
        Some(recorder) => metrics::with_local_recorder(recorder, || tallies(&system, GROUP_COMMIT)),
        None => tallies(&system, GROUP_COMMIT),
    };
    let hot = tallies.of("hot");
    let run = closed_loop(CALLERS, budget, move |_| {
        let hot = hot.clone();
        async move { hot.ask(Add(1)).await }
    })
    .await;
    system.shutdown(Duration::from_secs(10)).await;
    run.per_second()
}
