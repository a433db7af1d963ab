//! Errors of configuring and migrating the stores and starting a lease.

use std::time::Duration;

/// Why the stores could not be configured or migrated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgSetupError {
    /// The schema name is not a plain lowercase identifier.
    #[error("invalid schema name {name:?}: {reason}")]
    InvalidSchema {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The database refused or broke a setup statement.
    #[error("setting up schema {schema}: {source}")]
    Database {
        /// The schema being set up.
        schema: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed (or the applied ones differ from the embedded
    /// ones).
    #[error("migrating schema {schema}: {source}")]
    Migrate {
        /// The schema being migrated.
        schema: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A newer release migrated the schema past what this release can
    /// use: its compatibility level (`schema_compat.oldest_compatible`) is
    /// above this release's newest migration. Deploy the newer release.
    #[error(
        "schema {schema} needs a release with migration {oldest_compatible} or newer; this \
         release's newest migration is {this_release}"
    )]
    IncompatibleSchema {
        /// The schema.
        schema: String,
        /// The oldest release (by its newest migration) the schema allows.
        oldest_compatible: i64,
        /// This release's newest migration.
        this_release: i64,
    },
    /// The log's newest transaction id is ahead of the server's next one:
    /// the events were restored or copied from a busier cluster, new events
    /// would sort before them and readers past them would skip them.
    /// Begin a new log epoch ([`PgStoreConfig::begin_log_epoch`](crate::PgStoreConfig::begin_log_epoch))
    /// once the copy is complete, then start again.
    #[error(
        "schema {schema}: the event log holds transaction id {log_newest}, ahead of the \
         server's next one ({server_next}); it was restored or copied from another cluster. \
         Begin a new log epoch (PgStoreConfig::begin_log_epoch) before writing"
    )]
    LogAhead {
        /// The schema.
        schema: String,
        /// The newest transaction id in the log's current epoch.
        log_newest: String,
        /// The server's next transaction id.
        server_next: String,
    },
    /// The lease table of the schema was set up for another shard count
    /// than this process uses; see [`PgLease`](crate::PgLease) on how to
    /// change it safely.
    ///
    /// ```no_run
    /// use nexus_store_pg::{PgLease, PgSetupError};
    /// # async fn run(config: nexus_store_pg::PgStoreConfig) {
    /// match PgLease::connect(&config, 16).await {
    ///     Err(PgSetupError::ShardCountMismatch { recorded, configured, .. }) => {
    ///         eprintln!("the schema uses {recorded} shards, not {configured}");
    ///     }
    ///     other => { let _ = other; }
    /// }
    /// # }
    /// ```
    #[error(
        "the lease table of schema {schema} is set up for {recorded} shards, this process is \
         configured with {configured}: every process of a schema must use the same count \
         (to change it, stop every process, wait one lease ttl, then update \
         {schema}.lease_config)"
    )]
    ShardCountMismatch {
        /// The schema of the lease table.
        schema: String,
        /// The count recorded in the schema's `lease_config`.
        recorded: u32,
        /// The count this process was configured with.
        configured: u32,
    },
    /// A lease shard count outside `1..=i32::MAX`.
    ///
    /// ```no_run
    /// # async fn run(config: nexus_store_pg::PgStoreConfig) {
    /// let refused = nexus_store_pg::PgLease::connect(&config, 0).await;
    /// assert!(matches!(refused, Err(nexus_store_pg::PgSetupError::InvalidShards { shards: 0 })));
    /// # }
    /// ```
    #[error("lease shards must be in 1..=2147483647, got {shards}")]
    InvalidShards {
        /// The count given.
        shards: u32,
    },
    /// Lease timing that cannot keep the holder ahead of the database.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ms = Duration::from_millis;
    /// let error = nexus_store_pg::LeaseTiming::new(ms(1000), ms(400), ms(300)).unwrap_err();
    /// assert!(error.to_string().contains("400ms"));
    /// ```
    #[error(
        "lease timing ttl {ttl:?}, renew_every {renew_every:?}, max_clock_drift \
         {max_clock_drift:?}: needs 2 × renew_every + max_clock_drift < ttl and a non-zero \
         renew_every"
    )]
    InvalidTiming {
        /// How long a lease lasts at the database.
        ttl: Duration,
        /// How often it is renewed.
        renew_every: Duration,
        /// The allowed clock drift over one ttl.
        max_clock_drift: Duration,
    },
}
