//! Where the wallets live: the in-memory stores or Postgres.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::store::StateStore;
use nexus_core::store::memory::{InMemoryEventStore, InMemoryStateStore};
use nexus_core::{ActorSystem, Aggregate, Entities, EntitiesBuilder, EventStore, WhenFull};
use nexus_store_pg::{PgEventStore, PgSetupError, PgStateStore, PgStoreConfig};
use sqlx::postgres::PgPoolOptions;

use super::config::Config;
use super::ledger::Ledger;
use crate::domain::wallet::Wallet;

/// The stores the app runs on.
pub enum Backend {
    /// Everything in memory.
    Memory {
        /// The wallets' events.
        events: Arc<InMemoryEventStore>,
        /// The ledger rows.
        states: Arc<InMemoryStateStore>,
    },
    /// Everything in Postgres.
    Postgres(PgStoreConfig),
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database could not be reached or migrated.
    #[error("setting up Postgres: {0}")]
    Postgres(#[from] PgSetupError),
    /// Connecting failed.
    #[error("connecting to Postgres: {0}")]
    Connect(#[from] sqlx::Error),
    /// The listen address could not be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The entity configuration is invalid.
    #[error("configuring entities: {0}")]
    Entities(#[from] nexus_core::ConfigError),
    /// Serving failed.
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

impl Backend {
    /// Connects and migrates Postgres when a URL is configured, else the
    /// in-memory stores.
    pub async fn open(config: &Config) -> Result<Self, StartError> {
        let Some(url) = &config.database_url else {
            return Ok(Self::Memory {
                events: Arc::new(InMemoryEventStore::new()),
                states: Arc::new(InMemoryStateStore::new()),
            });
        };
        // A short acquire timeout turns an exhausted pool into a 503 quickly.
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(Duration::from_secs(2))
            .connect(url)
            .await?;
        let store = PgStoreConfig::new(pool).schema(&config.schema)?;
        store.migrate().await?;
        Ok(Self::Postgres(store))
    }

    /// A name for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Memory { .. } => "in-memory stores (nothing survives a restart)".to_owned(),
            Self::Postgres(config) => {
                format!("PostgreSQL, schema {}", config.schema_name().as_str())
            }
        }
    }

    fn stores(&self) -> (Arc<dyn EventStore>, Arc<dyn StateStore>) {
        match self {
            Self::Memory { events, states } => (events.clone(), states.clone()),
            Self::Postgres(config) => (
                Arc::new(PgEventStore::new(config)),
                Arc::new(PgStateStore::new(config)),
            ),
        }
    }

    /// The wallet and ledger entities on these stores.
    pub fn entities(
        &self,
        system: &ActorSystem,
    ) -> Result<(Entities<Wallet>, Entities<Ledger>), StartError> {
        let (events, states) = self.stores();
        let wallets = serving(Entities::<Wallet>::builder(system))
            .event_sourced(events, EventCodec::new(Json))
            .build()?;
        let ledgers = serving(Entities::<Ledger>::builder(system))
            .durable_state(states, Json)
            .build()?;
        Ok((wallets, ledgers))
    }
}

/// The options of an entity behind HTTP: a full mailbox fails fast (503)
/// instead of holding the request, an ask gives up before a client would,
/// idle owners passivate after two minutes as in the seed's tutorial, and
/// queued commands of one owner commit together.
fn serving<A: Aggregate>(builder: EntitiesBuilder<A>) -> EntitiesBuilder<A> {
    builder
        .mailbox_capacity(1024)
        .when_full(WhenFull::Fail)
        .ask_timeout(Duration::from_secs(3))
        .receive_timeout(Duration::from_secs(120))
        .group_commit(64)
}
