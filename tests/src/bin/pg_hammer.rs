//! One "process" of the multi-process Postgres test: its own `ActorSystem`
//! hammers a few shared counters through a shared schema, then prints what
//! was acknowledged as one JSON line.
//!
//! Usage: `pg_hammer <database-url> <schema> <entities> <callers> <commands-per-caller>`
//!
//! The schema must be migrated already. Output:
//! `{"acked": {"<entity>": <sum>, …}, "acked_commands": {"<entity>": <n>, …},
//!   "ambiguous": <n>, "refused": <n>, "conflicts": <n>}` where `ambiguous`
//! counts answers after which the command may or may not have committed
//! (timeouts, lost connections), `refused` counts commands answered with an
//! error that guarantees nothing was written, and `conflicts` counts appends
//! the database refused because another writer got there first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::Aggregate;
use nexus_core::codec::{EventCodec, Json};
use nexus_core::telemetry::{InMemoryRecorder, names};
use nexus_core::testkit::doc::{Add, Counter};
use nexus_core::{ActorSystem, Entities, EntityError, EventStore, RetryPolicy};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::postgres::PgPoolOptions;

/// What one caller saw.
#[derive(Default)]
struct Tally {
    acked: BTreeMap<String, u64>,
    acked_commands: BTreeMap<String, u64>,
    ambiguous: u64,
    refused: u64,
}

fn arg<T: std::str::FromStr>(args: &[String], index: usize, name: &str) -> T {
    args.get(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {index} ({name}) missing or invalid: {args:?}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url: String = arg(&args, 1, "database-url");
    let schema: String = arg(&args, 2, "schema");
    let entities: usize = arg(&args, 3, "entities");
    let callers: usize = arg(&args, 4, "callers");
    let commands: usize = arg(&args, 5, "commands-per-caller");

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .expect("connect");
    let config = PgStoreConfig::new(pool).schema(&schema).expect("schema");
    let system = ActorSystem::builder()
        .ask_timeout(Duration::from_secs(60))
        .build();
    // Other processes write the same streams: every conflict reloads and
    // decides again, with enough retries that contention alone never makes
    // a command fail.
    // The runtime's own counts: its metrics, bound to a local recorder.
    let recorder = InMemoryRecorder::new();
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let builder = Entities::<Counter>::builder(&system)
        .event_sourced(store, EventCodec::new(Json))
        .group_commit(16)
        .retry(RetryPolicy::default().immediate(5).delayed(
            200,
            Duration::from_millis(1),
            Duration::from_millis(20),
        ));
    let counters = metrics::with_local_recorder(&recorder, || builder.build()).expect("entities");

    let mut tasks = Vec::new();
    for _ in 0..callers {
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for _ in 0..commands {
                let id = format!("e{}", fastrand::usize(0..entities));
                let amount = fastrand::u64(1..10);
                match counters.of(&id).ask(Add(amount)).await {
                    Ok(_) => {
                        *tally.acked.entry(id.clone()).or_default() += amount;
                        *tally.acked_commands.entry(id).or_default() += 1;
                    }
                    Err(EntityError::Timeout { .. } | EntityError::Store(_)) => {
                        tally.ambiguous += 1;
                    }
                    Err(error) => {
                        eprintln!("refused: {error}");
                        tally.refused += 1;
                    }
                }
                if fastrand::u8(0..4) == 0 {
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..500))).await;
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("caller");
        for (id, sum) in tally.acked {
            *total.acked.entry(id).or_default() += sum;
        }
        for (id, n) in tally.acked_commands {
            *total.acked_commands.entry(id).or_default() += n;
        }
        total.ambiguous += tally.ambiguous;
        total.refused += tally.refused;
    }
    system.shutdown(Duration::from_secs(5)).await;
    println!(
        "{}",
        serde_json::json!({
            "acked": total.acked,
            "acked_commands": total.acked_commands,
            "ambiguous": total.ambiguous,
            "refused": total.refused,
            "conflicts": recorder.counter(names::CONFLICTS, &[("aggregate", Counter::NAME)]),
        })
    );
}
