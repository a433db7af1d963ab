//! A cluster's coordination in Postgres: the membership table beside the
//! fenced shard leases of [`PgLease`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::cluster::{Coordination, CoordinationError, Member, ShardHolder, View};
use nexus_core::lease::{LeaseError, LeaseGuard};
use sqlx::PgPool;

use crate::sql::cluster::ClusterSql;
use crate::{LeaseTiming, PgLease, PgSetupError, PgStoreConfig};

/// Membership and shard leases of the nodes sharing one schema.
///
/// The node id is the [`PgLease`]'s owner id (unique per connect), so a
/// lease row names the member that holds it. A member lives as long as a
/// lease (`LeaseTiming::ttl`) past its last heartbeat.
///
/// ```no_run
/// use nexus_store_pg::{LeaseTiming, PgCoordination, PgStoreConfig};
/// # async fn run(config: PgStoreConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let coordination = PgCoordination::connect(&config, 64, LeaseTiming::DEFAULT).await?;
/// // nexus_core::cluster::Cluster::builder(coordination).start().await?
/// # let _ = coordination;
/// # Ok(())
/// # }
/// ```
pub struct PgCoordination {
    lease: PgLease,
    pool: PgPool,
    sql: ClusterSql,
    /// The address given to `join`, re-inserted by a heartbeat after the
    /// row was pruned.
    address: std::sync::Mutex<String>,
}

impl fmt::Debug for PgCoordination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCoordination")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl PgCoordination {
    /// The coordination of `config`'s schema (migrated with
    /// [`PgStoreConfig::migrate`]) over `shards` shards.
    ///
    /// Must be called within a tokio runtime (the lease's heartbeat is a
    /// task).
    pub async fn connect(
        config: &PgStoreConfig,
        shards: u32,
        timing: LeaseTiming,
    ) -> Result<Self, PgSetupError> {
        let lease = PgLease::connect_with(config, shards, timing).await?;
        // A connection of its own, bounded like the lease's: a storm of
        // shard acquisitions must not delay a heartbeat.
        let pool = crate::lease::lease_pool(config, lease.owner(), timing, 1)
            .await
            .map_err(|source| PgSetupError::Database {
                schema: config.schema.to_string(),
                source,
            })?;
        Ok(Self {
            sql: ClusterSql::new(&config.schema),
            lease,
            pool,
            address: std::sync::Mutex::default(),
        })
    }

    /// The shard leases, which entities of this node share.
    pub fn lease(&self) -> &PgLease {
        &self.lease
    }

    /// Runs `statement` within the lease's `renew_every`: a database link
    /// that drops packets must fail a heartbeat, not hang it (the server's
    /// timeouts do not bound the client's socket).
    async fn bounded<T>(
        &self,
        operation: &'static str,
        statement: impl std::future::Future<Output = Result<T, CoordinationError>>,
    ) -> Result<T, CoordinationError> {
        let limit = self.lease.timing().renew_every();
        tokio::time::timeout(limit, statement)
            .await
            .unwrap_or_else(|_| {
                Err(CoordinationError::Backend {
                    operation,
                    source: format!("no answer within {limit:?}").into(),
                })
            })
    }

    fn ttl_micros(&self) -> i64 {
        i64::try_from(self.lease.timing().ttl().as_micros()).unwrap_or(i64::MAX)
    }

    fn address(&self) -> String {
        self.address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl PgCoordination {
    /// The live members and the held shards, read on `conn`.
    async fn read_view(&self, conn: &mut sqlx::PgConnection) -> Result<View, CoordinationError> {
        let members: Vec<(String, String, bool)> = sqlx::query_as(&self.sql.members)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend("read members"))?;
        let holders: Vec<(i32, String, i64)> = sqlx::query_as(&self.sql.holders)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend("read shard holders"))?;
        Ok(View {
            members: members
                .into_iter()
                .map(|(node, address, live)| Member {
                    node,
                    address,
                    live,
                })
                .collect(),
            holders: holders
                .into_iter()
                .map(|(shard, node, epoch)| ShardHolder {
                    shard: shard.cast_unsigned(),
                    node,
                    epoch: epoch.cast_unsigned(),
                })
                .collect(),
        })
    }
}

fn backend(operation: &'static str) -> impl FnOnce(sqlx::Error) -> CoordinationError {
    move |source| CoordinationError::Backend {
        operation,
        source: source.into(),
    }
}

#[async_trait]
impl Coordination for PgCoordination {
    fn node(&self) -> &str {
        self.lease.owner()
    }

    fn shards(&self) -> u32 {
        self.lease.shards()
    }

    fn ttl(&self) -> Duration {
        self.lease.timing().ttl()
    }

    async fn join(&self, address: &str) -> Result<(), CoordinationError> {
        address.clone_into(
            &mut self
                .address
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.bounded("join", async {
            sqlx::query(&self.sql.join)
                .bind(self.node())
                .bind(address)
                .bind(self.ttl_micros())
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(backend("join"))
        })
        .await
    }

    async fn observe(&self) -> Result<View, CoordinationError> {
        self.bounded("observe", async {
            let mut conn = self.pool.acquire().await.map_err(backend("observe"))?;
            sqlx::query(&self.sql.renew)
                .bind(self.node())
                .bind(self.address())
                .bind(self.ttl_micros())
                .execute(&mut *conn)
                .await
                .map_err(backend("renew membership"))?;
            self.read_view(&mut conn).await
        })
        .await
    }

    async fn view(&self) -> Result<View, CoordinationError> {
        self.bounded("view", async {
            let mut conn = self.pool.acquire().await.map_err(backend("view"))?;
            self.read_view(&mut conn).await
        })
        .await
    }

    async fn take(&self, shard: u32) -> Result<LeaseGuard, LeaseError> {
        self.lease.acquire_shard(shard).await
    }

    async fn release(&self, guard: LeaseGuard) -> Result<(), CoordinationError> {
        self.lease
            .release_now(guard)
            .await
            .map_err(|source| CoordinationError::Backend {
                operation: "release shard",
                source,
            })
    }

    async fn leave(&self) -> Result<(), CoordinationError> {
        self.bounded("leave", async {
            sqlx::query(&self.sql.leave)
                .bind(self.node())
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(backend("leave"))
        })
        .await
    }
}
