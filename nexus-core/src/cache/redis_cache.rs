//! The read cache on Redis.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::ReadCache;
use crate::store::StoredState;
use crate::{BoxError, StreamId};

/// Stores `ARGV[2]` (payload) at version `ARGV[1]` in hash `KEYS[1]` only
/// if the hash holds no version or an older one: the check and the write
/// are one server-side step, so a late or racing writer never replaces a
/// newer state.
const PUT_IF_NEWER: &str = r"
local held = redis.call('HGET', KEYS[1], 'v')
if held and tonumber(held) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'p', ARGV[2])
return 1
";

/// A [`ReadCache`] on Redis: one hash per id (`{prefix}{id}` with fields
/// `v`, the version, and `p`, the payload), written by a Lua script that
/// never replaces a newer version. Commands time out after `timeout`, so
/// an unreachable Redis costs a reader that long before it reads the store.
///
/// ```no_run
/// # async fn run() -> Result<(), nexus_core::BoxError> {
/// let cache = nexus_core::cache::RedisCache::connect("redis://127.0.0.1:6379", "wallet:").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisCache {
    client: redis::Client,
    config: ConnectionManagerConfig,
    timeout: Duration,
    /// The connection once made; made again lazily after a failed start, so
    /// a cache created while Redis is down starts serving when it is back.
    conn: std::sync::Arc<tokio::sync::Mutex<Option<ConnectionManager>>>,
    prefix: String,
    script: redis::Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects to `url`, keys prefixed by `prefix`, 500 ms per command.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BoxError> {
        Self::connect_with(url, prefix, Duration::from_millis(500)).await
    }

    /// Connects to `url`, keys prefixed by `prefix`, `timeout` per command.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, BoxError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let cache = Self {
            client,
            config,
            timeout,
            conn: std::sync::Arc::default(),
            prefix: prefix.to_owned(),
            script: redis::Script::new(PUT_IF_NEWER),
        };
        if let Err(error) = cache.connection().await {
            tracing::warn!(%error, "read cache unreachable at start; reads use the store until it answers");
        }
        Ok(cache)
    }

    async fn connection(&self) -> Result<ConnectionManager, BoxError> {
        let mut held = self.conn.lock().await;
        if let Some(conn) = held.as_ref() {
            return Ok(conn.clone());
        }
        let made = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), self.config.clone()),
        )
        .await
        .map_err(|_| format!("redis did not answer within {:?}", self.timeout))??;
        *held = Some(made.clone());
        Ok(made)
    }

    fn key(&self, id: &StreamId) -> String {
        format!("{}{}", self.prefix, id.as_str())
    }
}

#[async_trait]
impl ReadCache for RedisCache {
    async fn get(&self, id: &StreamId) -> Result<Option<StoredState>, BoxError> {
        let mut conn = self.connection().await?;
        let (version, payload): (Option<u64>, Option<Vec<u8>>) = redis::cmd("HMGET")
            .arg(self.key(id))
            .arg("v")
            .arg("p")
            .query_async(&mut conn)
            .await?;
        Ok(match (version, payload) {
            (Some(version), Some(payload)) => Some(StoredState { version, payload }),
            _ => None,
        })
    }

    async fn put_if_newer(&self, id: &StreamId, state: &StoredState) -> Result<bool, BoxError> {
        let mut conn = self.connection().await?;
        let stored: i64 = self
            .script
            .key(self.key(id))
            .arg(state.version)
            .arg(state.payload.as_slice())
            .invoke_async(&mut conn)
            .await?;
        Ok(stored == 1)
    }
}
