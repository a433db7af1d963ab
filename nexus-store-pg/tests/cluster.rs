//! Nodes of one cluster in one test process, on real Postgres and real
//! loopback HTTP/2: every node reaches every entity with the same typed
//! replies and errors, shards are spread and rebalanced on join and leave,
//! and a handoff loses, duplicates and reorders nothing.
//!
//! The multi-process faults (kill -9, SIGSTOP, a cut database connection)
//! are in `tests/tests/cluster_pg.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nexus_core::cluster::{Cluster, Coordination};
use nexus_core::codec::{EventCodec, Json};
use nexus_core::{ActorSystem, Effect, Entities, EntityError, aggregate};
use nexus_store_pg::{PgCoordination, PgEventStore, PgStoreConfig};
use serde::{Deserialize, Serialize};

const SHARDS: u32 = 32;

/// One numbered entry per command, so that order and duplicates show.
#[derive(Debug, Default)]
pub struct Sequence {
    entries: Vec<(u32, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, nexus_core::DomainEvent)]
/// An entry was appended.
#[event(prefix = "sequence")]
pub enum SequenceEvent {
    /// Entry `seq` of `caller`.
    Appended {
        /// Who sent it.
        caller: u32,
        /// Its number.
        seq: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
/// Why an append was refused.
pub enum SequenceError {
    /// Not the caller's next number.
    #[error("entry {seq} of caller {caller} is out of order: the last one was {last}")]
    OutOfOrder {
        /// Who sent it.
        caller: u32,
        /// Its number.
        seq: u64,
        /// The caller's last number.
        last: u64,
    },
}

/// Appends `seq` for `caller`; refused unless it follows the caller's last.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Append {
    /// Who sends it.
    pub caller: u32,
    /// Its number: the caller's last + 1.
    pub seq: u64,
}

/// Every entry so far.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entries;

#[aggregate(name = "sequence", event = SequenceEvent, error = SequenceError, commands(Append, Entries))]
impl Sequence {
    #[handle]
    fn append(&self, command: &Append) -> Result<Effect<Self, usize>, SequenceError> {
        let last = self
            .entries
            .iter()
            .rev()
            .find(|(caller, _)| *caller == command.caller)
            .map_or(0, |(_, seq)| *seq);
        if command.seq != last + 1 {
            return Err(SequenceError::OutOfOrder {
                caller: command.caller,
                seq: command.seq,
                last,
            });
        }
        Ok(Effect::persist(SequenceEvent::Appended {
            caller: command.caller,
            seq: command.seq,
        })
        .then_reply(|state: &Self| state.entries.len()))
    }

    #[handle]
    fn entries(&self, _: &Entries) -> Result<Effect<Self, Vec<(u32, u64)>>, SequenceError> {
        Ok(Effect::none().then_reply(|state: &Self| state.entries.clone()))
    }

    #[apply]
    fn apply(&mut self, event: &SequenceEvent) {
        match event {
            SequenceEvent::Appended { caller, seq } => self.entries.push((*caller, *seq)),
        }
    }
}

/// One node: its actor system, its cluster membership, its entities.
struct Node {
    system: ActorSystem,
    cluster: Cluster,
    sequences: Entities<Sequence>,
}

async fn start_node(config: &PgStoreConfig, name: &str) -> Node {
    let own = common::other_process(config, name).await;
    let coordination = PgCoordination::connect(&own, SHARDS, common::fast_timing())
        .await
        .expect("connect the coordination");
    let cluster = Cluster::builder(coordination)
        .heartbeat(Duration::from_millis(150))
        .start()
        .await
        .expect("start the node");
    let system = ActorSystem::new();
    let sequences = Entities::<Sequence>::builder(&system)
        .event_sourced(Arc::new(PgEventStore::new(&own)), EventCodec::new(Json))
        .cluster(&cluster, Json)
        .ask_timeout(Duration::from_secs(10))
        .build()
        .expect("build the entities");
    Node {
        system,
        cluster,
        sequences,
    }
}

/// Heartbeats every node until each holds what the allocation gives it
/// and every shard is held, or panics after 15 s.
async fn settle(nodes: &[&Node]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        for node in nodes {
            node.cluster.refresh().await;
        }
        let held: Vec<usize> = nodes
            .iter()
            .map(|n| n.cluster.held_shards().len())
            .collect();
        let total: usize = held.iter().sum();
        let room = (SHARDS as usize).div_ceil(nodes.len());
        if total == SHARDS as usize && held.iter().all(|&h| h <= room) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cluster did not settle: {held:?} of {SHARDS} shards"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_reaches_every_entity_with_typed_replies_and_errors() {
    let config = common::fresh_config().await;
    let a = start_node(&config, "cluster-a").await;
    let b = start_node(&config, "cluster-b").await;
    settle(&[&a, &b]).await;
    assert_eq!(a.cluster.members().len(), 2, "{:?}", a.cluster.members());

    for i in 0..40 {
        let id = format!("s{i}");
        // Alternate the node the command enters by; the owner is one of them.
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let len = first
            .sequences
            .of(&id)
            .ask(Append { caller: 1, seq: 1 })
            .await
            .unwrap();
        assert_eq!(len, 1);
        let len = second
            .sequences
            .of(&id)
            .ask(Append { caller: 1, seq: 2 })
            .await
            .unwrap();
        assert_eq!(len, 2);
        let rejected = first
            .sequences
            .of(&id)
            .ask(Append { caller: 1, seq: 9 })
            .await;
        match rejected {
            Err(EntityError::Rejected(SequenceError::OutOfOrder {
                caller: 1,
                seq: 9,
                last: 2,
            })) => {}
            other => panic!("a typed rejection from either node, got {other:?}"),
        }
        let entries = second.sequences.of(&id).ask(Entries).await.unwrap();
        assert_eq!(entries, vec![(1, 1), (1, 2)]);
    }
    // Only the owner runs an entity: the 40 are spread, none runs twice.
    assert_eq!(a.sequences.live() + b.sequences.live(), 40);
    assert!(a.sequences.live() > 0 && b.sequences.live() > 0);
    for node in [&a, &b] {
        node.cluster.leave().await;
        node.system.shutdown(Duration::from_secs(2)).await;
    }
}

/// Callers each send numbered appends, one after the other, to random
/// entities through random nodes while the membership changes; every
/// append must be acknowledged (no error at all), and each entity's log
/// must hold each caller's numbers once each, in order.
async fn load_while(
    nodes: Arc<Vec<Node>>,
    callers: std::ops::RangeInclusive<u32>,
    entities: usize,
    change: impl std::future::Future<Output = ()>,
) -> (u64, BTreeMap<String, Vec<(u32, u64)>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for caller in callers {
        let (nodes, stop, acked) = (Arc::clone(&nodes), Arc::clone(&stop), Arc::clone(&acked));
        tasks.spawn(async move {
            let mut next: BTreeMap<usize, u64> = BTreeMap::new();
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < 2_000 {
                let entity = fastrand::usize(0..entities);
                let via = fastrand::usize(0..nodes.len());
                let seq = next.entry(entity).or_insert(0);
                *seq += 1;
                let answer = nodes[via]
                    .sequences
                    .of(format!("e{entity}"))
                    .ask(Append { caller, seq: *seq })
                    .await;
                if let Err(error) = answer {
                    panic!("caller {caller}, entity e{entity}, seq {seq} via node {via}: {error}");
                }
                acked.fetch_add(1, Ordering::Relaxed);
                sent += 1;
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..500))).await;
            }
        });
    }
    change.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = tasks.join_next().await {
        done.expect("a caller failed");
    }
    let mut logs = BTreeMap::new();
    for entity in 0..entities {
        let id = format!("e{entity}");
        let entries = nodes[0].sequences.of(&id).ask(Entries).await.unwrap();
        logs.insert(id, entries);
    }
    (acked.load(Ordering::Relaxed), logs)
}

/// Each caller's numbers in each log are 1, 2, 3, …: nothing lost (the
/// counts add up to the acknowledgements), duplicated or reordered.
fn assert_in_order(acked: u64, logs: &BTreeMap<String, Vec<(u32, u64)>>) {
    let mut total = 0;
    for (id, entries) in logs {
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for &(caller, seq) in entries {
            let previous = last.insert(caller, seq).unwrap_or(0);
            assert_eq!(
                seq,
                previous + 1,
                "{id}: caller {caller} wrote {seq} after {previous}"
            );
        }
        total += entries.len() as u64;
    }
    assert_eq!(total, acked, "every acknowledged append is in a log, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_and_a_leave_move_shards_without_an_error_or_a_reorder() {
    common::log_to_test();
    let config = common::fresh_config().await;
    let a = start_node(&config, "cluster-a").await;
    let b = start_node(&config, "cluster-b").await;
    settle(&[&a, &b]).await;
    let nodes = Arc::new(vec![a, b]);

    // A third node joins under load: it takes its share from the others.
    let joined = Arc::new(tokio::sync::OnceCell::new());
    let (acked, logs) = {
        let joined = Arc::clone(&joined);
        let config = config.clone();
        load_while(Arc::clone(&nodes), 1..=8, 24, async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let c = start_node(&config, "cluster-c").await;
            let _ = joined.set(c);
            tokio::time::sleep(Duration::from_millis(1500)).await;
        })
        .await
    };
    assert!(acked > 100, "only {acked} appends in the join phase");
    assert_in_order(acked, &logs);
    let c = Arc::into_inner(joined)
        .and_then(tokio::sync::OnceCell::into_inner)
        .unwrap();
    settle(&[&nodes[0], &nodes[1], &c]).await;
    assert!(
        !c.cluster.held_shards().is_empty(),
        "the joiner took shards"
    );

    // Then the joiner leaves under load: its shards go back.
    let c = Arc::new(c);
    let (acked_more, logs) = {
        let c = Arc::clone(&c);
        // New callers: each numbers its appends from 1.
        load_while(Arc::clone(&nodes), 101..=108, 24, async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            c.cluster.leave().await;
        })
        .await
    };
    assert!(
        acked_more > 100,
        "only {acked_more} appends in the leave phase"
    );
    assert_in_order(acked + acked_more, &logs);
    assert!(c.cluster.held_shards().is_empty(), "the leaver kept shards");
    settle(&[&nodes[0], &nodes[1]]).await;
    for node in nodes.iter() {
        node.cluster.leave().await;
        node.system.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn the_shard_of_a_stream_is_the_leases() {
    let config = common::fresh_config().await;
    let coordination = PgCoordination::connect(&config, SHARDS, common::fast_timing())
        .await
        .unwrap();
    for id in ["wallet-alice", "sequence-e1", "x"] {
        let stream = nexus_core::StreamId::new(id);
        assert_eq!(
            coordination.lease().shard_of(&stream),
            nexus_core::lease::shard_of(&stream, coordination.shards())
        );
    }
}

#[tokio::test]
async fn a_cluster_owns_its_entities_alone() {
    let config = common::fresh_config().await;
    let a = start_node(&config, "cluster-a").await;
    let store = Arc::new(PgEventStore::new(&config));
    // Another ownership option beside `cluster(..)` is refused, in either order.
    let other = ActorSystem::new();
    let lease = Arc::new(nexus_core::lease::InMemoryLease::new());
    let leased = Entities::<Sequence>::builder(&other)
        .event_sourced(store.clone(), EventCodec::new(Json))
        .cluster(&a.cluster, Json)
        .lease(lease)
        .build();
    assert!(
        matches!(
            leased,
            Err(nexus_core::ConfigError::ClusterOwnership {
                option: "lease",
                ..
            })
        ),
        "{leased:?}"
    );
    let sole = Entities::<Sequence>::builder(&other)
        .event_sourced(store.clone(), EventCodec::new(Json))
        .sole_writer()
        .cluster(&a.cluster, Json)
        .build();
    assert!(
        matches!(
            sole,
            Err(nexus_core::ConfigError::ClusterOwnership {
                option: "cluster",
                ..
            })
        ),
        "{sole:?}"
    );
    // A second registry of the aggregate on the same node (from another
    // actor system) would run a second actor under the same tenure.
    let second = Entities::<Sequence>::builder(&ActorSystem::new())
        .event_sourced(store, EventCodec::new(Json))
        .cluster(&a.cluster, Json)
        .build();
    assert!(
        matches!(
            second,
            Err(nexus_core::ConfigError::AlreadyServed {
                aggregate: "sequence"
            })
        ),
        "{second:?}"
    );
    a.cluster.leave().await;
    a.system.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ask_whose_sender_gave_up_is_refused_unapplied() {
    use nexus_core::cluster::transport::{PeerClient, PeerRequest, TransportConfig};
    use nexus_core::remote::{RemoteCommands, WireAnswer, WireAsk};
    let config = common::fresh_config().await;
    let a = start_node(&config, "cluster-a").await;
    // An ask that arrives after its sender's deadline (a node paused with
    // it in its socket, say) is refused, and nothing is written.
    let command =
        <Sequence as RemoteCommands<Json>>::encode_command(&Json, &Append { caller: 1, seq: 1 })
            .unwrap();
    let mut ask = WireAsk::new(
        "sequence",
        "late",
        command,
        &nexus_core::CommandOptions::new(),
    );
    ask.hops = 1;
    ask.deadline_unix_ms = Some(1);
    let client = PeerClient::new(&TransportConfig::default());
    let answer = client
        .call(
            a.cluster.address(),
            PeerRequest::new("ask", ask.to_bytes().unwrap()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let answer = WireAnswer::from_bytes(&answer.body)
        .unwrap()
        .into_served::<Sequence, Json>(&Json);
    assert!(
        matches!(answer, Err(EntityError::Unreachable { .. })),
        "{answer:?}"
    );
    let entries = a.sequences.of("late").ask(Entries).await.unwrap();
    assert!(
        entries.is_empty(),
        "the late ask was not applied: {entries:?}"
    );
    a.cluster.leave().await;
    a.system.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_tells_through_a_node_that_hands_off_keep_their_order() {
    // Each caller tells numbered appends to its own entities through node
    // a, without waiting for them to be carried out, while b joins and a
    // hands half its shards to b. An append out of its caller's order is
    // rejected (a dead letter), and every later one of that entity too, so
    // a reorder or a loss leaves an entity short of its count.
    const CALLERS: u32 = 4;
    const ENTITIES: u32 = 4;
    const TELLS: u64 = 300;
    let config = common::fresh_config().await;
    let a = Arc::new(start_node(&config, "cluster-a").await);
    settle(&[&a]).await;
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let a = Arc::clone(&a);
        callers.spawn(async move {
            let refs: Vec<_> = (0..ENTITIES)
                .map(|e| a.sequences.of(format!("t{caller}-{e}")))
                .collect();
            for seq in 1..=TELLS {
                for entity in &refs {
                    entity
                        .tell(Append { caller, seq })
                        .await
                        .unwrap_or_else(|error| panic!("{entity:?} refused tell {seq}: {error}"));
                }
                // Paced over about four seconds, so that the join and the
                // handoff fall among them even on a slow machine.
                tokio::time::sleep(Duration::from_millis(fastrand::u64(6..22))).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = start_node(&config, "cluster-b").await;
    let joined_while_telling = !callers.is_empty() && callers.try_join_next().is_none();
    assert!(
        joined_while_telling,
        "the callers were done before b joined"
    );
    while let Some(done) = callers.join_next().await {
        done.expect("a caller failed");
    }
    settle(&[&a, &b]).await;
    assert!(!b.cluster.held_shards().is_empty(), "b took shards from a");
    let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
    for caller in 0..CALLERS {
        for e in 0..ENTITIES {
            let id = format!("t{caller}-{e}");
            loop {
                let entries = a.sequences.of(&id).ask(Entries).await.unwrap();
                let expected: Vec<(u32, u64)> = (1..=TELLS).map(|seq| (caller, seq)).collect();
                if entries == expected {
                    break;
                }
                let in_order = entries.iter().zip(&expected).all(|(got, want)| got == want);
                assert!(
                    in_order,
                    "{id}: out of order: {:?}",
                    &entries[..entries.len().min(20)]
                );
                assert!(
                    tokio::time::Instant::now() < give_up,
                    "{id}: {} of {TELLS} tells carried out",
                    entries.len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(
        b.sequences.live() > 0,
        "some of the told entities moved to b"
    );
    b.cluster.leave().await;
    b.system.shutdown(Duration::from_secs(2)).await;
    a.cluster.leave().await;
}
