//! Recoveries that start together read their first events together.
//!
//! A burst of new entities (a hot sale opening, a shard moving to this
//! node, a restart) each replay their stream at once. Sent one by one,
//! their statements run side by side on as many backends, each paying the
//! backend's first use of the events table, and on a small server they
//! queue for its cores: measured on the seat bake-off, 35 seats recovering
//! empty streams took 11 ms each. So a replay that starts while another is
//! reading is queued instead, and one task sends the queued replays
//! together, up to [`MAX_REPLAYS`] in one statement that reads each
//! stream's first [`PAGE`] events; replays queued while a statement runs go
//! in the next. A replay whose page is full streams the rest of its stream
//! alone, as any replay that finds nothing else reading does from the
//! start: a lone recovery costs what it did, and memory is bounded by one
//! statement's pages (at most `MAX_REPLAYS` × `PAGE` events), not by the
//! length of any stream.
//!
//! Between the page and the rest of a long stream, another writer may add
//! events: the replay then sees them, in version order, as a later read
//! would. The rest is read whether or not the stream was archived
//! meanwhile (an archived stream takes no more events), so a replay is
//! never cut short: it is the stream as the page found it, or later.
//!
//! Only a multi-thread runtime queues replays: its workers run the task
//! that sends them whatever its callers do, where a current-thread runtime
//! runs it only while one of them blocks on it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nexus_core::{ReplayEvent, StoreError, StreamId};
use sqlx::PgPool;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::oneshot;

use crate::convert::{corrupt, get_trusted};
use crate::errors::{another_callers_copy, store_error};

/// The events a page holds at most.
pub(crate) const PAGE: u8 = 64;
/// The replays one statement serves at most.
pub(crate) const MAX_REPLAYS: usize = 64;

/// The error of a replay whose statement's task stopped (its runtime shut
/// down) before it answered: nothing was read, and reading again may work.
pub(crate) fn stopped() -> StoreError {
    StoreError::Unavailable {
        source: "the task reading the first events of several replays stopped".into(),
    }
}

/// The first events of one stream, from the replay's first version.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) events: Vec<ReplayEvent>,
    /// Whether the page holds [`PAGE`] events, so that more may follow.
    pub(crate) full: bool,
}

/// The replays of one store (shared by its clones): how many read alone,
/// and those waiting for the next statement.
#[derive(Debug, Default)]
pub(crate) struct FirstPages {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Replays streaming alone now.
    alone: usize,
    /// Whether a task is sending the waiting replays' statements.
    draining: bool,
    waiting: Vec<Waiting>,
}

#[derive(Debug)]
struct Waiting {
    stream: StreamId,
    from_version: u64,
    reply: oneshot::Sender<Result<Page, StoreError>>,
}

/// How a replay reads: alone (nothing else was reading), or as one of the
/// next statement's.
pub(crate) enum Turn {
    /// Streams the whole replay itself; dropping it ends its turn.
    Alone(Alone),
    /// Its first page comes from the next statement.
    Queued(oneshot::Receiver<Result<Page, StoreError>>),
}

/// A replay reading alone; counted until dropped.
pub(crate) struct Alone(Arc<FirstPages>);

impl Drop for Alone {
    fn drop(&mut self) {
        self.0.lock().alone -= 1;
    }
}

/// The pool and the statement the draining task reads with.
#[derive(Clone, Debug)]
pub(crate) struct Reader {
    pub(crate) pool: PgPool,
    pub(crate) sql: Arc<str>,
}

impl FirstPages {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How the replay of `stream` from `from_version` reads: alone when no
    /// other replay reads now (or no multi-thread runtime is there to send
    /// a statement for it), queued otherwise, starting the task that sends
    /// the statements if none runs.
    pub(crate) fn turn(
        self: &Arc<Self>,
        reader: &Reader,
        stream: &StreamId,
        from_version: u64,
    ) -> Turn {
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .filter(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
        let (reply, page) = oneshot::channel();
        let start_drain = {
            let mut state = self.lock();
            let busy = state.alone > 0 || state.draining;
            if !busy || runtime.is_none() {
                state.alone += 1;
                return Turn::Alone(Alone(Arc::clone(self)));
            }
            state.waiting.push(Waiting {
                stream: stream.clone(),
                from_version,
                reply,
            });
            !std::mem::replace(&mut state.draining, true)
        };
        // Spawned outside the lock: a runtime that is shutting down drops
        // the task at once, and its drop guard takes the lock.
        if let (true, Some(runtime)) = (start_drain, runtime) {
            let drain = Drain {
                pages: Arc::clone(self),
                finished: false,
            };
            runtime.spawn(drain.run(reader.clone()));
        }
        Turn::Queued(page)
    }
}

/// The task that sends the waiting replays' statements, one at a time,
/// until none waits.
struct Drain {
    pages: Arc<FirstPages>,
    /// Set when it ended because nothing waited.
    finished: bool,
}

impl Drain {
    async fn run(mut self, reader: Reader) {
        loop {
            let group: Vec<Waiting> = {
                let mut state = self.pages.lock();
                if state.waiting.is_empty() {
                    state.draining = false;
                    self.finished = true;
                    return;
                }
                let take = state.waiting.len().min(MAX_REPLAYS);
                state.waiting.drain(..take).collect()
            };
            let pages = read(&reader, &group_keys(&group)).await;
            answer(group, pages);
        }
    }
}

impl Drop for Drain {
    /// A drain dropped before the queue emptied (its runtime shut down):
    /// the replays still waiting are told, by their dropped replies,
    /// rather than left waiting for a statement nobody sends, and the next
    /// replay starts another drain.
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.pages.lock();
            state.draining = false;
            state.waiting.clear();
        }
    }
}

fn group_keys(group: &[Waiting]) -> Vec<(&str, i64)> {
    group
        .iter()
        .map(|w| {
            let from = i64::try_from(w.from_version).unwrap_or(i64::MAX);
            (w.stream.as_str(), from)
        })
        .collect()
}

/// Sends each replay its page (or its stream's error), or every one of
/// them the statement's error.
fn answer(group: Vec<Waiting>, pages: Result<Vec<Result<Page, StoreError>>, StoreError>) {
    match pages {
        // A replay that gave up waiting dropped its receiver; nothing to do.
        Ok(pages) => {
            for (waiting, page) in group.into_iter().zip(pages) {
                drop(waiting.reply.send(page));
            }
        }
        Err(error) => {
            for waiting in group {
                drop(waiting.reply.send(Err(another_callers_copy(&error))));
            }
        }
    }
}

/// The first page of each of `replays` (stream, first version), in order;
/// a row of one stream that does not decode fails that stream's page only.
async fn read(
    reader: &Reader,
    replays: &[(&str, i64)],
) -> Result<Vec<Result<Page, StoreError>>, StoreError> {
    let (streams, froms): (Vec<&str>, Vec<i64>) = replays.iter().copied().unzip();
    let rows = sqlx::query(&reader.sql)
        .bind(&streams)
        .bind(&froms)
        .bind(i64::from(PAGE))
        .fetch_all(&reader.pool)
        .await
        .map_err(|e| store_error(e, &reader.pool))?;
    let mut pages: Vec<Result<Page, StoreError>> = replays
        .iter()
        .map(|_| {
            Ok(Page {
                events: Vec::new(),
                full: false,
            })
        })
        .collect();
    for row in &rows {
        let request: i64 = get_trusted(row, 0)?;
        let slot = request
            .checked_sub(1)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| pages.get_mut(at))
            .ok_or_else(|| corrupt(format!("a first-page row of request {request}")))?;
        let Ok(page) = slot else {
            continue;
        };
        match crate::replay::event_at(row, 1).map(ReplayEvent::from) {
            Ok(event) => page.events.push(event),
            Err(error) => *slot = Err(error),
        }
    }
    for page in pages.iter_mut().flatten() {
        page.full = page.events.len() == usize::from(PAGE);
    }
    Ok(pages)
}
