//! Ownership leases on Postgres advisory locks, one lock per shard.
//!
//! A stream hashes to one of `shards` shards; the process that holds a
//! shard's session-level advisory lock owns every stream of the shard. The
//! locks live on one dedicated connection per [`PgLease`] (not a pool
//! connection), so Postgres releases all of them when the process dies or
//! its connection breaks, and another process can take over. Shards rather
//! than streams, because advisory locks share the server's lock table (tens
//! of thousands per session at most) while a process may own millions of
//! streams.
//!
//! Invariant: while a shard's entry in `Session::held` is non-zero, the
//! session holds the shard's advisory lock exactly once; the entry counts
//! live [`LeaseGuard`]s. Both change only under the session mutex.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::lease::{LeaseError, LeaseGuard, OwnershipLease, Tenure};
use nexus_core::{StoreError, StreamId};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{Mutex, mpsc};

use crate::PgStoreConfig;

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1::int4, $2::int4)";
const UNLOCK: &str = "SELECT pg_advisory_unlock($1::int4, $2::int4)";
const HOLDER: &str = r"
SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
    SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2
";

/// An [`OwnershipLease`] shared by every entity of one process.
///
/// ```no_run
/// use std::sync::Arc;
/// use nexus_core::lease::OwnershipLease;
/// use nexus_store_pg::{PgLease, PgStoreConfig};
/// # async fn run(config: PgStoreConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let lease: Arc<dyn OwnershipLease> = Arc::new(PgLease::connect(&config, 64).await?);
/// // Entities::<Wallet>::builder(&system).lease(lease)…
/// # let _ = lease;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PgLease {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    options: PgConnectOptions,
    /// Separates the locks of applications in different schemas.
    namespace: i32,
    shards: u32,
    session: Mutex<Session>,
    releases: mpsc::UnboundedSender<(u32, u64)>,
}

#[derive(Debug, Default)]
struct Session {
    conn: Option<PgConnection>,
    held: HashMap<u32, usize>,
    /// Incremented whenever the connection is lost, so that guards of an
    /// earlier connection do not count against the shards of this one.
    generation: u64,
}

impl PgLease {
    /// A lease over `shards` shards for the schema of `config`, on a
    /// dedicated connection opened with the pool's connect options.
    ///
    /// Must be called within a tokio runtime: a task releases the locks of
    /// dropped guards.
    pub async fn connect(config: &PgStoreConfig, shards: u32) -> Result<Self, StoreError> {
        if shards == 0 || shards > i32::MAX as u32 {
            return Err(StoreError::InvalidRequest(format!(
                "lease shards must be in 1..={}, got {shards}",
                i32::MAX
            )));
        }
        let options = (*config.pool.connect_options()).clone();
        let conn =
            PgConnection::connect_with(&options)
                .await
                .map_err(|e| StoreError::Unavailable {
                    source: Box::new(e),
                })?;
        let (releases, mut dropped_guards) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            options,
            namespace: i32::from_le_bytes(
                fnv1a(format!("nexus lease {}", config.schema).as_bytes()).to_le_bytes()[..4]
                    .try_into()
                    .expect("four bytes"),
            ),
            shards,
            session: Mutex::new(Session {
                conn: Some(conn),
                ..Session::default()
            }),
            releases,
        });
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            while let Some((shard, generation)) = dropped_guards.recv().await {
                let Some(shared) = weak.upgrade() else { break };
                shared.release(shard, generation).await;
            }
        });
        Ok(Self { shared })
    }

    /// The shard `stream` belongs to.
    ///
    /// ```no_run
    /// # async fn run(lease: nexus_store_pg::PgLease) {
    /// let shard = lease.shard_of(&"wallet-alice".into());
    /// assert!(shard < lease.shards());
    /// # }
    /// ```
    pub fn shard_of(&self, stream: &StreamId) -> u32 {
        // The hash must agree between processes and builds, so it is not
        // std's (randomly keyed) hasher.
        let shard = fnv1a(stream.as_str().as_bytes()) % u64::from(self.shared.shards);
        u32::try_from(shard).expect("a remainder of a u32 fits a u32")
    }

    /// How many shards the streams are spread over.
    pub fn shards(&self) -> u32 {
        self.shared.shards
    }
}

impl Shared {
    fn key(&self, shard: u32) -> (i32, i32) {
        (self.namespace, shard.cast_signed())
    }

    /// Drops one guard of `shard`; the last one unlocks it.
    async fn release(&self, shard: u32, generation: u64) {
        let mut session = self.session.lock().await;
        if session.generation != generation {
            return; // the session broke since: its locks are gone already
        }
        let Some(count) = session.held.get_mut(&shard) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        session.held.remove(&shard);
        let (namespace, objid) = self.key(shard);
        if let Some(conn) = session.conn.as_mut() {
            let unlocked = sqlx::query(UNLOCK)
                .bind(namespace)
                .bind(objid)
                .execute(&mut *conn)
                .await;
            if let Err(error) = unlocked {
                tracing::warn!(%error, shard, "lease session broke while unlocking");
                session.forget();
            }
        }
    }

    async fn holder(&self, conn: &mut PgConnection, shard: u32) -> String {
        let (namespace, objid) = self.key(shard);
        let holder: Option<(i32, String)> = sqlx::query_as(HOLDER)
            .bind(namespace)
            .bind(objid)
            .fetch_optional(conn)
            .await
            .ok()
            .flatten();
        match holder {
            Some((pid, app)) => format!("backend {pid} ({app:?}), shard {shard}"),
            None => format!("another session, shard {shard}"),
        }
    }
}

impl Session {
    /// The connection broke: Postgres released its locks, so the counts
    /// no longer stand for anything.
    fn forget(&mut self) {
        if !self.held.is_empty() {
            tracing::warn!(
                shards = self.held.len(),
                "lease session lost; its shards may be taken over by another process"
            );
        }
        self.conn = None;
        self.held.clear();
        self.generation += 1;
    }
}

#[async_trait]
impl OwnershipLease for PgLease {
    async fn acquire(&self, stream: &StreamId) -> Result<LeaseGuard, LeaseError> {
        let state = &self.shared;
        let shard = self.shard_of(stream);
        let backend = |source: sqlx::Error| LeaseError::Backend {
            stream: stream.clone(),
            source: Box::new(source),
        };
        let mut session = state.session.lock().await;
        // A held shard is only as good as the session holding it: check the
        // connection is alive before handing out another guard of it.
        if session.held.contains_key(&shard) {
            let alive = match session.conn.as_mut() {
                Some(conn) => conn.ping().await.is_ok(),
                None => false,
            };
            if !alive {
                session.forget();
            }
        }
        if let Some(count) = session.held.get_mut(&shard) {
            *count += 1;
        } else {
            if session.conn.is_none() {
                let conn = PgConnection::connect_with(&state.options)
                    .await
                    .map_err(backend)?;
                session.conn = Some(conn);
            }
            let conn = session.conn.as_mut().expect("connected above");
            let (namespace, objid) = state.key(shard);
            let locked = sqlx::query_scalar::<_, bool>(TRY_LOCK)
                .bind(namespace)
                .bind(objid)
                .fetch_one(&mut *conn)
                .await;
            match locked {
                Ok(true) => {
                    session.held.insert(shard, 1);
                }
                Ok(false) => {
                    let holder = state.holder(conn, shard).await;
                    return Err(LeaseError::Held {
                        stream: stream.clone(),
                        holder,
                    });
                }
                Err(error) => {
                    session.forget();
                    return Err(backend(error));
                }
            }
        }
        let releases = state.releases.clone();
        let generation = session.generation;
        Ok(LeaseGuard::on_release(
            Tenure::unbounded(shard, 0),
            move || {
                // The channel is closed only when the lease is gone, and with it
                // the session and its locks.
                let _ = releases.send((shard, generation));
            },
        ))
    }
}

/// 64-bit FNV-1a: small, stable across processes and builds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn the_shard_hash_is_the_published_fnv1a() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
