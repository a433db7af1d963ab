//! Embedded migrations, safe to run from many processes at once.

use sqlx::{Connection, Executor, PgConnection};

use crate::{PgSetupError, PgStoreConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

impl PgStoreConfig {
    /// Creates the schema if needed and applies the embedded migrations to
    /// it. Idempotent; processes that start together serialise on an
    /// advisory lock per schema, and the migrations' bookkeeping table lives
    /// in the schema, so applications in other schemas are not touched.
    ///
    /// Runs on a connection of its own (not one of the pool's), because it
    /// changes the session's `search_path`.
    pub async fn migrate(&self) -> Result<(), PgSetupError> {
        let schema = &self.schema;
        let database = |source| PgSetupError::Database {
            schema: schema.to_string(),
            source,
        };
        let mut conn = PgConnection::connect_with(&self.pool.connect_options())
            .await
            .map_err(database)?;
        // `CREATE SCHEMA IF NOT EXISTS` and sqlx's bookkeeping table both fail
        // with a unique violation when two sessions create them at once, so
        // starters serialise on a lock per schema. The name is validated (only
        // `[a-z0-9_]`), so it is safe inside the literal.
        let setup = format!(
            "SELECT pg_advisory_lock(hashtextextended('nexus-store-pg migrate {name}', 0));
             CREATE SCHEMA IF NOT EXISTS {quoted};
             SET search_path TO {quoted}",
            name = schema.as_str(),
            quoted = schema.quoted(),
        );
        conn.execute(sqlx::raw_sql(&setup))
            .await
            .map_err(database)?;
        // `run_direct` rather than `run`: `run` takes an `Acquire` whose
        // higher-ranked bound makes this future not `Send` (sqlx says so itself).
        let migrated = MIGRATOR.run_direct(&mut conn).await;
        // Closing the session releases the advisory lock as well.
        conn.close().await.map_err(database)?;
        migrated.map_err(|source| PgSetupError::Migrate {
            schema: schema.to_string(),
            source,
        })
    }
}
