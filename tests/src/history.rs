//! A checker for invariant 8 of the design, "no stale answers": a reply that
//! did not write (a query, a rejection) reflects every write acknowledged
//! before the command was sent, also across processes.
//!
//! Callers record each operation on an entity with the time it was sent, the
//! time its answer arrived and what the answer said: an acknowledged write at
//! stream version `v`, a read or a rejection as of version `v`, or an
//! ambiguous outcome (a timeout, a lost connection), which tells nothing and
//! bounds nothing. [`History::check`] then finds every read or rejection whose
//! version is below the highest version acknowledged to anyone *strictly
//! before* it was sent. Operations that overlap a write may see it or not,
//! so they are never reported.
//!
//! Times are generic: [`Instant`] within one process, wall-clock nanoseconds
//! when histories of several processes on one machine are merged.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nexus_tests::history::{History, Outcome};
//!
//! let t0 = Instant::now();
//! let at = |ms| t0 + Duration::from_millis(ms);
//! let mut history = History::new();
//! history.record("alice", at(0), at(1), Outcome::Wrote { version: 1 });
//! history.record("alice", at(2), at(3), Outcome::Read { version: 0 });
//! let violations = history.check();
//! assert_eq!(violations.len(), 1, "the read after the write saw version 0");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

/// What the answer to one operation said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A write acknowledged as committed at stream `version`.
    Wrote {
        /// The stream version the write produced.
        version: u64,
    },
    /// A query answered from the entity's state as of `version`.
    Read {
        /// The stream version the answer reflects.
        version: u64,
    },
    /// A command rejected (nothing written) on the state as of `version`.
    Rejected {
        /// The stream version the rejection was decided on.
        version: u64,
    },
    /// The caller cannot tell whether the operation took effect (a timeout,
    /// a lost connection, a 503): it neither bounds nor is checked.
    Ambiguous,
}

/// One operation on one entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<T> {
    /// The entity the operation addressed.
    pub entity: String,
    /// When the caller sent it.
    pub sent: T,
    /// When the caller had its answer.
    pub answered: T,
    /// What the answer said.
    pub outcome: Outcome,
}

/// A stale answer: a read or rejection that missed a write acknowledged
/// before it was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation<T> {
    /// The entity.
    pub entity: String,
    /// `"read"` or `"rejection"`.
    pub kind: &'static str,
    /// The version the stale answer reflects.
    pub observed: u64,
    /// The highest version acknowledged before the stale operation was sent.
    pub acknowledged: u64,
    /// When that write was acknowledged.
    pub acknowledged_at: T,
    /// When the stale operation was sent.
    pub sent: T,
    /// When the stale operation was answered.
    pub answered: T,
}

impl<T: fmt::Debug> fmt::Display for Violation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: a {} sent at {:?} (answered at {:?}) reflects version {}, \
             but version {} was acknowledged at {:?}, before it was sent",
            self.entity,
            self.kind,
            self.sent,
            self.answered,
            self.observed,
            self.acknowledged,
            self.acknowledged_at,
        )
    }
}

/// The operations of a run, per entity; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct History<T = Instant> {
    operations: Vec<Operation<T>>,
}

impl<T> Default for History<T> {
    fn default() -> Self {
        Self {
            operations: Vec::new(),
        }
    }
}

impl<T: Ord + Copy + fmt::Debug> History<T> {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one operation on `entity`.
    pub fn record(&mut self, entity: impl Into<String>, sent: T, answered: T, outcome: Outcome) {
        self.operations.push(Operation {
            entity: entity.into(),
            sent,
            answered,
            outcome,
        });
    }

    /// Adds every operation of `other` (another caller's or process's).
    pub fn merge(&mut self, other: Self) {
        self.operations.extend(other.operations);
    }

    /// Every operation recorded, in recording order.
    pub fn operations(&self) -> &[Operation<T>] {
        &self.operations
    }

    /// How many reads and rejections [`check`](Self::check) examines.
    pub fn reads_checked(&self) -> usize {
        self.operations
            .iter()
            .filter(|op| observed(op.outcome).is_some())
            .count()
    }

    /// How many reads and rejections were sent after at least one write to
    /// their entity was acknowledged, so that a stale answer could show: a
    /// test asserts this is large, or its empty [`check`](Self::check)
    /// proves nothing.
    pub fn reads_bounded(&self) -> usize {
        let writes = self.acknowledged_writes();
        self.operations
            .iter()
            .filter(|op| observed(op.outcome).is_some())
            .filter(|op| lower_bound(&writes, op).is_some_and(|(version, _)| version > 0))
            .count()
    }

    /// Every read or rejection whose version is below the highest version
    /// acknowledged strictly before it was sent, in recording order.
    pub fn check(&self) -> Vec<Violation<T>> {
        let writes = self.acknowledged_writes();
        self.operations
            .iter()
            .filter_map(|op| {
                let (kind, version) = observed(op.outcome)?;
                let (acknowledged, acknowledged_at) = lower_bound(&writes, op)?;
                (version < acknowledged).then(|| Violation {
                    entity: op.entity.clone(),
                    kind,
                    observed: version,
                    acknowledged,
                    acknowledged_at,
                    sent: op.sent,
                    answered: op.answered,
                })
            })
            .collect()
    }

    /// Per entity, the acknowledged writes ordered by answer time, each with
    /// the highest version acknowledged up to then (and when it was).
    fn acknowledged_writes(&self) -> BTreeMap<&str, Vec<(T, u64, T)>> {
        let mut writes: BTreeMap<&str, Vec<(T, u64)>> = BTreeMap::new();
        for op in &self.operations {
            if let Outcome::Wrote { version } = op.outcome {
                writes
                    .entry(&op.entity)
                    .or_default()
                    .push((op.answered, version));
            }
        }
        writes
            .into_iter()
            .map(|(entity, mut list)| {
                list.sort_unstable();
                let mut best: Option<(u64, T)> = None;
                let prefix = list
                    .into_iter()
                    .map(|(answered, version)| {
                        if best.is_none_or(|(max, _)| version > max) {
                            best = Some((version, answered));
                        }
                        let (max, at) = best.expect("set above");
                        (answered, max, at)
                    })
                    .collect();
                (entity, prefix)
            })
            .collect()
    }
}

fn observed(outcome: Outcome) -> Option<(&'static str, u64)> {
    match outcome {
        Outcome::Read { version } => Some(("read", version)),
        Outcome::Rejected { version } => Some(("rejection", version)),
        Outcome::Wrote { .. } | Outcome::Ambiguous => None,
    }
}

/// The highest version acknowledged strictly before `op` was sent, and when.
fn lower_bound<T: Ord + Copy>(
    writes: &BTreeMap<&str, Vec<(T, u64, T)>>,
    op: &Operation<T>,
) -> Option<(u64, T)> {
    let list = writes.get(op.entity.as_str())?;
    let before = list.partition_point(|(answered, _, _)| *answered < op.sent);
    let (_, max, at) = list.get(before.checked_sub(1)?)?;
    Some((*max, *at))
}

#[cfg(test)]
mod tests {
    use super::{History, Outcome};

    fn wrote(version: u64) -> Outcome {
        Outcome::Wrote { version }
    }

    #[test]
    fn a_planted_stale_read_and_rejection_are_reported() {
        let mut history = History::<u64>::new();
        history.record("a", 0, 10, wrote(1));
        history.record("a", 5, 20, wrote(2));
        history.record("a", 21, 22, Outcome::Read { version: 1 });
        history.record("a", 30, 31, Outcome::Rejected { version: 0 });
        history.record("a", 30, 31, Outcome::Read { version: 2 });
        let violations = history.check();
        assert_eq!(violations.len(), 2, "{violations:?}");
        let stale = &violations[0];
        assert_eq!(
            (stale.entity.as_str(), stale.kind, stale.observed),
            ("a", "read", 1)
        );
        assert_eq!((stale.acknowledged, stale.acknowledged_at), (2, 20));
        assert_eq!((stale.sent, stale.answered), (21, 22));
        assert_eq!(violations[1].kind, "rejection");
        assert!(
            violations[0]
                .to_string()
                .contains("reflects version 1, but version 2 was acknowledged at 20"),
            "{}",
            violations[0]
        );
        assert_eq!(history.reads_checked(), 3);
        assert_eq!(history.reads_bounded(), 3);
    }

    #[test]
    fn reads_overlapping_a_write_may_miss_it() {
        let mut history = History::<u64>::new();
        history.record("a", 0, 10, wrote(1));
        // Sent before the write was acknowledged, answered after: either is fine.
        history.record("a", 9, 12, Outcome::Read { version: 0 });
        // Sent exactly when the acknowledgement arrived: not strictly after.
        history.record("a", 10, 12, Outcome::Rejected { version: 0 });
        // Overlapping a second write entirely.
        history.record("a", 11, 40, wrote(2));
        history.record("a", 12, 41, Outcome::Read { version: 1 });
        assert_eq!(history.check(), []);
        assert_eq!(history.reads_checked(), 3);
        assert_eq!(history.reads_bounded(), 1);
    }

    #[test]
    fn entities_are_independent_and_ambiguous_outcomes_bound_nothing() {
        let mut history = History::<u64>::new();
        history.record("a", 0, 1, wrote(5));
        history.record("b", 2, 3, Outcome::Read { version: 0 });
        history.record("b", 0, 1, Outcome::Ambiguous);
        history.record("a", 4, 5, Outcome::Ambiguous);
        history.record("a", 6, 7, Outcome::Read { version: 5 });
        assert_eq!(history.check(), []);
        assert_eq!(history.reads_checked(), 2);
        assert_eq!(history.reads_bounded(), 1);
    }

    #[test]
    fn the_bound_is_the_highest_version_even_when_acknowledged_out_of_order() {
        let mut history = History::<u64>::new();
        // Version 3 acknowledged before version 2 (different processes).
        history.record("a", 0, 5, wrote(3));
        history.record("a", 0, 8, wrote(2));
        history.record("a", 9, 10, Outcome::Read { version: 2 });
        let violations = history.check();
        assert_eq!(violations.len(), 1);
        assert_eq!(
            (violations[0].acknowledged, violations[0].acknowledged_at),
            (3, 5)
        );
    }

    #[test]
    fn merged_histories_are_checked_together() {
        let mut first = History::<u64>::new();
        first.record("a", 0, 1, wrote(1));
        let mut second = History::<u64>::new();
        second.record("a", 2, 3, Outcome::Read { version: 0 });
        assert_eq!(second.check(), []);
        first.merge(second);
        assert_eq!(first.check().len(), 1);
        assert_eq!(first.operations().len(), 2);
    }
}
