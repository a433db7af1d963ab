//! One "process" of the no-ownership staleness test: its own `ActorSystem`
//! serves the `stock_item` entities of a shared schema, with no lease, and its
//! callers reserve random quantities and query; it prints every operation as
//! one JSON line.
//!
//! Usage: `stock_hammer <database-url> <schema> <items> <callers> <ops-per-caller>
//! <start-at-ns> <process> <processes> <stock>`
//!
//! The schema must be migrated and the items restocked (with `stock` units)
//! already. The process first reads every item once (so it holds a live actor
//! for each), then waits until `start-at-ns` (wall-clock nanoseconds since the
//! Unix epoch) so that all processes run their callers at once. Each caller
//! then, at random: reserves 1 to 8 units of an item this process "writes"
//! (item `i` with `i % processes == process`), reserves 1 to `stock` units of
//! any item (mostly refused once stock runs low), or queries any item. So the
//! small reservations of an item go through one process while the other
//! processes answer for it from the state they last loaded. Output:
//! `{"ops": [{"item": "i0", "sent": <ns>, "answered": <ns>, "kind": "reserved" |
//! "rejected" | "read" | "ambiguous", "qty": <n>, "available": <n>, "version": <n>}, …]}`
//! with wall-clock nanoseconds (every process runs on one machine, one clock).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nexus_core::codec::{EventCodec, Json};
use nexus_core::{ActorSystem, Entities, EntityError, RetryPolicy};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use nexus_tests::stock_item::{Available, Reserve, StockError, StockItem};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;

fn arg<T: std::str::FromStr>(args: &[String], index: usize, name: &str) -> T {
    args.get(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {index} ({name}) missing or invalid: {args:?}"))
}

fn now_ns() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970");
    u64::try_from(since.as_nanos()).expect("nanoseconds fit in u64 until 2554")
}

/// Reserves `qty` units of `id`: what was answered, as JSON.
async fn reserve(stock: &Entities<StockItem>, id: &str, qty: u64) -> Value {
    match stock.of(id).ask(Reserve { qty }).await {
        Ok(view) => json!({"kind": "reserved", "qty": qty,
            "available": view.available, "version": view.version}),
        Err(EntityError::Rejected(StockError::Insufficient {
            available, version, ..
        })) => json!({"kind": "rejected", "qty": qty,
            "available": available, "version": version}),
        Err(error) => {
            eprintln!("stock_hammer: reserve {id}: {error}");
            json!({"kind": "ambiguous", "qty": qty})
        }
    }
}

/// Queries `id`: what was answered, as JSON.
async fn query(stock: &Entities<StockItem>, id: &str) -> Value {
    match stock.of(id).ask(Available).await {
        Ok(view) => json!({"kind": "read",
            "available": view.available, "version": view.version}),
        Err(error) => {
            eprintln!("stock_hammer: query {id}: {error}");
            json!({"kind": "ambiguous"})
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url: String = arg(&args, 1, "database-url");
    let schema: String = arg(&args, 2, "schema");
    let items: usize = arg(&args, 3, "items");
    let callers: usize = arg(&args, 4, "callers");
    let ops: usize = arg(&args, 5, "ops-per-caller");
    let start_at: u64 = arg(&args, 6, "start-at-ns");
    let process: usize = arg(&args, 7, "process");
    let processes: usize = arg(&args, 8, "processes");
    let units: u64 = arg(&args, 9, "stock");

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .expect("connect");
    let config = PgStoreConfig::new(pool).schema(&schema).expect("schema");
    let system = ActorSystem::builder()
        .ask_timeout(Duration::from_secs(20))
        .build();
    // Other processes write the same streams: a conflict reloads and
    // decides again, with enough retries that contention alone never makes
    // a command fail.
    let stock = Entities::<StockItem>::builder(&system)
        .event_sourced(Arc::new(PgEventStore::new(&config)), EventCodec::new(Json))
        .group_commit(16)
        .retry(RetryPolicy::default().immediate(5).delayed(
            200,
            Duration::from_millis(1),
            Duration::from_millis(20),
        ))
        .build()
        .expect("entities");

    let ids: Vec<String> = (0..items).map(|i| format!("i{i}")).collect();
    for id in &ids {
        stock.of(id).ask(Available).await.expect("warm up");
    }
    let wait = start_at.saturating_sub(now_ns());
    tokio::time::sleep(Duration::from_nanos(wait)).await;

    let written: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % processes == process)
        .map(|(_, id)| id.clone())
        .collect();
    assert!(!written.is_empty(), "process {process} writes no item");
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (stock, ids, written) = (stock.clone(), ids.clone(), written.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for _ in 0..ops {
                let choice = fastrand::u8(0..4);
                let id = if choice < 2 {
                    &written[fastrand::usize(..written.len())]
                } else {
                    &ids[fastrand::usize(..ids.len())]
                };
                let sent = now_ns();
                let mut op = if choice < 3 {
                    let qty = if choice < 2 {
                        fastrand::u64(1..=8)
                    } else {
                        fastrand::u64(1..=units)
                    };
                    reserve(&stock, id, qty).await
                } else {
                    query(&stock, id).await
                };
                op["item"] = Value::from(id.as_str());
                op["sent"] = Value::from(sent);
                op["answered"] = Value::from(now_ns());
                done.push(op);
                if fastrand::u8(0..4) == 0 {
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..500))).await;
                }
            }
            done
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("caller"));
    }
    system.shutdown(Duration::from_secs(5)).await;
    println!("{}", json!({ "ops": all }));
}
