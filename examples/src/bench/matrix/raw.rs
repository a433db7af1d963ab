//! The matrix's raw baseline: plain sqlx writing the same rows as an
//! append, in one `INSERT … UNNEST` per transaction, into a table with the
//! event log's main columns and keys, without the framework around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::PgPool;

/// The raw table: the event log's position, stream, version, id, type and
/// payload columns with its two keys (a stream's versions and the event
/// ids), so that a raw insert checks what an append checks; not its
/// position and category indexes, nor a stream head row.
pub fn create_table(schema: &str) -> String {
    format!(
        "CREATE TABLE \"{schema}\".raw_events (
             seq bigint GENERATED ALWAYS AS IDENTITY,
             tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
             stream_id text NOT NULL,
             version bigint NOT NULL,
             event_id uuid NOT NULL,
             event_type text NOT NULL,
             schema_version bigint NOT NULL,
             payload_bytes bytea NOT NULL,
             occurred_at timestamptz NOT NULL DEFAULT now(),
             recorded_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (stream_id, version),
             UNIQUE (event_id))"
    )
}

/// One cell's raw writers: each writes its own stream, `events` rows per
/// transaction, at the next versions of that stream.
pub struct RawWriters {
    pool: PgPool,
    insert: String,
    cell: String,
    events: usize,
    payload: Vec<u8>,
    /// The head version of each writer's stream; a writer only touches its
    /// own slot, so relaxed ordering suffices.
    heads: Arc<[AtomicI64]>,
}

impl RawWriters {
    /// `writers` writers of `events` rows of `payload` each, in the table of
    /// [`create_table`]; `cell` keeps one cell's streams apart from another's.
    pub fn new(
        pool: PgPool,
        schema: &str,
        cell: &str,
        writers: usize,
        events: usize,
        payload: Vec<u8>,
    ) -> Self {
        let insert = format!(
            "INSERT INTO \"{schema}\".raw_events
                 (stream_id, version, event_id, event_type, schema_version, payload_bytes)
             SELECT $1, v, e, $4, 1, p FROM UNNEST($2::bigint[], $3::uuid[], $5::bytea[]) AS t(v, e, p)"
        );
        Self {
            pool,
            insert,
            cell: cell.to_owned(),
            events,
            payload,
            heads: (0..writers).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    /// The versions writer `writer`'s next transaction writes, moving its head.
    pub fn next_versions(&self, writer: usize) -> Vec<i64> {
        let rows = i64::try_from(self.events).expect("events per append fit in i64");
        let head = self.heads[writer].fetch_add(rows, Ordering::Relaxed);
        (head + 1..=head + rows).collect()
    }

    /// One transaction of writer `writer`: its rows, committed.
    pub async fn write(&self, writer: usize) -> Result<(), sqlx::Error> {
        let versions = self.next_versions(writer);
        let ids: Vec<uuid::Uuid> = versions.iter().map(|_| uuid::Uuid::now_v7()).collect();
        let payloads = vec![self.payload.as_slice(); versions.len()];
        sqlx::query(&self.insert)
            .bind(format!("raw-{}-{writer}", self.cell))
            .bind(&versions)
            .bind(&ids)
            .bind("journal.noted")
            .bind(&payloads)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_writer_continues_its_own_stream() {
        // A lazy pool connects on first use; the versions need none.
        let pool = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        let writers = RawWriters::new(pool, "s", "c", 2, 3, vec![1]);
        assert_eq!(writers.next_versions(0), [1, 2, 3]);
        assert_eq!(writers.next_versions(1), [1, 2, 3]);
        assert_eq!(writers.next_versions(0), [4, 5, 6]);
    }
}
