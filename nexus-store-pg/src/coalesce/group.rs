//! Writing one coalesced group and telling each of its callers what
//! happened to its own append.

use std::collections::HashMap;
use std::sync::Arc;

use nexus_core::{AppendOutcome, BoxError, LogPosition, StoreError};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::held::{Held, Via};
use super::queue::{Outcome, Pending, Queue};
use crate::PgEventStore;
use crate::batch::Batch;
use crate::convert::{corrupt, fenced, get, to_u64};
use crate::errors::{self, Failure, Stage};
use crate::event_store::position;
use crate::sql::append_group::GroupShape;

/// Why a group's statement stored nothing.
enum GroupFailure {
    /// The statement was refused or cancelled as a whole and rolled back
    /// (a reused event id, a value the database rejects, a deadlock, a
    /// lock or statement timeout that one of its streams may have caused
    /// alone): each append is run alone, so only a bad one fails.
    Alone,
    /// The same for every append: its outcome is unknown (the connection
    /// was lost after the statement was sent), or no statement could be
    /// sent (no server, no free connection).
    Every(StoreError),
}

impl PgEventStore {
    /// Writes `group` (appends of different streams) and answers each of
    /// its callers.
    pub(crate) async fn append_group(&self, group: Vec<Pending>, held: &mut Held, queue: &Queue) {
        let mut group = Self::drop_stale_fences(group);
        if group.len() <= 1 {
            if let Some(pending) = group.pop() {
                let outcome = self.append_alone(&pending, held).await;
                held.release_when_idle(queue);
                let _ = pending.reply.send(outcome);
            }
            return;
        }
        // One order of head locks for every coalesced statement, so two of
        // them (two stores, two processes) rarely wait on each other in
        // opposite orders; a deadlock left is rolled back, and runs alone.
        group.sort_unstable_by(|a, b| a.stream.as_str().cmp(b.stream.as_str()));
        let written = self.write_group(&group, held).await;
        held.release_when_idle(queue);
        match written {
            Ok(stored) => self.answer(group, stored).await,
            Err(GroupFailure::Alone) => {
                for pending in group {
                    // Nothing of the group was stored: an append whose
                    // caller has gone is not sent again.
                    if pending.reply.is_closed() {
                        continue;
                    }
                    let outcome = self.append_alone(&pending, held).await;
                    held.release_when_idle(queue);
                    let _ = pending.reply.send(outcome);
                }
            }
            Err(GroupFailure::Every(error)) => {
                let mut errors = for_each(error, group.len()).into_iter();
                for pending in group {
                    let error = errors.next().expect("one error per append");
                    let _ = pending.reply.send(Err(error));
                }
            }
        }
    }

    /// Answers a written group: the stored and the fenced appends at once,
    /// then each refused one after asking why (a round trip each).
    async fn answer(&self, group: Vec<Pending>, stored: Vec<Stored>) {
        let mut refused = Vec::new();
        for (pending, stored) in group.into_iter().zip(stored) {
            let outcome = match stored {
                Stored::Appended(outcome) => Ok(outcome),
                Stored::Fenced => Err(fenced_off(&pending)),
                Stored::Refused => {
                    refused.push(pending);
                    continue;
                }
            };
            let _ = pending.reply.send(outcome);
        }
        for pending in refused {
            let outcome = self.refused_alone(&pending).await;
            let _ = pending.reply.send(outcome);
        }
    }

    /// Answers the appends whose fence their holder's clock ended while
    /// they waited, as an append alone refuses them before sending, and
    /// keeps the rest.
    fn drop_stale_fences(group: Vec<Pending>) -> Vec<Pending> {
        group
            .into_iter()
            .filter_map(|pending| match pending.fence() {
                Some(fence) if !fence.is_current() => {
                    let error = fenced_off(&pending);
                    let _ = pending.reply.send(Err(error));
                    None
                }
                _ => Some(pending),
            })
            .collect()
    }

    async fn append_alone(&self, pending: &Pending, held: &mut Held) -> Outcome {
        let fence = pending.fence();
        let via = Via::Held(held);
        self.append_batch(
            &pending.stream,
            pending.expected,
            &pending.events,
            fence,
            via,
        )
        .await
    }

    /// Why an append the group's statement did not store was refused: its
    /// head did not match (a conflict, an archived stream), or it is a
    /// retry of a stored batch (its original outcome).
    async fn refused_alone(&self, pending: &Pending) -> Outcome {
        let ids: Vec<Uuid> = pending.events.iter().map(|e| e.metadata.event_id).collect();
        self.refused(&pending.stream, pending.expected, &pending.events, &ids)
            .await
    }

    /// Runs the group's statement: the outcome of each append, `None` for
    /// one whose head was refused.
    async fn write_group(
        &self,
        group: &[Pending],
        held: &mut Held,
    ) -> Result<Vec<Stored>, GroupFailure> {
        let events: usize = group.iter().map(|p| p.events.len()).sum();
        let mut batch = Batch::with_capacity(events, self.payloads);
        let mut streams = Vec::with_capacity(group.len());
        let mut expected = Vec::with_capacity(group.len());
        let mut counts = Vec::with_capacity(group.len());
        let mut shards = Vec::with_capacity(group.len());
        let mut epochs = Vec::with_capacity(group.len());
        let mut event_stream = Vec::with_capacity(events);
        let mut event_place = Vec::with_capacity(events);
        let mut shape = GroupShape::default();
        for (index, pending) in (1_i64..).zip(group) {
            shape.add(pending.expected, pending.fence.is_some());
            streams.push(pending.stream.as_str());
            expected.push(pending.expected_column);
            counts.push(i64::try_from(pending.events.len()).unwrap_or(i64::MAX));
            // A fenced append always sends its lease's columns (NULL means
            // unfenced), so the database checks every fence.
            let key = pending.fence.as_ref().map(|(_, key)| *key);
            shards.push(key.map(|k| k.shard));
            epochs.push(key.map(|k| k.epoch));
            event_stream.extend(std::iter::repeat_n(index, pending.events.len()));
            event_place.extend(1..=i64::try_from(pending.events.len()).unwrap_or(i64::MAX));
            batch.extend(&pending.events);
        }
        let query = sqlx::query(&self.sql.append_group[shape.index()])
            .bind(&streams)
            .bind(&expected)
            .bind(&counts)
            .bind(&shards)
            .bind(&epochs)
            .bind(&event_stream)
            .bind(&event_place);
        let query = batch.bind_to(query);
        let mut via = Via::Held(held);
        let mut conn = via
            .connection(&self.pool)
            .await
            .map_err(|e| GroupFailure::Every(errors::store_error(e, &self.pool)))?;
        let rows = query.fetch_all(conn.get()).await;
        if let Err(error) = &rows {
            conn.failed(error);
        }
        match rows {
            // The group committed: rows it cannot read leave each outcome
            // unknown, never "nothing changed".
            Ok(rows) => outcomes(group, &rows).map_err(|error| {
                GroupFailure::Every(StoreError::Ambiguous {
                    source: Box::new(error),
                })
            }),
            Err(error) => Err(
                match errors::classify(error, &self.pool, Stage::WriteSent) {
                    Failure::Unique
                    | Failure::Race
                    | Failure::Store(StoreError::Backend { .. } | StoreError::Timeout { .. }) => {
                        GroupFailure::Alone
                    }
                    Failure::Store(error) => GroupFailure::Every(error),
                },
            ),
        }
    }
}

/// What the group's statement did with one append.
enum Stored {
    Appended(AppendOutcome),
    /// Its head was refused (a conflict, an archived stream, or a retry).
    Refused,
    /// Its fence was refused.
    Fenced,
}

/// Splits the `stream_id, epoch, version, tx_id, seq` rows of a group by
/// stream, in the group's order: a row per stored event, one with a NULL
/// version per stream whose fence was refused.
fn outcomes(group: &[Pending], rows: &[PgRow]) -> Result<Vec<Stored>, StoreError> {
    let index: HashMap<&str, usize> = group
        .iter()
        .enumerate()
        .map(|(i, p)| (p.stream.as_str(), i))
        .collect();
    let mut stored: Vec<Vec<(u64, LogPosition)>> = vec![Vec::new(); group.len()];
    let mut fenced = vec![false; group.len()];
    for row in rows {
        let stream: &str = get(row, 0)?;
        let Some(&at) = index.get(stream) else {
            return Err(corrupt(format!(
                "a coalesced append returned a row of stream {stream}, which it did not write"
            )));
        };
        let Some(version) = get::<Option<i64>>(row, 2)? else {
            fenced[at] = true;
            continue;
        };
        let position = position(get(row, 1)?, get(row, 3)?, get(row, 4)?)?;
        stored[at].push((to_u64(version)?, position));
    }
    Ok(stored
        .into_iter()
        .zip(fenced)
        .map(|(mut rows, fenced)| {
            if fenced {
                return Stored::Fenced;
            }
            if rows.is_empty() {
                return Stored::Refused;
            }
            rows.sort_unstable_by_key(|(version, _)| *version);
            Stored::Appended(AppendOutcome {
                version: rows.last().map_or(0, |(version, _)| *version),
                positions: rows.into_iter().map(|(_, position)| position).collect(),
            })
        })
        .collect())
}

/// The error of an append whose fence was refused.
fn fenced_off(pending: &Pending) -> StoreError {
    let fence = pending.fence().expect("only a fenced append is fenced");
    fenced(&pending.stream, fence)
}

/// The error of a group that failed as a whole, once for each of its
/// `callers`, sharing its cause.
fn for_each(error: StoreError, callers: usize) -> Vec<StoreError> {
    type Rebuild = fn(BoxError) -> StoreError;
    let (rebuild, source): (Rebuild, BoxError) = match error {
        StoreError::Ambiguous { source } => (|source| StoreError::Ambiguous { source }, source),
        StoreError::Timeout { source } => (|source| StoreError::Timeout { source }, source),
        StoreError::Unavailable { source } => (|source| StoreError::Unavailable { source }, source),
        StoreError::PoolExhausted { waited_ms } => {
            return (0..callers)
                .map(|_| StoreError::PoolExhausted { waited_ms })
                .collect();
        }
        other => (|source| StoreError::Backend { source }, Box::new(other)),
    };
    let cause = SharedCause(Arc::from(source));
    (0..callers)
        .map(|_| rebuild(Box::new(cause.clone())))
        .collect()
}

/// One cause told to several callers.
#[derive(Clone, Debug)]
struct SharedCause(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
