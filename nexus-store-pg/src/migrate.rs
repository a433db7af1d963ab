//! Embedded migrations, safe to run from many processes at once.

use sqlx::{Connection, PgConnection};

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
        // with a unique violation when two sessions create them at once.
        sqlx::query(
            "SELECT pg_advisory_lock(hashtextextended('nexus-store-pg migrate ' || $1, 0))",
        )
        .bind(schema.as_str())
        .execute(&mut conn)
        .await
        .map_err(database)?;
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {0}; SET search_path TO {0}",
            schema.quoted()
        );
        sqlx::raw_sql(&ddl)
            .execute(&mut conn)
            .await
            .map_err(database)?;
        let migrated = MIGRATOR.run(&mut conn).await;
        // Closing the session releases the advisory lock as well.
        conn.close().await.map_err(database)?;
        migrated.map_err(|source| PgSetupError::Migrate {
            schema: schema.to_string(),
            source,
        })
    }
}
