//! Where the wallets live: the in-memory stores or Postgres, optionally
//! owned through a fenced lease (`--lease-shards`).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::cache::{CachedReads, RedisCache, WriteThrough};
use nexus_core::cluster::Cluster;
use nexus_core::codec::Json;
use nexus_core::lease::{Fence, OwnershipLease};
use nexus_core::store::memory::{InMemoryEventStore, InMemoryStateStore};
use nexus_core::store::{StateStore, StoredState, VersionedState};
use nexus_core::{
    ActorSystem, Aggregate, Entities, EntitiesBuilder, EventStore, ExpectedVersion, StoreError,
    StreamId, WhenFull,
};
use nexus_store_pg::projection::NotifyingStore;
use nexus_store_pg::{
    LeaseTiming, PayloadFormat, PgCoordination, PgEventStore, PgLease, PgSetupError, PgStateStore,
    PgStoreConfig,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::balances::Balances;
use super::config::Config;
use super::idempotency::KeyTable;
use super::ledger::Ledger;
use crate::domain::wallet::Wallet;
use crate::domain::wallet_format;

/// The ledgers' state store as the read cache wraps it.
pub type LedgerReads = CachedReads<SharedStates>;

/// A shared [`StateStore`] as a value, so [`WriteThrough`] can wrap the
/// store the backend keeps for the admin query.
#[derive(Clone)]
pub struct SharedStates(Arc<dyn StateStore>);

impl std::fmt::Debug for SharedStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedStates")
    }
}

#[async_trait]
impl StateStore for SharedStates {
    async fn load(&self, id: &StreamId) -> Result<Option<StoredState>, StoreError> {
        self.0.load(id).await
    }

    async fn save(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
    ) -> Result<u64, StoreError> {
        self.0.save(id, expected, payload).await
    }

    async fn save_fenced(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        self.0.save_fenced(id, expected, payload, fence).await
    }

    async fn version(&self, id: &StreamId) -> Result<u64, StoreError> {
        self.0.version(id).await
    }

    async fn load_versioned(&self, id: &StreamId) -> Result<VersionedState, StoreError> {
        self.0.load_versioned(id).await
    }

    async fn delete(&self, id: &StreamId, expected: ExpectedVersion) -> Result<(), StoreError> {
        self.0.delete(id, expected).await
    }
}

/// What the app's entities and read side run on.
pub struct Wired {
    /// One event-sourced wallet per owner.
    pub wallets: Entities<Wallet>,
    /// One durable-state ledger per owner.
    pub ledgers: Entities<Ledger>,
    /// Ledger reads through the shared cache, with `--redis-url`.
    pub ledger_reads: Option<LedgerReads>,
    /// The balances projection.
    pub balances: Balances,
}

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
    Postgres(PgBackend),
}

/// The Postgres stores and, with `--lease-shards`, the lease that owns their
/// entities; derefs to the stores' [`PgStoreConfig`].
pub struct PgBackend {
    store: PgStoreConfig,
    lease: Option<PgLease>,
    cluster: Option<Cluster>,
}

impl PgBackend {
    /// The lease the entities are owned through, if ownership is leased
    /// (without `--cluster`).
    pub fn lease(&self) -> Option<&PgLease> {
        self.lease.as_ref()
    }

    /// The cluster this process is a node of (`--cluster`).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }
}

impl Deref for PgBackend {
    type Target = PgStoreConfig;

    fn deref(&self) -> &PgStoreConfig {
        &self.store
    }
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
    /// The read cache's URL is invalid.
    #[error("the read cache at --redis-url: {0}")]
    Cache(String),
    /// `--lease-shards` or `--cluster` without a database: leases and
    /// membership live in Postgres.
    #[error(
        "--lease-shards and --cluster need a database: pass --database-url URL (or set DATABASE_URL)"
    )]
    LeaseWithoutDatabase,
    /// The cluster node could not start.
    #[error("joining the cluster: {0}")]
    Cluster(#[from] nexus_core::cluster::ClusterError),
}

impl Backend {
    /// Connects and migrates Postgres when a URL is configured, else the
    /// in-memory stores; with `--lease-shards`, connects the lease too.
    pub async fn open(config: &Config) -> Result<Self, StartError> {
        let Some(url) = &config.database_url else {
            if config.lease_shards.is_some() || config.cluster {
                return Err(StartError::LeaseWithoutDatabase);
            }
            return Ok(Self::Memory {
                events: Arc::new(InMemoryEventStore::new()),
                states: Arc::new(InMemoryStateStore::new()),
            });
        };
        let mut options: PgConnectOptions = url.parse()?;
        if config.cluster || config.lease_shards.is_some() {
            // A fenced append holds its lease row's key-share lock until it
            // commits. A process stopped after Postgres ran its statement but
            // before the message that commits it arrived (a pause, SIGSTOP)
            // would hold that lock, and with it every takeover of the shard;
            // Postgres ends such a transaction after this long, well within
            // the lease's ttl, rolling the append back.
            let idle = format!("{}ms", (config.lease_ttl_ms / 2).max(1));
            options = options.options([("idle_in_transaction_session_timeout", idle.as_str())]);
        }
        // A short acquire timeout turns an exhausted pool into a 503 quickly.
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await?;
        // The wallets' events are JSON: stored as jsonb, they can be queried in SQL.
        let store = PgStoreConfig::new(pool)
            .schema(&config.schema)?
            .payloads(PayloadFormat::Json);
        store.migrate().await?;
        let (lease, cluster) = match (config.cluster, config.lease_shards) {
            (true, shards) => (None, Some(join_cluster(config, url, &store, shards).await?)),
            (false, Some(shards)) => (
                Some(connect_lease(config, url, &store, shards).await?),
                None,
            ),
            (false, None) => (None, None),
        };
        let backend = Self::Postgres(PgBackend {
            store,
            lease,
            cluster,
        });
        if let Some(lease) = backend.lease_of() {
            tracing::info!(
                shards = lease.shards(),
                ttl_ms = lease.timing().ttl().as_millis(),
                owner = lease.owner(),
                "ownership {}",
                backend.ownership()
            );
        } else {
            tracing::info!("ownership {}", backend.ownership());
        }
        Ok(backend)
    }

    fn lease_of(&self) -> Option<&PgLease> {
        match self {
            Self::Postgres(config) => config.lease(),
            Self::Memory { .. } => None,
        }
    }

    /// The cluster this process is a node of (`--cluster`).
    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Self::Postgres(config) => config.cluster(),
            Self::Memory { .. } => None,
        }
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

    /// How entities are owned across processes, for logs.
    pub fn ownership(&self) -> String {
        if let Some(cluster) = self.cluster() {
            return format!(
                "clustered: node {} at {}, {} shards over the live nodes",
                cluster.node(),
                cluster.address(),
                cluster.shards()
            );
        }
        match (self, self.lease_of()) {
            (_, Some(lease)) => format!(
                "leased: {} shards, ttl {:?}, renewed every {:?}, clock drift {:?} allowed",
                lease.shards(),
                lease.timing().ttl(),
                lease.timing().renew_every(),
                lease.timing().max_clock_drift(),
            ),
            (Self::Postgres(_), None) => "arbitrated by the database: replies that did not \
                                          write confirm the stream head first"
                .to_owned(),
            (Self::Memory { .. }, None) => "one process (in-memory stores)".to_owned(),
        }
    }

    /// The wallets' event store (on Postgres, sending an empty NOTIFY
    /// after each append for the projections), the same log for the
    /// projection to read, and the ledgers' state store.
    fn stores(
        &self,
    ) -> (
        Arc<dyn EventStore>,
        Arc<dyn EventStore>,
        Arc<dyn StateStore>,
    ) {
        match self {
            Self::Memory { events, states } => (events.clone(), events.clone(), states.clone()),
            Self::Postgres(config) => (
                Arc::new(NotifyingStore::new(
                    PgEventStore::new(&config.store),
                    &config.store,
                )),
                Arc::new(PgEventStore::new(&config.store)),
                Arc::new(PgStateStore::new(&config.store)),
            ),
        }
    }

    /// The wallet and ledger entities on these stores (the ledgers written
    /// through to Redis with `--redis-url`), and the balances projection.
    pub async fn wire(&self, system: &ActorSystem, config: &Config) -> Result<Wired, StartError> {
        let max_active = config.max_active_entities;
        let (events, log, states) = self.stores();
        let cluster = self.cluster();
        // In a cluster the projection runs on the node holding its stream's
        // shard, fenced by that shard's epoch, and moves with the shard.
        let lease = match cluster {
            Some(cluster) => Some(cluster.lease()),
            None => self
                .lease_of()
                .map(|lease| Arc::new(lease.clone()) as Arc<dyn OwnershipLease>),
        };
        let owners = Owners {
            lease: lease.clone(),
            cluster,
        };
        let serve = |builder| limited(serving(builder), max_active);
        let wallets = owners
            .own(serve(Entities::<Wallet>::builder(system)))
            .event_sourced(events, wallet_format::codec())
            .build()?;
        let ledgers = owners.own(limited(
            serving(Entities::<Ledger>::builder(system)),
            max_active,
        ));
        let (ledgers, ledger_reads) = match &config.redis_url {
            Some(url) => {
                // One key space per schema: every process of the schema
                // shares it; the in-memory stores get one of their own.
                let prefix = match self {
                    Self::Postgres(pg) => format!("nexus:{}:", pg.schema_name().as_str()),
                    Self::Memory { .. } => {
                        format!("nexus:memory-{}:", uuid::Uuid::new_v4().simple())
                    }
                };
                let cache = RedisCache::connect(url, &prefix)
                    .await
                    .map_err(|e| StartError::Cache(e.to_string()))?;
                tracing::info!(prefix, "ledger reads through the Redis cache");
                let through = WriteThrough::new(SharedStates(states), Arc::new(cache));
                let reads = through.reads();
                (
                    ledgers.durable_state(Arc::new(through), Json).build()?,
                    Some(reads),
                )
            }
            None => (ledgers.durable_state(states, Json).build()?, None),
        };
        let wait = Duration::from_millis(config.balances_wait_ms);
        let balances = match self {
            Self::Memory { .. } => Balances::memory(log, wait),
            Self::Postgres(pg) => Balances::postgres(&pg.store, log, lease, wait).await?,
        };
        Ok(Wired {
            wallets,
            ledgers,
            ledger_reads,
            balances,
        })
    }

    /// Where `Idempotency-Key`s are kept: beside the stores.
    pub async fn key_table(&self) -> Result<KeyTable, StartError> {
        Ok(match self {
            Self::Memory { .. } => KeyTable::memory(),
            Self::Postgres(config) => {
                let schema = format!("\"{}\"", config.schema_name().as_str());
                KeyTable::postgres(config.pool().clone(), schema).await?
            }
        })
    }
}

/// The lease of `--lease-shards`: renewed every ttl/5, allowing ttl/10 of
/// clock drift, on connections to `--lease-database-url` (the database URL
/// by default) and the store's schema.
async fn connect_lease(
    config: &Config,
    url: &str,
    store: &PgStoreConfig,
    shards: u32,
) -> Result<PgLease, StartError> {
    let ttl = Duration::from_millis(config.lease_ttl_ms);
    let timing = LeaseTiming::new(ttl, ttl / 5, ttl / 10)?;
    // The lease opens connections of its own from this pool's options; the
    // pool itself stays empty.
    let lease_url = config.lease_database_url.as_deref().unwrap_or(url);
    let route = PgStoreConfig::new(PgPoolOptions::new().connect_lazy(lease_url)?)
        .schema(store.schema_name().as_str())?;
    Ok(PgLease::connect_with(&route, shards, timing).await?)
}

/// The node of `--cluster`: membership and shard leases on connections to
/// `--lease-database-url` (the database URL by default), with the lease
/// timing of `--lease-ttl-ms`, a peer listener on `--cluster-listen` (the
/// host of `--listen`, any free port, by default).
async fn join_cluster(
    config: &Config,
    url: &str,
    store: &PgStoreConfig,
    shards: Option<u32>,
) -> Result<Cluster, StartError> {
    let ttl = Duration::from_millis(config.lease_ttl_ms);
    let timing = LeaseTiming::new(ttl, ttl / 5, ttl / 10)?;
    let lease_url = config.lease_database_url.as_deref().unwrap_or(url);
    let route = PgStoreConfig::new(PgPoolOptions::new().connect_lazy(lease_url)?)
        .schema(store.schema_name().as_str())?;
    let coordination = PgCoordination::connect(&route, shards.unwrap_or(64), timing).await?;
    let listen = config
        .cluster_listen
        .unwrap_or_else(|| std::net::SocketAddr::new(config.listen.ip(), 0));
    Ok(Cluster::builder(coordination)
        .listen(listen)
        .start()
        .await?)
}

/// How entities are owned: by the cluster's nodes (`--cluster`), through a
/// lease (`--lease-shards`), or, with neither, by database arbitration.
struct Owners<'a> {
    lease: Option<Arc<dyn OwnershipLease>>,
    cluster: Option<&'a Cluster>,
}

impl Owners<'_> {
    fn own<A>(&self, builder: EntitiesBuilder<A>) -> EntitiesBuilder<A>
    where
        A: nexus_core::remote::RemoteCommands<Json>,
    {
        match (self.cluster, &self.lease) {
            (Some(cluster), _) => builder.cluster(cluster, Json),
            (None, Some(lease)) => builder.lease(Arc::clone(lease)),
            (None, None) => builder,
        }
    }
}

/// The options of an entity behind HTTP: a full mailbox fails fast (503)
/// instead of holding the request, an ask gives up before a client would,
/// idle owners passivate after two minutes as in Nexus PHP's wallet tutorial, and
/// queued commands of one owner commit together.
/// The limit of `--max-active-entities`, if given.
fn limited<A: Aggregate>(
    builder: EntitiesBuilder<A>,
    max_active: Option<usize>,
) -> EntitiesBuilder<A> {
    match max_active {
        Some(limit) => builder.max_active_entities(limit),
        None => builder,
    }
}

fn serving<A: Aggregate>(builder: EntitiesBuilder<A>) -> EntitiesBuilder<A> {
    builder
        .mailbox_capacity(1024)
        .when_full(WhenFull::Fail)
        .ask_timeout(Duration::from_secs(3))
        .receive_timeout(Duration::from_secs(120))
        .group_commit(64)
}
