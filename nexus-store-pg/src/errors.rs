//! The one boundary where driver errors become store errors.
//!
//! Every store call maps its `sqlx::Error` here, by SQLSTATE and error kind,
//! never by message text:
//!
//! | SQLSTATE / driver error | meaning | mapped to |
//! | --- | --- | --- |
//! | 23505 unique violation | a reused event id (or a raced insert) | [`Failure::Unique`]: the caller reads the stored state |
//! | 40001 serialization failure, 40P01 deadlock | a race with another writer, rolled back | [`Failure::Race`]: the caller re-reads the head, as after a conflict |
//! | 57014 statement timeout / cancel, 55P03 lock timeout | the statement was cancelled and rolled back | [`StoreError::Timeout`] |
//! | 25006 read-only transaction | a standby, or a pool right after a failover | [`StoreError::Unavailable`] |
//! | class 08, 57P01–57P03, 57P05, 53300, io, TLS, protocol | the connection or the server went away | [`StoreError::Unavailable`]; [`StoreError::Ambiguous`] once a write was sent |
//! | pool timed out with every connection busy | | [`StoreError::PoolExhausted`] |
//! | anything else | | [`StoreError::Backend`], its source naming the SQLSTATE |
//!
//! A write that loses its connection after the statement was sent may have
//! committed: only the caller's retry with the same batch (idempotent by
//! event id) can tell, so it is [`StoreError::Ambiguous`]. Errors while
//! acquiring a connection happen before anything was sent and stay
//! `Unavailable`; write paths acquire the connection themselves to tell the
//! two apart.

use std::fmt;

use nexus_core::StoreError;
use sqlx::PgPool;

const UNIQUE_VIOLATION: &str = "23505";

/// What a failed statement means to the store that ran it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A unique constraint refused the write.
    Unique,
    /// A serialization failure or a deadlock: the statement lost a race and
    /// was rolled back.
    Race,
    /// Any other failure, already mapped.
    Store(StoreError),
}

/// How far a statement got before it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// A read, or a write whose connection was not acquired yet: nothing
    /// can have happened.
    NotSent,
    /// A write statement was sent on an acquired connection.
    WriteSent,
}

/// The kind of a SQLSTATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StateKind {
    Unique,
    Race,
    Timeout,
    /// The server refuses writes (a standby, a demoted primary).
    ReadOnly,
    /// The connection could not be made: nothing was sent.
    CannotConnect,
    /// The connection or the server went away, maybe mid-statement.
    ConnectionLost,
    Other,
}

/// The kind of `code`.
pub(crate) fn kind_of(code: &str) -> StateKind {
    match code {
        UNIQUE_VIOLATION => StateKind::Unique,
        "40001" | "40P01" => StateKind::Race,
        "57014" | "55P03" => StateKind::Timeout,
        "25006" => StateKind::ReadOnly,
        // Refused at connection time: too many connections, starting up or
        // shutting down, rejected or unable to establish.
        "53300" | "57P03" | "08001" | "08004" => StateKind::CannotConnect,
        // Admin or crash shutdown, idle-session timeout, database dropped,
        // and the rest of class 08.
        "57P01" | "57P02" | "57P04" | "57P05" => StateKind::ConnectionLost,
        _ if code.starts_with("08") => StateKind::ConnectionLost,
        _ => StateKind::Other,
    }
}

/// Maps `error` from a statement run on `pool` at `stage`.
pub(crate) fn classify(error: sqlx::Error, pool: &PgPool, stage: Stage) -> Failure {
    if let sqlx::Error::Database(db) = &error {
        match db.code().as_deref().map(kind_of) {
            Some(StateKind::Unique) => return Failure::Unique,
            Some(StateKind::Race) => return Failure::Race,
            _ => {}
        }
    }
    Failure::Store(map(error, pool, stage))
}

/// Maps `error` from a read (or anything before a write was sent) on
/// `pool`; a unique violation or a race is a backend failure here (the
/// caller did not expect one).
pub(crate) fn store_error(error: sqlx::Error, pool: &PgPool) -> StoreError {
    map(error, pool, Stage::NotSent)
}

/// `error` again, for another caller of the statement that failed: the
/// same variant, so the same retry decision, with the driver's error as
/// text (a driver error cannot be cloned).
pub(crate) fn another_callers_copy(error: &StoreError) -> StoreError {
    let text =
        |source: &nexus_core::BoxError| -> nexus_core::BoxError { source.to_string().into() };
    match error {
        StoreError::Unavailable { source } => StoreError::Unavailable {
            source: text(source),
        },
        StoreError::Ambiguous { source } => StoreError::Ambiguous {
            source: text(source),
        },
        StoreError::Timeout { source } => StoreError::Timeout {
            source: text(source),
        },
        StoreError::PoolExhausted { waited_ms } => StoreError::PoolExhausted {
            waited_ms: *waited_ms,
        },
        StoreError::InvalidRequest(what) => StoreError::InvalidRequest(what.clone()),
        other => StoreError::Backend {
            source: other.to_string().into(),
        },
    }
}

/// Maps `error` from a write statement already sent on a connection of
/// `pool`.
pub(crate) fn write_error(error: sqlx::Error, pool: &PgPool) -> StoreError {
    map(error, pool, Stage::WriteSent)
}

fn map(error: sqlx::Error, pool: &PgPool, stage: Stage) -> StoreError {
    let lost = |error: sqlx::Error| match stage {
        Stage::NotSent => unavailable(error),
        Stage::WriteSent => StoreError::Ambiguous {
            source: Box::new(error),
        },
    };
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
        sqlx::Error::PoolClosed => unavailable(error),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => lost(error),
        sqlx::Error::Database(ref db) => {
            let code = db
                .code()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default();
            match kind_of(&code) {
                StateKind::Timeout => StoreError::Timeout {
                    source: Box::new(error),
                },
                StateKind::ReadOnly | StateKind::CannotConnect => unavailable(error),
                StateKind::ConnectionLost => lost(error),
                StateKind::Unique | StateKind::Race | StateKind::Other => StoreError::Backend {
                    source: Box::new(SqlState { code, error }),
                },
            }
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

/// A database error the store has no meaning for, named by its SQLSTATE.
#[derive(Debug)]
pub(crate) struct SqlState {
    code: String,
    error: sqlx::Error,
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SQLSTATE {}: {}", self.code, self.error)
    }
}

impl std::error::Error for SqlState {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::{StateKind, kind_of};

    #[test]
    fn every_sqlstate_the_store_knows_has_its_kind() {
        let cases = [
            ("23505", StateKind::Unique),
            ("40001", StateKind::Race),
            ("40P01", StateKind::Race),
            ("57014", StateKind::Timeout),
            ("55P03", StateKind::Timeout),
            ("25006", StateKind::ReadOnly),
            ("53300", StateKind::CannotConnect),
            ("57P03", StateKind::CannotConnect),
            ("08001", StateKind::CannotConnect),
            ("08004", StateKind::CannotConnect),
            ("08000", StateKind::ConnectionLost),
            ("08003", StateKind::ConnectionLost),
            ("08006", StateKind::ConnectionLost),
            ("57P01", StateKind::ConnectionLost),
            ("57P02", StateKind::ConnectionLost),
            ("57P05", StateKind::ConnectionLost),
            ("42P01", StateKind::Other),
            ("22P02", StateKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(kind_of(code), kind, "{code}");
        }
    }
}
