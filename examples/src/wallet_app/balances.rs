//! `GET /admin/balances`: the event-sourced wallets ranked by balance, read
//! from a projection of their events, not through the entities.
//!
//! On Postgres the read model is the table `wallet_balances` of the app's
//! schema, fed exactly once by a [`PgProjection`] (each batch and its
//! checkpoint commit together); with `--lease-shards` one process runs it
//! and the others follow its checkpoint. On the in-memory stores it is a map
//! fed by an in-memory projection of the same events, deduplicated by
//! stream version. Either way `?after=POSITION` (a write's `"position"`)
//! waits, bounded, until the projection has passed the position, so the
//! ranking includes that write; on timeout the answer is 503 with
//! `Retry-After`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::lease::OwnershipLease;
use nexus_core::projection::{
    AtLeastOnce, Batch, InMemoryCheckpoints, Projection, ProjectionHandle, WaitError,
};
use nexus_core::{BoxError, EventStore, LogPosition};
use nexus_store_pg::PgStoreConfig;
use nexus_store_pg::projection::{PgProjection, PgReadSide};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::error::ApiError;
use crate::domain::wallet::{WalletEvent, WalletEventVisitor};
use crate::domain::wallet_format;

/// The projection's name (its checkpoint row) and its read model's table.
pub const NAME: &str = "wallet_balances";

/// One line of the ranking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    /// The owner.
    pub owner: String,
    /// The wallet's balance in cents.
    pub balance_cents: i64,
}

/// One batch's net change of one wallet, by exhaustive dispatch: a new
/// wallet event fails this build until it is handled here.
#[derive(Default)]
struct Delta {
    cents: i64,
    version: u64,
}

impl WalletEventVisitor for Delta {
    type Output = ();

    fn deposited(&mut self, amount: &i64) {
        self.cents += amount;
    }

    fn withdrawn(&mut self, amount: &i64) {
        self.cents -= amount;
    }
}

/// Each owner's net change in `batch` and the last version seen.
fn deltas(batch: &Batch<WalletEvent>) -> BTreeMap<String, Delta> {
    let mut deltas = BTreeMap::<String, Delta>::new();
    for e in batch {
        let delta = deltas.entry(e.entity_id().to_owned()).or_default();
        e.event.visit(delta);
        delta.version = e.version;
    }
    deltas
}

/// The Postgres read model: `owner → balance_cents, version`.
struct PgBalances;

#[async_trait]
impl PgProjection for PgBalances {
    type Event = WalletEvent;

    async fn create(&self, conn: &mut PgConnection, table: &str) -> Result<(), BoxError> {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 owner text PRIMARY KEY, balance_cents bigint NOT NULL, version bigint NOT NULL)"
        ))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// One `UNNEST` upsert per batch.
    async fn handle(
        &self,
        tx: &mut PgConnection,
        table: &str,
        batch: &Batch<WalletEvent>,
    ) -> Result<(), BoxError> {
        let deltas = deltas(batch);
        let owners: Vec<&str> = deltas.keys().map(String::as_str).collect();
        let cents: Vec<i64> = deltas.values().map(|d| d.cents).collect();
        let versions: Vec<i64> = deltas
            .values()
            .map(|d| i64::try_from(d.version).unwrap_or(i64::MAX))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO {table} AS b (owner, balance_cents, version)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[])
             ON CONFLICT (owner) DO UPDATE
                 SET balance_cents = b.balance_cents + excluded.balance_cents,
                     version = excluded.version"
        ))
        .bind(owners)
        .bind(cents)
        .bind(versions)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// The in-memory read model: `owner → (balance, version)`.
type MemoryModel = Arc<Mutex<HashMap<String, (i64, u64)>>>;

enum Model {
    Postgres { pool: PgPool, view: String },
    Memory(MemoryModel),
}

/// The running projection and its read model.
pub struct Balances {
    handle: ProjectionHandle,
    model: Model,
    wait: Duration,
}

impl Balances {
    /// Runs the exactly-once projection of the wallets' events in `store`
    /// into `config`'s schema, woken by the appends' NOTIFY; through `lease`
    /// (`--lease-shards`), one process runs it and the others follow.
    pub async fn postgres(
        config: &PgStoreConfig,
        store: Arc<dyn EventStore>,
        lease: Option<Arc<dyn OwnershipLease>>,
        wait: Duration,
    ) -> Result<Self, nexus_store_pg::PgSetupError> {
        let read_side = PgReadSide::connect(config).await?;
        let mut projection = read_side
            .exactly_once(NAME, NAME, PgBalances, store, wallet_format::codec())?
            .categories(["wallet"])
            .batch_size(500)
            .poll_every(Duration::from_millis(500));
        if let Some(lease) = lease {
            projection = projection.lease(lease);
        }
        Ok(Self {
            handle: projection.spawn(),
            model: Model::Postgres {
                pool: config.pool().clone(),
                view: format!("\"{}\".{NAME}", config.schema_name().as_str()),
            },
            wait,
        })
    }

    /// Runs an in-memory projection of the wallets' events in `store`. Its
    /// checkpoint lives in memory too, so it redelivers nothing but after a
    /// restart of the projection alone; events at or below a wallet's
    /// version already applied are skipped all the same.
    pub fn memory(store: Arc<dyn EventStore>, wait: Duration) -> Self {
        let model = MemoryModel::default();
        let shared = Arc::clone(&model);
        let sink = AtLeastOnce::new(
            NAME,
            Arc::new(InMemoryCheckpoints::new()),
            move |batch: Batch<WalletEvent>| {
                let shared = Arc::clone(&shared);
                async move {
                    let mut model = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    for e in &batch {
                        let (balance, version) = model.entry(e.entity_id().to_owned()).or_default();
                        if e.version <= *version {
                            continue;
                        }
                        let mut delta = Delta::default();
                        e.event.visit(&mut delta);
                        *balance += delta.cents;
                        *version = e.version;
                    }
                    Ok(())
                }
            },
        );
        let handle = Projection::new(NAME, store, wallet_format::codec(), sink)
            .categories(["wallet"])
            .poll_every(Duration::from_millis(10))
            .spawn();
        Self {
            handle,
            model: Model::Memory(model),
            wait,
        }
    }

    /// The projection, for status and tests.
    pub fn handle(&self) -> &ProjectionHandle {
        &self.handle
    }

    /// The wallets, highest balance first, owners ascending among equals;
    /// after waiting (bounded) until the projection has passed `after`.
    pub async fn ranking(&self, after: Option<LogPosition>) -> Result<Vec<Balance>, ApiError> {
        if let Some(after) = after {
            self.handle
                .wait_for(after, self.wait)
                .await
                .map_err(|error| match error {
                    WaitError::Timeout { .. } => ApiError::Unavailable(format!(
                        "the balances projection has not reached the position yet: {error}"
                    )),
                    other => ApiError::Unavailable(other.to_string()),
                })?;
        }
        match &self.model {
            Model::Memory(model) => {
                let mut ranked: Vec<Balance> = model
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .map(|(owner, (balance, _))| Balance {
                        owner: owner.clone(),
                        balance_cents: *balance,
                    })
                    .collect();
                ranked.sort_by(|a, b| {
                    b.balance_cents
                        .cmp(&a.balance_cents)
                        .then_with(|| a.owner.cmp(&b.owner))
                });
                Ok(ranked)
            }
            Model::Postgres { pool, view } => {
                let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
                    "SELECT owner, balance_cents FROM {view} ORDER BY balance_cents DESC, owner"
                ))
                .fetch_all(pool)
                .await
                .or_else(|e| match &e {
                    // Before the projection's first start created it.
                    sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                        Ok(Vec::new())
                    }
                    _ => Err(e),
                })
                .map_err(|e| match e {
                    sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                        ApiError::Unavailable(e.to_string())
                    }
                    other => ApiError::Internal(other.to_string()),
                })?;
                Ok(rows
                    .into_iter()
                    .map(|(owner, balance_cents)| Balance {
                        owner,
                        balance_cents,
                    })
                    .collect())
            }
        }
    }

    /// Stops the projection.
    pub async fn stop(&self) {
        self.handle.stop().await;
    }
}
