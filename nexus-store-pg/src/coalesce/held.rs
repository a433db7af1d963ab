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

use super::queue::Queue;

/// The connection a worker holds between statements, if any.
#[derive(Default)]
pub(crate) struct Held(Option<PoolConnection<Postgres>>);

impl Held {
    /// Gives the connection back to the pool.
    pub(crate) fn release(&mut self) {
        self.0 = None;
    }

    /// Gives the connection back when no append waits, before callers are
    /// answered: a connection is kept only for a statement sent right
    /// after another one on it came back, while an append made after an
    /// answer gets a connection the pool checks first (so a connection
    /// lost in between is found before anything is sent, and the append
    /// is `Unavailable`, not `Ambiguous`).
    pub(crate) fn release_when_idle(&mut self, queue: &Queue) {
        if queue.is_idle() {
            self.release();
        }
    }
}

/// Where an append statement runs.
pub(crate) enum Via<'a> {
    /// A connection from the pool for each statement.
    Pool,
    /// The connection a worker holds, taken from the pool when it holds
    /// none.
    Held(&'a mut Held),
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
            Via::Held(held) => {
                if held.0.is_none() {
                    held.0 = Some(pool.acquire().await?);
                }
                Ok(Connection::Held(&mut held.0))
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
