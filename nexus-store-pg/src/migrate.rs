//! Embedded migrations, safe to run from many processes at once, and the
//! start-up checks of the log.
//!
//! **Expand and contract.** A release may start against a schema that a
//! newer release migrated further, as long as the schema says it is still
//! compatible: `schema_compat.oldest_compatible` names the oldest release
//! (by the newest migration it embeds) that may use it. An *expand*
//! migration (a new table, a nullable column, a new index, a new statement
//! shape every old writer still satisfies) leaves it, so old and new
//! processes run side by side during a rolling deploy; a *contract*
//! migration (dropping or renaming what an older release uses, a rule every
//! writer must follow) raises it to its own number and is applied once the
//! older processes are gone. The migrations of newer releases that this
//! binary does not know are not an error ("previously applied but
//! missing"), only an incompatible level is. Every migration runs with a
//! `lock_timeout`, so DDL stuck behind a long reader fails the start-up
//! instead of queueing every append behind it.

use sqlx::{Connection, Executor, PgConnection, Row};

use crate::{PgSetupError, PgStoreConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How long a migration's DDL waits for a table lock before it gives up.
const LOCK_TIMEOUT: &str = "5s";

/// The newest migration this binary embeds: its compatibility level.
pub(crate) fn newest_embedded() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

impl PgStoreConfig {
    /// Creates the schema if needed, applies the embedded migrations to it,
    /// and checks the log before any process writes:
    ///
    /// - a schema migrated by a newer, compatible release is used as it is;
    ///   one whose compatibility level is above this release is refused
    ///   ([`PgSetupError::IncompatibleSchema`]);
    /// - when the database's history forked since the last start (another
    ///   cluster, or a new timeline: a restore or a promoted standby), a new
    ///   log epoch begins, so positions after it sort after every old one;
    /// - a log whose newest transaction id is ahead of the server's is
    ///   refused ([`PgSetupError::LogAhead`]).
    ///
    /// Idempotent; processes that start together serialise on an advisory
    /// lock per schema, and the migrations' bookkeeping table lives in the
    /// schema, so applications in other schemas are not touched.
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
             SET search_path TO {quoted};
             SET lock_timeout = '{LOCK_TIMEOUT}'",
            name = schema.as_str(),
            quoted = schema.quoted(),
        );
        conn.execute(sqlx::raw_sql(&setup))
            .await
            .map_err(database)?;
        let checked = self.migrate_on(&mut conn).await;
        // Closing the session releases the advisory lock as well.
        conn.close().await.map_err(database)?;
        checked
    }

    async fn migrate_on(&self, conn: &mut PgConnection) -> Result<(), PgSetupError> {
        let schema = self.schema.to_string();
        let database = |source| PgSetupError::Database {
            schema: schema.clone(),
            source,
        };
        let ours = newest_embedded();
        if let Some(level) = compat_level(conn).await.map_err(database)?
            && level > ours
        {
            return Err(PgSetupError::IncompatibleSchema {
                schema: schema.clone(),
                oldest_compatible: level,
                this_release: ours,
            });
        }
        // Migrations of a newer release are not missing here: they belong
        // to a release this binary predates, and the level said it may run.
        let mut migrator = sqlx::migrate::Migrator {
            migrations: MIGRATOR.migrations.clone(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        migrator.set_ignore_missing(true);
        // `run_direct` rather than `run`: `run` takes an `Acquire` whose
        // higher-ranked bound makes this future not `Send` (sqlx says so itself).
        migrator
            .run_direct(&mut *conn)
            .await
            .map_err(|source| PgSetupError::Migrate {
                schema: schema.clone(),
                source,
            })?;
        open_epoch(conn).await.map_err(database)?;
        let row = sqlx::query(CHECK_AHEAD)
            .fetch_one(&mut *conn)
            .await
            .map_err(database)?;
        let ahead: bool = row.try_get(0).map_err(database)?;
        if ahead {
            return Err(PgSetupError::LogAhead {
                schema: schema.clone(),
                log_newest: row.try_get::<String, _>(1).map_err(database)?,
                server_next: row.try_get::<String, _>(2).map_err(database)?,
            });
        }
        Ok(())
    }

    /// Starts a new epoch of the global log by hand: positions appended
    /// from now on sort after every older one. For a log copied or restored
    /// in a way [`migrate`](Self::migrate) cannot see (the same cluster and
    /// timeline), typically after it refused with
    /// [`PgSetupError::LogAhead`]. Stop the writers first; readers keep
    /// their checkpoints.
    pub async fn begin_log_epoch(&self, reason: &str) -> Result<u32, PgSetupError> {
        let sql = crate::sql::render(BEGIN_EPOCH, &self.schema);
        let epoch: i32 = sqlx::query_scalar(&sql)
            .bind(reason)
            .fetch_one(&self.pool)
            .await
            .map_err(|source| PgSetupError::Database {
                schema: self.schema.to_string(),
                source,
            })?;
        Ok(u32::try_from(epoch).unwrap_or_default())
    }
}

/// The schema's compatibility level, `None` before migration 0006.
async fn compat_level(conn: &mut PgConnection) -> Result<Option<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('schema_compat') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT oldest_compatible FROM schema_compat")
        .fetch_optional(&mut *conn)
        .await
}

/// The server's identity and timeline. The timeline is read from the WAL
/// insert position's file name, which follows a promotion at once (the
/// control file only after the next checkpoint).
const IDENTITY: &str = r"
SELECT (SELECT system_identifier FROM pg_control_system())::int8,
       ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int4
";

/// Opens a new epoch when the newest one was recorded on another cluster or
/// timeline; records the identity of the first one.
async fn open_epoch(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    let (system, timeline): (i64, i32) = sqlx::query_as(IDENTITY).fetch_one(&mut *tx).await?;
    let newest: (i32, Option<i64>, Option<i32>) = sqlx::query_as(
        "SELECT epoch, system_identifier, timeline FROM log_epochs
         ORDER BY epoch DESC LIMIT 1 FOR UPDATE",
    )
    .fetch_one(&mut *tx)
    .await?;
    match newest {
        (epoch, None, _) => {
            sqlx::query(
                "UPDATE log_epochs SET system_identifier = $2, timeline = $3 WHERE epoch = $1",
            )
            .bind(epoch)
            .bind(system)
            .bind(timeline)
            .execute(&mut *tx)
            .await?;
        }
        (epoch, Some(s), t) if s != system || t != Some(timeline) => {
            let reason = if s == system {
                format!("timeline {} after {}", timeline, t.unwrap_or_default())
            } else {
                format!("system {system} after {s}")
            };
            tracing::warn!(epoch = epoch + 1, %reason, "the database's history forked: a new log epoch begins");
            sqlx::query(
                "INSERT INTO log_epochs (epoch, system_identifier, timeline, reason)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(epoch + 1)
            .bind(system)
            .bind(timeline)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
        _ => {}
    }
    tx.commit().await
}

/// Whether the current epoch holds a transaction id the server has not
/// handed out yet (rows restored or copied from a busier cluster): new
/// events would sort before them and readers past them would skip them.
const CHECK_AHEAD: &str = r"
WITH newest AS (
    SELECT e.tx_id FROM events e
    WHERE e.epoch = (SELECT max(epoch) FROM log_epochs)
    ORDER BY e.epoch DESC, e.tx_id DESC LIMIT 1
)
SELECT coalesce((SELECT tx_id FROM newest) >= pg_snapshot_xmax(pg_current_snapshot()), false),
       coalesce((SELECT tx_id::text FROM newest), ''),
       pg_snapshot_xmax(pg_current_snapshot())::text
";

const BEGIN_EPOCH: &str = r"
INSERT INTO {schema}.log_epochs (epoch, system_identifier, timeline, reason)
SELECT max(epoch) + 1, NULL, NULL, $1 FROM {schema}.log_epochs
RETURNING epoch
";
