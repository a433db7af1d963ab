//! Errors of configuring and migrating the stores.

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
}
