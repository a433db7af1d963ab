//! A fresh, migrated schema per test, on the Postgres of `DATABASE_URL`.

#![allow(dead_code)]

use std::time::Duration;

use nexus_store_pg::PgStoreConfig;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The database the tests use.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Connect options of the test database, tagged with `application_name` so
/// a test can find (and kill) its own connections.
pub fn connect_options(application: &str) -> PgConnectOptions {
    database_url()
        .parse::<PgConnectOptions>()
        .expect("DATABASE_URL parses")
        .application_name(application)
}

/// A pool of `size` connections on the test database.
pub async fn pool(application: &str, size: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(connect_options(application))
        .await
        .expect("connect to the test database (DATABASE_URL)")
}

/// A unique schema name for one test.
pub fn schema_name() -> String {
    format!("nexus_test_{}", uuid::Uuid::new_v4().simple())
}

/// A config on a fresh schema, migrated.
pub async fn fresh_config() -> PgStoreConfig {
    drop_stale_schemas().await;
    let schema = schema_name();
    let config = PgStoreConfig::new(pool(&schema, 8).await)
        .schema(&schema)
        .expect("valid schema name");
    config.migrate().await.expect("migrate a fresh schema");
    config
}

/// Drops the test schemas that were migrated more than ten minutes ago, once
/// per test binary, so repeated runs do not pile them up while the schemas
/// of tests still running are kept.
async fn drop_stale_schemas() {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let pool = pool("nexus_test_cleanup", 1).await;
        sqlx::raw_sql(
            r"DO $$
            DECLARE s text; migrated timestamptz;
            BEGIN
                FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE 'nexus\_test\_%' LOOP
                    BEGIN
                        EXECUTE format('SELECT max(installed_on) FROM %I._sqlx_migrations', s)
                            INTO migrated;
                        IF migrated < now() - interval '10 minutes' THEN
                            EXECUTE format('DROP SCHEMA %I CASCADE', s);
                        END IF;
                    EXCEPTION WHEN OTHERS THEN NULL;
                    END;
                END LOOP;
            END $$",
        )
        .execute(&pool)
        .await
        .expect("drop stale test schemas");
        pool.close().await;
    })
    .await;
}

pub mod outage;
pub mod throwaway;

/// Short lease timing for tests: a 1.5 s lease, renewed every 300 ms,
/// allowing 200 ms of drift.
pub fn fast_timing() -> nexus_store_pg::LeaseTiming {
    nexus_store_pg::LeaseTiming::new(
        Duration::from_millis(1500),
        Duration::from_millis(300),
        Duration::from_millis(200),
    )
    .expect("the test timing is valid")
}

/// A second "process" on the schema of `config`: its own pool.
pub async fn other_process(config: &PgStoreConfig, name: &str) -> PgStoreConfig {
    PgStoreConfig::new(pool(name, 4).await)
        .schema(config.schema_name().as_str())
        .expect("valid schema name")
}

/// Expires the lease of `shard` at the database, as if its holder had
/// been paused past its lease (it renews nothing meanwhile).
pub async fn expire(config: &PgStoreConfig, shard: u32) {
    let expired = sqlx::query(&format!(
        "UPDATE {}.leases SET expires_at = clock_timestamp() - interval '1 millisecond' \
         WHERE shard = $1",
        config.schema_name()
    ))
    .bind(i32::try_from(shard).unwrap())
    .execute(config.pool())
    .await
    .expect("expire a lease");
    assert_eq!(expired.rows_affected(), 1, "shard {shard} was leased");
}

/// Tries `lease` until it grants `stream`, for at most `within`.
pub async fn acquire_eventually(
    lease: &nexus_store_pg::PgLease,
    stream: &nexus_core::StreamId,
    within: Duration,
) -> nexus_core::lease::LeaseGuard {
    use nexus_core::lease::{LeaseError, OwnershipLease};
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match lease.acquire(stream).await {
            Ok(guard) => return guard,
            Err(LeaseError::Held { .. } | LeaseError::Backend { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => {
                panic!("the lease of {stream} was not granted within {within:?}: {other}")
            }
        }
    }
}

/// The advisory lock key that orders the tests holding the log horizon
/// against the tests waiting on the global log: "nexus horizon" in ASCII.
const HORIZON_LOCK: i64 = 0x6e65_7875_735f_686f;

/// A session holding the horizon lock, released when it is dropped.
///
/// The log's horizon is the server's oldest running transaction, whatever
/// its database or schema (transaction ids are server-wide), so a test
/// that keeps a transaction open stalls every reader of the global log on
/// the server, not just its own. Such a test holds the lock alone
/// ([`horizon_alone`]); a test that waits on the global log with a
/// deadline shares it ([`horizon_shared`]), so neither sees the other.
pub struct HorizonLock(sqlx::PgConnection);

/// The horizon lock, exclusively: for a test that holds the horizon.
pub async fn horizon_alone() -> HorizonLock {
    horizon_lock("SELECT pg_advisory_lock($1)").await
}

/// The horizon lock, shared: for a test that waits on the global log.
pub async fn horizon_shared() -> HorizonLock {
    horizon_lock("SELECT pg_advisory_lock_shared($1)").await
}

async fn horizon_lock(statement: &str) -> HorizonLock {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&connect_options("nexus_test_horizon"))
        .await
        .expect("connect to the test database (DATABASE_URL)");
    sqlx::query(statement)
        .bind(HORIZON_LOCK)
        .execute(&mut conn)
        .await
        .expect("take the horizon lock");
    HorizonLock(conn)
}

/// Sends the test's `tracing` events to its captured output, filtered by
/// `RUST_LOG` (nothing when unset): a failing test then shows what the
/// nodes did, e.g. `RUST_LOG=nexus_core::cluster=debug`.
pub fn log_to_test() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
