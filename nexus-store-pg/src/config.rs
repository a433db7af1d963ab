//! Where the stores live: the pool, the schema and the catch-up wait.

use std::fmt;
use std::time::Duration;

use sqlx::PgPool;

use crate::{AppendCoalescing, PgSetupError};

/// A validated Postgres schema name, kept with its quoted form.
///
/// Only lowercase ASCII letters, digits and `_` are accepted (starting with a
/// letter or `_`, at most 63 bytes, not `pg_…`), so the name means the same
/// quoted and unquoted and can never inject SQL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schema {
    name: String,
    quoted: String,
}

impl Schema {
    /// Validates `name`.
    ///
    /// ```
    /// use nexus_store_pg::Schema;
    /// assert_eq!(Schema::new("wallet_app").unwrap().as_str(), "wallet_app");
    /// assert!(Schema::new("bad\"; DROP TABLE x; --").is_err());
    /// assert!(Schema::new("pg_catalog").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Self, PgSetupError> {
        let invalid = |reason| PgSetupError::InvalidSchema {
            name: name.to_owned(),
            reason,
        };
        let first_ok = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        if !first_ok {
            return Err(invalid("must start with a lowercase letter or `_`"));
        }
        if name.len() > 63 {
            return Err(invalid("must be at most 63 bytes"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(invalid(
                "may hold only lowercase ASCII letters, digits and `_`",
            ));
        }
        if name.starts_with("pg_") {
            return Err(invalid("`pg_` names are reserved by Postgres"));
        }
        Ok(Self {
            name: name.to_owned(),
            quoted: format!("\"{name}\""),
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The name quoted as an SQL identifier.
    pub(crate) fn quoted(&self) -> &str {
        &self.quoted
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// How the event store keeps payloads.
///
/// The store cannot tell a JSON payload from a binary one by looking: a
/// bincode payload can happen to parse as JSON (a struct whose first field
/// is the number 91 and whose rest reads `1,2]` is the text `[1,2]`), and
/// `jsonb` would give it back normalised (`[1, 2]`), which bincode no
/// longer decodes. So the application says which codec its events use;
/// the default keeps every payload's bytes as written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadFormat {
    /// Every payload is stored as `bytea`, byte for byte (for bincode or
    /// any other binary codec). The default.
    #[default]
    Binary,
    /// Payloads come from a JSON codec: each one that is valid JSON is
    /// stored as `jsonb` in column `payload`, so SQL can query and index
    /// it; one that is not (or that `jsonb` cannot hold, such as a string
    /// with `\u0000`) is stored as `bytea` in `payload_bytes`. A JSON
    /// payload reads back as the same JSON value, with `jsonb`'s spacing
    /// and key order, which a JSON codec decodes alike.
    Json,
}

/// The pool and options every store of one application shares.
///
/// Several applications can share one database by giving each its own
/// schema; the default schema is `nexus`. Build the stores from the config
/// after [`migrate`](Self::migrate):
///
/// ```no_run
/// use nexus_store_pg::{PgEventStore, PgStoreConfig};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test").await?;
/// let config = PgStoreConfig::new(pool).schema("wallet_app")?;
/// config.migrate().await?;
/// let events = PgEventStore::new(&config);
/// # let _ = events;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PgStoreConfig {
    pub(crate) pool: PgPool,
    pub(crate) schema: Schema,
    pub(crate) catch_up_wait: Duration,
    pub(crate) payloads: PayloadFormat,
    pub(crate) coalescing: AppendCoalescing,
}

impl PgStoreConfig {
    /// The stores in schema `nexus` of `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            schema: Schema::new("nexus").expect("the default schema name is valid"),
            catch_up_wait: Duration::from_millis(500),
            payloads: PayloadFormat::Binary,
            coalescing: AppendCoalescing::new(),
        }
    }

    /// Uses schema `name` (created by [`migrate`](Self::migrate) if
    /// missing). A name that is not a plain lowercase identifier is refused.
    pub fn schema(mut self, name: &str) -> Result<Self, PgSetupError> {
        self.schema = Schema::new(name)?;
        Ok(self)
    }

    /// How long [`read_all`](nexus_core::EventStore::read_all) waits for
    /// older, still running transactions before it returns an empty page
    /// although newer events are committed (default 500 ms). Events are never
    /// skipped either way: after the wait they are returned by a later read.
    #[must_use]
    pub fn catch_up_wait(mut self, wait: Duration) -> Self {
        self.catch_up_wait = wait;
        self
    }

    /// How event payloads are stored (default [`PayloadFormat::Binary`]);
    /// use [`PayloadFormat::Json`] with a JSON codec to query events in SQL.
    ///
    /// ```no_run
    /// use nexus_store_pg::{PayloadFormat, PgStoreConfig};
    /// # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let config = PgStoreConfig::new(pool).schema("wallet_app")?.payloads(PayloadFormat::Json);
    /// # let _ = config;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn payloads(mut self, format: PayloadFormat) -> Self {
        self.payloads = format;
        self
    }

    /// Whether and how the event store coalesces concurrent appends of
    /// different streams into one statement and transaction (default:
    /// [`AppendCoalescing::new`]; [`AppendCoalescing::off`] gives every
    /// append its own). What each caller is told is the same either way;
    /// see [`AppendCoalescing`].
    ///
    /// ```no_run
    /// use nexus_store_pg::{AppendCoalescing, PgStoreConfig};
    /// # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let config = PgStoreConfig::new(pool)
    ///     .schema("wallet_app")?
    ///     .coalesce_appends(AppendCoalescing::new().in_flight(8));
    /// # let _ = config;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn coalesce_appends(mut self, coalescing: AppendCoalescing) -> Self {
        self.coalescing = coalescing;
        self
    }

    /// The configured schema.
    pub fn schema_name(&self) -> &Schema {
        &self.schema
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
