//! Stream identities, versions and positions in the global log.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The identity of one event stream, also used as the persistence id of a
/// durable-state entity.
///
/// A stream id is `"{category}-{id}"`, where the category is the aggregate's
/// [`NAME`](crate::Aggregate::NAME). A category never contains `-` (the
/// `#[aggregate]` macro and `Entities::builder(..).build()` refuse such
/// names), so the first `-` of a stream id ends its category and no two
/// (category, id) pairs share a stream: `stock-a` with id `1` cannot exist
/// beside `stock` with id `a-1`.
///
/// ```
/// use nexus_core::StreamId;
/// let stream = StreamId::for_entity("wallet", "alice");
/// assert_eq!(stream.as_str(), "wallet-alice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// A stream id taken as it is.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The stream of entity `id` of the aggregate kind `category`.
    pub fn for_entity(category: &str, id: &str) -> Self {
        Self(format!("{category}-{id}"))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stream's category: the aggregate type, everything before the
    /// first `-` (the whole id when it has none).
    ///
    /// ```
    /// use nexus_core::StreamId;
    /// assert_eq!(StreamId::for_entity("wallet", "alice-2").category(), "wallet");
    /// assert_eq!(StreamId::new("singleton").category(), "singleton");
    /// ```
    pub fn category(&self) -> &str {
        self.0
            .split_once('-')
            .map_or(self.0.as_str(), |(category, _)| category)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StreamId {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for StreamId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Why `name` cannot be a stream category, if it cannot: it must be
/// non-empty and free of `-`, which ends the category in a stream id.
pub(crate) fn category_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("the aggregate name is the category of its streams: it cannot be empty")
    } else if name.contains('-') {
        Some(
            "`-` separates the category from the id in a stream id, so a name with `-` \
             could share streams with another aggregate; use `_` or `.` instead",
        )
    } else {
        None
    }
}

/// What the writer believes the stream's current version to be.
///
/// Versions start at 1 for the first event; a stream that has no events is at
/// version 0.
///
/// ```
/// use nexus_core::ExpectedVersion;
/// assert!(ExpectedVersion::NoStream.accepts(0));
/// assert!(ExpectedVersion::Exact(3).accepts(3));
/// assert!(!ExpectedVersion::Exact(3).accepts(4));
/// assert!(ExpectedVersion::Any.accepts(42));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the current version is.
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream must be at exactly this version (0 means empty).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(v) => v == actual,
        }
    }

    /// The version the stream is known to be at, if the expectation pins one.
    pub fn pinned(self) -> Option<u64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exact(v) => Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream (0)"),
            Self::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// A place in the global log, ordered by `epoch`, then `commit`, then
/// `sequence`.
///
/// The `epoch` numbers ranges of the log: a store starts a new epoch when
/// its history forks (a database restored from a backup, or a standby
/// promoted after an asynchronous failover), so every position of the new
/// range sorts after every position handed out before, even when the new
/// range's commit keys are smaller. Positions of one range have one epoch;
/// the in-memory store and a store that never forks keep epoch 0.
///
/// Positions are totally ordered and every reader of the log sees events in
/// this order. `commit` groups the events of one commit: a store that assigns
/// positions before commit (as Postgres sequences do) uses a commit-ordered key
/// here so that an event committed late can never land *behind* a position a
/// reader has already passed. The in-memory store sets both to one counter.
///
/// ```
/// use nexus_core::LogPosition;
/// let a = LogPosition::new(7, 10);
/// let b = LogPosition::new(8, 3);
/// assert!(LogPosition::START < a && a < b);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// The range of the log (see above); 0 until a store starts another.
    #[serde(default)]
    pub epoch: u32,
    /// The commit-ordered part of the position.
    pub commit: u64,
    /// The position within (and across) commits with the same `commit` key.
    pub sequence: u64,
}

impl LogPosition {
    /// Before the first event: reading the log after `START` reads it all.
    pub const START: Self = Self {
        epoch: 0,
        commit: 0,
        sequence: 0,
    };

    /// A position of epoch 0 from its two other parts.
    pub const fn new(commit: u64, sequence: u64) -> Self {
        Self::in_epoch(0, commit, sequence)
    }

    /// A position from all three parts.
    ///
    /// ```
    /// use nexus_core::LogPosition;
    /// // A restored log's first event sorts after the old log's last one.
    /// assert!(LogPosition::new(9_000, 70) < LogPosition::in_epoch(1, 12, 1));
    /// ```
    pub const fn in_epoch(epoch: u32, commit: u64, sequence: u64) -> Self {
        Self {
            epoch,
            commit,
            sequence,
        }
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}/{}", self.commit, self.sequence)
    }
}
