//! A projection in a process of its own, for the kill -9 test
//! (`tests/read_side.rs`): `projection_worker DATABASE_URL SCHEMA`.
//!
//! Runs an exactly-once projection of the wallets' events into the table
//! `worker_totals` (`owner → balance, events`), one row write per event and
//! a pause per batch so that a kill lands mid-batch, and prints `caught-up
//! POSITION` each time the log is drained. Runs until killed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::projection::Batch;
use nexus_core::{BoxError, EventStore};
use nexus_examples::domain::wallet::{WalletEvent, WalletEventVisitor};
use nexus_examples::domain::wallet_format;
use nexus_store_pg::projection::{PgProjection, PgReadSide};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::PgConnection;

/// The signed amount of one event, by exhaustive dispatch.
struct Signed;

impl WalletEventVisitor for Signed {
    type Output = i64;

    fn deposited(&mut self, amount: &i64) -> i64 {
        *amount
    }

    fn withdrawn(&mut self, amount: &i64) -> i64 {
        -amount
    }
}

struct Totals;

#[async_trait]
impl PgProjection for Totals {
    type Event = WalletEvent;

    async fn create(&self, conn: &mut PgConnection, table: &str) -> Result<(), BoxError> {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 owner text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL)"
        ))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Row by row, slowly: the batch's transaction stays open long enough
    /// for a kill to land inside it.
    async fn handle(
        &self,
        tx: &mut PgConnection,
        table: &str,
        batch: &Batch<WalletEvent>,
    ) -> Result<(), BoxError> {
        let upsert = format!(
            "INSERT INTO {table} AS t VALUES ($1, $2, 1)
             ON CONFLICT (owner) DO UPDATE SET balance = t.balance + excluded.balance,
                                               events = t.events + 1"
        );
        for e in batch {
            sqlx::query(&upsert)
                .bind(e.entity_id())
                .bind(e.event.visit(&mut Signed))
                .execute(&mut *tx)
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(schema)) = (args.next(), args.next()) else {
        return Err("usage: projection_worker DATABASE_URL SCHEMA".into());
    };
    let pool = sqlx::PgPool::connect(&url).await?;
    let config = PgStoreConfig::new(pool).schema(&schema)?;
    config.migrate().await?;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await?;
    let handle = read_side
        .exactly_once(
            "worker_totals",
            "worker_totals",
            Totals,
            store,
            wallet_format::codec(),
        )?
        .batch_size(50)
        .poll_every(Duration::from_millis(50))
        .spawn();
    println!("started");
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = handle.status().await;
        if status.lag_events == Some(0) {
            println!("caught-up {}", status.position);
        }
    }
}
