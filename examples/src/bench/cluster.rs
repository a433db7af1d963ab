//! The cluster workloads: nodes of one process, each with its own actor
//! system, Postgres coordination and peer listener on loopback.
//!
//! - `cluster_remote_ask`: sequential asks to an entity held by another
//!   node, which go over HTTP/2 and back, beside the same asks to an entity
//!   held by the asking node (`local_p50_us`); the entities persist to the
//!   in-memory store, so the difference is the hop.
//! - `cluster_many_entities`: 32 callers send commands to 1,000 tallies on
//!   Postgres through random nodes of a 3-node cluster, then through a
//!   1-node cluster on a schema of its own, in the same run. On one machine
//!   the nodes share its cores: the figure is the cost of routing and
//!   forwarding, not the capacity of three machines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::cluster::Cluster;
use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::{ActorSystem, Entities, EventStore, StreamId, WhenFull};
use nexus_store_pg::{LeaseTiming, PgCoordination, PgEventStore, PgStoreConfig};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

use super::postgres::PgBenchError;
use super::{Add, Budget, Selection, Tally, closed_loop, emit, quantile_us};

/// Shards of the benchmark clusters.
const SHARDS: u32 = 64;
/// Concurrent callers of `cluster_many_entities`.
const CALLERS: usize = 32;
/// Tallies of `cluster_many_entities`.
const ENTITIES: usize = 1_000;

/// One node: its system, its membership, its tallies.
struct Node {
    system: ActorSystem,
    cluster: Cluster,
    tallies: Entities<Tally>,
}

impl Node {
    async fn start(
        url: &str,
        schema: &str,
        store: Arc<dyn EventStore>,
    ) -> Result<Self, PgBenchError> {
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        let config = PgStoreConfig::new(pool).schema(schema)?;
        let timing = LeaseTiming::new(
            Duration::from_secs(3),
            Duration::from_millis(600),
            Duration::from_millis(300),
        )?;
        let coordination = PgCoordination::connect(&config, SHARDS, timing).await?;
        let cluster = Cluster::builder(coordination)
            .start()
            .await
            .map_err(super::postgres::workload_error)?;
        let system = ActorSystem::new();
        let tallies = Entities::<Tally>::builder(&system)
            .event_sourced(store, EventCodec::new(Bincode))
            .cluster(&cluster, Bincode)
            .mailbox_capacity(1_024)
            .when_full(WhenFull::Wait)
            .group_commit(64)
            .ask_timeout(Duration::from_secs(30))
            .build()
            .map_err(super::postgres::workload_error)?;
        Ok(Self {
            system,
            cluster,
            tallies,
        })
    }

    async fn stop(self) {
        self.cluster.leave().await;
        self.system.shutdown(Duration::from_secs(5)).await;
    }
}

/// Heartbeats `nodes` until every shard is held and none holds more than
/// its share rounded up (30 s at most).
async fn settle(nodes: &[Node]) -> Result<(), PgBenchError> {
    let room = (SHARDS as usize).div_ceil(nodes.len());
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        for node in nodes {
            node.cluster.refresh().await;
        }
        let held: Vec<usize> = nodes
            .iter()
            .map(|n| n.cluster.held_shards().len())
            .collect();
        if held.iter().sum::<usize>() == SHARDS as usize && held.iter().all(|&h| h <= room) {
            return Ok(());
        }
        if Instant::now() > give_up {
            return Err(PgBenchError::Workload(format!(
                "the cluster did not settle: {held:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the cluster workloads `only` selects against `database_url`, each
/// on schemas of its own, printing one JSON line each.
pub async fn run(database_url: &str, budget: Budget, only: &Selection) -> Result<(), PgBenchError> {
    if only.wants("cluster_remote_ask") {
        remote_ask(database_url, budget).await?;
    }
    if only.wants("cluster_many_entities") {
        many_entities(database_url, budget).await?;
    }
    Ok(())
}

async fn fresh_schema(url: &str) -> Result<(PgStoreConfig, String), PgBenchError> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    let schema = format!("nexus_bench_cluster_{}", uuid::Uuid::new_v4().simple());
    let config = PgStoreConfig::new(pool).schema(&schema)?;
    config.migrate().await?;
    Ok((config, schema))
}

async fn drop_schema(config: &PgStoreConfig, schema: &str) -> Result<(), PgBenchError> {
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(config.pool())
        .await?;
    Ok(())
}

/// An entity id whose shard `node` holds.
fn held_by(node: &Node) -> String {
    let held = node.cluster.held_shards();
    (0..100_000)
        .map(|i| format!("t{i}"))
        .find(|id| {
            let stream = StreamId::for_entity("tally", id);
            held.contains(&nexus_core::lease::shard_of(&stream, SHARDS))
        })
        .expect("some id falls on a held shard")
}

async fn sequential_asks(
    tallies: &Entities<Tally>,
    id: &str,
    budget: Duration,
) -> Result<Vec<Duration>, PgBenchError> {
    let tally = tallies.of(id);
    tally
        .ask(Add(1))
        .await
        .map_err(super::postgres::workload_error)?;
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        let sent = Instant::now();
        tally
            .ask(Add(1))
            .await
            .map_err(super::postgres::workload_error)?;
        samples.push(sent.elapsed());
    }
    Ok(samples)
}

async fn remote_ask(url: &str, budget: Budget) -> Result<(), PgBenchError> {
    let (config, schema) = fresh_schema(url).await?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let nodes = vec![
        Node::start(url, &schema, Arc::clone(&store)).await?,
        Node::start(url, &schema, Arc::clone(&store)).await?,
    ];
    settle(&nodes).await?;
    let (here, there) = (held_by(&nodes[0]), held_by(&nodes[1]));
    let half = budget.per_workload / 2;
    let mut local = sequential_asks(&nodes[0].tallies, &here, half).await?;
    let mut remote = sequential_asks(&nodes[0].tallies, &there, half).await?;
    super::latencies::keep("cluster_remote_ask (remote)", &remote);
    super::latencies::keep("cluster_remote_ask (local)", &local);
    emit(
        "cluster_remote_ask",
        json!({
            "p50_us": quantile_us(&mut remote, 0.50),
            "p99_us": quantile_us(&mut remote, 0.99),
            "asks": remote.len(),
            "local_p50_us": quantile_us(&mut local, 0.50),
            "local_p99_us": quantile_us(&mut local, 0.99),
            "transport": "HTTP/2 over loopback, bincode",
        }),
    );
    for node in nodes {
        node.stop().await;
    }
    drop_schema(&config, &schema).await
}

/// The closed loop of `cluster_many_entities` through `nodes`.
async fn through(nodes: &[Node], budget: Duration) -> super::Throughput {
    let tallies: Arc<Vec<Entities<Tally>>> =
        Arc::new(nodes.iter().map(|n| n.tallies.clone()).collect());
    // Every tally recovered once, so that the loop measures the steady state.
    for e in 0..ENTITIES {
        let _ = tallies[e % tallies.len()]
            .of(format!("e{e}"))
            .ask(Add(1))
            .await;
    }
    closed_loop(CALLERS, budget, move |_| {
        let via = &tallies[fastrand::usize(0..tallies.len())];
        let entity = via.of(format!("e{}", fastrand::usize(0..ENTITIES)));
        async move { entity.ask(Add(1)).await }
    })
    .await
}

async fn many_entities(url: &str, budget: Budget) -> Result<(), PgBenchError> {
    let mut runs = Vec::new();
    for size in [3, 1] {
        let (config, schema) = fresh_schema(url).await?;
        let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
        let mut nodes = Vec::new();
        for _ in 0..size {
            nodes.push(Node::start(url, &schema, Arc::clone(&store)).await?);
        }
        settle(&nodes).await?;
        runs.push(through(&nodes, budget.per_workload).await);
        for node in nodes {
            node.stop().await;
        }
        drop_schema(&config, &schema).await?;
    }
    let (three, one) = (runs[0], runs[1]);
    emit(
        "cluster_many_entities",
        json!({
            "cmds_per_s_3_nodes": three.per_second(),
            "cmds_per_s_1_node": one.per_second(),
            "ratio": three.per_second() / one.per_second(),
            "failed": three.failed + one.failed,
            "nodes_share_one_machine": true,
        }),
    );
    Ok(())
}
