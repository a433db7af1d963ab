//! The connection a coalescing worker keeps while it has work.
//!
//! A pool hands out a connection only after a round trip that checks it
//! (sqlx's `test_before_acquire`, on by default); a worker that writes group
//! after group keeps its connection instead, and gives it back as soon as
//! no append waits when a statement comes back, so an idle store holds
//! none, and a statement goes out unchecked only right after the previous
//! one on the same connection came back.

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool};

/// Where an append statement runs.
pub(crate) enum Via<'a> {
    /// A connection from the pool for each statement.
    Pool,
    /// The connection a worker holds, taken from the pool when it holds
    /// none.
    Held(&'a mut Option<PoolConnection<Postgres>>),
}

impl Via<'_> {
    /// The connection to run a write on, acquired first: a failure to get
    /// one sent nothing.
    pub(crate) async fn connection(
        &mut self,
        pool: &PgPool,
    ) -> Result<Connection<'_>, sqlx::Error> {
        match self {
            Via::Pool => Ok(Connection::Own(pool.acquire().await?)),
            Via::Held(slot) => {
                if slot.is_none() {
                    **slot = Some(pool.acquire().await?);
                }
                Ok(Connection::Held(slot))
            }
        }
    }
}

/// A connection to run one statement on.
pub(crate) enum Connection<'a> {
    Own(PoolConnection<Postgres>),
    Held(&'a mut Option<PoolConnection<Postgres>>),
}

impl Connection<'_> {
    pub(crate) fn get(&mut self) -> &mut PgConnection {
        match self {
            Connection::Own(conn) => conn,
            Connection::Held(slot) => slot.as_mut().expect("a held connection is filled first"),
        }
    }

    /// After a statement failed: a held connection is given back unless the
    /// server answered (an error it reported leaves the connection sound;
    /// a broken one must not be kept).
    pub(crate) fn failed(self, error: &sqlx::Error) {
        if let Connection::Held(slot) = self
            && !matches!(error, sqlx::Error::Database(_))
        {
            *slot = None;
        }
    }
}
