//! Several OS processes, each with its own `ActorSystem`, write the same
//! entities through the same Postgres schema. The database arbitrates:
//! afterwards every stream's versions are gapless and each counter equals
//! the sum of the commands that were acknowledged to callers.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use nexus_core::codec::{EventCodec, Json};
use nexus_core::testkit::doc::CounterEvent;
use nexus_core::{EventStore, StreamId};
use nexus_store_pg::{PgEventStore, PgStoreConfig};

const PROCESSES: usize = 3;
const ENTITIES: usize = 4;
const CALLERS: usize = 8;
const COMMANDS: usize = 40;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[derive(Default)]
struct Totals {
    acked: BTreeMap<String, u64>,
    acked_commands: BTreeMap<String, u64>,
    ambiguous: u64,
    conflicts: u64,
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &serde_json::Value) {
    for (id, n) in from.as_object().expect("an object of counts") {
        *into.entry(id.clone()).or_default() += n.as_u64().expect("a count");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_entities_lose_nothing_and_double_nothing() {
    let url = database_url();
    let schema = format!("nexus_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&url).await.expect("DATABASE_URL");
    let config = PgStoreConfig::new(pool).schema(&schema).unwrap();
    config.migrate().await.unwrap();

    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_pg_hammer"))
                .args([
                    url.as_str(),
                    schema.as_str(),
                    &ENTITIES.to_string(),
                    &CALLERS.to_string(),
                    &COMMANDS.to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start pg_hammer")
        })
        .collect();
    let mut totals = Totals::default();
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .expect("pg_hammer ran");
        assert!(output.status.success(), "pg_hammer failed: {output:?}");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("pg_hammer prints JSON");
        add_counts(&mut totals.acked, &report["acked"]);
        add_counts(&mut totals.acked_commands, &report["acked_commands"]);
        totals.ambiguous += report["ambiguous"].as_u64().unwrap();
        totals.conflicts += report["conflicts"].as_u64().unwrap();
        assert_eq!(report["refused"], 0, "contention alone refused commands");
    }
    assert_eq!(
        totals.ambiguous, 0,
        "no command ended ambiguously, so the sums must match exactly"
    );
    assert!(
        totals.conflicts > 0,
        "the processes raced for the same versions, so the database had to refuse some appends"
    );
    let acked_total: u64 = totals.acked_commands.values().sum();
    assert_eq!(
        acked_total,
        (PROCESSES * CALLERS * COMMANDS) as u64,
        "every command was acknowledged"
    );

    let store = PgEventStore::new(&config);
    let codec = EventCodec::<CounterEvent>::new(Json);
    for e in 0..ENTITIES {
        let id = format!("e{e}");
        let events = store
            .read_stream(&StreamId::for_entity("counter", &id), 1)
            .await
            .unwrap();
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(
            versions,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "{id}: versions are gapless"
        );
        let state: u64 = events
            .iter()
            .map(|recorded| match codec.decode(recorded).unwrap() {
                CounterEvent::Added(n) => n,
            })
            .sum();
        assert_eq!(
            state,
            totals.acked.get(&id).copied().unwrap_or(0),
            "{id}: the state is the sum of acknowledged commands"
        );
        assert_eq!(
            events.len() as u64,
            totals.acked_commands.get(&id).copied().unwrap_or(0),
            "{id}: one event per acknowledged command, none doubled"
        );
    }
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(config.pool())
        .await
        .unwrap();
}
