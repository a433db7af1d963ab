//! The one boundary where driver errors become store errors.
//!
//! Every store call maps its `sqlx::Error` here, by SQLSTATE and error kind,
//! never by message text:
//! - 23505 (unique violation) is reported to the caller as
//!   [`Failure::Unique`], which decides between a conflict and a duplicate
//!   event id by reading the stored state;
//! - a broken or refused connection, a server shutting down (class 08,
//!   57P01–57P03) or too many connections (53300) is
//!   [`StoreError::Unavailable`], retryable;
//! - a pool that timed out with every connection in use is
//!   [`StoreError::PoolExhausted`]; one that timed out while it could not
//!   connect is `Unavailable`;
//! - anything else is [`StoreError::Backend`].

use nexus_core::StoreError;
use sqlx::PgPool;

const UNIQUE_VIOLATION: &str = "23505";

/// What a failed statement means to the store that ran it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A unique constraint refused the write.
    Unique,
    /// Any other failure, already mapped.
    Store(StoreError),
}

/// Maps `error` from a statement run on `pool`.
pub(crate) fn classify(error: sqlx::Error, pool: &PgPool) -> Failure {
    if let sqlx::Error::Database(db) = &error
        && db.code().as_deref() == Some(UNIQUE_VIOLATION)
    {
        return Failure::Unique;
    }
    Failure::Store(store_error(error, pool))
}

/// Maps `error` from a statement run on `pool`, a unique violation included
/// (as a backend failure: the caller did not expect one).
pub(crate) fn store_error(error: sqlx::Error, pool: &PgPool) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut => {
            let options = pool.options();
            // sqlx also reports a pool that kept failing to open connections
            // as a timeout; only a pool with every connection checked out is
            // exhausted.
            let all_busy = pool.size() >= options.get_max_connections() && pool.num_idle() == 0;
            if all_busy {
                StoreError::PoolExhausted {
                    waited_ms: u64::try_from(options.get_acquire_timeout().as_millis())
                        .unwrap_or(u64::MAX),
                }
            } else {
                unavailable(error)
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => unavailable(error),
        sqlx::Error::Database(ref db) if db.code().as_deref().is_some_and(is_connection_state) => {
            unavailable(error)
        }
        other => StoreError::Backend {
            source: Box::new(other),
        },
    }
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable {
        source: Box::new(error),
    }
}

/// SQLSTATEs that mean the connection or the server went away, not that the
/// statement was wrong.
fn is_connection_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

#[cfg(test)]
mod tests {
    use super::is_connection_state;

    #[test]
    fn connection_states_are_recognised_by_sqlstate() {
        for code in [
            "08000", "08003", "08006", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(is_connection_state(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "57014"] {
            assert!(!is_connection_state(code), "{code}");
        }
    }
}
