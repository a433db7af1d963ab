//! Fenced shard leases in a Postgres table: one owner per shard, an epoch
//! that grows with every acquisition, and a holder that stops acting by its
//! own clock before the database could hand the shard to someone else.
//!
//! A stream hashes to one of `shards` shards (FNV-1a, the same in every
//! process and build); the process holding a shard's lease owns every
//! stream of it. Postgres is the only coordinator: the `leases` table of
//! the store's schema says who holds each shard, at which epoch, until when
//! by the *database's* clock; [`PgEventStore`](crate::PgEventStore),
//! [`PgSnapshotStore`](crate::PgSnapshotStore) and
//! [`PgStateStore`](crate::PgStateStore) check a write's
//! [`Fence`](nexus_core::lease::Fence) against that row in the write's own
//! statement.
//!
//! # Safety argument
//!
//! - A shard is taken only when free, released or expired at the database
//!   (or when it is the taker's own), and the taking increments its epoch,
//!   so at any database instant at most one epoch of a shard is current.
//! - A fenced write locks the lease row `FOR KEY SHARE` and requires the
//!   fence's epoch and an unexpired lease; a takeover changes the epoch, a
//!   key column, and so waits for in-flight fenced writes: every write the
//!   old owner had acknowledged is visible to the new owner's recovery, and
//!   every later one is refused.
//! - The holder ends its [`Tenure`] by its own monotonic clock at
//!   `sent + ttl - max_clock_drift`, where `sent` is read *before* the
//!   acquiring or renewing statement was sent: the database set the expiry
//!   to its own now + `ttl` at a later instant, so the holder stops
//!   answering (invariant 9) before the database can consider the lease
//!   expired, as long as the holder's clock does not run slower than the
//!   database's by more than `max_clock_drift` over one `ttl`. A process
//!   paused past its deadline wakes up no longer current.
//!
//! # Changing the shard count
//!
//! The count is part of the lease namespace (shard 3 of 16 and shard 3 of
//! 32 are different streams), so it is recorded in the schema's
//! `lease_config` row by the first process and every later process must
//! use the same count ([`PgSetupError::ShardCountMismatch`] otherwise). To
//! change it: stop every process of the schema, wait one `ttl` so that no
//! lease is current, run
//! `UPDATE <schema>.lease_config SET shards = <new count>`, and start the
//! processes with the new count. Leaving the old rows in `leases` is safe:
//! epochs keep growing from them.
//!
//! Invariant of the per-shard state: a [`ShardState::Held`] names the
//! tenure that every live guard of the shard shares, through a weak
//! reference to their [`Holding`]; the last guard's drop turns it back to
//! [`ShardState::Free`] and releases the lease row. The state changes
//! only under its slot's synchronous mutex, which is never held across an
//! await; a shard's acquisition (one round trip) runs under that shard's
//! async mutex only, so shards are acquired concurrently.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::lease::{LeaseError, LeaseGuard, OwnershipLease, Tenure};
use nexus_core::{BoxError, StreamId};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::Schema;
use crate::sql::leases::LeaseSql;
use crate::{PgSetupError, PgStoreConfig};

/// Connections of a lease's pool for acquisitions (concurrent ones of
/// different shards) and releases. Renewals have a connection of their
/// own, so that a burst of activations never delays a heartbeat.
const LEASE_CONNECTIONS: u32 = 4;

/// The timing of a lease: how long a lease lasts at the database, how
/// often the holder renews it, and how far the holder's clock may run
/// slow against the database's over one `ttl`.
///
/// The holder acts on a lease until `sent + ttl - max_clock_drift` on its
/// own monotonic clock (`sent` read before the acquiring or renewing
/// statement left), while the database keeps it until its own now + `ttl`
/// when it ran the statement, so the holder stops first. A renewal that
/// fails extends nothing; the next one, `renew_every` later, still comes in
/// time, because [`new`](Self::new) requires
/// `2 × renew_every + max_clock_drift < ttl`.
///
/// ```
/// use std::time::Duration;
/// use nexus_store_pg::LeaseTiming;
/// let timing = LeaseTiming::default();
/// assert_eq!(timing.ttl(), Duration::from_secs(10));
/// let fast = LeaseTiming::new(
///     Duration::from_millis(1500),
///     Duration::from_millis(300),
///     Duration::from_millis(200),
/// )
/// .unwrap();
/// assert_eq!(fast.renew_every(), Duration::from_millis(300));
/// let err = LeaseTiming::new(
///     Duration::from_secs(5),
///     Duration::from_secs(2),
///     Duration::from_secs(1),
/// )
/// .unwrap_err();
/// assert!(err.to_string().contains("2 × renew_every + max_clock_drift < ttl"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    ttl: Duration,
    renew_every: Duration,
    max_clock_drift: Duration,
}

impl LeaseTiming {
    /// The default: a 10 s lease, renewed every 2 s, allowing 1 s of clock
    /// drift.
    ///
    /// ```
    /// use nexus_store_pg::LeaseTiming;
    /// assert_eq!(LeaseTiming::DEFAULT, LeaseTiming::default());
    /// ```
    pub const DEFAULT: Self = Self {
        ttl: Duration::from_secs(10),
        renew_every: Duration::from_secs(2),
        max_clock_drift: Duration::from_secs(1),
    };

    /// A timing, if `2 × renew_every + max_clock_drift < ttl`, `renew_every`
    /// is not zero and `ttl` fits the database's intervals; otherwise
    /// [`PgSetupError::InvalidTiming`] naming the three values.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nexus_store_pg::{LeaseTiming, PgSetupError};
    /// let s = Duration::from_secs;
    /// assert!(LeaseTiming::new(s(10), s(2), s(1)).is_ok());
    /// assert!(matches!(
    ///     LeaseTiming::new(s(5), s(2), s(1)),
    ///     Err(PgSetupError::InvalidTiming { .. })
    /// ));
    /// ```
    pub fn new(
        ttl: Duration,
        renew_every: Duration,
        max_clock_drift: Duration,
    ) -> Result<Self, PgSetupError> {
        let invalid = || PgSetupError::InvalidTiming {
            ttl,
            renew_every,
            max_clock_drift,
        };
        let needed = renew_every
            .checked_mul(2)
            .and_then(|d| d.checked_add(max_clock_drift))
            .ok_or_else(invalid)?;
        let fits = i64::try_from(ttl.as_micros()).is_ok();
        if renew_every.is_zero() || needed >= ttl || !fits {
            return Err(invalid());
        }
        Ok(Self {
            ttl,
            renew_every,
            max_clock_drift,
        })
    }

    /// How long a lease lasts at the database after each acquisition or
    /// renewal.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(nexus_store_pg::LeaseTiming::DEFAULT.ttl(), Duration::from_secs(10));
    /// ```
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often the holder renews its leases. Also the bound on every
    /// lease statement (server `statement_timeout`, client timeout, pool
    /// acquire timeout).
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(nexus_store_pg::LeaseTiming::DEFAULT.renew_every(), Duration::from_secs(2));
    /// ```
    pub fn renew_every(&self) -> Duration {
        self.renew_every
    }

    /// How much slower the holder's clock may run than the database's over
    /// one `ttl`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert_eq!(nexus_store_pg::LeaseTiming::DEFAULT.max_clock_drift(), Duration::from_secs(1));
    /// ```
    pub fn max_clock_drift(&self) -> Duration {
        self.max_clock_drift
    }

    /// How long after sending a statement the holder may act on its result.
    fn valid_for(&self) -> Duration {
        self.ttl.saturating_sub(self.max_clock_drift)
    }

    fn ttl_micros(&self) -> i64 {
        i64::try_from(self.ttl.as_micros()).expect("checked in LeaseTiming::new")
    }
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An [`OwnershipLease`] on the `leases` table of a store schema, shared by
/// every entity of one process; clones share the leases.
///
/// [`connect`](Self::connect) opens a small pool of its own and one connection
/// for renewals (with the config pool's connect options, its [`owner`](Self::owner) id as
/// `application_name`, short TCP keepalives and a statement timeout of
/// `renew_every`), records or checks the shard count, and starts a
/// heartbeat task that renews every held shard in one statement every
/// `renew_every` and releases a shard when its last guard drops. A broken
/// connection is just a failed renewal: the next heartbeat reconnects,
/// and the tenures' deadlines keep the holder safe meanwhile.
///
/// Acquiring a shard this process holds already takes no round trip;
/// acquiring a new one takes one, concurrently with other shards'.
///
/// Needs Postgres 14 or later (`idle_session_timeout` is set at
/// connect).
///
/// ```no_run
/// use std::sync::Arc;
/// use nexus_core::lease::OwnershipLease;
/// use nexus_store_pg::{PgLease, PgStoreConfig};
/// # async fn run(config: PgStoreConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let lease = PgLease::connect(&config, 64).await?;
/// let guard = lease.acquire(&"wallet-alice".into()).await?;
/// assert!(guard.is_current());
/// let lease: Arc<dyn OwnershipLease> = Arc::new(lease);
/// // Entities::<Wallet>::builder(&system).lease(lease)…
/// # let _ = lease;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PgLease {
    shared: Arc<Shared>,
}

impl fmt::Debug for PgLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLease")
            .field("owner", &self.shared.db.owner)
            .field("schema", &self.shared.schema)
            .field("shards", &self.shared.shards)
            .field("timing", &self.shared.db.timing)
            .finish_non_exhaustive()
    }
}

/// What the lease and its heartbeat share.
struct Shared {
    schema: Schema,
    shards: u32,
    db: Arc<Db>,
    /// One per shard, indexed by shard.
    slots: Box<[Slot]>,
    /// To the release task: shards whose last guard dropped.
    releases: mpsc::UnboundedSender<Release>,
}

/// The lease's connections and statements; the heartbeat and release tasks
/// own a reference each, so a release queued by the last guard still runs.
struct Db {
    /// Acquisitions, refusals and releases.
    pool: PgPool,
    /// Renewals only: one connection, reconnected on the next heartbeat
    /// when it breaks.
    heartbeat: PgPool,
    sql: LeaseSql,
    owner: String,
    timing: LeaseTiming,
}

/// One shard's state and its acquisition lock.
#[derive(Default)]
struct Slot {
    state: Mutex<ShardState<Holding>>,
    /// Held while the shard is being acquired (one round trip), so that
    /// concurrent activations of one shard acquire it once.
    acquiring: tokio::sync::Mutex<()>,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, ShardState<Holding>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The life of one shard in this process.
#[derive(Debug, Default)]
enum ShardState<H> {
    /// Not held by this process (never acquired, released, or lost).
    #[default]
    Free,
    /// Acquired under `tenure`; `holding` is what every guard keeps alive.
    Held {
        tenure: Arc<Tenure>,
        holding: Weak<H>,
    },
}

impl<H> ShardState<H> {
    /// Another guard's share of a held, current tenure; a lost tenure, or
    /// one whose guards are all gone, leaves the shard `Free`.
    fn join(&mut self) -> Option<Arc<H>> {
        if let Self::Held { tenure, holding } = self {
            if tenure.is_current()
                && let Some(holding) = holding.upgrade()
            {
                return Some(holding);
            }
            *self = Self::Free;
        }
        None
    }

    /// `Free` → `Held`: the shard was just acquired under `tenure`.
    fn hold(&mut self, tenure: Arc<Tenure>, holding: &Arc<H>) {
        *self = Self::Held {
            tenure,
            holding: Arc::downgrade(holding),
        };
    }

    /// `Held` → `Free` when the last guard of `holding` dropped, unless the
    /// shard was re-acquired since (then the state is another holding's).
    fn release(&mut self, holding: *const H) {
        if let Self::Held { holding: held, .. } = self
            && std::ptr::eq(held.as_ptr(), holding)
        {
            *self = Self::Free;
        }
    }

    /// The tenure to renew, if it is still current; a tenure whose
    /// deadline passed is revoked, for every guard at once.
    fn to_renew(&self) -> Option<Arc<Tenure>> {
        match self {
            Self::Held { tenure, .. } if tenure.is_current() => Some(Arc::clone(tenure)),
            Self::Held { tenure, .. } => {
                tenure.revoke();
                None
            }
            Self::Free => None,
        }
    }
}

/// What the guards of one acquisition share; the last one's drop releases
/// the shard.
struct Holding {
    shared: Arc<Shared>,
    tenure: Arc<Tenure>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        self.tenure.revoke();
        nexus_core::telemetry::lease::shard_released();
        let shard = self.tenure.shard();
        self.shared.slots[shard as usize]
            .state()
            .release(std::ptr::from_ref(self));
        // The release task runs until this sender (the lease's) is gone.
        let _ = self.shared.releases.send(Release {
            shard,
            epoch: self.tenure.epoch(),
        });
    }
}

/// A shard whose last guard dropped.
#[derive(Clone, Copy, Debug)]
struct Release {
    shard: u32,
    epoch: u64,
}

impl PgLease {
    /// A lease over `shards` shards of `config`'s schema (migrated with
    /// [`PgStoreConfig::migrate`]), with [`LeaseTiming::DEFAULT`].
    ///
    /// Must be called within a tokio runtime: the heartbeat is a task.
    ///
    /// ```no_run
    /// # async fn run(config: nexus_store_pg::PgStoreConfig) -> Result<(), nexus_store_pg::PgSetupError> {
    /// let lease = nexus_store_pg::PgLease::connect(&config, 64).await?;
    /// assert_eq!(lease.shards(), 64);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(config: &PgStoreConfig, shards: u32) -> Result<Self, PgSetupError> {
        Self::connect_with(config, shards, LeaseTiming::DEFAULT).await
    }

    /// A lease over `shards` shards of `config`'s schema with `timing`.
    ///
    /// Refuses to start when the schema was set up for another shard count
    /// ([`PgSetupError::ShardCountMismatch`]); see the module docs for how
    /// to change it.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use nexus_store_pg::{LeaseTiming, PgLease};
    /// # async fn run(config: nexus_store_pg::PgStoreConfig) -> Result<(), nexus_store_pg::PgSetupError> {
    /// let timing = LeaseTiming::new(
    ///     Duration::from_secs(6),
    ///     Duration::from_secs(1),
    ///     Duration::from_millis(500),
    /// )?;
    /// let lease = PgLease::connect_with(&config, 64, timing).await?;
    /// assert_eq!(lease.timing(), timing);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_with(
        config: &PgStoreConfig,
        shards: u32,
        timing: LeaseTiming,
    ) -> Result<Self, PgSetupError> {
        if shards == 0 || shards > i32::MAX.cast_unsigned() {
            return Err(PgSetupError::InvalidShards { shards });
        }
        let schema = config.schema.clone();
        let database = |source| PgSetupError::Database {
            schema: schema.to_string(),
            source,
        };
        let owner = owner_id();
        let pool = lease_pool(config, &owner, timing, LEASE_CONNECTIONS)
            .await
            .map_err(database)?;
        let renewals = lease_pool(config, &owner, timing, 1)
            .await
            .map_err(database)?;
        let db = Arc::new(Db {
            pool,
            heartbeat: renewals,
            sql: LeaseSql::new(&schema),
            owner,
            timing,
        });
        let recorded = db.record_shards(shards).await.map_err(database)?;
        if recorded != shards {
            db.pool.close().await;
            db.heartbeat.close().await;
            return Err(PgSetupError::ShardCountMismatch {
                schema: schema.to_string(),
                recorded,
                configured: shards,
            });
        }
        let (releases, dropped_guards) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            schema,
            shards,
            db: Arc::clone(&db),
            slots: (0..shards).map(|_| Slot::default()).collect(),
            releases,
        });
        tokio::spawn(heartbeat(Arc::clone(&db), Arc::downgrade(&shared)));
        tokio::spawn(releaser(db, dropped_guards));
        Ok(Self { shared })
    }

    /// The shard `stream` belongs to: FNV-1a of the stream id modulo the
    /// shard count, the same in every process and build.
    ///
    /// ```no_run
    /// # async fn run(lease: nexus_store_pg::PgLease) {
    /// let shard = lease.shard_of(&"wallet-alice".into());
    /// assert!(shard < lease.shards());
    /// # }
    /// ```
    pub fn shard_of(&self, stream: &StreamId) -> u32 {
        nexus_core::lease::shard_of(stream, self.shared.shards)
    }

    /// How many shards the streams are spread over.
    ///
    /// ```no_run
    /// # async fn run(config: nexus_store_pg::PgStoreConfig) -> Result<(), nexus_store_pg::PgSetupError> {
    /// let lease = nexus_store_pg::PgLease::connect(&config, 64).await?;
    /// assert_eq!(lease.shards(), 64);
    /// # Ok(())
    /// # }
    /// ```
    pub fn shards(&self) -> u32 {
        self.shared.shards
    }

    /// This lease's owner id in the `leases` table, unique per
    /// [`PgLease::connect`] (process name, pid and a random uuid), and the
    /// `application_name` of its connections.
    ///
    /// ```no_run
    /// # async fn run(lease: nexus_store_pg::PgLease) {
    /// assert!(lease.owner().contains(&std::process::id().to_string()));
    /// # }
    /// ```
    pub fn owner(&self) -> &str {
        &self.shared.db.owner
    }

    /// The lease's timing.
    ///
    /// ```no_run
    /// # async fn run(lease: nexus_store_pg::PgLease) {
    /// assert!(lease.timing().renew_every() < lease.timing().ttl());
    /// # }
    /// ```
    pub fn timing(&self) -> LeaseTiming {
        self.shared.db.timing
    }

    /// A guard of `shard` if this process holds it under a current tenure.
    fn join(&self, shard: u32) -> Option<LeaseGuard> {
        let holding = self.shared.slots[shard as usize].state().join()?;
        Some(LeaseGuard::new(Arc::clone(&holding.tenure), holding))
    }
}

#[async_trait]
impl OwnershipLease for PgLease {
    async fn acquire(&self, stream: &StreamId) -> Result<LeaseGuard, LeaseError> {
        self.acquire_for(self.shard_of(stream), stream).await
    }
}

impl PgLease {
    /// Takes `shard` itself (a cluster node holds whole shards), or joins
    /// this process's current hold of it.
    ///
    /// Errors name the stream `shard-N`, since no entity asked.
    ///
    /// ```no_run
    /// # async fn run(lease: nexus_store_pg::PgLease) -> Result<(), nexus_core::lease::LeaseError> {
    /// let guard = lease.acquire_shard(3).await?;
    /// assert_eq!(guard.fence().shard(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire_shard(&self, shard: u32) -> Result<LeaseGuard, LeaseError> {
        let stream = StreamId::new(format!("shard-{shard}"));
        if shard >= self.shards() {
            return Err(LeaseError::Backend {
                stream,
                source: format!(
                    "shard {shard} is out of range: the schema has {} shards",
                    self.shards()
                )
                .into(),
            });
        }
        self.acquire_for(shard, &stream).await
    }

    /// Gives up the shard of `guard` at the database now, rather than in the
    /// background once its last guard drops, so that the next owner can take
    /// it at once. Other guards of the same hold lose it too.
    ///
    /// ```no_run
    /// # async fn run(lease: nexus_store_pg::PgLease) -> Result<(), nexus_core::BoxError> {
    /// let guard = lease.acquire_shard(3).await?;
    /// lease.release_now(guard).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn release_now(&self, guard: LeaseGuard) -> Result<(), BoxError> {
        let release = Release {
            shard: guard.fence().shard(),
            epoch: guard.fence().epoch(),
        };
        guard.fence().tenure().revoke();
        drop(guard);
        self.shared.db.release_now(&[release]).await
    }

    async fn acquire_for(&self, shard: u32, stream: &StreamId) -> Result<LeaseGuard, LeaseError> {
        if let Some(guard) = self.join(shard) {
            return Ok(guard);
        }
        let slot = &self.shared.slots[shard as usize];
        let _acquiring = slot.acquiring.lock().await;
        // Another activation may have acquired it while this one waited.
        if let Some(guard) = self.join(shard) {
            return Ok(guard);
        }
        let db = &self.shared.db;
        let backend = |source| LeaseError::Backend {
            stream: stream.clone(),
            source,
        };
        let sent = Instant::now();
        let Some(epoch) = db.acquire(shard).await.map_err(backend)? else {
            let holder = db.holder(shard).await.map_err(backend)?;
            return Err(LeaseError::Held {
                stream: stream.clone(),
                holder,
            });
        };
        let tenure = Tenure::until(shard, epoch, sent + db.timing.valid_for());
        let holding = Arc::new(Holding {
            shared: Arc::clone(&self.shared),
            tenure: Arc::clone(&tenure),
        });
        slot.state().hold(Arc::clone(&tenure), &holding);
        nexus_core::telemetry::lease::shard_acquired();
        Ok(LeaseGuard::new(tenure, holding))
    }
}

impl Db {
    /// Runs `statement` within `renew_every`, the bound of every lease
    /// statement (the server's `statement_timeout` is the same).
    async fn bounded<T>(
        &self,
        statement: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, BoxError> {
        let limit = self.timing.renew_every;
        match tokio::time::timeout(limit, statement).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(format!("lease statement took longer than {limit:?}").into()),
        }
    }

    /// The shard count recorded for the schema (`shards` if none was).
    async fn record_shards(&self, shards: u32) -> Result<u32, sqlx::Error> {
        let count = i32::try_from(shards).expect("checked by connect");
        sqlx::query(&self.sql.insert_config)
            .bind(count)
            .execute(&self.pool)
            .await?;
        let recorded: i32 = sqlx::query_scalar(&self.sql.shards)
            .fetch_one(&self.pool)
            .await?;
        Ok(recorded.cast_unsigned())
    }

    /// Takes `shard` with a new epoch, or `None` when someone else holds it.
    async fn acquire(&self, shard: u32) -> Result<Option<u64>, BoxError> {
        let epoch: Option<i64> = self
            .bounded(
                sqlx::query_scalar(&self.sql.acquire)
                    .bind(shard.cast_signed())
                    .bind(&self.owner)
                    .bind(self.timing.ttl_micros())
                    .fetch_optional(&self.pool),
            )
            .await?;
        epoch
            .map(|e| u64::try_from(e).map_err(|_| format!("negative epoch {e}").into()))
            .transpose()
    }

    /// Who holds `shard`, for a refusal.
    async fn holder(&self, shard: u32) -> Result<String, BoxError> {
        let holder: Option<(String, i64, String)> = self
            .bounded(
                sqlx::query_as(&self.sql.holder)
                    .bind(shard.cast_signed())
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(match holder {
            Some((owner, epoch, until)) => {
                format!("{owner} (shard {shard}, epoch {epoch}, until {until})")
            }
            // Released and gone between the two statements: try again.
            None => format!("another owner (shard {shard})"),
        })
    }

    /// Renews every tenure of `held` in one statement: the renewed ones
    /// are extended to `sent + ttl - max_clock_drift`, the others revoked.
    /// A failed renewal extends nothing.
    async fn renew(&self, held: &[Arc<Tenure>]) {
        if held.is_empty() {
            return;
        }
        let shards: Vec<i32> = held.iter().map(|t| t.shard().cast_signed()).collect();
        let epochs: Vec<i64> = held
            .iter()
            .map(|t| i64::try_from(t.epoch()).unwrap_or(i64::MAX))
            .collect();
        let sent = Instant::now();
        let renewed: Result<Vec<i32>, _> = self
            .bounded(
                sqlx::query_scalar(&self.sql.renew)
                    .bind(&self.owner)
                    .bind(self.timing.ttl_micros())
                    .bind(&shards)
                    .bind(&epochs)
                    .fetch_all(&self.heartbeat),
            )
            .await;
        let renewed: HashSet<i32> = match renewed {
            Ok(renewed) => renewed.into_iter().collect(),
            Err(error) => {
                tracing::warn!(
                    %error,
                    owner = %self.owner,
                    shards = held.len(),
                    "lease renewal failed; the shards' tenures end by their deadlines"
                );
                return;
            }
        };
        let deadline = sent + self.timing.valid_for();
        for tenure in held {
            if renewed.contains(&tenure.shard().cast_signed()) {
                tenure.extend(deadline);
            } else {
                tracing::warn!(
                    owner = %self.owner,
                    shard = tenure.shard(),
                    epoch = tenure.epoch(),
                    "lease lost: the database no longer has it at this epoch"
                );
                nexus_core::telemetry::lease::shard_lost();
                tenure.revoke();
            }
        }
    }

    /// Gives up the shards of `releases` at the database, those still held
    /// at their epochs, in one statement.
    async fn release(&self, releases: &[Release]) {
        if let Err(error) = self.release_now(releases).await {
            // Harmless: the leases expire by themselves.
            tracing::debug!(%error, shards = releases.len(), "lease release failed");
        }
    }

    /// Gives up `releases` in one statement, and says whether it failed.
    async fn release_now(&self, releases: &[Release]) -> Result<(), BoxError> {
        let shards: Vec<i32> = releases.iter().map(|r| r.shard.cast_signed()).collect();
        let epochs: Vec<i64> = releases
            .iter()
            .map(|r| i64::try_from(r.epoch).unwrap_or(i64::MAX))
            .collect();
        self.bounded(
            sqlx::query(&self.sql.release)
                .bind(&self.owner)
                .bind(&shards)
                .bind(&epochs)
                .execute(&self.pool),
        )
        .await
        .map(drop)
    }
}

/// Renews the held shards every `renew_every` until the lease and all its
/// guards are gone. Releases run in a task of their own, so that a backlog
/// of them never delays a renewal.
async fn heartbeat(db: Arc<Db>, shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(db.timing.renew_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            break;
        };
        let held: Vec<Arc<Tenure>> = shared
            .slots
            .iter()
            .filter_map(|slot| slot.state().to_renew())
            .collect();
        drop(shared);
        db.renew(&held).await;
    }
}

/// Releases the shards whose last guard dropped, all that queued up in one
/// statement, until the lease is gone (its sender closes the channel).
async fn releaser(db: Arc<Db>, mut dropped_guards: mpsc::UnboundedReceiver<Release>) {
    let mut batch = Vec::new();
    while dropped_guards.recv_many(&mut batch, 1024).await > 0 {
        db.release(&batch).await;
        batch.clear();
    }
}

/// The lease's own pool: its owner id as `application_name`, sessions that
/// the server never closes for idleness, dead peers detected within
/// seconds, and statements bounded by `renew_every`.
pub(crate) async fn lease_pool(
    config: &PgStoreConfig,
    owner: &str,
    timing: LeaseTiming,
    connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let bound_ms = timing.renew_every.as_millis().max(1);
    let options = (*config.pool.connect_options())
        .clone()
        .application_name(owner)
        .options([
            ("idle_session_timeout", "0".to_owned()),
            ("idle_in_transaction_session_timeout", "0".to_owned()),
            ("tcp_keepalives_idle", "2".to_owned()),
            ("tcp_keepalives_interval", "1".to_owned()),
            ("tcp_keepalives_count", "2".to_owned()),
            ("tcp_user_timeout", bound_ms.max(1000).to_string()),
            ("statement_timeout", bound_ms.to_string()),
        ]);
    PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(0)
        .acquire_timeout(timing.renew_every)
        .connect_with(options)
        .await
}

/// A unique owner id: up to 16 characters of the process name, the pid
/// and a random uuid, in at most 63 bytes (Postgres' limit on an
/// `application_name`).
fn owner_id() -> String {
    let name: String = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "nexus".to_owned())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(16)
        .collect();
    format!(
        "{name}:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_id_fits_an_application_name() {
        let (a, b) = (owner_id(), owner_id());
        assert_ne!(a, b);
        assert!(a.len() <= 63, "{a}");
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }

    #[test]
    fn the_timing_inequality_is_checked() {
        let ms = Duration::from_millis;
        assert!(LeaseTiming::new(ms(1500), ms(300), ms(200)).is_ok());
        assert!(LeaseTiming::new(ms(800), ms(300), ms(200)).is_err());
        assert!(LeaseTiming::new(ms(801), ms(300), ms(200)).is_ok());
        assert!(LeaseTiming::new(ms(1000), ms(0), ms(200)).is_err());
        assert!(LeaseTiming::new(Duration::MAX, Duration::MAX, ms(1)).is_err());
        let LeaseTiming {
            ttl,
            renew_every,
            max_clock_drift,
        } = LeaseTiming::DEFAULT;
        assert!(LeaseTiming::new(ttl, renew_every, max_clock_drift).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_shard_is_joined_while_its_tenure_is_current() {
        let mut state = ShardState::<()>::Free;
        assert!(state.join().is_none());
        let tenure = Tenure::until(1, 1, Instant::now() + Duration::from_secs(1));
        let holding = Arc::new(());
        state.hold(Arc::clone(&tenure), &holding);
        let joined = state.join().expect("held and current");
        assert!(Arc::ptr_eq(&joined, &holding));
        assert!(state.to_renew().is_some());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(state.to_renew().is_none(), "past its deadline");
        assert!(!tenure.is_current());
        assert!(state.join().is_none());
        assert!(matches!(state, ShardState::Free));
    }

    #[test]
    fn a_revoked_or_abandoned_tenure_frees_the_shard() {
        let mut state = ShardState::<()>::Free;
        let tenure = Tenure::unbounded(1, 1);
        let holding = Arc::new(());
        state.hold(Arc::clone(&tenure), &holding);
        tenure.revoke();
        assert!(state.join().is_none());
        assert!(matches!(state, ShardState::Free));

        state.hold(Tenure::unbounded(1, 2), &holding);
        drop(holding);
        assert!(state.join().is_none(), "no guard keeps it");
        assert!(matches!(state, ShardState::Free));
    }

    #[test]
    fn only_the_current_holding_releases_the_shard() {
        let mut state = ShardState::<()>::Free;
        let (old, new) = (Arc::new(()), Arc::new(()));
        state.hold(Tenure::unbounded(1, 1), &old);
        state.hold(Tenure::unbounded(1, 2), &new);
        state.release(Arc::as_ptr(&old));
        assert!(state.join().is_some(), "a later acquisition stays held");
        state.release(Arc::as_ptr(&new));
        assert!(matches!(state, ShardState::Free));
    }
}
